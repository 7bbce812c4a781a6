"""`kubectl readiness` against the real API server, as people authenticated by client certificates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from release_readiness_dev import builders
from release_readiness_dev.builders import CI_ONLY
from release_readiness_dev.localcluster import LocalCluster
from tests.integration.conftest import BIN, Kubectl, eventually

pytestmark = pytest.mark.usefixtures("operator", "signer_rbac")

LABELS = {"app.kubernetes.io/name": "orders-api", "app.kubernetes.io/version": "1.4.0"}


def plugin(kubeconfig: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the plugin the way kubectl does: `kubectl readiness ...` finds kubectl-readiness on PATH."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "NO_COLOR": "1"}
    assert shutil.which("kubectl-readiness", path=env["PATH"]), "the kubectl-readiness entry point is not installed"
    return subprocess.run(
        [str(BIN / "kubectl"), "readiness", *args],
        capture_output=True,
        text=True,
        env={**env, "KUBECONFIG": str(kubeconfig)},
        timeout=timeout,
    )


@dataclass(frozen=True)
class Setup:
    stg: str
    prod: str
    checklist: str
    rita: Path
    erin: Path
    dev: Path
    ci: Path


def init_release(setup: Setup) -> subprocess.CompletedProcess[str]:
    """`kubectl readiness init orders-api 1.4.0` as the release manager, rita."""
    return plugin(
        setup.rita,
        "-n",
        setup.prod,
        "init",
        "orders-api",
        "1.4.0",
        "--candidate-namespace",
        setup.stg,
        "--checklist",
        setup.checklist,
    )


@pytest.fixture
def setup(kubectl: Kubectl, cluster: LocalCluster) -> Setup:
    suffix = uuid.uuid4().hex[:6]
    stg, prod, checklist = f"stg-{suffix}", f"prod-{suffix}", f"cli-{suffix}"
    kubectl.run("create", "namespace", stg)
    kubectl.run("create", "namespace", prod)
    kubectl.apply(
        json.dumps(
            builders.checklist(
                checklist,
                [
                    {
                        "id": "limits",
                        "section": "Infrastructure / Containers",
                        "title": "Limits",
                        "check": {"workload": "resourceLimits"},
                    },
                    {
                        "id": "unit-test-coverage",
                        "section": "Code Quality / Tests",
                        "title": "Coverage",
                        "check": {"evidence": {"key": "coverage-percent", "min": 80, "recordedBy": CI_ONLY}},
                    },
                ],
                [
                    {"role": "engineering-lead", "groups": ["eng-leads"]},
                    {"role": "release-manager", "users": ["rita"], "required": False},
                ],
                rules={"waivers": [{"roles": ["release-manager"], "items": ["limits"]}]},
            )
        )
    )
    kubectl.apply(
        json.dumps(
            builders.deployment(
                "orders-api",
                stg,
                labels=LABELS,
                containers=[builders.container(image="reg/orders:1.4.0", resources={"limits": {"cpu": "1"}})],
                replicas=None,
            )
        )
    )
    kubectl.run("create", "rolebinding", "manager", "--clusterrole=readiness-signer", "--user=rita", "-n", prod)
    # A release may only look where its creator may look: rita reads the candidate namespace.
    kubectl.run("create", "rolebinding", "rita-reads", "--clusterrole=deployment-reader", "--user=rita", "-n", stg)
    kubectl.run(
        "create", "clusterrole", f"read-{checklist}", "--verb=get", "--resource=readinesschecklists.readiness.dev"
    )
    kubectl.run(
        "create",
        "clusterrolebinding",
        f"read-{checklist}",
        f"--clusterrole=read-{checklist}",
        "--group=eng-leads",
        "--user=rita",
        "--group=system:serviceaccounts:ci",
    )
    return Setup(
        stg=stg,
        prod=prod,
        checklist=checklist,
        rita=cluster.kubeconfig_for("rita"),
        erin=cluster.kubeconfig_for("erin", ("eng-leads",)),
        dev=cluster.kubeconfig_for("dev-1", ("developers",)),
        ci=cluster.kubeconfig_for("system:serviceaccount:ci:ci-bot", ("system:serviceaccounts:ci",)),
    )


def test_a_release_from_init_to_ready_with_the_plugin_alone(setup: Setup) -> None:
    prod, rita, erin, ci = setup.prod, setup.rita, setup.erin, setup.ci

    init = init_release(setup)
    assert init.returncode == 0, init.stderr
    assert f"releasereadiness {prod}/orders-api-1.4.0 created" in init.stdout

    def status() -> str:
        out = plugin(rita, "-n", prod, "status", "orders-api-1.4.0")
        return out.stdout if "passed" in out.stdout else ""

    text = eventually(status, what="status with a summary")
    assert "orders-api 1.4.0 — Not ready" in text
    assert "\nInfrastructure / Containers\n" in text
    assert "has no memory limit" in text
    assert "engineering-lead" in text

    refused = plugin(erin, "-n", prod, "attest", "orders-api-1.4.0", "limits")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: refused by validate-signoff.readiness.dev: ReleaseSignoff ")
    assert "which the operator checks itself (workload check resourceLimits)" in refused.stderr
    assert "Traceback" not in refused.stderr

    attested = plugin(
        ci,
        "-n",
        prod,
        "attest",
        "orders-api-1.4.0",
        "unit-test-coverage",
        "--value",
        "91",
        "--evidence",
        "https://ci.example.com/run/7",
    )
    assert attested.returncode == 0, attested.stderr
    assert "system:serviceaccount:ci:ci-bot attested unit-test-coverage" in attested.stdout

    waived = plugin(
        rita,
        "-n",
        prod,
        "waive",
        "orders-api-1.4.0",
        "limits",
        "--role",
        "release-manager",
        "--reason",
        "vendor sidecar",
        "--expires",
        "7d",
    )
    assert waived.returncode == 0, waived.stderr
    assert "rita waived limits as release-manager until" in waived.stdout
    eventually(lambda: "~ limits" in plugin(rita, "-n", prod, "status", "orders-api-1.4.0").stdout, what="Waived")

    timeout = plugin(rita, "-n", prod, "wait", "orders-api-1.4.0", "--timeout", "3")
    assert timeout.returncode == 1
    assert "timed out after 3s" in timeout.stderr

    approved = plugin(erin, "-n", prod, "approve", "orders-api-1.4.0", "--role", "engineering-lead", "--comment", "ok")
    assert approved.returncode == 0, approved.stderr
    assert "erin approved as engineering-lead" in approved.stdout

    ready = plugin(rita, "-n", prod, "wait", "orders-api-1.4.0", "--timeout", "60")
    assert ready.returncode == 0, ready.stderr
    assert "orders-api-1.4.0 is Ready" in ready.stdout

    as_json = plugin(rita, "-n", prod, "status", "orders-api-1.4.0", "-o", "json")
    assert json.loads(as_json.stdout)["status"]["summary"]["approvals"] == "1/1"
    report = plugin(rita, "-n", prod, "report", "orders-api-1.4.0", "--format", "json")
    assert json.loads(report.stdout)["ready"] is True


def test_wait_exits_1_on_a_veto_and_2_on_errors(setup: Setup) -> None:
    prod, rita, erin = setup.prod, setup.rita, setup.erin
    assert init_release(setup).returncode == 0
    veto = plugin(
        erin,
        "-n",
        prod,
        "reject",
        "orders-api-1.4.0",
        "--role",
        "engineering-lead",
        "--comment",
        "p99 regressed in the load test",
    )
    assert veto.returncode == 0, veto.stderr
    vetoed = plugin(rita, "-n", prod, "wait", "orders-api-1.4.0", "--timeout", "30")
    assert vetoed.returncode == 1
    assert "is vetoed: engineering-lead vetoed by erin" in vetoed.stderr
    not_hers = plugin(rita, "-n", prod, "withdraw", "orders-api-1.4.0", "--role", "engineering-lead")
    assert not_hers.returncode == 2
    assert "error: rita has no vetoes as engineering-lead" in not_hers.stderr
    withdrawn = plugin(erin, "-n", prod, "withdraw", "orders-api-1.4.0", "--role", "engineering-lead")
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert "(reject) withdrawn by erin" in withdrawn.stdout

    def stalled() -> str:
        out = json.loads(plugin(rita, "-n", prod, "status", "orders-api-1.4.0", "-o", "json").stdout)
        return next(c["status"] for c in out["status"]["conditions"] if c["type"] == "Stalled")

    eventually(lambda: stalled() == "False", what="the veto withdrawn")
    missing = plugin(rita, "-n", prod, "wait", "no-such-release", "--timeout", "5")
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: not found:")
    forbidden = plugin(setup.dev, "-n", prod, "status", "orders-api-1.4.0")
    assert forbidden.returncode == 2
    assert forbidden.stderr.startswith("error: forbidden: ")


def test_a_signer_signs_for_the_candidate_they_reviewed(setup: Setup, kubectl: Kubectl) -> None:
    """Finding 10: `status` shows the candidate's fingerprint; approve/attest send it (spec.expectedFingerprint),
    and the webhook refuses the signoff when the candidate is not that one any more, naming both."""
    prod, rita, erin, ci = setup.prod, setup.rita, setup.erin, setup.ci
    assert init_release(setup).returncode == 0

    def fingerprint() -> str:
        out = plugin(rita, "-n", prod, "status", "orders-api-1.4.0").stdout
        line = next((x for x in out.splitlines() if x.startswith("candidate sha256:")), "")
        return line.split()[1] if line else ""

    seen = eventually(fingerprint, what="status shows the candidate")
    stale = plugin(erin, "-n", prod, "approve", "orders-api-1.4.0", "--role", "engineering-lead", "--fingerprint",
                   "sha256:reviewed-earlier")  # fmt: skip
    assert stale.returncode == 2
    assert (
        "signed for candidate sha256:reviewed-earlier (spec.expectedFingerprint), but the candidate of release "
        f"orders-api-1.4.0 is now {seen}: it changed since you reviewed it" in stale.stderr
    )
    approved = plugin(erin, "-n", prod, "approve", "orders-api-1.4.0", "--role", "engineering-lead", "--fingerprint",
                      seen)  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    assert f"erin approved as engineering-lead for candidate {seen}" in approved.stdout
    attested = plugin(ci, "-n", prod, "attest", "orders-api-1.4.0", "unit-test-coverage", "--value", "91")
    assert attested.returncode == 0, attested.stderr  # by default: the fingerprint the release shows now
    name = attested.stdout.split()[1].split("/")[1].rstrip(":")
    stored = json.loads(kubectl.run("get", "rso", name, "-n", prod, "-o", "json").stdout)["spec"]
    assert stored["expectedFingerprint"] == stored["candidateFingerprint"] == seen


def test_kubectl_flag_conventions_impersonation_and_durations(
    setup: Setup, kubectl: Kubectl, cluster: LocalCluster
) -> None:
    """Issue 17: flags after the command (`status NAME -n NS --outstanding`), --as/--as-group so a person can play
    the sample's roles (the signoff is stamped with the impersonated user, only if the API server lets the caller
    impersonate), and durations (`wait --timeout 2s`)."""
    prod, rita, admin = setup.prod, setup.rita, cluster.kubeconfig
    created = plugin(rita, "init", "orders-api", "1.4.0", "--candidate-namespace", setup.stg, "--checklist",
                     setup.checklist, "-n", prod)  # fmt: skip
    assert created.returncode == 0, created.stderr

    def outstanding() -> str:
        out = plugin(rita, "status", "orders-api-1.4.0", "-n", prod, "--outstanding")
        assert out.returncode == 0, out.stderr
        return out.stdout if "passed" in out.stdout else ""

    text = eventually(outstanding, what="status with -n after the command")
    assert f"{prod}/orders-api-1.4.0: orders-api 1.4.0 — Not ready" in text
    assert "unit-test-coverage" in text

    # rita may not impersonate: the API server refuses, the plugin does not sign as her instead.
    posing = plugin(rita, "approve", "orders-api-1.4.0", "--role", "engineering-lead", "-n", prod, "--as", "erin",
                    "--as-group", "eng-leads")  # fmt: skip
    assert posing.returncode == 2
    assert posing.stderr.startswith("error: forbidden: ")
    assert 'User "rita" cannot impersonate' in posing.stderr

    # the admin plays the engineering lead: the signoff is stamped with the impersonated user. eng-leads comes
    # first: were the groups sent as one header ("eng-leads,on-call") or only the last kept, the approval would be
    # refused. The stamp keeps only the groups the checklist names.
    played = plugin(admin, "--as", "erin", "approve", "orders-api-1.4.0", "--role", "engineering-lead", "-n", prod,
                    "--as-group", "eng-leads", "--as-group", "on-call")  # fmt: skip
    assert played.returncode == 0, played.stderr
    assert "erin approved as engineering-lead" in played.stdout
    name = played.stdout.split()[1].split("/")[1].rstrip(":")
    signer = json.loads(kubectl.run("get", "rso", name, "-n", prod, "-o", "json").stdout)["spec"]["signer"]
    assert signer["username"] == "erin"
    assert signer["groups"] == ["eng-leads"]

    waited = plugin(rita, "wait", "orders-api-1.4.0", "-n", prod, "--timeout", "2s")
    assert waited.returncode == 1  # coverage has no evidence yet
    assert "timed out after 2s" in waited.stderr
    bad = plugin(rita, "wait", "orders-api-1.4.0", "-n", prod, "--timeout", "2 minutes")
    assert bad.returncode == 2
    assert "argument --timeout: '2 minutes' is not a duration: use e.g. --timeout 30s, 5m or 1h30m" in bad.stderr

    version = plugin(rita, "version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("kubectl-readiness ")


def test_output_formats_and_completion_from_the_cluster(setup: Setup, cluster: LocalCluster) -> None:
    """Issue 17: `-o name|wide|json|yaml` like kubectl get, and `kubectl readiness <TAB>` through kubectl's plugin
    completion (kubectl runs kubectl_complete-readiness) offers the releases, items and roles in the cluster, as
    the caller may read them."""
    prod, rita = setup.prod, setup.rita
    created = init_release(setup)
    assert created.returncode == 0, created.stderr
    names = plugin(rita, "list", "-n", prod, "-o", "name")
    assert names.stdout == "releasereadiness.readiness.dev/orders-api-1.4.0\n", names.stderr
    listed = json.loads(plugin(rita, "list", "-n", prod, "-o", "json").stdout)
    assert (listed["kind"], [i["metadata"]["name"] for i in listed["items"]]) == ("List", ["orders-api-1.4.0"])
    assert listed["items"][0]["kind"] == "ReleaseReadiness"
    wide = plugin(rita, "list", "-n", prod, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-4:] == ["CHECKLIST", "CANDIDATE", "FINGERPRINT", "AGE"]
    assert wide[1].split()[8:10] == [setup.checklist, setup.stg]
    one = plugin(rita, "status", "orders-api-1.4.0", "-n", prod, "-o", "name")
    assert one.stdout == "releasereadiness.readiness.dev/orders-api-1.4.0\n"
    as_yaml = yaml.safe_load(plugin(rita, "status", "orders-api-1.4.0", "-n", prod, "-o", "yaml").stdout)
    assert as_yaml["spec"]["checklist"] == setup.checklist

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "KUBECONFIG": str(rita)}

    def tab(*words: str) -> list[str]:
        out = subprocess.run([str(BIN / "kubectl"), "__complete", "readiness", *words], capture_output=True,
                             text=True, env=env, timeout=60, check=True).stdout  # fmt: skip
        return [line.split("\t")[0] for line in out.splitlines() if line and not line.startswith(":")]

    assert tab("sta") == ["status"]
    assert tab("status", "-n", prod, "") == ["orders-api-1.4.0"]
    assert tab("-n", prod, "waive", "orders-api-1.4.0", "") == ["limits", "unit-test-coverage"]
    assert tab("approve", "orders-api-1.4.0", "-n", prod, "--role", "") == ["engineering-lead", "release-manager"]
    assert tab("status", "-n", setup.stg, "") == []  # no release there
    # A stranger may not read releases: nothing offered, and no error on the terminal.
    env["KUBECONFIG"] = str(cluster.kubeconfig_for("stranger"))
    assert tab("status", "-n", prod, "") == []
