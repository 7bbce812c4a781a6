"""A real Prometheus (Debian's binary) scraping an exporter the test runs with known values."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from release_readiness.localcluster import free_port


class TrafficExporter:
    """Serves http_requests_total and http_request_duration_seconds for apps with fixed behaviour.

    Every 0.1 s each app gets `rate / 10` requests, all taking `latency` seconds, and `errors` of them 5xx.
    """

    def __init__(self, apps: dict[str, tuple[float, float, float]], namespace: str) -> None:
        self.apps = apps
        self.namespace = namespace
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
            for app, (rate, latency, errors) in self.apps.items():
                n = int(rate / 10)
                bad = round(n * errors)
                self.requests.labels(app, self.namespace, "3.2.0", "200").inc(n - bad)
                self.requests.labels(app, self.namespace, "3.2.0", "500").inc(bad)
                for _ in range(n):
                    self.latency.labels(app, self.namespace, "3.2.0").observe(latency)
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
