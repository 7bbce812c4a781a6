"""The CRDs install into the real API server, which refuses bad objects naming the field path."""

from __future__ import annotations

import textwrap

import pytest

from tests.integration.conftest import Kubectl

CHECKLIST = """
apiVersion: readiness.dev/v1alpha1
kind: ReadinessChecklist
metadata:
  name: {name}
spec:
  items:
    - id: {item_id}
      section: Infra
      title: Limits
      check:
{check}
"""


def checklist(name: str, check: str, item_id: str = "limits") -> str:
    return CHECKLIST.format(name=name, item_id=item_id, check=textwrap.indent(check, " " * 8))


@pytest.mark.usefixtures("crds")
def test_a_valid_checklist_is_accepted_with_defaults(kubectl: Kubectl) -> None:
    kubectl.apply(checklist("schema-ok", "workload: resourceLimits"))
    out = kubectl.run("get", "rcl", "schema-ok", "-o", "jsonpath={.spec.items[0].required},{.spec.items[0].phase}")
    assert out.stdout == "true,pre"


@pytest.mark.usefixtures("crds")
def test_bad_item_id_is_refused_with_its_path(kubectl: Kubectl) -> None:
    proc = kubectl.apply(checklist("schema-bad-id", "workload: resourceLimits", item_id="Not_A_Label"), check=False)
    assert proc.returncode != 0
    assert 'spec.items[0].id: Invalid value: "Not_A_Label"' in proc.stderr


@pytest.mark.usefixtures("crds")
def test_unknown_check_kind_is_refused(kubectl: Kubectl) -> None:
    proc = kubectl.apply(checklist("schema-unknown", "magic: {}"), check=False)
    assert proc.returncode != 0
    assert 'unknown field "spec.items[0].check.magic"' in proc.stderr


@pytest.mark.usefixtures("crds")
def test_unknown_workload_check_name_is_refused(kubectl: Kubectl) -> None:
    proc = kubectl.apply(checklist("schema-unknown-wl", "workload: fancyCheck"), check=False)
    assert proc.returncode != 0
    assert 'spec.items[0].check.workload: Unsupported value: "fancyCheck"' in proc.stderr


@pytest.mark.usefixtures("crds")
def test_two_check_kinds_in_one_item_are_refused(kubectl: Kubectl) -> None:
    proc = kubectl.apply(
        checklist("schema-two", "workload: resourceLimits\nattestation: {roles: [devops-lead]}"), check=False
    )
    assert proc.returncode != 0
    assert "spec.items[0].check: Invalid value" in proc.stderr
    assert "set exactly one check kind: workload, cel, evidence, prometheus or attestation" in proc.stderr


@pytest.mark.usefixtures("crds")
def test_release_without_version_is_refused(kubectl: Kubectl, namespace: str) -> None:
    proc = kubectl.apply(
        f"""
apiVersion: readiness.dev/v1alpha1
kind: ReleaseReadiness
metadata: {{name: no-version, namespace: {namespace}}}
spec:
  application: payments-api
  candidate: {{namespace: payments-staging}}
""",
        check=False,
    )
    assert proc.returncode != 0
    assert "spec.version: Required value" in proc.stderr


@pytest.mark.usefixtures("crds")
def test_readiness_category_lists_all_three_kinds(kubectl: Kubectl) -> None:
    out = kubectl.run("api-resources", "--categories=readiness", "-o", "name").stdout.split()
    assert sorted(out) == [
        "readinesschecklists.readiness.dev",
        "releasereadinesses.readiness.dev",
        "releasesignoffs.readiness.dev",
    ]
