"""The built image (`make image`'s OCI archive) run by buildah in chroot isolation against the local control plane.

What chroot isolation gives here, and so what these tests can hold the image to: a mount and a UTS namespace, a
seccomp filter, the image's user (65532 has no capabilities) and bind-mounted volumes; the network, PID, IPC and
user namespaces are the host's. buildah run has no read-only-root option: the rootfs is made read-only by
re-binding it read-only in a private mount namespace before buildah binds it as the container's root (the flag
carries over), and /tmp is a writable volume, as the chart's emptyDir. /run is a separate root-owned directory (buildah
writes /run/.containerenv into the root before a run and removes it after, which a read-only root would refuse); the
operator's user cannot write it either. The process also runs with no_new_privs, as the chart's
allowPrivilegeEscalation: false. No cgroup limits (there is no runtime to apply the chart's resources).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from release_readiness_dev.harness import REPO, OperatorProcess
from release_readiness_dev.localcluster import LocalCluster
from tests.integration import conftest as integration

# The control plane, the CRDs and the webhook registration of the integration tests, shared.
cluster = integration.cluster
kubectl = integration.kubectl
api_client = integration.api_client
crds = integration.crds
webhook = integration.webhook

UID = 65532


def project_version() -> str:
    import tomllib

    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


@dataclass(frozen=True)
class OciArchive:
    """What `make image` wrote, read from the archive itself (its digests checked on the way)."""

    path: Path
    reference: str
    config: dict[str, Any]
    compressed_bytes: int
    unpacked_bytes: int

    @classmethod
    def read(cls, path: Path) -> OciArchive:
        with tarfile.open(path) as tar:

            def blob(digest: str) -> bytes:
                algorithm, _, hexdigest = digest.partition(":")
                member = tar.extractfile(f"blobs/{algorithm}/{hexdigest}")
                assert member is not None, f"{path}: no blob {digest}"
                data = member.read()
                assert hashlib.sha256(data).hexdigest() == hexdigest, f"{path}: blob {digest} is corrupt"
                return data

            index_file = tar.extractfile("index.json")
            assert index_file is not None, f"{path}: no index.json (not an OCI archive)"
            [entry] = json.load(index_file)["manifests"]
            manifest = json.loads(blob(entry["digest"]))
            config = json.loads(blob(manifest["config"]["digest"]))
            compressed = unpacked = 0
            for layer in manifest["layers"]:
                data = blob(layer["digest"])
                compressed += len(data)
                unpacked += len(gzip.decompress(data)) if layer["mediaType"].endswith("gzip") else len(data)
        return cls(path, entry["annotations"]["org.opencontainers.image.ref.name"], config, compressed, unpacked)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config["config"].get("Labels") or {})

    def size_report(self) -> str:
        mib = 1024 * 1024
        return (
            f"image {self.reference}: {self.unpacked_bytes / mib:.0f} MiB unpacked, "
            f"{self.compressed_bytes / mib:.0f} MiB compressed ({self.path.stat().st_size / mib:.0f} MiB archive)"
        )


SIZE_REPORT = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def archive(request: pytest.FixtureRequest) -> OciArchive:
    path = REPO / "dist" / f"release-readiness-{project_version()}.oci.tar"
    assert path.is_file(), f"{path} is missing: `make test-image` builds it first (or run `make image`)"
    read = OciArchive.read(path)
    request.config.stash[SIZE_REPORT] = read.size_report()
    return read


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The image's size, in every run's summary (CI's log included)."""
    if SIZE_REPORT in config.stash:
        terminalreporter.write_line(config.stash[SIZE_REPORT])


