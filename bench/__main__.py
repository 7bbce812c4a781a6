"""`make bench`: gate latency and throughput, the gate's cost through the API server, reconcile at scale.

Prints figures; asserts nothing. Each scenario starts from a fresh local control plane and the real
operator process, like the integration tests.
Usage: python -m bench [gate] [apiserver] [scale] [signoffs] [vegeta] [cel] [kyverno] [scale10]
(kyverno, side by side with Kyverno v1.19.1, runs only when named: `make bench BENCH=kyverno` builds it first.)
(scale10, ten times scenario 3's scale, takes about 25 minutes and runs only when named.)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes import client, config

from release_readiness.admission.configuration import prepare_local_webhook
from release_readiness_dev import builders
from release_readiness_dev.harness import REPO, Kubectl, OperatorProcess
from release_readiness_dev.localcluster import LocalCluster, free_port


def machine() -> str:
    cpus = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {cpus} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def deployment(
    ns: str, name: str = "payments-api", memory: str = "512Mi", replicas: int = 3, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """The benchmarks' candidate: a scraped, probed service with a port, an env var, requests and limits."""
    resources = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": memory}}
    api = builders.container(
        ports=[{"containerPort": 8080}],
        env=[{"name": "LOG_LEVEL", "value": "info"}],
        resources=resources,
        **builders.PROBES,
    )
    return builders.deployment(
        name,
        ns,
        labels=labels,
        containers=[api],
        replicas=replicas,
        template_annotations={"prometheus.io/scrape": "true"},
        pod={"securityContext": {"runAsNonRoot": True}},
    )


class Setup:
    """A control plane, the webhook registered, the operator running, and a Ready release gating `prod`."""

    def __init__(self, directory: Path, register_webhooks: bool = True, **env: str) -> None:
        self.cluster = LocalCluster(directory / "cluster").start()
        self.kubectl = Kubectl(self.cluster.kubeconfig)
        self.port = free_port()
        self.configs = prepare_local_webhook(directory / "certs", self.port)
        self.cluster_certs = directory / "certs"
        self.tls = self.cluster.webhook_client_context(directory / "certs" / "ca.crt")
        self.rollout: dict[str, Any] = {}
        self.kubectl.run("apply", "--server-side", "-f", str(REPO / "crds"))
        self.kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
        self.operator = OperatorProcess(
            self.cluster, directory / "operator.log", directory / "certs", self.port, **{"RR_LOG_FORMAT": "json", **env}
        ).start()
        if register_webhooks:
            self.register()

    def register(self) -> None:
        self.kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": self.configs}))

    def unregister(self) -> None:
        self.kubectl.run("delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration", "release-readiness")

    def ready_release(self) -> None:
        k = self.kubectl
        k.run("create", "namespace", "stg")
        k.apply(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": "prod", "labels": {"readiness.dev/gate": "enforce"}},
                }
            )
        )
        checks = {"limits": {"workload": "resourceLimits"}, "probes": {"workload": "readinessProbe"}}
        k.apply(json.dumps(builders.checklist("bench", checks, section="S")))
        k.apply(json.dumps(deployment("stg")))
        k.apply(json.dumps(builders.release("payments-api-3.2.0", "prod", "payments-api", "3.2.0", "bench", "stg")))
        k.run("wait", "--for=condition=Ready", "rr/payments-api-3.2.0", "-n", "prod", "--timeout=60s")
        # What the API server would send for the production rollout: the candidate as stored (defaulted; the
        # gate compares pod templates), in prod.
        stored = json.loads(k.run("get", "deployment", "payments-api", "-n", "stg", "-o", "json").stdout)
        meta = {key: stored["metadata"][key] for key in ("name", "labels", "annotations") if key in stored["metadata"]}
        self.rollout = {**stored, "metadata": {**meta, "namespace": "prod"}}
        self.rollout.pop("status", None)

    def close(self) -> None:
        self.operator.stop()
        self.cluster.stop()


