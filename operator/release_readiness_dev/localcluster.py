"""A local control plane: a real etcd and kube-apiserver as processes, like controller-runtime's envtest.

Used by the integration tests (a pytest session fixture), by `make run` and by `make cluster`.
`LocalCluster.start()` picks free 127.0.0.1 ports, makes a CA and the certificates, starts etcd and
the API server, waits for `/readyz` and writes an admin kubeconfig. `stop()` ends every process it
started; children also get SIGTERM if the Python process that started them dies (PR_SET_PDEATHSIG),
so a crashed or interrupted test run leaves nothing behind.

Command line: `python -m release_readiness_dev.localcluster start|stop --dir DIR [--background]`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from release_readiness.pki import CertificateAuthority, write_rsa_keypair

__all__ = ["ControlPlaneError", "LocalCluster", "die_with_parent", "find_bin_dir", "free_port"]

BIND_ATTEMPTS = 3
"""Starts of etcd or kube-apiserver on freshly picked ports when the one picked was taken meanwhile."""
_PR_SET_PDEATHSIG = 1


class ControlPlaneError(RuntimeError):
    """A control-plane binary is missing or did not come up; the message names its log file."""


def find_bin_dir() -> Path:
    """The directory holding etcd and kube-apiserver: $RELEASE_READINESS_BIN or ./bin of the repo."""
    env = os.environ.get("RELEASE_READINESS_BIN")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists():
            return parent / "bin"
    return Path.cwd() / "bin"


PORTS = range(20000, 32768)
"""Where free_port picks: below Linux's default ephemeral range (32768-60999), from which the kernel takes the local
port of every outgoing connection (and port 0): a port picked there can be taken by a client's connection before
the server that was given it binds it (etcd, seen in CI)."""


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on now, outside the ephemeral range (random, so concurrent runs differ)."""
    for _ in range(200):
        port = random.choice(PORTS)  # noqa: S311 - not a secret
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        picked: int = sock.getsockname()[1]
        return picked


