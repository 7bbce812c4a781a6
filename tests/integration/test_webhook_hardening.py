"""Attacks on the webhook server and on the operator's start-up, against the real operator and API server.

- Only the API server can talk to the webhook: it presents a client certificate (the local control plane is
  started with an AdmissionConfiguration, as a production cluster is for the chart), and the operator requires
  it (RR_WEBHOOK_CLIENT_CA). A direct post without it fails the TLS handshake.
- Malformed reviews get a 400 with one line, never a 500 or an exception; hundreds of generated ones leave the
  metric series and the process's memory as they were.
- No answer before the facts: until every watched kind is listed, enforce refuses with "starting, retry",
  warn passes with a warning, releases are refused, /readyz is 503; and an unready release is never admitted
  while the operator restarts under a loop of rollouts.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from release_readiness.admission.configuration import admission_kinds, prepare_local_webhook
from release_readiness_dev import builders
from release_readiness_dev.localcluster import LocalCluster, free_port
from tests.integration.conftest import REPO, Kubectl, OperatorProcess, eventually
from tests.unit.reviews import malformed_cases, valid_review, weird_valid_cases

LABELS = {"app.kubernetes.io/name": "payments-api", "app.kubernetes.io/version": "3.2.0"}
CONTAINERS = [{"name": "api", "image": "registry.example.com/payments/api:3.2.0"}]
ADMISSION_SERIES = re.compile(r"^(release_readiness_admission_\w+)\{([^}]*)\}", re.MULTILINE)


class Poster:
    """Posts bodies to the operator's webhook port as the API server does (or as an attacker does)."""

    def __init__(self, cluster: LocalCluster, cert_dir: Path, port: int, client_cert: bool = True) -> None:
        self.port = port
        self.base = f"https://127.0.0.1:{port}"
        if client_cert:
            self.context = cluster.webhook_client_context(cert_dir / "ca.crt")
        else:
            self.context = ssl.create_default_context(cafile=str(cert_dir / "ca.crt"))

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(
            f"{self.base}/{path}", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def post_declaring(self, path: str, declared: int) -> tuple[int, bytes]:
        """Declare a body of `declared` bytes, send a little of it, and read the answer."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=30)
        try:
            conn.putrequest("POST", f"/{path}")
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(declared))
            conn.endheaders()
            conn.send(b"{" + b" " * 4096)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


@pytest.fixture
def poster(cluster: LocalCluster, webhook: tuple[Path, int], operator: OperatorProcess) -> Poster:
    cert_dir, port = webhook
    return Poster(cluster, cert_dir, port)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def admission_series(metrics: str) -> set[str]:
    return {f"{m.group(1)}{{{m.group(2)}}}" for m in ADMISSION_SERIES.finditer(metrics)}


def leaks(text: str) -> list[str]:
    """Signs of a Python exception shown to a client."""
    return [sign for sign in ("Traceback", "Error", "object has no attribute", 'File "', "Exception") if sign in text]


def series_count(metrics: str) -> int:
    return sum(1 for line in metrics.splitlines() if line and not line.startswith("#"))


# -- only the API server ---------------------------------------------------------------------------------------


def test_a_post_without_the_api_servers_client_certificate_fails_the_handshake(
    cluster: LocalCluster, webhook: tuple[Path, int], operator: OperatorProcess
) -> None:
    cert_dir, port = webhook
    before = admission_series(operator.metrics())
    stranger = Poster(cluster, cert_dir, port, client_cert=False)
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)) as err:
        stranger.post("gate-deployments", json.dumps(valid_review()).encode())
    reason = getattr(err.value, "reason", err.value)  # urllib wraps it; the alert or the EOF varies by timing
    assert isinstance(reason, (ssl.SSLError, ConnectionError)), err.value
    # A certificate from another CA (a user's client certificate of the cluster) does not pass either.
    impostor = ssl.create_default_context(cafile=str(cert_dir / "ca.crt"))
    impostor.load_cert_chain(str(cluster.directory / "pki" / "admin.crt"), str(cluster.directory / "pki" / "admin.key"))
    stranger.context = impostor
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
        stranger.post("gate-deployments", json.dumps(valid_review()).encode())
    assert admission_series(operator.metrics()) == before, "a refused client created or moved no series"


def test_a_post_with_the_api_servers_client_certificate_is_answered(poster: Poster) -> None:
    review = valid_review(namespace=f"nowhere-{uuid.uuid4().hex[:6]}")
    status, body = poster.post("gate-deployments", json.dumps(review).encode())
    assert status == 200, body
    answer = json.loads(body)
    assert answer["response"]["uid"] == review["request"]["uid"]
    # A namespace the operator has not listed is never "not gated": the API server only asks for gated ones.
    assert answer["response"]["allowed"] is False
    assert "starting, retry" in answer["response"]["status"]["message"]


# -- malformed bodies --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("gate-deployments", b"{not json", 400, "the body is not JSON"),
        ("gate-deployments", b"[]", 400, "the body must be a JSON object"),
        ("gate-deployments", b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', 400, "request must"),
        ("validate-signoff", json.dumps(valid_review()).encode(), 400, "request.resource is not a resource"),
        ("no-such-webhook", json.dumps(valid_review()).encode(), 404, "no admission webhook is served at this path"),
    ],
)
def test_a_malformed_review_gets_one_line_naming_what_is_wrong(
    poster: Poster, path: str, body: bytes, status: int, message: str
) -> None:
    code, text = poster.post(path, body)
    assert code == status
    assert message in text.decode()
    assert text.decode().count("\n") == 1


def test_a_huge_body_is_refused_without_being_read(poster: Poster, operator: OperatorProcess) -> None:
    before = rss_kib(operator.proc.pid)  # type: ignore[union-attr]
    code, text = poster.post_declaring("gate-deployments", 64 * 1024 * 1024 * 1024)
    assert code == 400
    assert b"larger than" in text
    assert rss_kib(operator.proc.pid) - before < 20 * 1024  # type: ignore[union-attr]


def test_fuzz_hundreds_of_malformed_reviews(poster: Poster, operator: OperatorProcess) -> None:
    """No 500, no exception text, not one new metric series, memory flat."""
    assert operator.proc is not None
    for case in malformed_cases(seed=7, count=60):  # warm up: first-use allocations are not growth
        poster.post(case.path, case.body)
    metrics_before = operator.metrics()
    rss_before = rss_kib(operator.proc.pid)
    statuses: dict[int, int] = {}
    for case in malformed_cases(seed=14, count=500):
        code, text = poster.post(case.path, case.body)
        statuses[code] = statuses.get(code, 0) + 1
        body = text.decode(errors="replace")
        assert code in (400, 404), f"{case.what}: HTTP {code}: {body[:300]}"
        assert body.count("\n") == 1, f"{case.what}: {body[:300]}"
        assert not leaks(body), f"{case.what}: {body[:300]}"
    rss_after = rss_kib(operator.proc.pid)
    metrics_after = operator.metrics()
    print(f"\nfuzz: {statuses}; RSS {rss_before} KiB -> {rss_after} KiB")
    assert series_count(metrics_after) == series_count(metrics_before)
    assert admission_series(metrics_after) == admission_series(metrics_before)
    assert rss_after - rss_before < 20 * 1024, f"RSS grew {rss_after - rss_before} KiB"


def test_fuzz_well_formed_reviews_with_odd_contents(poster: Poster, operator: OperatorProcess) -> None:
    """Answered with an AdmissionReview (never a 500 or an exception); label values stay in their fixed sets."""
    for path, review in weird_valid_cases(seed=21, count=150):
        code, text = poster.post(path, json.dumps(review).encode())
        assert code == 200, text[:300]
        answer = json.loads(text)["response"]
        assert answer["uid"] == review["request"]["uid"]
        message = (answer.get("status") or {}).get("message", "")
        assert not leaks(message), message
    kinds = admission_kinds()
    for series in admission_series(operator.metrics()):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', series))
        if "kind" in labels:
            assert labels["kind"] in kinds | {"other"}, series


# -- no answer before the facts --------------------------------------------------------------------------------


@pytest.fixture
def bare_cluster(tmp_path: Path) -> Iterator[tuple[LocalCluster, Kubectl]]:
    """A control plane of its own without the CRDs: the operator cannot list releases until they are installed."""
    with LocalCluster(tmp_path / "cluster") as local:
        yield local, Kubectl(local.kubeconfig)


def refused_while_starting(kubectl: Kubectl, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Apply `obj` until the webhook server is up and refuses it with "starting, retry"; the refusal."""

    def refused() -> subprocess.CompletedProcess[str] | None:
        out = kubectl.apply(json.dumps(obj), check=False)
        return out if out.returncode != 0 and "starting, retry" in out.stderr else None

    result: subprocess.CompletedProcess[str] = eventually(refused, timeout=60, what="a 'starting, retry' refusal")
    return result


def readyz(proc: OperatorProcess) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{proc.health_port}/readyz", timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_until_everything_is_listed_enforce_refuses_warn_warns_and_the_replica_is_not_ready(
    bare_cluster: tuple[LocalCluster, Kubectl], tmp_path: Path
) -> None:
    cluster, kubectl = bare_cluster
    port = free_port()
    configs = prepare_local_webhook(tmp_path / "certs", port)
    for name, mode in (("prod-enforce", "enforce"), ("prod-warn", "warn")):
        kubectl.run("create", "namespace", name)
        kubectl.run("label", "namespace", name, f"readiness.dev/gate={mode}")
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": configs}))
    proc = OperatorProcess(cluster, tmp_path / "operator.log", tmp_path / "certs", port).start(ready=False)
    try:
        status, text = readyz(proc)
        assert status == 503
        assert "ReleaseReadiness" in text

        deployment = builders.deployment("payments-api", "prod-enforce", labels=LABELS, containers=CONTAINERS)
        refused = refused_while_starting(kubectl, deployment)
        assert "ReleaseReadiness" in refused.stderr
        warned = kubectl.apply(
            json.dumps(builders.deployment("payments-api", "prod-warn", labels=LABELS, containers=CONTAINERS))
        )
        assert "did not check this" in warned.stderr
        assert "starting, retry" in warned.stderr

        kubectl.run("apply", "--server-side", "-f", str(REPO / "crds"))
        kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
        eventually(lambda: readyz(proc)[0] == 200, timeout=60, what="/readyz once the CRDs are listed")
        after = kubectl.apply(json.dumps(deployment), check=False)
        assert after.returncode != 0
        assert "no ReleaseReadiness for payments-api 3.2.0" in after.stderr, after.stderr
    finally:
        proc.stop()