def review(uid: str, obj: dict[str, Any]) -> bytes:
    """The AdmissionReview the API server sends for `obj` (the rollout, payments-api, in prod) as it stores it
    (defaulted), with a fresh object uid."""
    obj = {**obj, "metadata": {**obj["metadata"], "uid": str(uuid.uuid4())}}
    return json.dumps(builders.admission_review(obj, uid, namespace="prod")).encode()


async def gate_rate(
    url: str, context: ssl.SSLContext, rate: float, seconds: float, obj: dict[str, Any]
) -> dict[str, float]:
    """Open-loop load at `rate` req/s (latency measured from the scheduled send time)."""
    connector = aiohttp.TCPConnector(ssl=context, limit=64)
    latencies: list[float] = []
    errors = 0
    body = review("x", obj)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(scheduled: float) -> None:
            nonlocal errors
            try:
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                    answer = await resp.json()
                    if resp.status != 200 or "response" not in answer or not answer["response"]["allowed"]:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - scheduled)

        tasks = []
        start = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return {
        "rate": rate,
        "sent": n,
        "throughput": n / elapsed,
        "errors": errors,
        "p50": pct(latencies, 0.5) * 1000,
        "p95": pct(latencies, 0.95) * 1000,
        "p99": pct(latencies, 0.99) * 1000,
    }


async def gate_saturation(
    url: str, context: ssl.SSLContext, concurrency: int, seconds: float, obj: dict[str, Any]
) -> dict[str, float]:
    connector = aiohttp.TCPConnector(ssl=context, limit=concurrency)
    latencies: list[float] = []
    errors = 0
    body = review("x", obj)
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                        await resp.read()
                        errors += resp.status != 200
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - began)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "throughput": len(latencies) / elapsed,
        "errors": errors,
        "p50": pct(latencies, 0.5) * 1000,
        "p99": pct(latencies, 0.99) * 1000,
    }


