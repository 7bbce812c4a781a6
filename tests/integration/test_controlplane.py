"""The local control plane is real: kubectl and the Python client talk to it, RBAC is enforced."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from release_readiness_dev.localcluster import ControlPlaneError, LocalCluster, free_port
from tests.integration.conftest import BIN, Kubectl


def test_kube_apiserver_reports_a_real_version() -> None:
    out = subprocess.run([str(BIN / "kube-apiserver"), "--version"], capture_output=True, text=True)
    assert out.stdout.startswith("Kubernetes v1."), out.stdout
    assert "v0.0.0" not in out.stdout


def test_server_version_matches_the_binary(api_client: client.ApiClient) -> None:
    info = client.VersionApi(api_client).get_code()
    binary = subprocess.run([str(BIN / "kube-apiserver"), "--version"], capture_output=True, text=True)
    assert binary.stdout.split()[-1] == info.git_version


def test_crd_applied_with_kubectl_is_read_back_with_python(
    crds: None, api_client: client.ApiClient, cluster: LocalCluster
) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    crd = ext.read_custom_resource_definition("releasereadinesses.readiness.dev")
    assert crd.spec.names.kind == "ReleaseReadiness"
    established = {c.type: c.status for c in crd.status.conditions}
    assert established["Established"] == "True"


def test_rbac_refuses_an_unprivileged_user(kubectl: Kubectl) -> None:
    proc = kubectl.run("get", "namespaces", as_user="dev-1", as_groups=("developers",), check=False)
    assert proc.returncode != 0
    assert 'User "dev-1" cannot list resource "namespaces"' in proc.stderr


def test_admin_is_allowed(kubectl: Kubectl) -> None:
    proc = kubectl.run("auth", "can-i", "create", "deployments", "-A")
    assert proc.stdout.strip() == "yes"


def test_a_control_plane_that_does_not_come_up_is_reported_and_cleaned_up(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "etcd").symlink_to(BIN / "etcd")
    fake = bin_dir / "kube-apiserver"
    fake.write_text("#!/bin/sh\necho 'E1127 run.go:72] command failed: broken on purpose' >&2\nexit 3\n")
    fake.chmod(0o755)
    cluster = LocalCluster(tmp_path / "cluster", bin_dir=bin_dir)
    with pytest.raises(ControlPlaneError) as err:
        cluster.start(timeout=30)
    message = str(err.value)
    assert "kube-apiserver exited with code 3 during start-up" in message
    assert str(tmp_path / "cluster" / "kube-apiserver.log") in message
    assert "broken on purpose" in message
    etcd_pids = subprocess.run(
        ["pgrep", "-f", f"--data-dir={tmp_path / 'cluster' / 'etcd'}"], capture_output=True, text=True
    ).stdout.split()
    assert etcd_pids == [], "etcd was left running"


def test_a_missing_binary_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ControlPlaneError, match=r"etcd is missing: run `make tools` to build it"):
        LocalCluster(tmp_path / "c", bin_dir=tmp_path).start()


def test_a_port_taken_between_its_pick_and_the_bind_is_picked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen in CI: another process bound the port picked for etcd before etcd did ("bind: address already in use"),
    and the module's tests errored. etcd is started again on other ports; the (deliberately broken) API server is
    then what fails, which shows etcd came up."""
    import socket

    import release_readiness_dev.localcluster as localcluster

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    picks = iter([taken.getsockname()[1]])
    monkeypatch.setattr(localcluster, "free_port", lambda: next(picks, None) or free_port())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "etcd").symlink_to(BIN / "etcd")
    fake = bin_dir / "kube-apiserver"
    fake.write_text("#!/bin/sh\necho 'broken on purpose' >&2\nexit 3\n")
    fake.chmod(0o755)
    try:
        with pytest.raises(ControlPlaneError, match="kube-apiserver exited with code 3 during start-up"):
            LocalCluster(tmp_path / "cluster", bin_dir=bin_dir).start(timeout=60)
    finally:
        taken.close()
    assert "address already in use" in (tmp_path / "cluster" / "etcd.log").read_text()
