"""Red-team finding 7, replayed against the real API server: any developer could satisfy the smoke-test items with a
do-nothing Job labelled as a suite, and a failed CI run was overridden by anyone's later success. Suite Jobs count
only when CI created them (the stamp-suite-job webhook records the creator from the request's user info), and a
failed CI run fails the item until a newer CI run succeeds."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from kubernetes import client

from release_readiness_dev import builders
from tests.integration.conftest import CI_BOT, Kubectl, apply_as_ci, eventually, set_status

pytestmark = pytest.mark.usefixtures("operator")

DEV = ("dev-1", ("developers",))
LABELS = {"app.kubernetes.io/name": "payments-api", "app.kubernetes.io/version": "3.2.0"}
STAMP = "readiness.dev/suite-creator"


class Suite:
    def __init__(self, kubectl: Kubectl, api: client.ApiClient) -> None:
        self.kubectl = kubectl
        self.custom = client.CustomObjectsApi(api)
        suffix = uuid.uuid4().hex[:6]
        self.candidate, self.prod, self.checklist = f"stg-{suffix}", f"prod-{suffix}", f"suites-{suffix}"
        kubectl.run("create", "namespace", self.candidate)
        kubectl.run("create", "namespace", self.prod)
        item = {"id": "smoke", "section": "Testing", "title": "Smoke tests", "check": {"workload": "smokeTests"}}
        checklist = builders.checklist(self.checklist, [item])
        kubectl.apply(json.dumps(checklist))
        # Developers may run Jobs in staging (edit-like rights), as in the red team's cluster.
        verbs = "--verb=get,list,create,update,patch,delete"
        kubectl.run("create", "role", "jobs", verbs, "--resource=jobs", "-n", self.candidate)
        kubectl.run("create", "rolebinding", "devs", "--role=jobs", "--group=developers", "-n", self.candidate)
        kubectl.run("create", "rolebinding", "admins", "--role=jobs", "--group=platform-admins", "-n", self.candidate)
        api = builders.deployment(
            "payments-api", self.candidate, labels=LABELS, containers=[{"name": "api", "image": "reg/api:3.2.0"}]
        )
        kubectl.apply(json.dumps(api))
        rel = builders.release("payments-api", self.prod, "payments-api", "3.2.0", self.checklist, self.candidate)
        kubectl.apply(json.dumps(rel))

    def job(self, name: str, annotations: dict[str, str] | None = None, suite: bool = True) -> dict[str, Any]:
        labels = {**LABELS, "readiness.dev/suite": "smoke"} if suite else dict(LABELS)
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": self.candidate,
                "labels": labels,
                "annotations": annotations or {},
            },
            "spec": {
                "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "busybox:1"}]}}
            },
        }

    def as_dev(self, *args: str, stdin: str | None = None) -> Any:
        return self.kubectl.run(*args, stdin=stdin, as_user=DEV[0], as_groups=DEV[1], check=False)

    def finish(self, name: str, verdict: str) -> None:
        """Play the job controller."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status = {"conditions": [{"type": verdict, "status": "True", "lastTransitionTime": now}]}
        if verdict == "Complete":
            status = {
                "succeeded": 1,
                "startTime": now,
                "completionTime": now,
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
                    *status["conditions"],
                ],
            }
        else:
            status = {
                "failed": 1,
                "startTime": now,
                "conditions": [
                    {"type": "FailureTarget", "status": "True", "lastTransitionTime": now},
                    *status["conditions"],
                ],
            }
        set_status(self.kubectl, "job", self.candidate, name, status)

    def stamp(self, name: str) -> str | None:
        out = self.kubectl.run("get", "job", name, "-n", self.candidate, "-o", "json").stdout
        value: str | None = (json.loads(out)["metadata"].get("annotations") or {}).get(STAMP)
        return value

    def item(self, state: str, text: str = "") -> dict[str, Any]:
        seen: list[dict[str, Any]] = [{}]

        def reached() -> dict[str, Any] | None:
            body = self.custom.get_namespaced_custom_object(
                "readiness.dev", "v1alpha1", self.prod, "releasereadinesses", "payments-api"
            )
            seen[0] = found = {i["id"]: i for i in (body.get("status") or {}).get("items", [])}.get("smoke", {})
            return found if found.get("state") == state and text in found.get("message", "") else None

        try:
            result: dict[str, Any] = eventually(reached, timeout=60, what=f"smoke {state} {text!r}")
        except AssertionError as err:
            raise AssertionError(f"{err}; the item: {seen[0]}") from None
        return result


DEV_STAMP = json.dumps({"username": "dev-1", "groups": ["developers"]}, separators=(",", ":"))