def server_histogram(setup: Setup) -> dict[float, float]:
    """Cumulative bucket counts of the operator's admission_duration_seconds for the gate."""
    out: dict[float, float] = {}
    for line in setup.operator.metrics().splitlines():
        if (
            line.startswith("release_readiness_admission_duration_seconds_bucket")
            and 'webhook="gate-deployments"' in line
        ):
            le = line.split('le="')[1].split('"')[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def histogram_delta(before: dict[float, float], after: dict[float, float]) -> dict[float, float]:
    return {le: after[le] - before.get(le, 0.0) for le in after}


def quantile_bound(buckets: dict[float, float], q: float) -> str:
    """The smallest bucket bound (ms) below which a fraction q of the requests fell."""
    total = buckets.get(float("inf"), 0.0)
    for le in sorted(buckets):
        if total and buckets[le] >= q * total:
            return "inf" if le == float("inf") else f"{le * 1000:g}"
    return "n/a"


def bench_gate(tmp: Path) -> None:
    print("\n== 1. The gate, direct: AdmissionReview over TLS to /gate-deployments (open loop, fixed rates)")
    setup = Setup(tmp / "gate")
    try:
        setup.ready_release()
        url = f"https://127.0.0.1:{setup.port}/gate-deployments"
        asyncio.run(gate_rate(url, setup.tls, 100, 2, setup.rollout))  # warm up
        print(
            f"{'rate':>6} {'sent':>6} {'req/s':>8} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
            "   server-side p50 / p99 (the operator's histogram)"
        )
        for rate in (200, 500, 1000, 2000):
            before = server_histogram(setup)
            r = asyncio.run(gate_rate(url, setup.tls, rate, 10, setup.rollout))
            server = histogram_delta(before, server_histogram(setup))
            print(
                f"{r['rate']:>6.0f} {r['sent']:>6.0f} {r['throughput']:>8.0f} {r['errors']:>6.0f} "
                f"{r['p50']:>8.2f} {r['p95']:>8.2f} {r['p99']:>8.2f}   "
                f"<= {quantile_bound(server, 0.5)} ms / <= {quantile_bound(server, 0.99)} ms"
            )
        for concurrency in (8, 32):
            s = asyncio.run(gate_saturation(url, setup.tls, concurrency, 10, setup.rollout))
            print(
                f"saturation, {concurrency} concurrent: {s['throughput']:.0f} req/s, errors {s['errors']:.0f}, "
                f"p50 {s['p50']:.2f} ms, p99 {s['p99']:.2f} ms"
            )
    finally:
        setup.close()


VEGETA = REPO / "bin" / "vegeta"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Vegeta:
    """vegeta (built from its Go module by `make bench-tools`) posting one AdmissionReview to the gate over TLS with
    the API server's client certificate, as the API server does."""

    def __init__(self, setup: Setup, directory: Path, body: bytes, port: int | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        (directory / "body.json").write_bytes(body)
        url = f"https://127.0.0.1:{port or setup.port}/gate-deployments"
        (directory / "targets.txt").write_text(
            f"POST {url}\nContent-Type: application/json\n@{directory / 'body.json'}\n"
        )
        cert, key = setup.cluster.webhook_client_cert
        self.tls = [f"-root-certs={setup.cluster_certs / 'ca.crt'}", f"-cert={cert}", f"-key={key}"]

    def attack(
        self, rate: int, seconds: float, connections: int | None = 64, workers: int | None = None
    ) -> dict[str, Any]:
        """One attack; its `vegeta report -type=json`. rate 0: as fast as `workers` workers go."""
        out = self.directory / f"attack-{rate}-{time.monotonic_ns()}.bin"
        argv = [
            str(VEGETA),
            "attack",
            f"-targets={self.directory / 'targets.txt'}",
            f"-rate={rate}/1s",
            f"-duration={seconds}s",
            "-http2=false",
            "-timeout=10s",
            f"-output={out}",
            *self.tls,
        ]
        if connections:
            argv.append(f"-max-connections={connections}")
        if workers:
            argv += [f"-workers={workers}", f"-max-workers={workers}"]
        subprocess.run(argv, check=True, capture_output=True)
        report = subprocess.run([str(VEGETA), "report", "-type=json", str(out)], check=True, capture_output=True)
        out.unlink()
        result: dict[str, Any] = json.loads(report.stdout)
        return result


def vegeta_line(label: str, r: dict[str, Any]) -> str:
    lat = r["latencies"]
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(r.get("status_codes", {}).items()))
    errors = len(r.get("errors") or [])
    return (
        f"{label:<28} {r['requests']:>7} {r['rate']:>8.0f} {r['throughput']:>8.0f} "
        f"{lat['50th'] / 1e6:>8.2f} {lat['95th'] / 1e6:>8.2f} {lat['99th'] / 1e6:>8.2f} {lat['max'] / 1e6:>9.1f}"
        f"   {r['success'] * 100:.1f}% ok ({codes}; {errors} distinct errors)"
    )


VEGETA_HEADER = f"{'':<28} {'sent':>7} {'rate':>8} {'ok/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>9}"


def first_answer_after(port: int, context: ssl.SSLContext, body: bytes) -> tuple[float, float]:
    """(seconds until the first 200 on a new connection, that request's own latency)."""
    import http.client

    began = time.perf_counter()
    while True:
        sent = time.perf_counter()
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        try:
            conn.request("POST", "/gate-deployments", body, {"Content-Type": "application/json"})
            if conn.getresponse().status == 200:
                done = time.perf_counter()
                return done - began, done - sent
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.01)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rollout_of(setup: Setup, version: str) -> dict[str, Any]:
    """The production rollout with another version label on its pod template (another release judges it)."""
    obj = json.loads(json.dumps(setup.rollout))
    obj["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] = version
    return obj


def unready_release(setup: Setup, version: str = "3.3.0") -> None:
    """A release of the same application judged by the default 231-item checklist: not Ready, so the gate refuses
    its rollouts listing what is outstanding (the refusal path)."""
    k = setup.kubectl
    k.run("apply", "--server-side", "-f", str(REPO / "deploy" / "checklists"))
    name = f"payments-api-{version}"
    k.apply(json.dumps(builders.release(name, "prod", "payments-api", version, "pre-production", "stg")))
    k.run("wait", "--for=condition=Ready=False", f"rr/payments-api-{version}", "-n", "prod", "--timeout=60s")


def capacity_line(label: str, v: Vegeta, pids: Sequence[int], seconds: float = 15) -> dict[str, Any]:
    """Closed loop with 64 connections; also the operators' CPU per request (steadier than throughput here)."""
    before = sum(cpu_seconds(pid) for pid in pids)
    r = v.attack(0, seconds, connections=64, workers=64)
    used = sum(cpu_seconds(pid) for pid in pids) - before
    print(vegeta_line(label, r) + f"; operator CPU {used / max(r['requests'], 1) * 1e6:.0f} us/request")
    return r


def overload(setup: Setup, v: Vegeta, pid: int, over: int, body: bytes) -> None:
    """60 s at `over` req/s with unlimited connections (as an API server opens them); the operator's RSS sampled."""
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            samples.append(rss_mib(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        r = v.attack(over, 60, connections=None)
    finally:
        stop.set()
        sampler.join()
    after, latency = first_answer_after(setup.port, setup.tls, body)
    print(vegeta_line(f"3x: {over} req/s, unlimited", r))
    print(
        f"operator RSS during 60 s at 3x capacity: peak {max(samples):.0f} MiB, last {samples[-1]:.0f} MiB; "
        f"first 200 on a new connection {after * 1000:.0f} ms after the overload (that request: "
        f"{latency * 1000:.1f} ms); RSS now {rss_mib(pid):.0f} MiB; load average {load_average()}"
    )
    capacity_line("capacity after the overload", v, [pid], 10)


def replicas(setup: Setup, v: Vegeta, pid: int, directory: Path) -> None:
    # Two replicas on one port: SO_REUSEPORT makes the kernel spread connections among them, as a Service does
    # among endpoints, without a proxy's own CPU on this 2-core machine. Alternated, so drift hits both alike.
    print("one replica and two, alternated (64 connections, 10 s each):")
    for _ in range(2):
        capacity_line("1 replica", v, [pid], 10)
        second = OperatorProcess(
            setup.cluster, directory / "operator-2.log", setup.cluster_certs, setup.port, RR_LOG_FORMAT="json"
        ).start()
        try:
            v.attack(200, 2)  # its first connections
            capacity_line("2 replicas", v, [pid, second.proc.pid if second.proc else 0], 10)
        finally:
            second.stop()


def bench_vegeta(tmp: Path) -> None:
    print("\n== 5. The gate under load and overload, with vegeta (TLS with the API server's client certificate)")
    setup = Setup(tmp / "vegeta")
    try:
        setup.ready_release()
        unready_release(setup)
        pid = setup.operator.proc.pid if setup.operator.proc else 0
        body = review("x", setup.rollout)
        v = Vegeta(setup, tmp / "vegeta" / "admitted", body)
        refused = Vegeta(setup, tmp / "vegeta" / "refused", review("y", rollout_of(setup, "3.3.0")))
        v.attack(200, 3)  # warm up
        refused.attack(200, 3)
        print(f"operator RSS at rest: {rss_mib(pid):.0f} MiB; load average {load_average()}")
        print(VEGETA_HEADER)
        capacity = capacity_line("capacity, admitted", v, [pid])
        capacity_line("capacity, refused (207 items)", refused, [pid])
        for rate in (500, 1000, 2000):
            before = server_histogram(setup)
            r = v.attack(rate, 15)
            server = histogram_delta(before, server_histogram(setup))
            print(
                vegeta_line(f"{rate} req/s", r)
                + f"; inside: p50 <= {quantile_bound(server, 0.5)} ms, p99 <= {quantile_bound(server, 0.99)} ms"
            )
        print(f"load average {load_average()}")
        overload(setup, v, pid, int(3 * max(capacity["throughput"], 300)), body)
        replicas(setup, v, pid, tmp / "vegeta")
        print(f"load average {load_average()}")
    finally:
        setup.close()


def dry_runs(apps: Any, n: int, offset: int = 0) -> list[float]:
    """Server-side dry-run patches of the gated Deployment's pod template (so the gate judges each one)."""
    times = []
    for i in range(n):
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "api", "env": [{"name": "LOG_LEVEL", "value": f"info-{offset + i}"}]}]
                    }
                }
            }
        }
        began = time.perf_counter()
        apps.patch_namespaced_deployment("payments-api", "prod", patch, dry_run="All")
        times.append(time.perf_counter() - began)
    return times


