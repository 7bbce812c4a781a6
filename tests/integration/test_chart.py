"""The Helm chart: lint, every rendered object accepted server-side, RBAC that is enough and no more,
and the operator's own Deployment passing the workload checks it enforces on others."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from release_readiness.admission.configuration import prepare_local_webhook
from release_readiness.config import Settings
from release_readiness_dev import builders
from release_readiness_dev.localcluster import LocalCluster, free_port
from tests.integration.conftest import BIN, REPO, SAMPLE_CRDS, Kubectl, OperatorProcess, eventually, roll_out

CHART = REPO / "charts" / "release-readiness"
FIXTURES = REPO / "tests" / "integration" / "fixtures"
NS = "rr-system"
SA = f"system:serviceaccount:{NS}:rr"
NON_DEFAULT = [
    "--set",
    "webhook.certManager.enabled=true",
    "--set",
    "serviceMonitor.enabled=true",
    "--set",
    "prometheusRule.enabled=true",
    "--set",
    "grafanaDashboard.enabled=true",
    "--set",
    "candidateNamespaces={stg-chart}",
    "--set",
    "operator.breakGlassGroups={sre}",
    "--set",
    "replicaCount=3",
    "--set",
    "webhook.clientCA.configMap=webhook-client-ca",
    "--set",
    "networkPolicy.podCIDRs={10.244.0.0/16,fd00:10:244::/56}",
    "--set",
    "networkPolicy.healthFrom[0].namespaceSelector.matchLabels.team=sre",
]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / "helm"), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def render(*args: str, namespace: str = NS) -> list[dict[str, Any]]:
    out = helm("template", "rr", str(CHART), "-n", namespace, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def chart_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("chart-cluster")) as cluster:
        kubectl = Kubectl(cluster.kubeconfig)
        kubectl.run("apply", "--server-side", "-f", str(CHART / "crds"))
        kubectl.run("apply", "-f", str(SAMPLE_CRDS / "prometheusrules-crd.yaml"))
        for fixture in ("servicemonitors-crd.yaml", "cert-manager-crds.yaml"):
            kubectl.run("apply", "-f", str(FIXTURES / fixture))
        kubectl.run("wait", "--for=condition=Established", "--all", "crd", "--timeout=60s")
        for ns in (NS, "stg-chart", "rr-self", "elsewhere"):
            kubectl.run("create", "namespace", ns)
        yield cluster


def test_helm_lint_default_and_non_default_values() -> None:
    assert "0 chart(s) failed" in helm("lint", str(CHART)).stdout
    assert "0 chart(s) failed" in helm("lint", str(CHART), *NON_DEFAULT).stdout


def test_values_schema_refuses_bad_values() -> None:
    proc = subprocess.run(
        [str(BIN / "helm"), "template", "rr", str(CHART), "--set", "operator.logFormat=xml"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "/operator/logFormat" in proc.stderr


@pytest.mark.parametrize("values", [[], NON_DEFAULT], ids=["defaults", "non-default"])
def test_every_rendered_object_is_accepted_server_side(chart_cluster: LocalCluster, values: list[str]) -> None:
    objects = render(*values)
    kinds = {o["kind"] for o in objects}
    assert {
        "Deployment",
        "Service",
        "ClusterRole",
        "ValidatingWebhookConfiguration",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "ConfigMap",  # the default checklist, which the operator applies once its webhook answers
    } <= kinds
    proc = Kubectl(chart_cluster.kubeconfig).run(
        "apply", "--dry-run=server", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    )
    assert proc.stdout.count("(server dry run)") == len(objects), proc.stdout


def test_the_network_policy_admits_each_port_only_from_its_configured_sources() -> None:
    def ingress(*values: str) -> dict[str, list[dict[str, Any]]]:
        policy = next(o for o in render(*values) if o["kind"] == "NetworkPolicy")
        return {rule["ports"][0]["port"]: rule["from"] for rule in policy["spec"]["ingress"]}

    default = ingress()
    assert default["webhook"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]
    assert default["metrics"] == [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
    ]
    assert "health" not in default, "nobody but the kubelet reaches the probes by default"
    configured = ingress(*NON_DEFAULT)
    assert configured["webhook"] == [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.244.0.0/16"]}},
        {"ipBlock": {"cidr": "::/0", "except": ["fd00:10:244::/56"]}},
    ], "no pod can reach the webhook"
    assert configured["health"] == [{"namespaceSelector": {"matchLabels": {"team": "sre"}}}]
    control_plane = ingress(
        "--set", "networkPolicy.webhookFrom[0].ipBlock.cidr=172.18.0.0/24", "--set", "networkPolicy.metricsFrom=null"
    )
    assert control_plane["webhook"] == [{"ipBlock": {"cidr": "172.18.0.0/24"}}]
    assert "metrics" not in control_plane


def test_the_client_ca_makes_the_operator_require_the_api_servers_certificate() -> None:
    deployment = next(o for o in render(*NON_DEFAULT) if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RR_WEBHOOK_CLIENT_CA"] == "/client-ca/ca.crt"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["client-ca"]["configMap"]["name"] == "webhook-client-ca"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    default = next(o for o in render() if o["kind"] == "Deployment")
    assert "RR_WEBHOOK_CLIENT_CA" not in {
        e["name"] for e in default["spec"]["template"]["spec"]["containers"][0]["env"]
    }


def test_the_webhook_limits_reach_the_operator_as_the_numbers_set() -> None:
    def settings(*values: str) -> Settings:
        deployment = next(o for o in render(*values) if o["kind"] == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        return Settings.from_env(env)

    default, operator_default = settings(), Settings()
    assert (default.webhook_max_connections, default.webhook_max_in_flight, default.webhook_max_bytes_in_flight) == (
        operator_default.webhook_max_connections,
        operator_default.webhook_max_in_flight,
        operator_default.webhook_max_bytes_in_flight,
    ), "the chart's defaults are the operator's"
    # 64 MiB: a large number from --set or a values file must reach the operator as an integer (not 6.7108864e+07)
    limits = (
        "webhook.limits.maxConnections=512",
        "webhook.limits.maxInFlight=32",
        "webhook.limits.maxBytesInFlight=67108864",
    )
    configured = settings(*(arg for value in limits for arg in ("--set", value)))
    assert (configured.webhook_max_connections, configured.webhook_max_in_flight) == (512, 32)
    assert configured.webhook_max_bytes_in_flight == 64 * 1024 * 1024
    proc = subprocess.run(
        [str(BIN / "helm"), "template", "rr", str(CHART), "--set", "webhook.limits.maxInFlight=0"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "/webhook/limits/maxInFlight" in proc.stderr


def test_committed_kustomize_base_matches_the_chart() -> None:
    committed = (REPO / "deploy" / "base" / "release-readiness.yaml").read_text()
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "render-kustomize.sh")], capture_output=True, text=True, cwd="/tmp", check=True
    )
    assert "wrote" in out.stdout
    assert (REPO / "deploy" / "base" / "release-readiness.yaml").read_text() == committed, (
        "deploy/base drifted from the chart: run `make manifests` and commit"
    )
    rendered = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(REPO / "deploy")], capture_output=True, text=True, check=True
    ).stdout
    assert (REPO / "deploy" / "install.yaml").read_text() == rendered, (
        "deploy/install.yaml drifted: run `make build-installer` and commit"
    )


def install_rbac(kubectl: Kubectl) -> None:
    rbac = [
        o
        for o in render("--set", "candidateNamespaces={stg-chart}", "--set", "notifications.sinks={team-slack}")
        if o["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    ]
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac}))


def test_the_service_account_cannot_read_secrets_cluster_wide(chart_cluster: LocalCluster) -> None:
    kubectl = Kubectl(chart_cluster.kubeconfig)
    install_rbac(kubectl)

    def can(*args: str) -> str:
        return kubectl.run("auth", "can-i", *args, f"--as={SA}", check=False).stdout.strip()

    assert can("list", "secrets", "--all-namespaces") == "no"
    assert can("get", "secrets", "-n", "elsewhere") == "no"
    assert can("get", "secrets", "-n", NS) == "no"
    assert can("get", "secrets", "-n", "stg-chart") == "yes"
    assert can("list", "secrets", "-n", "stg-chart") == "no"
    assert can("patch", "deployments", "-n", "stg-chart") == "no"
    # Notifications: the named sink Secret only, and the ledger ConfigMaps in its own namespace.
    assert can("get", "secrets/team-slack", "-n", NS) == "yes"
    assert can("get", "secrets/another-apps-credentials", "-n", NS) == "no"
    # Its webhook certificate, by name only (it creates and rotates it), and its own webhook configurations.
    assert can("patch", "secrets/rr-webhook-tls", "-n", NS) == "yes"
    assert can("patch", "secrets/team-slack", "-n", NS) == "no"
    assert can("patch", "secrets/rr-webhook-tls", "-n", "stg-chart") == "no"
    assert can("patch", "validatingwebhookconfigurations/rr") == "yes"
    assert can("patch", "validatingwebhookconfigurations/someone-elses") == "no"
    assert can("patch", "mutatingwebhookconfigurations/rr") == "yes"
    assert can("create", "readinesschecklists.readiness.dev/pre-production") == "yes"
    assert can("patch", "readinesschecklists.readiness.dev/another") == "no"
    assert can("list", "secrets", "-n", NS) == "no"
    assert can("get", "secrets/team-slack", "-n", "elsewhere") == "no"
    assert can("update", "configmaps", "-n", NS) == "yes"
    assert can("update", "configmaps", "-n", "elsewhere") == "no"
    assert can("patch", "releasereadinesses.readiness.dev", "--subresource=status", "-n", "rr-self") == "yes"
    assert can("patch", "releasereadinesses.readiness.dev", "-n", "rr-self") == "no"


def test_the_operator_runs_as_the_charts_service_account(chart_cluster: LocalCluster, tmp_path: Path) -> None:
    """Authenticated as system:serviceaccount:rr-system:rr (a client certificate), with only the chart's RBAC."""
    kubectl = Kubectl(chart_cluster.kubeconfig)
    install_rbac(kubectl)
    port = free_port()
    configs = prepare_local_webhook(tmp_path / "certs", port)
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": configs}))
    kubeconfig = chart_cluster.kubeconfig_for(SA, ("system:serviceaccounts", f"system:serviceaccounts:{NS}"))
    proc = OperatorProcess(
        chart_cluster, tmp_path / "operator.log", tmp_path / "certs", port, RR_LEASE_NAMESPACE=NS, RR_IDENTITY="rr-0"
    )
    proc.env["KUBECONFIG"] = str(kubeconfig)
    proc.start()
    try:
        labels = {"app.kubernetes.io/name": "shop", "app.kubernetes.io/version": "1.0.0"}
        kubectl.apply(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "List",
                    "items": [
                        builders.deployment(
                            "shop",
                            "stg-chart",
                            labels={},
                            template_labels=labels,
                            selector=labels,
                            containers=[builders.container("shop", "reg/shop:1.0.0")],
                            replicas=None,
                        ),
                        {
                            "apiVersion": "v1",
                            "kind": "Service",
                            "metadata": {"name": "shop", "namespace": "stg-chart"},
                            "spec": {"selector": labels, "ports": [{"port": 80}]},
                        },
                        builders.tls_secret("stg-chart", "shop-tls", "shop.example.com", 60)[0],
                        {
                            "apiVersion": "networking.k8s.io/v1",
                            "kind": "Ingress",
                            "metadata": {"name": "shop", "namespace": "stg-chart"},
                            "spec": {
                                "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
                                "defaultBackend": {"service": {"name": "shop", "port": {"number": 80}}},
                            },
                        },
                        builders.checklist(
                            "sa-check",
                            [
                                {
                                    "id": "tls",
                                    "section": "S",
                                    "title": "TLS",
                                    "check": {"workload": "tlsCertificate"},
                                }
                            ],
                        ),
                        builders.release("shop-1.0.0", "rr-self", "shop", "1.0.0", "sa-check", "stg-chart"),
                    ],
                }
            )
        )

        def ready() -> bool:
            out = kubectl.run(
                "get",
                "rr",
                "shop-1.0.0",
                "-n",
                "rr-self",
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            ).stdout
            return out == "True"

        eventually(ready, timeout=60, what="the release Ready, evaluated by the operator as its service account")
        holder = kubectl.run(
            "get", "lease", "release-readiness-reconciler", "-n", NS, "-o", "jsonpath={.spec.holderIdentity}"
        ).stdout
        assert holder == "rr-0"
        logs = proc.logs()
        assert "Forbidden" not in logs
        assert " 403" not in logs
    finally:
        proc.stop()
        kubectl.run("delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration", "release-readiness")


