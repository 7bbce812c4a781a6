"""Upgrading from the previous chart version (0.1.0: a chart-made CA in a Secret and the caBundle) with releases and
signoffs present loses nothing, following docs/operations.md ("Upgrade") literally; uninstalling leaves what
the docs say it leaves."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from release_readiness_dev.localcluster import LocalCluster
from tests.integration.conftest import FIXTURES, REPO, Kubectl, eventually, sign
from tests.integration.install import get, helm, run_as_deployed

CHART = REPO / "charts" / "release-readiness"
PREVIOUS = FIXTURES / "release-readiness-0.1.0.tgz"
NS = "release-readiness"
NAME = "release-readiness"
RELEASE = "payments-api-3.2.0"
ERIN = ("erin", ("eng-leads",))
VAL = ("val", ("vp-engineering",))


def approvals(kubectl: Kubectl) -> dict[str, str]:
    status = get(kubectl, "rr", RELEASE, "-n", "payments-prod").get("status") or {}
    return {a["role"]: a["state"] for a in status.get("approvals", [])}


def recorded(kubectl: Kubectl) -> dict[str, Any]:
    """What must survive: the objects' uids and specs."""
    out: dict[str, Any] = {}
    for kind, namespace in (("rr", "payments-prod"), ("releasesignoff", "payments-prod"), ("rcl", None)):
        args = [kind] + (["-n", namespace] if namespace else [])
        for item in get(kubectl, *args)["items"]:
            out[f"{kind}/{item['metadata']['name']}"] = (item["metadata"]["uid"], item["spec"])
    return out


def test_upgrade_from_the_previous_chart_loses_nothing(tmp_path: Path) -> None:
    with LocalCluster(tmp_path / "cluster") as cluster:
        kubectl = Kubectl(cluster.kubeconfig)
        at = f"--kubeconfig={cluster.kubeconfig}"
        # 0.1.0 as it could be run: installed without its checklist (which its own webhook refused on a fresh
        # cluster), the checklist applied once the webhook answered (as 0.1.0's docs said: kubectl apply).
        without = ("--set", "installDefaultChecklist=false")
        helm("install", NAME, str(PREVIOUS), "-n", NS, "--create-namespace", at, *without)
        old = run_as_deployed(cluster, NS, NAME, tmp_path / "old").start()
        try:
            kubectl.run("apply", "--server-side", "-f", str(REPO / "deploy" / "checklists"))
            kubectl.apply(
                json.dumps(
                    {
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "ClusterRoleBinding",
                        "metadata": {"name": "signers"},
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "ClusterRole",
                            "name": f"{NAME}-signer",
                        },
                        "subjects": [
                            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}
                            for g in ("eng-leads", "vp-engineering")
                        ],
                    }
                )
            )
            for sample in ("namespaces.yaml", "candidate.yaml", "release.yaml"):
                kubectl.run("apply", "-f", str(REPO / "deploy" / "samples" / sample))
            eventually(lambda: "engineering-lead" in approvals(kubectl), timeout=90, what="the release evaluated")
            # The waiver first: a waiver changes what was approved (an approval before it turns Stale).
            sign(
                kubectl,
                VAL,
                "payments-prod",
                RELEASE,
                "val-waiver",
                role="vp-engineering",
                decision="waive",
                items=[{"id": "latency-p95"}],
                comment="measured in LT-311",
                expires=(dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            eventually(
                lambda: (
                    sign(
                        kubectl, ERIN, "payments-prod", RELEASE, "erin-ok", check=False, role="engineering-lead"
                    ).returncode
                    == 0
                ),
                timeout=90,
                what="the engineering lead's approval accepted (once the candidate is inspected)",
            )
            eventually(
                lambda: approvals(kubectl).get("engineering-lead") == "Approved", timeout=90, what="approval counted"
            )
            before = recorded(kubectl)
            assert {
                "rr/payments-api-3.2.0",
                "releasesignoff/erin-ok",
                "releasesignoff/val-waiver",
                "rcl/pre-production",
            } <= set(before)
            # docs/operations.md, "Upgrade", while 0.1.0 runs: from 0.1.x the checklist is kept when Helm stops
            # rendering it; the CRDs first, under Helm's field manager; then the chart.
            kubectl.run("annotate", "readinesschecklist", "pre-production", "helm.sh/resource-policy=keep")
            # The platform team's own edit of the default checklist, which the upgrade must keep.
            edit = {"spec": {"description": "ours: edited by the platform team"}}
            kubectl.run("patch", "readinesschecklist", "pre-production", "--type=merge", "-p", json.dumps(edit))
            before = recorded(kubectl)
            crds = str(CHART / "crds")
            kubectl.run("apply", "--server-side", "--field-manager=helm", "--force-conflicts", "-f", crds)
        finally:
            old.stop()
        kubectl.run("delete", "service", NAME, "-n", NS)  # the test's stand-in for the pod network goes; Helm's returns
        # 0.1.0 needed installDefaultChecklist=false on a fresh cluster; 0.2.0 applies it (docs: "From chart 0.1.x").
        upgraded = helm(
            "upgrade", NAME, str(CHART), "-n", NS, at, "--reuse-values", "--set", "installDefaultChecklist=true"
        )
        assert "STATUS: deployed" in upgraded.stdout
        new = run_as_deployed(cluster, NS, NAME, tmp_path / "new").start()
        try:
            eventually(
                lambda: "the default checklist pre-production was changed by someone else: left as it is" in new.logs(),
                timeout=90,
                what="the operator leaving the edited checklist as it is",
            )
            assert recorded(kubectl) == before, "no release, signoff or checklist lost or re-created"
            eventually(
                lambda: approvals(kubectl).get("engineering-lead") == "Approved",
                timeout=90,
                what="the approval still counted by the upgraded operator",
            )
        finally:
            new.stop()

        # docs/operations.md, "Uninstall": the webhooks go; CRDs, releases, signoffs and the checklist stay.
        helm("uninstall", NAME, "-n", NS, at)
        assert not kubectl.run("get", "validatingwebhookconfiguration", "-o", "name").stdout.strip()
        assert recorded(kubectl) == before
