"""`make bench BENCH=kyverno`: the gate and Kyverno v1.19.1 side by side through the same kube-apiserver (issue 26).

Kyverno's admission controller (`cmd/kyverno`, built from its Go module by `make bench-kyverno-tools`, cached like the
control plane) runs out of cluster as a local process against the local API server: `--kubeconfig`, `--serverIP` (so
its webhooks are registered with a URL on 127.0.0.1), `--omitEvents` (all four kinds: our gate writes no event per
refusal either, only one a minute per release) and `--admissionReports=false` (our gate records no report per
request). Its CRDs are applied from its module source (`config/crds`, the module Go downloaded for the build).

The work is the same Deployment refused by each: server-side dry-run patches of the gated Deployment's pod template
(each with another env value, so each is judged) that set its version label to 3.3.0. Our gate refuses it because
release payments-api-3.3.0 is not Ready (the default checklist, about 210 items outstanding, listed in a message of
about 3 KB); Kyverno's CEL ValidatingPolicy checks the pod template (registry, memory limits, readiness probes, the
scrape annotation) and refuses it because 3.3.0 is not among the versions allowed in prod. Three arms, interleaved
in blocks of 100 in one run with their order rotated each round: none (neither webhook asks about the Deployment:
the patch is admitted), ours (our webhook configuration registered), Kyverno (the namespace labelled so that the
policy's webhook, whose namespaceSelector Kyverno copies from the policy, matches it). Before each block a probe
request (not timed) checks that the arm's engine, and only it, answers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from bench.__main__ import Setup, cpu_seconds, deployment, load_average, pct, rss_mib, unready_release
from release_readiness_dev.harness import REPO, eventually
from release_readiness_dev.localcluster import die_with_parent, free_port

KYVERNO = REPO / "bin" / "kyverno"
KYVERNO_MODULE = "github.com/kyverno/kyverno"
NAMESPACE = "kyverno"
POLICY = "kyverno-bench-release-gate"
ARM_LABEL = "bench.kyverno.io/gate"
REFUSED_VERSION = "3.3.0"
ARMS = ("none", "ours", "kyverno")

# The same refusal as ours, as a Kyverno CEL ValidatingPolicy: the pod template's checks (which pass), then the
# version (which refuses). Background scans off (we measure admission), no ValidatingAdmissionPolicy generated (that
# would be the API server's own CEL, not Kyverno's webhook).
VALIDATING_POLICY: dict[str, Any] = {
    "apiVersion": "policies.kyverno.io/v1",
    "kind": "ValidatingPolicy",
    "metadata": {"name": POLICY},
    "spec": {
        "validationActions": ["Deny"],
        "failurePolicy": "Fail",
        "evaluation": {"background": {"enabled": False}},
        "autogen": {"validatingAdmissionPolicy": {"enabled": False}},
        "matchConstraints": {
            "namespaceSelector": {"matchLabels": {ARM_LABEL: "on"}},
            "resourceRules": [
                {
                    "apiGroups": ["apps"],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["deployments"],
                }
            ],
        },
        "variables": [
            {"name": "template", "expression": "object.spec.template"},
            {
                "name": "version",
                "expression": "has(object.spec.template.metadata.labels) && "
                "'app.kubernetes.io/version' in object.spec.template.metadata.labels ? "
                "object.spec.template.metadata.labels['app.kubernetes.io/version'] : ''",
            },
        ],
        "validations": [
            {
                "expression": "variables.template.spec.containers.all(c, c.image.startsWith('registry.example.com/'))",
                "message": "kyverno-bench: images come from registry.example.com",
            },
            {
                "expression": "variables.template.spec.containers.all(c, has(c.resources) && "
                "has(c.resources.limits) && 'memory' in c.resources.limits)",
                "message": "kyverno-bench: every container has a memory limit",
            },
            {
                "expression": "variables.template.spec.containers.all(c, has(c.readinessProbe))",
                "message": "kyverno-bench: every container has a readiness probe",
            },
            {
                "expression": "has(variables.template.metadata.annotations) && "
                "variables.template.metadata.annotations['prometheus.io/scrape'] == 'true'",
                "message": "kyverno-bench: the pods are scraped",
            },
            {
                "expression": "variables.version in ['3.2.0']",
                "messageExpression": "'kyverno-bench: release ' + object.metadata.name + ' ' + variables.version + "
                "' is not ready for ' + object.metadata.namespace",
            },
        ],
    },
}


def kyverno_module_dir() -> Path:
    """Kyverno's module source, as Go downloaded it for the build (hack/kyverno pins the version)."""
    proc = subprocess.run(
        ["go", "mod", "download", "-json", KYVERNO_MODULE],
        cwd=REPO / "hack" / "kyverno",
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"},
    )
    return Path(json.loads(proc.stdout)["Dir"])


