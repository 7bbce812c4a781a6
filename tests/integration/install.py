"""Playing the kubelet and the cluster network for an installed chart: the operator process runs as the chart's
Deployment says (its ServiceAccount, its environment, its volumes), and the API server reaches it through the
chart's own Service and webhook configurations.

The test control plane has no kubelet and no pod network, so:
- the operator authenticates as the Deployment's ServiceAccount (a client certificate for that identity);
- its environment is the container's (fieldRefs filled as the kubelet would), its mounted paths are directories
  of the test's (a ConfigMap volume is written there from the ConfigMap);
- the chart's Service becomes an ExternalName Service naming a loopback address of its own, where the operator
  listens on the Service's port: the API server resolves a Service-referenced webhook to that address and still
  verifies the certificate for `<service>.<namespace>.svc`, as in a cluster.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
from pathlib import Path
from typing import Any

from release_readiness_dev.localcluster import LocalCluster
from tests.integration.conftest import BIN, REPO, Kubectl, OperatorProcess, eventually

SAMPLES = REPO / "deploy" / "samples"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / "helm"), *args], capture_output=True, text=True, timeout=180)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def loopback_address() -> str:
    """A loopback address of this test's own (all of 127.0.0.0/8 reaches this host), so parallel runs never
    share the webhook's port 443."""
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


def get(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(kubectl.run("get", *args, "-o", "json").stdout)
    return body


def run_as_deployed(
    cluster: LocalCluster, namespace: str, deployment: str, workdir: Path, pod: str = "pod-0"
) -> OperatorProcess:
    """Start the operator as the installed Deployment `deployment` in `namespace` would run it."""
    kubectl = Kubectl(cluster.kubeconfig)
    spec = get(kubectl, "deployment", deployment, "-n", namespace)["spec"]["template"]["spec"]
    container = spec["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    paths: dict[str, Path] = {}
    for volume in spec.get("volumes", []):
        local = workdir / volume["name"]
        local.mkdir(parents=True, exist_ok=True)
        paths[mounts[volume["name"]]] = local
        if "configMap" in volume:  # the kubelet writes a ConfigMap volume's keys as files
            data = get(kubectl, "configmap", volume["configMap"]["name"], "-n", namespace).get("data", {})
            for key, value in data.items():
                (local / key).write_text(value)
        if "secret" in volume:  # and a Secret volume's (cert-manager's certificate, or an older chart's)
            secret = get(kubectl, "secret", volume["secret"]["secretName"], "-n", namespace)
            for key, value in (secret.get("data") or {}).items():
                (local / key).write_bytes(base64.b64decode(value))

    def local_path(value: str) -> str:
        for mount, local in paths.items():
            if value == mount or value.startswith(mount + "/"):
                return str(local) + value[len(mount) :]
        return value

    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "valueFrom" not in item:  # an empty value comes back without `value`
            env[item["name"]] = local_path(item.get("value", ""))
        else:
            field = item["valueFrom"]["fieldRef"]["fieldPath"]
            env[item["name"]] = {"metadata.name": pod, "metadata.namespace": namespace}[field]
    service = get(kubectl, "service", deployment, "-n", namespace)
    webhook_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "webhook")
    address = loopback_address()
    kubectl.run("delete", "service", deployment, "-n", namespace)
    kubectl.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": deployment, "namespace": namespace},
                "spec": {"type": "ExternalName", "externalName": address},
            }
        )
    )
    sa = spec["serviceAccountName"]
    kubeconfig = cluster.kubeconfig_for(
        f"system:serviceaccount:{namespace}:{sa}", ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")
    )
    for pod_local in ("RR_HEALTH_PORT", "RR_METRICS_PORT"):  # a pod's own ports; here: free ones
        env.pop(pod_local, None)
    env.update(
        {
            "RR_WEBHOOK_HOST": address,
            "RR_WEBHOOK_PORT": str(webhook_port),
            "RR_LOG_FORMAT": "json",
            "RR_WEBHOOK_CERT_CHECK_SECONDS": env.get("RR_WEBHOOK_CERT_CHECK_SECONDS", "2"),
        }
    )
    proc = OperatorProcess(cluster, workdir / "operator.log", Path(env["RR_WEBHOOK_CERT_DIR"]), webhook_port, **env)
    for unset in ("RR_BREAK_GLASS_GROUPS", "RR_PLATFORM_ADMIN_GROUPS", "RR_RESYNC_SECONDS"):
        if unset not in env:
            proc.env.pop(unset, None)  # as the chart says, not as the other tests do
    proc.env["KUBECONFIG"] = str(kubeconfig)
    return proc


def refused_at_the_gate(kubectl: Kubectl) -> str:
    """The README's sample: the release and its candidate, then the production rollout, which the gate refuses
    (the checklist's items are outstanding). Returns the refusal."""
    for name in ("namespaces.yaml", "candidate.yaml", "release.yaml"):
        kubectl.run("apply", "-f", str(SAMPLES / name))
    proc = kubectl.run("apply", "-f", str(SAMPLES / "production-deployment.yaml"), check=False)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


def default_checklist_applied(kubectl: Kubectl) -> dict[str, Any]:
    def present() -> dict[str, Any] | None:
        proc = kubectl.run(
            "get", "readinesschecklist", "pre-production", "-o", "json", "--show-managed-fields", check=False
        )
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    body: dict[str, Any] = eventually(present, timeout=90, what="the default checklist, applied by the operator")
    return body