def test_the_charts_own_deployment_passes_the_workload_checks(chart_cluster: LocalCluster, tmp_path: Path) -> None:
    """Run with an operator as cluster admin; the candidate is the chart rendered into rr-self."""
    kubectl = Kubectl(chart_cluster.kubeconfig)
    checks = [
        "resourceRequests",
        "resourceLimits",
        "livenessProbe",
        "readinessProbe",
        "securityContext",
        "imageTagPinned",
        "noHardcodedSecrets",
        "replicas",
        "podDisruptionBudget",
        "networkPolicy",
        "service",
        "metricsScraped",
        "alertRules",
    ]
    own = [
        o
        for o in render("--set", "prometheusRule.enabled=true", namespace="rr-self")
        if o["kind"] in ("Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "PrometheusRule")
    ]
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": own}))
    roll_out(kubectl, "rr-self", "rr")
    kubectl.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    builders.checklist(
                        "own",
                        [
                            {"id": c.lower(), "section": "Operator", "title": c, "check": {"workload": c}}
                            for c in checks
                        ],
                    ),
                    builders.release("release-readiness-0.1.0", NS, "release-readiness", "0.1.0", "own", "rr-self"),
                ],
            }
        )
    )
    prepare_local_webhook(tmp_path / "certs", 0)  # certificates only; these webhooks are not registered
    with_admin = OperatorProcess(
        chart_cluster, tmp_path / "own.log", tmp_path / "certs", free_port(), RR_LEADER_ELECTION="false"
    )
    with_admin.start()
    try:

        def states() -> dict[str, str]:
            body = json.loads(kubectl.run("get", "rr", "release-readiness-0.1.0", "-n", NS, "-o", "json").stdout)
            return {i["id"]: f"{i['state']}: {i['message']}" for i in (body.get("status") or {}).get("items", [])}

        eventually(
            lambda: states() and all(s.startswith("Passed") for s in states().values()),
            timeout=60,
            what="every workload check Passed on the chart's own Deployment",
        )
    finally:
        with_admin.stop()