def ci_stamp() -> str:
    return json.dumps({"username": CI_BOT[0], "groups": sorted(CI_BOT[1])}, separators=(",", ":"))


def newer() -> None:
    """creationTimestamp has one-second resolution: the next run must be visibly newer."""
    time.sleep(1.1)


@pytest.fixture
def suite(kubectl: Kubectl, api_client: client.ApiClient) -> Suite:
    return Suite(kubectl, api_client)


def test_a_developers_do_nothing_job_does_not_satisfy_the_item_even_with_a_forged_stamp(suite: Suite) -> None:
    forged = suite.job("smoke-dev", {STAMP: ci_stamp()})
    assert suite.as_dev("create", "-f", "-", stdin=json.dumps(forged)).returncode == 0
    suite.finish("smoke-dev", "Complete")
    # The webhook replaced the forged value with who really created the Job.
    assert suite.stamp("smoke-dev") == DEV_STAMP
    got = suite.item("Pending", "ignored: Job")
    assert (
        f"no smoke Job created by groups system:serviceaccounts:ci in {suite.candidate}; ignored: "
        f"Job {suite.candidate}/smoke-dev (created by dev-1)" in got["message"]
    )
    # Nor can the developer rewrite the stamp afterwards: an update keeps the one the Job had.
    patch = json.dumps({"metadata": {"annotations": {STAMP: ci_stamp()}}})
    assert suite.as_dev("patch", "job", "smoke-dev", "-n", suite.candidate, "--type=merge", "-p", patch).returncode == 0
    assert suite.stamp("smoke-dev") == DEV_STAMP
    # An unlabelled Job never reaches the webhook, so its forged stamp is dropped when an update labels it.
    quiet = suite.job("quiet", {STAMP: ci_stamp()}, suite=False)
    assert suite.as_dev("create", "-f", "-", stdin=json.dumps(quiet)).returncode == 0
    assert suite.stamp("quiet") == ci_stamp()  # not a suite Job: the webhook is not called
    label = json.dumps({"metadata": {"labels": {"readiness.dev/suite": "smoke"}}})
    assert suite.as_dev("patch", "job", "quiet", "-n", suite.candidate, "--type=merge", "-p", label).returncode == 0
    assert suite.stamp("quiet") is None
    suite.finish("quiet", "Complete")
    suite.item("Pending", f"Job {suite.candidate}/quiet (its creator is unknown (not stamped at creation))")


def test_ci_runs_count_and_a_failed_ci_run_fails_until_a_newer_ci_run_succeeds(suite: Suite) -> None:
    apply_as_ci(suite.kubectl, suite.job("smoke-1"))
    assert suite.stamp("smoke-1") == ci_stamp()
    suite.item("Pending", "smoke-1 (smoke) has not completed yet")
    suite.finish("smoke-1", "Complete")
    suite.item("Passed", "smoke-1 (smoke) completed")
    newer()
    apply_as_ci(suite.kubectl, suite.job("smoke-2"))
    suite.finish("smoke-2", "Failed")
    suite.item("Failed", f"Job {suite.candidate}/smoke-2 (smoke) failed: a newer run must succeed")
    # Nobody but CI (or a platform admin) hides the failed run: not by deleting it, not by relabelling it.
    deleted = suite.as_dev("delete", "job", "smoke-2", "-n", suite.candidate)
    assert deleted.returncode != 0
    assert f"Job {suite.candidate}/smoke-2 is a smoke suite run by {CI_BOT[0]}: only its creator" in deleted.stderr
    relabel = json.dumps({"metadata": {"labels": {"app.kubernetes.io/version": "0.0.0"}}})
    relabelled = suite.as_dev("patch", "job", "smoke-2", "-n", suite.candidate, "--type=merge", "-p", relabel)
    assert relabelled.returncode != 0
    assert "may change its labels" in relabelled.stderr
    # A developer's later "success" does not clear CI's failure.
    newer()
    assert suite.as_dev("create", "-f", "-", stdin=json.dumps(suite.job("smoke-dev"))).returncode == 0
    suite.finish("smoke-dev", "Complete")
    newer()
    apply_as_ci(suite.kubectl, suite.job("smoke-3"))
    failed = suite.item("Failed", f"(Job {suite.candidate}/smoke-3 has not completed yet)")
    assert "smoke-2 (smoke) failed" in failed["message"]
    suite.finish("smoke-3", "Complete")
    suite.item("Passed", "smoke-3 (smoke) completed")
    # A platform admin may clean up.
    admin = suite.kubectl.run(
        "delete", "job", "smoke-2", "-n", suite.candidate, as_user="pat", as_groups=("platform-admins",), check=False
    )
    assert admin.returncode == 0, admin.stderr