def install_kyverno_crds(setup: Setup) -> None:
    crds = kyverno_module_dir() / "config" / "crds"
    setup.kubectl.run("apply", "--server-side", "-R", "-f", str(crds))
    setup.kubectl.run("wait", "--for=condition=Established", "--timeout=120s", "-R", "-f", str(crds))


class KyvernoProcess:
    """Kyverno's admission controller out of cluster: its webhook server on 127.0.0.1, registered by URL."""

    def __init__(self, setup: Setup, directory: Path) -> None:
        self.port = free_port()
        self.log_path = directory / "kyverno.log"
        self.argv = [
            str(KYVERNO),
            f"--kubeconfig={setup.cluster.kubeconfig}",
            f"--serverIP=127.0.0.1:{self.port}",
            "--webhookServerHost=127.0.0.1",
            f"--webhookServerPort={self.port}",
            "--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca",
            "--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair",
            "--backgroundServiceAccountName=system:serviceaccount:kyverno:kyverno-background-controller",
            "--reportsServiceAccountName=system:serviceaccount:kyverno:kyverno-reports-controller",
            "--omitEvents=PolicyViolation,PolicyApplied,PolicyError,PolicySkipped",
            "--admissionReports=false",
            "--generateValidatingAdmissionPolicy=false",
            "--metricsHost=127.0.0.1",
            f"--metricsPort={free_port()}",
            "--controllerRuntimeMetricsAddress=0",
            "--disableLogColor",
        ]
        self.env = {
            **os.environ,
            "KYVERNO_NAMESPACE": NAMESPACE,
            "KYVERNO_SERVICEACCOUNT_NAME": "kyverno-admission-controller",
            "KYVERNO_DEPLOYMENT": "kyverno-bench",
            "KYVERNO_POD_NAME": "kyverno-bench",
            "INIT_CONFIG": "kyverno",
            "METRICS_CONFIG": "kyverno-metrics",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> KyvernoProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, safe before exec
            )
        return self

    def check(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"kyverno exited: {self.log_path.read_text()[-3000:]}")

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def patch(offset: int) -> dict[str, Any]:
    """The rollout of 3.3.0: the pod template's version label, and an env value that differs each time."""
    return {
        "spec": {
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/version": REFUSED_VERSION}},
                "spec": {"containers": [{"name": "api", "env": [{"name": "LOG_LEVEL", "value": f"info-{offset}"}]}]},
            }
        }
    }


def answered_by(apps: Any, offset: int) -> str:
    """Who refuses the rollout now: none (admitted), ours, kyverno; an unexpected answer raises."""
    try:
        apps.patch_namespaced_deployment("payments-api", "prod", patch(offset), dry_run="All")
    except ApiException as err:
        message = str(err.body)
        if "denied the request" not in message:  # a webhook's refusal: ours answers 403, Kyverno 400
            raise
        return "kyverno" if "kyverno-bench: release" in message else "ours" if REFUSED_VERSION in message else message
    return "none"


