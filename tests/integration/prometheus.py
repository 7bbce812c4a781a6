"""A real Prometheus (Debian's binary) scraping an exporter the test runs with known values."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import threading
import time
import urllib.request
from functools import partial
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from release_readiness_dev.localcluster import free_port


class TrafficExporter:
    """Serves http_requests_total and http_request_duration_seconds for apps with fixed behaviour.

    Every 0.1 s each app gets `rate / 10` requests, all taking `latency` seconds, and `errors` of them 5xx.
    """

    def __init__(self, apps: dict[str, tuple[float, float, float]], namespace: str) -> None:
        self.apps = apps
        self.namespace = namespace
        self.namespaces = [namespace]
        """Every namespace the apps' series are reported in (a test adds production once it deploys there)."""
        self.behaviour: dict[tuple[str, str], tuple[float, float, float]] = {}
        """(app, namespace) -> (rate, latency, errors) where an app behaves otherwise than in `apps`."""
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "Requests", ["app", "namespace", "version", "code"], registry=self.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Latency",
            ["app", "namespace", "version"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.port = free_port()
        self._stop = threading.Event()

    def start(self) -> TrafficExporter:
        for app in self.apps:
            for code in ("200", "500"):
                self.requests.labels(app, self.namespace, "3.2.0", code).inc(0)
        start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            for (app, usual), namespace in itertools.product(self.apps.items(), list(self.namespaces)):
                rate, latency, errors = self.behaviour.get((app, namespace), usual)
                n = int(rate / 10)
                bad = round(n * errors)
                self.requests.labels(app, namespace, "3.2.0", "200").inc(n - bad)
                self.requests.labels(app, namespace, "3.2.0", "500").inc(bad)
                for _ in range(n):
                    self.latency.labels(app, namespace, "3.2.0").observe(latency)
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()


class PrometheusServer:
    def __init__(self, directory: Path, targets: list[int]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed: run `make prometheus` (Debian's prometheus package)")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        targets_yaml = ", ".join(f"'127.0.0.1:{t}'" for t in targets)
        (directory / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"scrape_configs:\n  - job_name: traffic\n    static_configs: [{{targets: [{targets_yaml}]}}]\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrometheusServer:
        log = (self.directory / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"prometheus did not become ready; log {self.directory / 'prometheus.log'}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


class ClusterExporter:
    """Serves what kube-state-metrics and cAdvisor would report about one release's pods, with knobs.

    Two pods of the release run in `namespace`; `load` says whether its load-test Job is active;
    `memory` is each api container's working set (limit 512 MiB); `restarts` their restart count;
    `replicas` the HPA's current replicas (min 2).
    """

    def __init__(self, namespace: str, app: str = "fast-api", version: str = "3.2.0") -> None:
        self.namespace, self.app, self.version = namespace, app, version
        self.registry = CollectorRegistry()
        self.load = False
        self.memory = 200 * 2**20
        self.restarts = 0
        self.replicas = 2
        self.port = free_port()
        pods = [f"{app}-abc{i}" for i in range(2)]
        job = f"{app}-load-light"
        gauge = partial(Gauge, registry=self.registry)
        self._job_active = gauge("kube_job_status_active", "", ["namespace", "job_name"]).labels(namespace, job)
        gauge(
            "kube_job_labels",
            "",
            [
                "namespace",
                "job_name",
                "label_app_kubernetes_io_name",
                "label_app_kubernetes_io_version",
                "label_readiness_dev_suite",
            ],
        ).labels(namespace, job, app, version, "load-light").set(1)
        labels = gauge(
            "kube_pod_labels",
            "",
            ["namespace", "pod", "label_app_kubernetes_io_name", "label_app_kubernetes_io_version"],
        )
        limits = gauge("kube_pod_container_resource_limits", "", ["namespace", "pod", "container", "resource", "unit"])
        self._memory = gauge("container_memory_working_set_bytes", "", ["namespace", "pod", "container"])
        cpu = Counter("container_cpu_usage_seconds", "", ["namespace", "pod", "container"], registry=self.registry)
        self._cpu = [cpu.labels(namespace, p, "api") for p in pods]
        self._restarts = gauge("kube_pod_container_status_restarts_total", "", ["namespace", "pod", "container"])
        oom = Counter("container_oom_events", "", ["namespace", "pod", "container"], registry=self.registry)
        for pod in pods:
            labels.labels(namespace, pod, app, version).set(1)
            limits.labels(namespace, pod, "api", "memory", "byte").set(512 * 2**20)
            limits.labels(namespace, pod, "api", "cpu", "core").set(1)
            oom.labels(namespace, pod, "api").inc(0)
        self.pods = pods
        hpa = ["namespace", "horizontalpodautoscaler"]
        self._current = gauge("kube_horizontalpodautoscaler_status_current_replicas", "", hpa).labels(namespace, app)
        gauge("kube_horizontalpodautoscaler_spec_min_replicas", "", hpa).labels(namespace, app).set(2)
        self._stop = threading.Event()

    def start(self) -> ClusterExporter:
        start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._job_active.set(1 if self.load else 0)
            self._current.set(self.replicas)
            for pod, cpu in zip(self.pods, self._cpu, strict=True):
                self._memory.labels(self.namespace, pod, "api").set(self.memory)
                self._restarts.labels(self.namespace, pod, "api").set(self.restarts)
                cpu.inc(0.03)  # 0.3 cores
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