def bench_apiserver(tmp: Path) -> None:
    print("\n== 2. The gate through the API server: server-side dry-run patches of a gated Deployment")
    setup = Setup(tmp / "apiserver")
    try:
        setup.ready_release()
        setup.kubectl.apply(json.dumps(deployment("prod")))
        apps = client.AppsV1Api(config.new_client_from_config(config_file=str(setup.cluster.kubeconfig)))
        dry_runs(apps, 50)  # warm up connections and caches
        hooked: list[float] = []
        plain: list[float] = []
        for block in range(6):  # interleaved blocks, so drift on the machine hits both sides alike
            hooked += dry_runs(apps, 100, block * 1000)
            setup.unregister()
            time.sleep(1.5)
            plain += dry_runs(apps, 100, block * 1000 + 500)
            setup.register()
            time.sleep(1.5)
        print(
            f"{len(hooked)} requests with the webhook and {len(plain)} without, interleaved in blocks of 100, "
            "from one keep-alive client"
        )
        print(f"with:    p50 {pct(hooked, 0.5) * 1000:.2f} ms, p95 {pct(hooked, 0.95) * 1000:.2f} ms")
        print(f"without: p50 {pct(plain, 0.5) * 1000:.2f} ms, p95 {pct(plain, 0.95) * 1000:.2f} ms")
        print(
            f"added:   p50 {(pct(hooked, 0.5) - pct(plain, 0.5)) * 1000:.2f} ms, "
            f"p95 {(pct(hooked, 0.95) - pct(plain, 0.95)) * 1000:.2f} ms"
        )
    finally:
        setup.close()