def test_helm_install_yields_a_working_object_set(chart_cluster: LocalCluster) -> None:
    """Last in this module: it registers webhooks whose Service has no pods here, which would refuse
    later creations of releases in this cluster; it uninstalls at the end. A candidate namespace that does not
    exist yet is skipped (and named), not a failed install."""
    env_kubeconfig = f"--kubeconfig={chart_cluster.kubeconfig}"
    installed = helm(
        "install",
        "rr-demo",
        str(CHART),
        "-n",
        "rr-demo",
        "--create-namespace",
        env_kubeconfig,
        "--set",
        "candidateNamespaces={stg-chart,not-yet}",
    )
    assert "STATUS: deployed" in installed.stdout
    assert "kubectl label namespace <prod-namespace> readiness.dev/gate=enforce" in installed.stdout
    assert "not-yet does not exist yet" in installed.stdout
    kubectl = Kubectl(chart_cluster.kubeconfig)
    names = kubectl.run("get", "deploy,svc,sa,pdb,networkpolicy,configmap", "-n", "rr-demo", "-o", "name").stdout
    assert {
        "deployment.apps/rr-demo",
        "service/rr-demo",
        "serviceaccount/rr-demo",
        "poddisruptionbudget.policy/rr-demo",
        "networkpolicy.networking.k8s.io/rr-demo",
        "configmap/rr-demo-default-checklist",
    } <= set(names.split())
    assert kubectl.run("get", "role", "rr-demo-candidate-secrets", "-n", "stg-chart", "-o", "name").stdout.strip()
    secrets = kubectl.run("get", "secret", "-n", "rr-demo", "-o", "name").stdout
    assert "rr-demo-webhook-tls" not in secrets, "the operator creates the certificate, not the chart"
    hooks = json.loads(kubectl.run("get", "validatingwebhookconfiguration", "rr-demo", "-o", "json").stdout)
    assert all("caBundle" not in h["clientConfig"] for h in hooks["webhooks"]), "the operator patches the caBundle"
    upgraded = helm("upgrade", "rr-demo", str(CHART), "-n", "rr-demo", env_kubeconfig, "--reuse-values")
    assert "STATUS: deployed" in upgraded.stdout
    helm("uninstall", "rr-demo", "-n", "rr-demo", env_kubeconfig)