def die_with_parent() -> None:
    """preexec_fn: the child is killed when the process that started it dies (a crashed or killed test run
    leaves nothing behind; these processes and their temporary data are disposable)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]


@dataclass
class LocalCluster:
    """etcd + kube-apiserver on 127.0.0.1 in a directory of their own."""

    directory: Path
    bin_dir: Path = field(default_factory=find_bin_dir)
    background: bool = False
    apiserver_port: int = 0
    startup_seconds: float = 0.0
    _processes: list[_Process] = field(default_factory=list)
    _ca: CertificateAuthority | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def webhook_client_ca(self) -> Path:
        """The CA of the certificate the API server presents to admission webhooks (the operator's
        RR_WEBHOOK_CLIENT_CA): only the API server can talk to a webhook that requires it."""
        return self.directory / "pki" / "webhook-client-ca.crt"

    @property
    def webhook_client_cert(self) -> tuple[Path, Path]:
        """(certificate, key) the API server presents to admission webhooks."""
        pki = self.directory / "pki"
        return pki / "webhook-client.crt", pki / "webhook-client.key"

    def webhook_client_context(self, server_ca: Path) -> ssl.SSLContext:
        """A TLS context that talks to a webhook as the API server does: trusting `server_ca`, presenting the
        API server's webhook client certificate (for tests and benchmarks that post reviews directly)."""
        context = ssl.create_default_context(cafile=str(server_ca))
        context.load_cert_chain(*(str(p) for p in self.webhook_client_cert))
        return context

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    # -- lifecycle -----------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> LocalCluster:
        began = time.monotonic()
        for binary in ("etcd", "kube-apiserver"):
            if not (self.bin_dir / binary).exists():
                raise ControlPlaneError(f"{self.bin_dir / binary} is missing: run `make tools` to build it")
        self.directory.mkdir(parents=True, exist_ok=True)
        pki = self.directory / "pki"
        pki.mkdir(exist_ok=True)
        ca = CertificateAuthority("release-readiness-local-ca")
        self._ca = ca
        (pki / "ca.crt").write_bytes(ca.cert_pem)
        ca.issue(
            "kube-apiserver",
            hosts=("127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
        ).write(pki / "apiserver.crt", pki / "apiserver.key")
        ca.issue("admin", organizations=("system:masters",), client=True).write(pki / "admin.crt", pki / "admin.key")
        write_rsa_keypair(pki / "sa.key", pki / "sa.pub")
        admission_config = self._write_webhook_client_config(pki)

        given_port = self.apiserver_port
        etcd_client = 0

        def launch_etcd() -> str:
            nonlocal etcd_client
            if etcd_client:  # again, after a port was taken: nothing of the attempt that did not bind is kept
                shutil.rmtree(self.directory / "etcd", ignore_errors=True)
            etcd_client, etcd_peer = free_port(), free_port()
            self._spawn(
                "etcd",
                [
                    str(self.bin_dir / "etcd"),
                    f"--data-dir={self.directory / 'etcd'}",
                    f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
                    f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
                    f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                    f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
                    "--unsafe-no-fsync",
                    "--quota-backend-bytes=4294967296",
                    "--log-level=warn",
                ],
            )
            return f"http://127.0.0.1:{etcd_client}/health"

        def launch_apiserver() -> str:
            self.apiserver_port = given_port or free_port()
            self._spawn(
                "kube-apiserver",
                [
                    str(self.bin_dir / "kube-apiserver"),
                    f"--etcd-servers=http://127.0.0.1:{etcd_client}",
                    f"--cert-dir={self.directory / 'apiserver-certs'}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    # A loopback advertise address is refused by the endpoint reconciler (envtest does this too).
                    "--endpoint-reconciler-type=none",
                    f"--secure-port={self.apiserver_port}",
                    "--service-cluster-ip-range=10.0.0.0/24",
                    "--allow-privileged=true",
                    "--authorization-mode=RBAC",
                    f"--client-ca-file={pki / 'ca.crt'}",
                    f"--tls-cert-file={pki / 'apiserver.crt'}",
                    f"--tls-private-key-file={pki / 'apiserver.key'}",
                    f"--service-account-key-file={pki / 'sa.pub'}",
                    f"--service-account-signing-key-file={pki / 'sa.key'}",
                    "--service-account-issuer=https://kubernetes.default.svc",
                    # No controller-manager runs, so nothing would mint tokens for the
                    # ServiceAccount admission plugin to mount (envtest disables it too).
                    "--disable-admission-plugins=ServiceAccount",
                    f"--admission-control-config-file={admission_config}",
                    "--v=1",
                ],
            )
            return f"{self.server}/readyz"

        try:
            self._start_listening("etcd", launch_etcd, timeout)
            self._start_listening("kube-apiserver", launch_apiserver, timeout, tls=True)
        except BaseException:
            self.stop()
            raise
        self._write_kubeconfig()
        self._write_state()
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        for proc in reversed(self._processes):
            if proc.popen.poll() is None:
                proc.popen.terminate()
        for proc in reversed(self._processes):
            try:
                proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=5)
            proc.log_file.close()
        self._processes.clear()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        log_path = self.directory / f"{name}.log"
        log_file = log_path.open("ab")
        popen = subprocess.Popen(
            argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.directory,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop them in order
            preexec_fn=None if self.background else die_with_parent,  # noqa: PLW1509
        )
        self._processes.append(_Process(name, popen, log_path, log_file))

    def _start_listening(self, name: str, launch: Callable[[], str], timeout: float, tls: bool = False) -> None:
        """Start `name` (`launch` picks its ports, spawns it and returns its health URL) and wait until it answers.
        A port picked free can be taken by another process before the server binds it (seen in CI: etcd exited with
        "bind: address already in use"): it is then started again on other ports, three times at most."""
        for attempt in range(1, BIND_ATTEMPTS + 1):
            url = launch()
            try:
                self._wait_http(url, name, timeout, tls=tls)
                return
            except ControlPlaneError as err:
                if attempt == BIND_ATTEMPTS or "address already in use" not in str(err):
                    raise
            proc = self._process(name)
            self._processes.remove(proc)
            proc.log_file.close()

    def _process(self, name: str) -> _Process:
        return next(p for p in self._processes if p.name == name)

    def _wait_http(self, url: str, name: str, timeout: float, tls: bool = False) -> None:
        proc = self._process(name)
        context: ssl.SSLContext | None = None
        if tls:
            pki = self.directory / "pki"
            context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
            context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with code {proc.popen.returncode} during start-up; "
                    f"log {proc.log_path}, last lines:\n{_tail(proc.log_path)}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # noqa: S310 - http(s) only
                    if resp.status == 200:
                        return
            except OSError as err:
                last_error = str(err)
            time.sleep(0.2)
        raise ControlPlaneError(
            f"{name} did not become ready at {url} within {timeout:.0f}s ({last_error}); "
            f"log {proc.log_path}, last lines:\n{_tail(proc.log_path)}"
        )

    def _write_webhook_client_config(self, pki: Path) -> Path:
        """An AdmissionConfiguration making the API server present a client certificate (from a CA of its own)
        to every admission webhook, as a production cluster is configured for the chart's RR_WEBHOOK_CLIENT_CA."""
        ca = CertificateAuthority("release-readiness-webhook-client-ca")
        self.webhook_client_ca.write_bytes(ca.cert_pem)
        cert, key = self.webhook_client_cert
        ca.issue("kube-apiserver-webhook-client", client=True).write(cert, key)
        kubeconfig = pki / "webhook-client.kubeconfig"
        # The user name is matched against the webhook's host:port; `*` is every webhook.
        user = {"name": "*", "user": {"client-certificate": str(cert), "client-key": str(key)}}
        kubeconfig.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "users": [user]}))
        kubeconfig.chmod(0o600)
        plugin_config = {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "WebhookAdmissionConfiguration",
            "kubeConfigFile": str(kubeconfig),
        }
        admission = {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "AdmissionConfiguration",
            "plugins": [
                {"name": name, "configuration": plugin_config}
                for name in ("ValidatingAdmissionWebhook", "MutatingAdmissionWebhook")
            ],
        }
        path = pki / "admission-configuration.yaml"
        path.write_text(yaml.safe_dump(admission, sort_keys=False))
        return path

    def kubeconfig_for(self, username: str, groups: tuple[str, ...] = (), name: str | None = None) -> Path:
        """A kubeconfig authenticating as `username` in `groups` with a client certificate from the cluster's CA,
        in users/<name>.kubeconfig (by default a name made of the user name)."""
        if self._ca is None:
            raise ControlPlaneError("the cluster is not started")
        slug = name or "".join(ch if ch.isalnum() else "-" for ch in username)
        users = self.directory / "users"
        users.mkdir(exist_ok=True)
        self._ca.issue(username, organizations=groups, client=True).write(users / f"{slug}.crt", users / f"{slug}.key")
        path = users / f"{slug}.kubeconfig"
        self._write_kubeconfig(path, users / f"{slug}.crt", users / f"{slug}.key", username)
        return path

    def _write_kubeconfig(
        self, path: Path | None = None, cert: Path | None = None, key: Path | None = None, user: str = "admin"
    ) -> None:
        pki = self.directory / "pki"
        config: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {"server": self.server, "certificate-authority": str(pki / "ca.crt")},
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate": str(cert or pki / "admin.crt"),
                        "client-key": str(key or pki / "admin.key"),
                    },
                }
            ],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": user, "namespace": "default"}}],
            "current-context": "local",
        }
        target = path or self.kubeconfig
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        target.chmod(0o600)

    def _write_state(self) -> None:
        state = {
            "pids": {p.name: p.popen.pid for p in self._processes},
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
        }
        (self.directory / "state.json").write_text(json.dumps(state, indent=2))