SCALE_ITEMS = [
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


def bench_scale(
    tmp: Path,
    namespaces: int = 50,
    releases: int = 200,
    deployments: int = 2000,
    checklist_items: list[dict[str, Any]] | None = None,
    watched: str = "resourcelimits",
    title: str = "3. Reconcile at scale",
) -> None:
    print(f"\n== {title}: {deployments} Deployments in {namespaces} candidate namespaces, {releases} releases")
    setup = Setup(tmp / watched, register_webhooks=False)
    k = setup.kubectl
    try:
        items = [builders.checklist("scale", checklist_items or SCALE_ITEMS)]
        items += [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"stg-{n}"}} for n in range(namespaces)
        ]
        items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}})
        per_ns = deployments // namespaces
        apps_per_ns = releases // namespaces
        for n in range(namespaces):
            for d in range(per_ns):
                app = f"app-{d % apps_per_ns}"
                labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/version": "1.0.0"}
                items.append(deployment(f"stg-{n}", name=f"{app}-{d}", labels=labels, replicas=2))
        for n in range(namespaces):
            for a in range(apps_per_ns):
                items.append(builders.release(f"stg-{n}-app-{a}", "prod", f"app-{a}", "1.0.0", "scale", f"stg-{n}"))
        began = time.perf_counter()
        for chunk in range(0, len(items), 500):
            k.run(
                "apply",
                "--server-side",
                "-f",
                "-",
                stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items[chunk : chunk + 500]}),
            )
        print(f"created {len(items)} objects in {time.perf_counter() - began:.0f}s")

        def evaluated() -> int:
            out = k.run("get", "rr", "-n", "prod", "-o", "jsonpath={.items[*].status.observedGeneration}").stdout
            return len(out.split())

        began = time.perf_counter()
        while evaluated() < releases and time.perf_counter() - began < 300:
            time.sleep(1)
        print(f"all {releases} releases evaluated {time.perf_counter() - began:.1f}s after the last create")
        time.sleep(3)
        custom = client.CustomObjectsApi(config.new_client_from_config(config_file=str(setup.cluster.kubeconfig)))

        def limits_state(release: str) -> str:
            body = custom.get_namespaced_custom_object(
                "readiness.dev", "v1alpha1", "prod", "releasereadinesses", release
            )
            items = (body.get("status") or {}).get("items", [])
            return next((it["state"] for it in items if it["id"] == watched), "")

        latencies = []
        for i in range(40):
            n, a = i % namespaces, i % apps_per_ns
            labels = {"app.kubernetes.io/name": f"app-{a}", "app.kubernetes.io/version": "1.0.0"}
            obj = deployment(f"stg-{n}", name=f"app-{a}-{a}", labels=labels, replicas=2)
            release = f"stg-{n}-app-{a}"
            want = "Passed" if limits_state(release) == "Failed" else "Failed"
            if want == "Failed":  # remove the memory limit; the next round for this release adds it back
                del obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
            started = time.perf_counter()
            # Server-side apply, as at creation: a field left out (the memory limit) is removed.
            k.run("apply", "--server-side", "-f", "-", stdin=json.dumps(obj))
            while limits_state(release) != want and time.perf_counter() - started < 30:
                time.sleep(0.01)
            latencies.append(time.perf_counter() - started)
        print(
            f"change to status (a memory limit removed or added, until the item flips): p50 "
            f"{pct(latencies, 0.5) * 1000:.0f} ms, p95 {pct(latencies, 0.95) * 1000:.0f} ms, max "
            f"{max(latencies) * 1000:.0f} ms over {len(latencies)} changes (includes `kubectl apply`, ~100 ms)"
        )
        print(f"operator resident memory: {_rss(setup) / 2**20:.0f} MiB")
    finally:
        setup.close()


