"""The operator image as `make image` wrote it: the chart's reference, non-root, read-only, no compilers, the package
data inside, and its entrypoint serving the probes and the gate for a real API server."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from release_readiness.seed import SEED_PATH, parse_seed
from release_readiness_dev.harness import Kubectl
from tests.image.conftest import REPO, UID, Image, ImageOperator, OciArchive, project_version
from tests.integration.test_gate import Gate, deployment

CHART = REPO / "charts" / "release-readiness"


def test_the_archive_is_the_image_the_chart_and_the_installer_deploy(archive: OciArchive) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == project_version(), "Chart.yaml appVersion must be pyproject.toml's version"
    assert values["image"]["tag"] in ("", chart["appVersion"])
    assert archive.reference == f"{values['image']['repository']}:{chart['appVersion']}"
    installer = yaml.safe_load_all((REPO / "deploy" / "base" / "release-readiness.yaml").read_text())
    [operator] = [d for d in installer if d and d["kind"] == "Deployment"]
    assert [c["image"] for c in operator["spec"]["template"]["spec"]["containers"]] == [archive.reference]

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    labels = archive.labels
    assert labels["org.opencontainers.image.version"] == project_version()
    assert labels["org.opencontainers.image.revision"].removesuffix("-dirty") == head.stdout.strip(), (
        "the archive was built from another commit: `make image` again"
    )
    assert labels["org.opencontainers.image.source"] == chart["home"]

    config = archive.config["config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["release-readiness-operator"]
    assert {f"{values['webhook']['port']}/tcp", "8080/tcp", "8081/tcp"} <= set(config["ExposedPorts"])


def test_the_image_size_is_reported(archive: OciArchive) -> None:
    print(f"\n{archive.size_report()}")  # also in the run's summary (conftest's pytest_terminal_summary)
    mib = 1024 * 1024
    assert archive.compressed_bytes < archive.unpacked_bytes < 1024 * mib, "a sanity bound, not a budget"


INSPECT = """
import hashlib, importlib.util, json, os, shutil
import release_readiness
from release_readiness.seed import SEED_PATH, parse_seed
print(json.dumps({
    "dev_package": importlib.util.find_spec("release_readiness_dev") is not None,
    "dev_modules": sorted(
        f for f in os.listdir(os.path.dirname(release_readiness.__file__))
        if f.startswith(("localcluster", "devrun", "crdgen"))
    ),
    "uid": os.getuid(), "gid": os.getgid(),
    "compilers": {c: shutil.which(c) for c in ("cc", "gcc", "g++", "c++", "clang", "tcc")},
    "seed": str(SEED_PATH), "seed_sha256": hashlib.sha256(SEED_PATH.read_bytes()).hexdigest(),
    "seed_items": len(parse_seed(SEED_PATH.read_text())),
    "root_read_only": bool(os.statvfs("/").f_flag & os.ST_RDONLY),
    "tmp_read_only": bool(os.statvfs("/tmp").f_flag & os.ST_RDONLY),
}))
"""


def test_no_compilers_and_the_package_data_is_inside(image: Image) -> None:
    proc = image.run(["python3", "-c", INSPECT])
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (found["uid"], found["gid"]) == (UID, UID)
    assert found["compilers"] == dict.fromkeys(found["compilers"])
    import hashlib

    assert found["seed"].startswith("/opt/release-readiness/lib/python3")
    assert found["seed_sha256"] == hashlib.sha256(SEED_PATH.read_bytes()).hexdigest()
    assert found["seed_items"] == len(parse_seed(SEED_PATH.read_text())) > 0
    assert found["root_read_only"] is True
    assert found["tmp_read_only"] is True  # no /tmp volume here: nothing in the image is writable
    # Development-only code (local control plane, make run, CRD generation) is not in the product.
    assert found["dev_package"] is False
    assert found["dev_modules"] == []
    # No compiler anywhere in the filesystem either, whatever the PATH.
    on_disk = sorted(
        str(p.relative_to(image.rootfs))
        for d in ("usr/bin", "usr/local/bin", "bin")
        for p in (image.rootfs / d).glob("*")
        if p.name in ("cc", "gcc", "g++", "c++", "clang", "tcc") or p.name.startswith(("gcc-", "x86_64-linux-gnu-gcc"))
    )
    assert on_disk == []


def test_the_entrypoint_runs_as_65532_on_a_read_only_root(image_operator: ImageOperator) -> None:
    pid = image_operator.pid()
    cmdline = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    assert "/opt/release-readiness/bin/release-readiness-operator" in cmdline
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    status = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
    assert status["Uid"].split() == [str(UID)] * 4
    assert status["Gid"].split() == [str(UID)] * 4
    assert int(status["CapEff"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    mountinfo = [line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()]
    mounts = {fields[4]: fields[5].split(",") for fields in mountinfo}
    assert "ro" in mounts["/"], mounts["/"]
    assert "rw" in mounts["/tmp"]
    assert "ro" in mounts["/tls"]


def test_the_entrypoint_serves_healthz(image_operator: ImageOperator) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{image_operator.health_port}/healthz", timeout=5) as resp:
        assert resp.status == 200


@pytest.mark.usefixtures("image_operator")
def test_the_api_server_asks_the_image_and_an_unready_rollout_is_refused(
    kubectl: Kubectl, api_client: client.ApiClient
) -> None:
    gate = Gate(kubectl, api_client)  # the image's reconciler evaluates the release: not Ready
    refused = gate.rollout(deployment(gate.prod))
    assert refused.returncode != 0
    assert 'admission webhook "gate-deployments-enforce.readiness.dev" denied the request' in refused.stderr
    assert f"ReleaseReadiness {gate.prod}/payments-api-3-2-0 is not Ready (ApprovalsMissing)" in refused.stderr