def stop_background(directory: Path) -> list[str]:
    """Stop the processes recorded by a `start --background`; returns what was stopped."""
    state_path = directory / "state.json"
    if not state_path.exists():
        return []
    state = json.loads(state_path.read_text())
    stopped = []
    for name, pid in reversed(list(state["pids"].items())):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            for _ in range(150):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
            stopped.append(f"{name} (pid {pid})")
    state_path.unlink()
    return stopped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m release_readiness_dev.localcluster", description=__doc__)
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--dir", type=Path, default=Path(".cluster"), help="state directory")
    parser.add_argument("--background", action="store_true", help="leave it running; stop with the `stop` action")
    args = parser.parse_args(argv)
    directory: Path = args.dir.resolve()
    if args.action == "stop":
        stopped = stop_background(directory)
        print("stopped " + ", ".join(stopped) if stopped else f"no cluster recorded in {directory}")
        return 0
    if (directory / "state.json").exists():
        stop_background(directory)
    cluster = LocalCluster(directory, background=args.background)
    try:
        cluster.start()
    except ControlPlaneError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"control plane ready at {cluster.server} in {cluster.startup_seconds:.1f}s")
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    if args.background:
        return 0
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # sigwait only receives blocked signals
    try:
        signal.sigwait(stop_signals)
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