CEL_RULES = {
    "memory-limit": "containers.all(c, has(c.resources.limits) && 'memory' in c.resources.limits)",
    "cpu-limit": "containers.all(c, has(c.resources.limits) && 'cpu' in c.resources.limits)",
    "requests": "containers.all(c, has(c.resources.requests) && c.resources.requests.size() >= 2)",
    "log-level": "containers.all(c, has(c.env) && c.env.exists(e, e.name == 'LOG_LEVEL'))",
    "version-label": "'app.kubernetes.io/version' in workload.metadata.labels",
    "registry": "containers.all(c, c.image.startsWith('registry.example.com/'))",
    "no-latest": "containers.all(c, !c.image.endsWith(':latest') && c.image.contains(':'))",
    "readiness": "containers.all(c, has(c.readinessProbe) && has(c.readinessProbe.httpGet))",
    "liveness": "containers.all(c, has(c.livenessProbe))",
    "non-root": "has(podSpec.securityContext) && podSpec.securityContext.runAsNonRoot == true",
    "replicas": "workload.spec.replicas >= 2",
    "no-host-port": "containers.all(c, !has(c.ports) || c.ports.all(p, !has(p.hostPort)))",
    "no-host-network": "!has(podSpec.hostNetwork) || !podSpec.hostNetwork",
    "scraped": "workload.spec.template.metadata.annotations['prometheus.io/scrape'] == 'true'",
    "probe-paths": "containers.all(c, c.readinessProbe.httpGet.path.startsWith('/'))",
    "service-ports": "services.all(s, s.spec.ports.all(p, containers.exists(c, has(c.ports) "
    "&& c.ports.exists(q, q.containerPort == p.targetPort || (has(q.name) && q.name == p.targetPort)))))",
    "pdb-budget": "pdbs.all(p, has(p.spec.minAvailable) || has(p.spec.maxUnavailable))",
    "hpa-min": "hpas.all(h, h.spec.minReplicas >= 2)",
    "policy-types": "networkPolicies.all(n, has(n.spec.policyTypes))",
    "env-names": "containers.all(c, !has(c.env) || c.env.all(e, e.name.matches('^[A-Z_][A-Z0-9_]*$')))",
}
CEL_ITEMS = [
    {
        "id": item_id,
        "section": "S",
        "title": item_id,
        "check": {
            "cel": {
                "rules": [
                    {
                        "expression": rule,
                        "messageExpression": f"containers.map(c, c.name).join(', ') + ' break {item_id}'",
                    }
                ]
            }
        },
    }
    for item_id, rule in CEL_RULES.items()
]