def timed(apps: Any, n: int, offset: int) -> tuple[list[float], dict[str, int]]:
    """n dry-run rollouts, each timed from the call to its answer (an admission or a 403); outcomes counted."""
    times: list[float] = []
    outcomes: dict[str, int] = {}
    for i in range(n):
        began = time.perf_counter()
        try:
            apps.patch_namespaced_deployment("payments-api", "prod", patch(offset + i), dry_run="All")
            outcome = "admitted"
        except ApiException as err:
            outcome = f"refused {err.status}" if "denied the request" in str(err.body) else f"HTTP {err.status}"
        times.append(time.perf_counter() - began)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return times, outcomes


def webhooks_on_deployments(setup: Setup) -> list[str]:
    """Every webhook the API server would consider for a Deployment (for the log: who can be asked)."""
    found = []
    for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        listed = json.loads(setup.kubectl.run("get", kind, "-o", "json").stdout)
        for cfg in listed["items"]:
            for hook in cfg.get("webhooks") or []:
                resources = {r for rule in hook.get("rules", []) for r in rule.get("resources", [])}
                if resources & {"*", "*/*", "deployments"}:
                    where = hook.get("clientConfig", {}).get("url") or hook.get("clientConfig", {}).get("service")
                    selector = json.dumps(hook.get("namespaceSelector") or {}, separators=(",", ":"))
                    found.append(f"{cfg['metadata']['name']}/{hook['name']} -> {where} namespaces {selector}")
    return found