class Image:
    """The archive in a throwaway buildah store (vfs: plain directories, so nothing stays mounted after it)."""

    def __init__(self, archive: OciArchive, store: Path) -> None:
        self.archive = archive
        self.store = store
        self.buildah = ["buildah", "--root", str(store / "root"), "--runroot", str(store / "run")]
        self.buildah += ["--storage-driver", "vfs"]
        self.container = f"rr-image-{uuid.uuid4().hex[:8]}"
        self.call("from", "--quiet", "--name", self.container, f"oci-archive:{archive.path}")
        self.rootfs = Path(self.call("mount", self.container))
        # Mount points buildah binds over; made now, since the root will be read-only (a runtime makes them too).
        for directory in ("tls", "files", "kube"):
            (self.rootfs / directory).mkdir(exist_ok=True)
        for name in ("etc/hosts", "etc/hostname", "etc/resolv.conf"):
            (self.rootfs / name).touch(exist_ok=True)
        # buildah writes /run/.containerenv into the root before each run and removes it after: /run is a directory
        # of its own, root's (0755) as in the image, which the operator's user cannot write either.
        self.run_dir = store / "container-run"
        self.run_dir.mkdir(mode=0o755)

    def call(self, *args: str) -> str:
        proc = subprocess.run([*self.buildah, *args], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"buildah {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
        return proc.stdout.strip()

    def run_argv(
        self, command: list[str], volumes: dict[str, str] | None = None, env: dict[str, str] | None = None
    ) -> list[str]:
        """buildah run of `command` as the image's user, read-only root, no_new_privs; volumes: host -> target[:ro]."""
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && mount --bind "$1" "$0/run" && shift'
        argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", f'{script} && exec "$@"']
        argv += [str(self.rootfs), str(self.run_dir)]
        argv += ["setpriv", "--no-new-privs", *self.buildah, "run", "--isolation", "chroot"]
        for host, target in (volumes or {}).items():
            argv += ["--volume", f"{host}:{target}"]
        for name, value in (env or {}).items():
            argv += ["--env", f"{name}={value}"]
        return [*argv, self.container, "--", *command]

    def run(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.run_argv(command, **kwargs), capture_output=True, text=True, timeout=300)

    def remove(self) -> None:
        subprocess.run([*self.buildah, "rm", self.container], capture_output=True, timeout=120)
        subprocess.run([*self.buildah, "rmi", "--all", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(self.store, ignore_errors=True)


@pytest.fixture(scope="session")
def image(archive: OciArchive, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    built = Image(archive, tmp_path_factory.mktemp("buildah"))
    yield built
    built.remove()


def owned_copy(files: dict[str, bytes], directory: Path) -> Path:
    """Files readable by the operator's user only, as a Secret volume with the chart's fsGroup."""
    directory.mkdir(mode=0o750)
    for name, data in files.items():
        (directory / name).write_bytes(data)
        (directory / name).chmod(0o440)
        os.chown(directory / name, UID, UID)
    os.chown(directory, UID, UID)
    return directory


def self_contained_kubeconfig(local: LocalCluster) -> bytes:
    """The admin kubeconfig with its certificates inline (their files stay outside the container)."""
    config = yaml.safe_load(local.kubeconfig.read_text())

    def inline(section: dict[str, Any], key: str) -> None:
        if key in section:
            section[f"{key}-data"] = base64.b64encode(Path(section.pop(key)).read_bytes()).decode()

    for entry in config["clusters"]:
        inline(entry["cluster"], "certificate-authority")
    for entry in config["users"]:
        inline(entry["user"], "client-certificate")
        inline(entry["user"], "client-key")
    return yaml.safe_dump(config).encode()


class ImageOperator(OperatorProcess):
    """The image's entrypoint in place of `python -m release_readiness.main`, with the same RR_* settings. Those
    naming host paths become read-only volumes owned by the operator's user: the webhook's certificate directory
    at /tls, any other file (e.g. RR_WEBHOOK_CLIENT_CA) under /files; the kubeconfig, certificates inline, at
    /kube; /tmp is a writable volume, as the chart's emptyDir."""

    def __init__(
        self, image: Image, local: LocalCluster, workdir: Path, cert_dir: Path, webhook_port: int, **env: str
    ) -> None:
        super().__init__(local, workdir / "operator.log", cert_dir, webhook_port, **env)
        self.image = image
        self.container_env = {"KUBECONFIG": "/kube/config"}
        files: dict[str, bytes] = {}
        for name, value in self.env.items():
            if not name.startswith("RR_"):
                continue
            self.container_env[name] = value
            if value == str(cert_dir):
                self.container_env[name] = "/tls"
            elif value.startswith("/") and Path(value).is_file():
                files[f"{name}-{Path(value).name}"] = Path(value).read_bytes()
                self.container_env[name] = f"/files/{name}-{Path(value).name}"
        tls = {p.name: p.read_bytes() for p in cert_dir.iterdir() if p.is_file()}
        tmp = workdir / "tmp"
        tmp.mkdir(mode=0o700)
        os.chown(tmp, UID, UID)
        self.volumes = {
            str(owned_copy(tls, workdir / "tls")): "/tls:ro",
            str(owned_copy(files, workdir / "files")): "/files:ro",
            str(owned_copy({"config": self_contained_kubeconfig(local)}, workdir / "kube")): "/kube:ro",
            str(tmp): "/tmp",
        }

    def command(self) -> list[str]:
        entrypoint = list(self.image.archive.config["config"]["Entrypoint"])
        return self.image.run_argv(entrypoint, volumes=self.volumes, env=self.container_env)

    def pid(self) -> int:
        """The operator's own process (same PID namespace as ours): the leaf under buildah's chroot helpers."""
        assert self.proc is not None
        pid = self.proc.pid
        while children := [  # buildah is a Go program: any of its threads may be the parent
            c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()
        ]:
            pid = int(children[0])
        return pid

    def stop(self) -> None:
        # buildah run kills its command on SIGTERM; the operator itself gets it, to shut down as in a pod.
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(self.pid(), signal.SIGTERM)
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                pass
        super().stop()


@pytest.fixture(scope="session")
def image_operator(
    image: Image,
    cluster: LocalCluster,
    crds: None,
    webhook: tuple[Path, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ImageOperator]:
    cert_dir, port = webhook
    proc = ImageOperator(image, cluster, tmp_path_factory.mktemp("image-operator"), cert_dir, port).start()
    yield proc
    proc.stop()
    print(f"\nimage operator log: {proc.log_path}")