def bench_cel(tmp: Path, deployments: int = 2000) -> None:
    """20 CEL items: in-process over one release selecting all 2,000 Deployments (what one evaluation costs the
    event loop), then through the real operator over 2,000 Deployments in 200 releases, as scenario 3."""
    from release_readiness.api.checklist import ChecklistItem
    from release_readiness.checks import cel as cel_module
    from release_readiness.checks.cel import compiled, run_cel_check
    from release_readiness.checks.model import CandidateSnapshot, Workload

    print(f"\n== 5. CEL: {len(CEL_ITEMS)} CEL items over {deployments} Deployments")
    checks = [ChecklistItem.model_validate(i).check.cel for i in CEL_ITEMS]
    bodies = [deployment("stg", name=f"app-{d}", replicas=2) for d in range(deployments)]
    services = [
        {
            "metadata": {"name": f"svc-{d}", "namespace": "stg"},
            "spec": {
                "selector": {"app.kubernetes.io/name": "payments-api"},
                "ports": [{"port": 80, "targetPort": 8080}],
            },
        }
        for d in range(3)
    ]

    def one_evaluation() -> tuple[float, list[str]]:
        snap = CandidateSnapshot(
            "payments-api", "3.2.0", "stg", [Workload(b) for b in bodies], dt.datetime.now(dt.UTC), services=services
        )
        started = time.perf_counter()
        states = [run_cel_check(c, snap).state for c in checks if c is not None]
        return time.perf_counter() - started, states

    compiled.cache_clear()
    started = time.perf_counter()
    for item in CEL_ITEMS:
        compiled(item["check"]["cel"]["rules"][0]["expression"])
    compile_ms = (time.perf_counter() - started) * 1000
    limits = (cel_module.ITEM_SECONDS, cel_module.EVALUATION_SECONDS)
    # The throughput without the wall-clock limits (they would stop the measured work), then what they leave judged.
    cel_module.ITEM_SECONDS = cel_module.EVALUATION_SECONDS = float("inf")
    try:
        first, states = one_evaluation()
        runs = [one_evaluation()[0] for _ in range(5)]
    finally:
        cel_module.ITEM_SECONDS, cel_module.EVALUATION_SECONDS = limits
    evaluations = len(CEL_ITEMS) * deployments
    print(
        f"in-process, one release selecting all {deployments}: compile {len(CEL_ITEMS)} rules {compile_ms:.0f} ms "
        f"(once per checklist version); one evaluation of {len(CEL_ITEMS)} items x {deployments} workloads "
        f"({evaluations} rule evaluations), no time limits: first {first * 1000:.0f} ms, then p50 "
        f"{pct(runs, 0.5) * 1000:.0f} ms (max {max(runs) * 1000:.0f} ms), "
        f"{pct(runs, 0.5) / evaluations * 1e6:.1f} us a rule evaluation; states {sorted(set(states))}"
    )
    took, states = one_evaluation()
    print(
        f"with the limits ({limits[0]:g} s an item, {limits[1]:g} s all items of an evaluation): "
        f"{states.count('Passed')} of {len(states)} items judged, {states.count('Pending')} Pending, in "
        f"{took * 1000:.0f} ms"
    )
    bench_scale(tmp, checklist_items=CEL_ITEMS, watched="memory-limit", title="5. CEL through the operator")


def maximal_signoff(namespace: str, release: str, name: str, release_uid: str = "") -> dict[str, Any]:
    """A signoff at every schema limit: a 4096-character comment, 128 items each with a 63-character id, a
    64-character value and a 1024-character evidence URL, a signer in 256 groups of 253 characters."""
    from release_readiness.api.signoff import LIMITS

    return builders.signoff(
        namespace,
        release,
        name,
        role="security-lead",
        decision="reject",
        comment="c" * LIMITS.COMMENT,
        items=[
            {
                "id": f"item-{i:03d}-" + "x" * (63 - 9),
                "value": f"{name}-{i}".rjust(LIMITS.VALUE, "9"),  # unique: nothing to share
                "evidence": "https://ci.example.com/" + "e" * (LIMITS.EVIDENCE_URL - 23),
            }
            for i in range(LIMITS.ITEMS)
        ],
        signer={
            "username": "u" * LIMITS.NAME,
            # The role's group first (so the veto counts), then long ones up to the limit.
            "groups": ["security-leads", *(f"g{i:03d}-" + "g" * 248 for i in range(LIMITS.GROUPS - 1))],
        },
        signedAt="2026-11-27T12:00:00.000000Z",
        releaseUID=release_uid or "0" * 36,  # stamped by the webhook: the veto counts for this release
    )


