"""`make bench BENCH=scale10`: ten times scenario 3's scale (issue 21): 20,000 Deployments in 500 candidate
namespaces, 2,000 releases, 20,000 signoffs, all in the cluster before the operator starts.

Measured once each: the operator's start-up to synced (its /readyz answering 200) and until every release has a
status; the gate inside the operator (its admission histogram) while reviews are posted to it; change to status
(a memory limit removed or restored on one Deployment, until the release's item flips) over a 10-minute soak of
such changes, with the operator's resident memory sampled every 30 s.

The objects are created through the API server (no direct etcd), as concurrent POSTs from one aiohttp client with
the admin certificate: `kubectl apply` of List files takes one request at a time, about ten times as long here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import random
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes import client, config

from release_readiness.admission.configuration import prepare_local_webhook
from release_readiness.admission.gate import GATE_LABEL, GateRequest, gate_decision
from release_readiness.admission.signoffs import Caller
from release_readiness.config import Settings
from release_readiness.indexes import ClusterIndex
from release_readiness.kinds import BUILTIN_GATED_KINDS
from release_readiness_dev import builders
from release_readiness_dev.harness import REPO, Kubectl, OperatorProcess
from release_readiness_dev.localcluster import LocalCluster, free_port

GROUP_PATH = "/apis/readiness.dev/v1alpha1"
ITEMS = [
    {"id": c.lower(), "section": "S", "title": c, "check": {"workload": c}}
    for c in (
        "resourceLimits",
        "readinessProbe",
        "livenessProbe",
        "replicas",
        "securityContext",
        "networkPolicy",
        "service",
    )
]
WATCHED = "resourcelimits"


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%H:%M:%S UTC")


def _deployment(ns: str, name: str, app: str, memory: str | None = "512Mi") -> dict[str, Any]:
    limits = {"cpu": "1", **({"memory": memory} if memory else {})}
    api = builders.container(
        image=f"registry.example.com/{app}:1.0.0",
        ports=[{"containerPort": 8080}],
        env=[{"name": "LOG_LEVEL", "value": "info"}],
        resources={"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": limits},
        **builders.PROBES,
        securityContext={
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    )
    return builders.deployment(
        name,
        ns,
        labels=builders.app_labels(app, "1.0.0"),
        containers=[api],
        template_annotations={"prometheus.io/scrape": "true"},
        pod={"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}},
    )


class Layout:
    """Who is where: candidate namespace stg-N holds `per_ns` Deployments of `apps` applications (app-N-A, one
    release each in `prod`, each with `signoffs` approvals, one per role of the checklist)."""

    def __init__(self, namespaces: int, deployments: int, releases: int, signoffs: int) -> None:
        self.namespaces = namespaces
        self.apps = releases // namespaces
        self.per_app = deployments // releases
        self.roles = signoffs // releases

    def app(self, n: int, a: int) -> str:
        return f"app-{n}-{a}"

    def releases(self) -> list[tuple[int, int]]:
        return [(n, a) for n in range(self.namespaces) for a in range(self.apps)]

    def checklist(self) -> dict[str, Any]:
        # Not required: the signoffs are evaluated (and shown Stale) without holding the releases back, so the
        # releases are Ready and the gate's common path (an admitted rollout) is what is measured.
        approvals = [{"role": f"role-{r}", "groups": [f"approvers-{r}"], "required": False} for r in range(self.roles)]
        return builders.checklist("scale", ITEMS, approvals)

    def namespace_objects(self) -> list[tuple[str, dict[str, Any]]]:
        out = [
            ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"stg-{n}"}})
            for n in range(self.namespaces)
        ]
        prod = {"name": "prod", "labels": {"readiness.dev/gate": "enforce"}}
        out.append(("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": prod}))
        return out

    def deployments(self) -> Iterable[tuple[str, dict[str, Any]]]:
        for n, a in self.releases():
            for d in range(self.per_app):
                app = self.app(n, a)
                yield f"/apis/apps/v1/namespaces/stg-{n}/deployments", _deployment(f"stg-{n}", f"{app}-{d}", app)

    def neighbours(self) -> Iterable[tuple[str, dict[str, Any]]]:
        """What the networkPolicy and service checks look for: a NetworkPolicy isolating each candidate namespace
        (ingress from the frontend only, egress to DNS only) and a Service for each application."""
        for n in range(self.namespaces):
            ns = f"stg-{n}"
            policy = {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}],
                "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}]}],
            }
            yield (
                f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": "isolate", "namespace": ns},
                    "spec": policy,
                },
            )
            for a in range(self.apps):
                app = self.app(n, a)
                # Headless: the local API server's service range (a /24) has no cluster IPs for 2,000 Services.
                spec = {
                    "clusterIP": "None",
                    "selector": {"app.kubernetes.io/name": app},
                    "ports": [{"port": 80, "targetPort": 8080}],
                }
                yield (
                    f"/api/v1/namespaces/{ns}/services",
                    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "namespace": ns}, "spec": spec},
                )

    def release_objects(self) -> Iterable[tuple[str, dict[str, Any]]]:
        for n, a in self.releases():
            app = self.app(n, a)
            body = builders.release(app, "prod", app, "1.0.0", "scale", f"stg-{n}")
            yield f"{GROUP_PATH}/namespaces/prod/releasereadinesses", body

    def signoff_objects(self, uids: dict[str, str]) -> Iterable[tuple[str, dict[str, Any]]]:
        """One approval per role for each release, stamped as the webhook would (signer, time, release uid; no
        candidate fingerprint: the operator had not inspected the candidates yet, so they count as Stale)."""
        for n, a in self.releases():
            app = self.app(n, a)
            for r in range(self.roles):
                body = builders.signoff(
                    "prod",
                    app,
                    f"{app}-role-{r}",
                    role=f"role-{r}",
                    decision="approve",
                    comment="looks good",
                    signer={"username": f"approver-{r}", "groups": [f"approvers-{r}", "system:authenticated"]},
                    signedAt="2026-11-28T12:00:00.000000Z",
                    releaseUID=uids[app],
                )
                yield f"{GROUP_PATH}/namespaces/prod/releasesignoffs", body


class Api:
    """Concurrent requests to the API server with the admin certificate (aiohttp, keep-alive)."""

    def __init__(self, cluster: LocalCluster, concurrency: int = 32) -> None:
        pki = cluster.directory / "pki"
        self.context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        self.server = cluster.server
        self.concurrency = concurrency

    def create(self, objects: Iterable[tuple[str, dict[str, Any]]]) -> int:
        return asyncio.run(self._create(list(objects)))

    async def _create(self, objects: list[tuple[str, dict[str, Any]]]) -> int:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        for o in objects:
            queue.put_nowait(o)
        connector = aiohttp.TCPConnector(ssl=self.context, limit=self.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                while not queue.empty():
                    path, body = queue.get_nowait()
                    data = json.dumps(body).encode()
                    last = ""
                    for attempt in range(20):
                        try:
                            async with session.post(
                                self.server + path, data=data, headers={"Content-Type": "application/json"}
                            ) as resp:
                                if resp.status in (200, 201, 409):  # 409: created by an earlier attempt
                                    break
                                text = last = f"{resp.status} {(await resp.text())[:300]}"
                                if resp.status < 500 and resp.status != 429:
                                    raise RuntimeError(f"POST {path}: {resp.status} {text[:500]}")
                        except aiohttp.ClientError:
                            pass
                        await asyncio.sleep(0.1 * (attempt + 1))
                    else:
                        raise RuntimeError(f"POST {path} failed 20 times; last: {last}")

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        return len(objects)


def _list(api: Api, paths: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """kind -> every object of it, as the operator's watches list them (one GET a kind)."""

    async def fetch() -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=api.context)) as session:
            for kind, path in paths.items():
                async with session.get(api.server + path) as resp:
                    resp.raise_for_status()
                    out[kind] = (await resp.json())["items"]
        return out

    return asyncio.run(fetch())