class SideBySide:
    """The three arms on one control plane: our operator and Kyverno both running, one or neither asked."""

    def __init__(self, setup: Setup, kyverno: KyvernoProcess) -> None:
        self.setup = setup
        self.kyverno = kyverno
        self.apps = client.AppsV1Api(config.new_client_from_config(config_file=str(setup.cluster.kubeconfig)))
        self.operator = setup.operator.proc.pid if setup.operator.proc else 0
        self.arm = "none"
        self.times: dict[str, list[float]] = {arm: [] for arm in ARMS}
        self.outcomes: dict[str, dict[str, int]] = {arm: {} for arm in ARMS}
        self.cpu: dict[str, dict[str, float]] = {arm: {"ours": 0.0, "kyverno": 0.0} for arm in ARMS}

    def to(self, arm: str, probe: int, timeout: float = 60) -> None:
        """Switch arms (our webhook configuration registered or not; the namespace labelled for Kyverno's policy or
        not), then wait until a probe rollout (not timed) is answered by that arm's engine alone."""
        k = self.setup.kubectl
        if self.arm == "ours":
            self.setup.unregister()
        if self.arm == "kyverno":
            k.run("label", "namespace", "prod", f"{ARM_LABEL}-")
        if arm == "ours":
            self.setup.register()
        if arm == "kyverno":
            k.run("label", "--overwrite", "namespace", "prod", f"{ARM_LABEL}=on")
        self.arm = arm
        time.sleep(1.5)  # the API server's view of webhook configurations and namespace labels

        def answers() -> bool:
            self.kyverno.check()
            return answered_by(self.apps, probe) == arm

        eventually(answers, timeout=timeout, interval=1, what=f"the rollout answered by arm {arm}")

    def block(self, n: int, offset: int) -> None:
        ours, kyverno = cpu_seconds(self.operator), cpu_seconds(self.kyverno.pid)
        times, outcomes = timed(self.apps, n, offset)
        self.cpu[self.arm]["ours"] += cpu_seconds(self.operator) - ours
        self.cpu[self.arm]["kyverno"] += cpu_seconds(self.kyverno.pid) - kyverno
        self.times[self.arm] += times
        for key, count in outcomes.items():
            self.outcomes[self.arm][key] = self.outcomes[self.arm].get(key, 0) + count

    def run(self, per_arm: int, block: int) -> None:
        # Kyverno has registered the policy's webhook once it refuses the rollout in a labelled namespace.
        self.to("kyverno", 0, timeout=300)
        self.to("ours", 0)
        print("webhooks on Deployments with our gate registered:")
        for line in webhooks_on_deployments(self.setup):
            print(f"  {line}")
        for arm in ARMS:  # warm up each arm's connections and caches (not counted)
            self.to(arm, -1)
            timed(self.apps, 50, 100_000)
        started, load_before = dt.datetime.now(dt.UTC), load_average()
        offset = 1_000_000
        for round_ in range((per_arm + block - 1) // block):
            for arm in ARMS[round_ % 3 :] + ARMS[: round_ % 3]:  # the order rotated each round
                self.to(arm, -offset)
                self.block(block, offset)
                offset += block
        self.report(started, load_before)

    def report(self, started: dt.datetime, load_before: str) -> None:
        ended = dt.datetime.now(dt.UTC)
        print(
            f"{started:%Y-%m-%d %H:%M:%S}-{ended:%H:%M:%S} UTC; load average {load_before} before, "
            f"{load_average()} after; RSS: operator {rss_mib(self.operator):.0f} MiB, "
            f"kyverno {rss_mib(self.kyverno.pid):.0f} MiB"
        )
        qs = (0.5, 0.95, 0.99)
        header = f"{'arm':<9} {'n':>5} {'outcomes':<24} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        print(f"{header}  CPU a request (ours, kyverno)")
        for arm in ARMS:
            t = self.times[arm]
            outcomes = ", ".join(f"{k} {n}" for k, n in sorted(self.outcomes[arm].items()))
            cells = " ".join(f"{pct(t, q) * 1000:>8.2f}" for q in qs)
            n = max(len(t), 1)
            cpu = self.cpu[arm]
            per_request = f"{cpu['ours'] / n * 1e6:.0f} us, {cpu['kyverno'] / n * 1e6:.0f} us"
            print(f"{arm:<9} {len(t):>5} {outcomes:<24} {cells}  {per_request}")
        added = {arm: [pct(self.times[arm], q) - pct(self.times["none"], q) for q in qs] for arm in ("ours", "kyverno")}
        for arm, values in added.items():
            cells = ", ".join(f"p{int(q * 100)} {v * 1000:.2f} ms" for q, v in zip(qs, values, strict=True))
            print(f"added by {arm:<8} {cells}")
        ratios = [o / k if k > 0 else float("nan") for o, k in zip(added["ours"], added["kyverno"], strict=True)]
        cells = ", ".join(f"p{int(q * 100)} {r:.2f}" for q, r in zip(qs, ratios, strict=True))
        print(f"ours / kyverno (added): {cells}")


def bench_kyverno(tmp: Path, per_arm: int = 0, block: int = 100) -> None:
    """per_arm: refusals timed per arm (default 1,200, or KYVERNO_PER_ARM), in blocks of `block`."""
    per_arm = per_arm or int(os.environ.get("KYVERNO_PER_ARM", "1200"))
    print("\n== Side by side with Kyverno v1.19.1 through the API server: refusals of the same Deployment")
    if not KYVERNO.exists():
        raise SystemExit(f"{KYVERNO} is missing: `make bench-kyverno-tools` builds it (cached by version)")
    directory = tmp / "kyverno"
    # The chart's resync and metrics intervals (the test fixtures' 30 s and 2 s put background evaluations of the
    # 231-item release into the timed blocks).
    setup = Setup(directory, RR_RESYNC_SECONDS="120", RR_METRICS_INTERVAL_SECONDS="30")
    kyverno: KyvernoProcess | None = None
    try:
        setup.ready_release()
        setup.kubectl.apply(json.dumps(deployment("prod")))
        unready_release(setup, REFUSED_VERSION)
        install_kyverno_crds(setup)
        setup.kubectl.run("create", "namespace", NAMESPACE)
        kyverno = KyvernoProcess(setup, directory).start()
        setup.kubectl.apply(json.dumps(VALIDATING_POLICY))
        SideBySide(setup, kyverno).run(per_arm, block)
    finally:
        if kyverno is not None:
            kyverno.stop()
        setup.close()