def test_an_operator_that_cannot_list_a_kind_never_answers(
    cluster: LocalCluster, kubectl: Kubectl, crds: None, checklist_installed: None, tmp_path: Path
) -> None:
    """Run as a user without RBAC to list signoffs: it stays unready, and refuses what it cannot judge."""
    suffix = uuid.uuid4().hex[:6]
    user = f"rr-blind-{suffix}"
    groups = ["", "apps", "batch", "networking.k8s.io", "policy", "autoscaling", "coordination.k8s.io"]
    groups += ["events.k8s.io", "apiextensions.k8s.io", "aquasecurity.github.io", "monitoring.coreos.com"]
    readiness = ["releasereadinesses", "releasereadinesses/status", "readinesschecklists", "readinesschecklists/status"]
    rules = [
        {"apiGroups": groups, "resources": ["*"], "verbs": ["*"]},
        {"apiGroups": ["readiness.dev"], "resources": readiness, "verbs": ["*"]},
    ]
    kubectl.apply(json.dumps(builders.cluster_role(user, rules, users=(user,))))
    # Its own webhook configurations, for this test's namespaces only (the session's operator serves the rest).
    port = free_port()
    configs = webhook_configurations_for(prepare_local_webhook(tmp_path / "certs", port), user, {"rr-blind": suffix})
    prod, warn = f"prod-{suffix}", f"warn-{suffix}"
    for name, mode in ((prod, "enforce"), (warn, "warn")):
        kubectl.run("create", "namespace", name)
        kubectl.run("label", "namespace", name, f"readiness.dev/gate={mode}", f"rr-blind={suffix}")
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": configs}))
    proc = OperatorProcess(cluster, tmp_path / "operator.log", tmp_path / "certs", port, RR_LEADER_ELECTION="false")
    proc.env["KUBECONFIG"] = str(cluster.kubeconfig_for(user))
    proc.start(ready=False)
    try:
        deployment = builders.deployment("payments-api", prod, labels=LABELS, containers=CONTAINERS)
        refused = refused_while_starting(kubectl, deployment)
        assert "ReleaseSignoff" in refused.stderr
        warned = kubectl.apply(
            json.dumps(builders.deployment("payments-api", warn, labels=LABELS, containers=CONTAINERS))
        )
        assert "did not check this" in warned.stderr
        release = builders.release("payments-api-3.2.0", prod, "payments-api", "3.2.0", "pre-production", warn)
        refused_release = kubectl.apply(json.dumps(release), check=False)
        assert refused_release.returncode != 0
        assert "ReleaseReadiness: release-readiness is starting, retry" in refused_release.stderr
        status, text = readyz(proc)
        assert status == 503
        assert "ReleaseSignoff" in text
        with urllib.request.urlopen(f"http://127.0.0.1:{proc.health_port}/healthz", timeout=2) as resp:
            assert resp.status == 200, "liveness does not depend on the listing"
    finally:
        for config in configs:
            kubectl.run("delete", config["kind"], config["metadata"]["name"], "--ignore-not-found")
        proc.stop()