INDEXED = {
    "Namespace": "/api/v1/namespaces",
    "ReadinessChecklist": f"{GROUP_PATH}/readinesschecklists",
    "Deployment": "/apis/apps/v1/deployments",
    "Service": "/api/v1/services",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/networkpolicies",
    "ReleaseReadiness": f"{GROUP_PATH}/releasereadinesses",
    "ReleaseSignoff": f"{GROUP_PATH}/releasesignoffs",
}


def _in_process(api: Api, index: ClusterIndex | None, label: str, objs: list[dict[str, Any]]) -> ClusterIndex:
    """`gate_decision` timed in this process, with the arguments the operator's webhook gives it, over an index fed
    with everything the cluster holds (releases listed again on each call, for their current status)."""
    if index is None:
        index = ClusterIndex()
        for kind, items in _list(api, INDEXED).items():
            for item in items:
                index.upsert(kind, item)
    else:
        for item in _list(api, {"ReleaseReadiness": INDEXED["ReleaseReadiness"]})["ReleaseReadiness"]:
            index.upsert("ReleaseReadiness", item)
    deployments = next(k for k in BUILTIN_GATED_KINDS if k.kind == "Deployment")
    caller = Caller("alice", ("deployers", "system:authenticated"))
    mode = index.namespaces["prod"]["metadata"]["labels"][GATE_LABEL]

    def decide(obj: dict[str, Any]) -> tuple[float, bool]:
        req = GateRequest("CREATE", deployments, "prod", obj["metadata"]["name"], obj, None, caller)
        began = time.perf_counter()
        decision = gate_decision(
            req,
            mode,
            functools.partial(index.releases_for, "prod"),
            index.checklists,
            (),
            dt.datetime.now(dt.UTC),
            index.candidate_workloads,
            index.invalid_releases_in("prod"),
        )
        return time.perf_counter() - began, decision.allowed

    first = [decide(obj) for obj in objs]
    then = [decide(obj) for _ in range(20) for obj in objs]
    took = [t for t, _ in then]
    print(
        f"gate_decision in-process over the real indexes ({len(index.releases)} releases, {len(index.signoffs)} "
        f"signoffs, {sum(len(v) for v in index.objects['Deployment'].values())} Deployments), {label}: first time "
        f"each template is seen p50 {_pct([t for t, _ in first], 0.5) * 1e6:.0f} us, max "
        f"{max(t for t, _ in first) * 1e6:.0f} us; then {len(then)} decisions p50 {_pct(took, 0.5) * 1e6:.0f} us, "
        f"p99 {_pct(took, 0.99) * 1e6:.0f} us, max {max(took) * 1e6:.0f} us; allowed {sum(a for _, a in then)}"
    )
    return index