def bench_signoffs(tmp: Path, releases: int = 10, per_release: int = 200) -> None:
    total = releases * per_release
    print(f"\n== 4. Operator memory with {total} maximal signoffs ({per_release} per release, the admission limit)")
    setup = Setup(tmp / "signoffs", register_webhooks=False)  # stored as the schema allows, no webhook trimming
    k = setup.kubectl
    try:
        k.run("create", "namespace", "prod")
        k.run("create", "namespace", "stg")
        approvals = [{"role": "security-lead", "groups": ["security-leads"]}]
        k.apply(json.dumps(builders.checklist("bench", {"limits": {"workload": "replicas"}}, approvals, section="S")))
        for r in range(releases):
            k.apply(json.dumps(builders.release(f"app-{r}", "prod", f"app-{r}", "1.0.0", "bench", "stg")))
        time.sleep(3)
        before = _rss(setup)
        size = len(json.dumps(maximal_signoff("prod", "app-0", "s")))
        print(f"one maximal signoff: {size / 1024:.0f} KiB of JSON; operator before: {before / 2**20:.0f} MiB")
        began = time.perf_counter()
        for r in range(releases):
            uid = k.run("get", "rr", f"app-{r}", "-n", "prod", "-o", "jsonpath={.metadata.uid}").stdout.strip()
            for chunk in range(0, per_release, 25):
                batch = [maximal_signoff("prod", f"app-{r}", f"app-{r}-{i}", uid) for i in range(chunk, chunk + 25)]
                k.run("create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": batch}))
        took = time.perf_counter() - began
        print(f"created {total} signoffs ({total * size / 2**20:.0f} MiB of JSON) in {took:.0f}s")

        def vetoed() -> int:
            out = k.run(
                "get", "rr", "-n", "prod", "-o", 'jsonpath={.items[*].status.conditions[?(@.type=="Stalled")].reason}'
            ).stdout
            return out.split().count("Vetoed")

        began = time.perf_counter()
        while vetoed() < releases and time.perf_counter() - began < 300:
            time.sleep(1)
        time.sleep(5)
        peak = after = _rss(setup)
        for _ in range(5):
            time.sleep(2)
            sample = _rss(setup)
            peak, after = max(peak, sample), sample
        print(
            f"all {releases} releases evaluated (Vetoed) {time.perf_counter() - began:.0f}s after the last create; "
            f"operator resident memory: {after / 2**20:.0f} MiB (highest sample {peak / 2**20:.0f} MiB; "
            f"+{(after - before) / 2**20:.0f} MiB for the signoffs; chart limit 384 MiB)"
        )
    finally:
        setup.close()


def _rss(setup: Setup) -> float:
    for line in setup.operator.metrics().splitlines():
        if line.startswith("process_resident_memory_bytes "):
            return float(line.split()[1])
    return float("nan")


def main(argv: Sequence[str]) -> int:
    wanted = set(argv) or {"gate", "apiserver", "scale", "signoffs", "vegeta", "cel"}
    print(f"release-readiness benchmarks on {machine()}")
    version = subprocess.run(
        [str(REPO / "bin" / "kube-apiserver"), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    print(f"kube-apiserver: {version}")
    with tempfile.TemporaryDirectory(prefix="rr-bench-") as tmp:
        if "gate" in wanted:
            bench_gate(Path(tmp))
        if "apiserver" in wanted:
            bench_apiserver(Path(tmp))
        if "scale" in wanted:
            bench_scale(Path(tmp))
        if "signoffs" in wanted:
            bench_signoffs(Path(tmp))
        if "vegeta" in wanted:
            bench_vegeta(Path(tmp))
        if "cel" in wanted:
            bench_cel(Path(tmp))
        if "kyverno" in wanted:
            from bench.kyverno import bench_kyverno

            bench_kyverno(Path(tmp))
        if "scale10" in wanted:
            from bench.scale10 import bench_scale10

            bench_scale10(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