def test_user_roles_aggregate_where_right_and_nobody_gets_status() -> None:
    roles = {o["metadata"]["name"]: o for o in render() if o["kind"] == "ClusterRole"}
    aggregated = {
        name.removeprefix("rr-"): sorted(k for k in role["metadata"]["labels"] if k.startswith("rbac.authorization"))
        for name, role in roles.items()
        if name != "rr"
    }
    assert aggregated == {
        "viewer": ["rbac.authorization.k8s.io/aggregate-to-view"],
        "signer": ["rbac.authorization.k8s.io/aggregate-to-edit"],
        "release-manager": ["rbac.authorization.k8s.io/aggregate-to-admin"],
        "platform-admin": [],
    }
    for name, role in roles.items():
        resources = {r for rule in role["rules"] for r in rule.get("resources", [])}
        if name != "rr":  # only the operator writes release status
            assert "releasereadinesses/status" not in resources, name
    signer = {r for rule in roles["rr-signer"]["rules"] for r in rule["resources"] if "delete" in rule["verbs"]}
    assert signer == {"releasesignoffs"}  # deleting releases (and with them their signoffs) is not for `edit`
    operator = [rule for rule in roles["rr"]["rules"] if "subjectaccessreviews" in rule.get("resources", [])]
    assert operator == [
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}
    ]
    assert render("--set", "userRoles.enabled=false").count(roles["rr-viewer"]) == 0


def test_monitoring_objects_render_when_the_cluster_serves_them_or_when_asked() -> None:
    def monitoring(*args: str) -> set[str]:
        return {o["kind"] for o in render(*args)} & {"ServiceMonitor", "PrometheusRule"}

    served = ["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"]
    served += ["--api-versions", "monitoring.coreos.com/v1/PrometheusRule"]
    assert monitoring() == set(), "a fresh cluster has no Prometheus Operator: nothing that needs it"
    assert monitoring(*served) == {"ServiceMonitor", "PrometheusRule"}
    assert monitoring(*served, "--set", "serviceMonitor.enabled=false") == {"PrometheusRule"}
    assert monitoring("--set", "prometheusRule.enabled=true") == {"PrometheusRule"}