def _operator_env() -> dict[str, str]:
    """The operator's production defaults (the test harness's OperatorProcess resyncs every 30 s)."""
    d = Settings()
    return {
        "RR_RESYNC_SECONDS": f"{d.resync_seconds:g}",
        "RR_METRICS_INTERVAL_SECONDS": f"{d.metrics_interval_seconds:g}",
    }


def _readyz(operator: OperatorProcess) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{operator.health_port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _gate_histogram(operator: OperatorProcess) -> dict[float, float]:
    out: dict[float, float] = {}
    for line in operator.metrics().splitlines():
        if (
            line.startswith("release_readiness_admission_duration_seconds_bucket")
            and 'webhook="gate-deployments"' in line
        ):
            le = line.split('le="')[1].split('"')[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def _bound(before: dict[float, float], after: dict[float, float], q: float) -> str:
    delta = {le: after[le] - before.get(le, 0.0) for le in after}
    total = delta.get(float("inf"), 0.0)
    for le in sorted(delta):
        if total and delta[le] >= q * total:
            return "inf" if le == float("inf") else f"{le * 1000:g}"
    return "n/a"


def _review(obj: dict[str, Any], uid: str) -> bytes:
    return json.dumps(builders.admission_review(obj, uid, namespace="prod")).encode()


async def _post_reviews(
    url: str, context: ssl.SSLContext, bodies: list[bytes], rate: float, seconds: float
) -> dict[str, Any]:
    """Open loop at `rate` req/s, cycling through `bodies`; latency from the scheduled send time."""
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    connector = aiohttp.TCPConnector(ssl=context, limit=16)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(body: bytes, scheduled: float) -> None:
            try:
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                    answer = await resp.json()
                    allowed = (answer.get("response") or {}).get("allowed")
                    key = f"{resp.status} {'allowed' if allowed else 'refused'}"
            except aiohttp.ClientError as err:
                key = type(err).__name__
            outcomes[key] = outcomes.get(key, 0) + 1
            latencies.append(time.perf_counter() - scheduled)

        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(bodies[i % len(bodies)], scheduled)))
        await asyncio.gather(*tasks)
    return {"latencies": latencies, "outcomes": outcomes}