def webhook_configurations_for(
    configs: list[dict[str, Any]], name: str, namespace_labels: dict[str, str]
) -> list[dict[str, Any]]:
    """The configurations under another name, sending only namespaces with `namespace_labels`."""
    out = []
    for config in configs:
        hooks = []
        for hook in config["webhooks"]:
            selector = dict(hook.get("namespaceSelector") or {})
            selector["matchLabels"] = {**selector.get("matchLabels", {}), **namespace_labels}
            hooks.append(
                {
                    **hook,
                    "name": hook["name"].replace(".readiness.dev", f"-{name}.readiness.dev"),
                    "namespaceSelector": selector,
                }
            )
        out.append({**config, "metadata": {**config["metadata"], "name": name}, "webhooks": hooks})
    return out


def test_an_unready_release_is_never_admitted_while_the_operator_restarts(
    api_client: client.ApiClient,
    kubectl: Kubectl,
    operator: OperatorProcess,
    checklist_installed: None,
) -> None:
    suffix = uuid.uuid4().hex[:6]
    prod, staging = f"prod-{suffix}", f"stg-{suffix}"
    for name in (prod, staging):
        kubectl.run("create", "namespace", name)
    kubectl.run("label", "namespace", prod, "readiness.dev/gate=enforce")
    kubectl.apply(
        json.dumps(builders.release("payments-api-3.2.0", prod, "payments-api", "3.2.0", "pre-production", staging))
    )
    apps = client.AppsV1Api(api_client)
    body = builders.deployment("payments-api", prod, labels=LABELS, containers=CONTAINERS)
    eventually(
        lambda: kubectl.apply(json.dumps(body), check=False).stderr.count("is not Ready"),
        what="the gate refusing the unready release",
    )
    admitted: list[str] = []
    reasons: dict[str, int] = {}
    stop = threading.Event()

    def rollouts() -> None:
        while not stop.is_set():
            try:
                created = apps.create_namespaced_deployment(prod, body)
                admitted.append(str(created.metadata.resource_version))
                apps.delete_namespaced_deployment("payments-api", prod)
            except ApiException as err:
                text = str(err.body)
                reason = (
                    "starting, retry"
                    if "starting, retry" in text
                    else "webhook down"
                    if "failed calling webhook" in text
                    else "not ready"
                    if "is not Ready" in text
                    else text[:120]
                )
                reasons[reason] = reasons.get(reason, 0) + 1

    loop = threading.Thread(target=rollouts, daemon=True)
    loop.start()
    try:
        for _ in range(3):
            down = reasons.get("webhook down", 0)
            operator.stop()
            eventually(
                lambda: reasons.get("webhook down", 0) > down,  # noqa: B023
                what="a rollout attempt while the webhook is down",
            )
            operator.start()
            done = sum(reasons.values())
            eventually(lambda: sum(reasons.values()) > done + 3, what="attempts after the restart")  # noqa: B023
    finally:
        stop.set()
        loop.join(timeout=60)
    print(f"\nrestart under load: {sum(reasons.values())} attempts: {reasons}")
    assert admitted == [], f"admitted while restarting: {admitted}"
    assert set(reasons) <= {"starting, retry", "webhook down", "not ready"}, reasons
    assert reasons.get("not ready", 0) > 0