def bench_scale10(
    tmp: Path,
    namespaces: int = 500,
    deployments: int = 20_000,
    releases: int = 2_000,
    signoffs: int = 20_000,
    soak_seconds: float = 600,
    sample_seconds: float = 30,
) -> None:
    layout = Layout(namespaces, deployments, releases, signoffs)
    print(
        f"\n== 3b. Ten times the scale: {deployments} Deployments in {namespaces} candidate namespaces, {releases} "
        f"releases, {signoffs} signoffs ({layout.roles} approval roles a release), created before the operator starts"
    )
    print(f"{_now()}, load average {_load()}")
    directory = tmp / "scale10"
    cluster = LocalCluster(directory / "cluster").start()
    operator: OperatorProcess | None = None
    try:
        kubectl = Kubectl(cluster.kubeconfig)
        kubectl.run("apply", "--server-side", "-f", str(REPO / "crds"))
        kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
        api = Api(cluster)
        began = time.perf_counter()
        created = api.create([(f"{GROUP_PATH}/readinesschecklists", layout.checklist())])
        created += api.create(layout.namespace_objects())
        created += api.create(layout.deployments())
        created += api.create(layout.neighbours())
        created += api.create(layout.release_objects())
        custom = client.CustomObjectsApi(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
        listed: dict[str, Any] = custom.list_namespaced_custom_object(
            "readiness.dev", "v1alpha1", "prod", "releasereadinesses"
        )
        uids = {r["metadata"]["name"]: r["metadata"]["uid"] for r in listed["items"]}
        created += api.create(layout.signoff_objects(uids))
        took = time.perf_counter() - began
        print(f"created {created} objects through the API server in {took:.0f} s ({created / took:.0f}/s); {_now()}")

        port = free_port()
        prepare_local_webhook(directory / "certs", port)
        operator = OperatorProcess(
            cluster, directory / "operator.log", directory / "certs", port, RR_LOG_FORMAT="json", **_operator_env()
        )
        print(f"starting the operator; load average {_load()}")
        began = time.perf_counter()
        operator.start(ready=False)
        pid = operator.proc.pid if operator.proc else 0
        live = time.perf_counter() - began
        while not _readyz(operator) and time.perf_counter() - began < 900:
            time.sleep(0.1)
        synced = time.perf_counter() - began
        print(
            f"start-up: live (/healthz) after {live:.1f} s, synced (/readyz 200: every kind listed) after "
            f"{synced:.1f} s (goal < 60 s); RSS {_rss_mib(pid):.0f} MiB"
        )

        def evaluated() -> int:
            out = kubectl.run("get", "rr", "-n", "prod", "-o", "jsonpath={.items[*].status.observedGeneration}").stdout
            return len(out.split())

        while evaluated() < releases and time.perf_counter() - began < 1800:
            time.sleep(2)
        print(
            f"all {evaluated()} releases with a status {time.perf_counter() - began:.1f} s after the start "
            f"({time.perf_counter() - began - synced:.1f} s after synced); RSS {_rss_mib(pid):.0f} MiB; "
            f"load average {_load()}"
        )

        _gate(cluster, api, directory, layout, operator, port)
        _soak(cluster, layout, custom, pid, soak_seconds, sample_seconds)
        print(f"{_now()}, load average {_load()}")
    finally:
        if operator is not None:
            operator.stop()
        cluster.stop()


def _gate(
    cluster: LocalCluster, api: Api, directory: Path, layout: Layout, operator: OperatorProcess, port: int
) -> None:
    """Reviews of production rollouts of 100 applications (their candidates as stored), posted straight to the
    operator's webhook (not registered: the API server would add its own time): first while their releases are
    Ready (admitted), then with 20 of them made not Ready by a removed memory limit (refused, listing what is
    outstanding), at 200 req/s each."""
    apps = client.AppsV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    custom = client.CustomObjectsApi(apps.api_client)
    rng = random.Random(21)  # noqa: S311 - a repeatable choice, not a secret
    picked = rng.sample(layout.releases(), min(100, len(layout.releases())))
    bodies = []
    objs = []
    for i, (n, a) in enumerate(picked):
        app = layout.app(n, a)
        stored = apps.api_client.sanitize_for_serialization(apps.read_namespaced_deployment(f"{app}-0", f"stg-{n}"))
        meta = {k: stored["metadata"][k] for k in ("name", "labels", "annotations") if k in stored["metadata"]}
        obj = {**stored, "metadata": {**meta, "namespace": "prod"}}
        obj.pop("status", None)
        bodies.append(_review(obj, f"review-{i}"))
        objs.append(obj)
    tls = cluster.webhook_client_context(directory / "certs" / "ca.crt")
    url = f"https://127.0.0.1:{port}/gate-deployments"

    def ready(app: str) -> bool:
        body: dict[str, Any] = custom.get_namespaced_custom_object(
            "readiness.dev", "v1alpha1", "prod", "releasereadinesses", app
        )
        conditions = (body.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def none_ready(apps: list[str]) -> bool:
        return not any(ready(app) for app in apps)

    def all_ready(apps: list[str]) -> bool:
        return all(ready(app) for app in apps)

    def run(label: str, reviews: list[bytes], rate: float = 200, seconds: float = 15) -> None:
        asyncio.run(_post_reviews(url, tls, reviews, 100, 1))  # warm up: each template seen once
        before = _gate_histogram(operator)
        r = asyncio.run(_post_reviews(url, tls, reviews, rate, seconds))
        after = _gate_histogram(operator)
        lat = r["latencies"]
        print(
            f"gate, {label}, {rate:g} req/s for {seconds:g} s over {len(reviews)} applications: inside the operator "
            f"p50 <= {_bound(before, after, 0.5)} ms, p99 <= {_bound(before, after, 0.99)} ms (goal p99 < 1 ms); "
            f"client p50 {_pct(lat, 0.5) * 1000:.1f} ms, p99 {_pct(lat, 0.99) * 1000:.1f} ms; {r['outcomes']}; "
            f"load average {_load()}"
        )

    print(f"releases Ready among the {len(picked)}: {sum(ready(layout.app(n, a)) for n, a in picked)}")
    run("admitted (Ready releases)", bodies)
    index = _in_process(api, None, "admitted", objs)
    memory = "/spec/template/spec/containers/0/resources/limits/memory"
    unready = picked[:20]
    for n, a in unready:
        apps.patch_namespaced_deployment(f"{layout.app(n, a)}-0", f"stg-{n}", [{"op": "remove", "path": memory}])
    names = [layout.app(n, a) for n, a in unready]
    _until(functools.partial(none_ready, names), 60)
    run("refused (20 releases not Ready)", bodies[:20])
    _in_process(api, index, "refused", objs[:20])
    for n, a in unready:
        patch = [{"op": "add", "path": memory, "value": "512Mi"}]
        apps.patch_namespaced_deployment(f"{layout.app(n, a)}-0", f"stg-{n}", patch)
    _until(functools.partial(all_ready, names), 60)


def _soak(
    cluster: LocalCluster,
    layout: Layout,
    custom: client.CustomObjectsApi,
    pid: int,
    seconds: float,
    sample_seconds: float,
) -> None:
    """Changes one after another for `seconds`: a memory limit removed or restored on one Deployment (JSON patch),
    timed until the release's item flips; RSS sampled every `sample_seconds`."""
    apps = client.AppsV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    began = time.perf_counter()

    def sample() -> None:
        samples.append((0.0, _rss_mib(pid)))
        while not stop.wait(sample_seconds):
            samples.append((time.perf_counter() - began, _rss_mib(pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def state(release: str) -> str:
        body: dict[str, Any] = custom.get_namespaced_custom_object(
            "readiness.dev", "v1alpha1", "prod", "releasereadinesses", release
        )
        items = (body.get("status") or {}).get("items", [])
        return next((it["state"] for it in items if it["id"] == WATCHED), "")

    def state_is(release: str, want: str) -> bool:
        return state(release) == want

    rng = random.Random(42)  # noqa: S311 - a repeatable choice, not a secret
    removed: set[tuple[int, int]] = set()
    latencies: list[float] = []
    at: list[float] = []
    timeouts = 0
    memory_path = "/spec/template/spec/containers/0/resources/limits/memory"
    try:
        while time.perf_counter() - began < seconds:
            n, a = rng.choice(layout.releases())
            app = layout.app(n, a)
            if (n, a) in removed:
                patch: list[dict[str, Any]] = [{"op": "add", "path": memory_path, "value": "512Mi"}]
                want = "Passed"
                removed.discard((n, a))
            else:
                patch = [{"op": "remove", "path": memory_path}]
                want = "Failed"
                removed.add((n, a))
            started = time.perf_counter()
            apps.patch_namespaced_deployment(f"{app}-0", f"stg-{n}", patch)
            flipped = _until(functools.partial(state_is, app, want), 30)
            latencies.append(time.perf_counter() - started)
            at.append(started - began)
            timeouts += not flipped
            time.sleep(max(0.0, 0.5 - (time.perf_counter() - started)))
    finally:
        stop.set()
        sampler.join()
    samples.append((time.perf_counter() - began, _rss_mib(pid)))
    _report_soak(seconds, sample_seconds, latencies, at, timeouts, samples)


def _report_soak(
    seconds: float,
    sample_seconds: float,
    latencies: list[float],
    at: list[float],
    timeouts: int,
    samples: list[tuple[float, float]],
) -> None:
    print(
        f"soak of {seconds:.0f} s: {len(latencies)} changes (a memory limit removed or restored by a JSON patch, until "
        f"the release's {WATCHED} item flips): change to status p50 {_pct(latencies, 0.5) * 1000:.0f} ms, p95 "
        f"{_pct(latencies, 0.95) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms (goal p95 < 1 s); "
        f"{timeouts} not flipped within 30 s"
    )
    slow = [(t, lat) for t, lat in zip(at, latencies, strict=True) if lat > 1]
    print(
        f"changes over 1 s: {len(slow)}"
        + (": " + ", ".join(f"at {t:.0f}s {lat * 1000:.0f} ms" for t, lat in slow[:40]) if slow else "")
    )
    series = ", ".join(f"{t:.0f}s {rss:.0f}" for t, rss in samples)
    rss = [r for _, r in samples]
    print(
        f"operator RSS (MiB) every {sample_seconds:.0f} s: {series}; min {min(rss):.0f}, max {max(rss):.0f} "
        f"(goal < 400 MiB, flat)"
    )


def _until(fn: Callable[[], bool], timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if fn():
            return True
        time.sleep(0.01)
    return False
