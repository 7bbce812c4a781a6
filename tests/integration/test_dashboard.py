"""`kubectl readiness dashboard` driven in headless Chromium (Debian's, `make chromium`) against the real API
server: a release lead follows a release from waiting to admitted and healthy without reloading the page, and a
person without read rights on a namespace does not see its releases.

The dashboard runs as the plugin does (`kubectl readiness dashboard`), each time with one person's own
kubeconfig (a client certificate): every read is theirs. Set RR_DASHBOARD_SCREENSHOTS=docs to refresh the
screenshots in docs/ (the README shows them); otherwise they go to the test's tmp dir.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from release_readiness_dev import builders
from release_readiness_dev.builders import CI_ONLY
from release_readiness_dev.harness import terminate
from release_readiness_dev.localcluster import LocalCluster, die_with_parent
from tests.integration.conftest import BIN, REPO, Kubectl, eventually, sign

pytestmark = pytest.mark.usefixtures("operator", "signer_rbac")

APP = {"app.kubernetes.io/name": "orders-api", "app.kubernetes.io/version": "1.4.0"}
RELEASE = "orders-api-1.4.0"
ERIN = ("erin", ("eng-leads",))
RITA = ("rita", ())
SAM = ("sam", ("sre-oncall",))
CI = ("system:serviceaccount:ci:ci-bot", ("system:serviceaccounts", "system:serviceaccounts:ci"))
CHROMIUM_FLAGS = [
    "--no-sandbox",  # root in CI
    "--disable-gpu",
    "--disable-background-networking",  # no network here but loopback: no background connections
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass(frozen=True)
class World:
    stg: str
    prod: str
    other: str
    checklist: str
    erin: Path
    dana: Path


def deployment(namespace: str, image: str = "reg.example.com/orders:1.4.0", **annotations: str) -> dict[str, Any]:
    """orders-api 1.4.0 (a CPU limit only), no replicas."""
    container = builders.container(image=image, resources={"limits": {"cpu": "1"}})
    return builders.deployment(
        "orders-api", namespace, labels=APP, containers=[container], replicas=None, annotations=annotations
    )


def rbac(suffix: str, prod: str, other: str) -> list[dict[str, Any]]:
    def role(name: str, *rules: tuple[str, str, list[str]]) -> dict[str, Any]:
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [{"apiGroups": [g], "resources": [r], "verbs": v} for g, r, v in rules],
        }

    def binding(role_name: str, namespace: str | None, users: tuple[str, ...] = (), groups: tuple[str, ...] = ()):
        subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in users]
        subjects += [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups]
        meta: dict[str, Any] = {"name": f"{role_name}-{namespace or 'all'}"}
        if namespace:
            meta["namespace"] = namespace
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
            "subjects": subjects,
        }

    checklists = f"dash-checklists-{suffix}"
    return [
        role(checklists, ("readiness.dev", "readinesschecklists", ["get"])),
        binding(checklists, None, users=("rita", "dana"), groups=("eng-leads", "system:serviceaccounts:ci")),
        role("dash-event-reader", ("", "events", ["get", "list", "watch"])),
        binding("dash-event-reader", prod, groups=("eng-leads",)),
        role("dash-namespace-lister", ("", "namespaces", ["list"])),
        binding("dash-namespace-lister", None, users=("dana",)),
        role("dash-deployer", ("apps", "deployments", ["get", "list", "create", "update", "patch"])),
        binding("dash-deployer", prod, users=("sam",)),
        # rita manages releases in prod and reads the candidate; dana may read releases in `other` only.
        binding("readiness-signer", prod, users=("rita",)),
        binding("deployment-reader", f"stg-{suffix}", users=("rita",)),
        binding("readiness-signer", other, users=("dana", "rita")),
        binding("deployment-reader", other, users=("rita",)),
    ]


@pytest.fixture(scope="module")
def world(kubectl: Kubectl, cluster: LocalCluster) -> World:
    suffix = uuid.uuid4().hex[:6]
    stg, prod, other, checklist = f"stg-{suffix}", f"prod-{suffix}", f"other-{suffix}", f"dash-{suffix}"
    for ns in (stg, prod, other):
        kubectl.run("create", "namespace", ns)
    kubectl.run("label", "namespace", prod, "readiness.dev/gate=enforce")
    item = {"section": "Infrastructure / Containers", "title": "Memory and CPU limits are set"}
    kubectl.apply(
        json.dumps(
            builders.checklist(
                checklist,
                [
                    {"id": "limits", **item, "check": {"workload": "resourceLimits"}},
                    {
                        "id": "unit-test-coverage",
                        "section": "Code Quality / Tests",
                        "title": "Unit test coverage is at least 80%",
                        "check": {"evidence": {"key": "coverage-percent", "min": 80, "recordedBy": CI_ONLY}},
                    },
                    {
                        "id": "smoke-in-production",
                        "section": "Post-Deployment",
                        "title": "Smoke tests pass in production",
                        "phase": "post",
                        "check": {"attestation": {"roles": ["engineering-lead"]}},
                    },
                ],
                [
                    {"role": "engineering-lead", "title": "Engineering Lead", "groups": ["eng-leads"]},
                    {"role": "release-manager", "users": ["rita"], "required": False},
                ],
                description="The dashboard's test checklist",
                rules={"waivers": [{"roles": ["release-manager"], "items": ["limits"]}]},
            )
        )
    )
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac(suffix, prod, other)}))
    kubectl.apply(json.dumps(deployment(stg)))
    for ns, app in ((prod, "orders-api"), (other, "billing-api")):
        release = builders.release(f"{app}-1.4.0", ns, app, "1.4.0", checklist, stg)
        kubectl.apply(json.dumps(release), as_user="rita")
    return World(
        stg=stg,
        prod=prod,
        other=other,
        checklist=checklist,
        erin=cluster.kubeconfig_for(*ERIN),
        dana=cluster.kubeconfig_for("dana", ("viewers",)),
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed: run `make chromium`"
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


class Dashboard:
    """`kubectl readiness dashboard` as a person runs it: their kubeconfig, the plugin found on PATH."""

    def __init__(self, kubeconfig: Path, log: Path, *args: str) -> None:
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "KUBECONFIG": str(kubeconfig),
        }
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "kubectl"), "readiness", "dashboard", "--refresh", "1", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, safe before exec
            )

        def url() -> str:
            if self.proc.poll() is not None:
                raise AssertionError(f"the dashboard exited: {log.read_text()}")
            words = [w for w in log.read_text().split() if w.startswith("http://")]
            return words[0] if words else ""

        self.url: str = eventually(url, timeout=60, what="the dashboard's address")
        self.port = int(self.url.split(":")[2].split("/")[0])

    def stop(self) -> None:
        terminate(self.proc)


def text(page: Page) -> str:
    return page.inner_text("main")


def shows(page: Page, *needles: str) -> bool:
    body = text(page)
    return all(n in body for n in needles)


def at_stage(page: Page, name: str) -> bool:
    """The stage the page marks as current (aria-current=step): Waiting, Ready, Admitted or Healthy."""
    return page.inner_text("main [aria-current=step]").strip() == name


def screenshot(page: Page, name: str, tmp: Path) -> None:
    target = Path(os.environ.get("RR_DASHBOARD_SCREENSHOTS") or tmp)
    if not target.is_absolute():
        target = REPO / target
    page.screenshot(path=str(target / name), full_page=True)


def test_a_release_lead_follows_a_release_from_waiting_to_admitted(
    world: World, browser: Browser, kubectl: Kubectl, tmp_path: Path
) -> None:
    prod = world.prod
    dash = Dashboard(world.erin, tmp_path / "dashboard.log", "-A")
    try:
        assert dash.url.startswith(f"http://127.0.0.1:{dash.port}/")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(dash.url)
        eventually(lambda: shows(page, RELEASE, "billing-api-1.4.0", "Waiting"), timeout=60, what="both releases")
        assert "Viewing as erin" in page.inner_text("header")

        # Keyboard: the first Tab reaches the skip link; the release is reached and opened with the keyboard.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        # (other tests' releases may share the name: the link to this namespace's)
        page.locator(f'a[href$="/releases/{prod}/{RELEASE}"]').focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/releases/{prod}/{RELEASE}")

        eventually(lambda: shows(page, "has no memory limit"), timeout=60, what="the candidate inspected")
        body = text(page)
        assert "orders-api 1.4.0" in body
        assert "Progress by section" in body
        assert "Infrastructure / Containers" in body
        assert f"Fix the candidate in {world.stg}: " in body
        assert f"kubectl readiness -n {prod} attest {RELEASE} unit-test-coverage --value VALUE" in body
        assert "Engineering Lead" in body
        assert "Missing" in body
        screenshot(page, "dashboard-release-waiting.png", tmp_path)
        page.evaluate("window.__notReloaded = true")

        # The gate refuses the rollout while the release waits: the operator's Event shows up.
        refused = kubectl.run("apply", "-f", "-", stdin=json.dumps(deployment(prod)), check=False)
        assert refused.returncode != 0
        eventually(lambda: shows(page, "RolloutRefused"), timeout=60, what="the gate refusal on the page")

        # CI records the evidence and the engineering lead approves; then the release manager waives the limits,
        # which makes that approval stale (it was given without the waiver), and the lead approves again.
        sign(kubectl, CI, prod, RELEASE, items=[{"id": "unit-test-coverage", "value": "91"}])
        sign(kubectl, ERIN, prod, RELEASE, role="engineering-lead", comment="reviewed")
        eventually(lambda: shows(page, "✓ Approved"), timeout=90, what="the approval on the page")
        expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
        sign(kubectl, RITA, prod, RELEASE, role="release-manager", decision="waive", items=[{"id": "limits"}],
             comment="vendor sidecar sets its own limits", expires=expires)  # fmt: skip
        eventually(lambda: shows(page, "Stale approvals (1)", "It must be signed again"), timeout=90, what="stale")
        sign(kubectl, ERIN, prod, RELEASE, role="engineering-lead", comment="reviewed with the waiver")
        eventually(lambda: at_stage(page, "Ready"), timeout=90, what="Ready on the page")
        assert shows(page, "erin", "vendor sidecar sets its own limits", "Nothing outstanding")
        body = text(page)
        assert "Active" in body
        assert expires.replace("T", " ").replace("Z", " UTC") in body
        assert page.evaluate("window.__notReloaded") is True  # updated in place
        assert int(page.get_attribute("#live", "data-updates") or "0") > 0

        # Deployed: the gate admits it, and after the smoke test the release is healthy.
        kubectl.apply(json.dumps(deployment(prod)))
        eventually(lambda: at_stage(page, "Admitted"), timeout=90, what="Admitted on the page")
        sign(kubectl, ERIN, prod, RELEASE, items=[{"id": "smoke-in-production"}])
        eventually(lambda: at_stage(page, "Healthy"), timeout=90, what="healthy after deployment")
        assert "1 post-deployment item(s) satisfied" in text(page)

        # A hotfix by break-glass: an image nobody inspected, let through for the on-call group, recorded.
        hotfix = deployment(prod, "reg.example.com/orders:1.4.0-hotfix", **{"readiness.dev/break-glass": "sev1 42"})
        kubectl.apply(json.dumps(hotfix), as_user=SAM[0], as_groups=SAM[1])
        eventually(lambda: shows(page, "admitted by break-glass by sam: sev1 42"), timeout=90, what="break-glass")
        assert page.evaluate("window.__notReloaded") is True
        screenshot(page, "dashboard-release.png", tmp_path)

        # The checklist: items by section and how each is verified.
        page.get_by_role("link", name=world.checklist).click()
        page.wait_for_url(f"**/checklists/{world.checklist}")
        body = text(page)
        for expected in (
            "Infrastructure / Containers",
            "Code Quality / Tests",
            "the operator checks the candidate's workloads: resourceLimits",
            "evidence coverage-percent at least 80, recorded by group system:serviceaccounts:ci",
            "attested by a holder of engineering-lead",
            "after deployment",
        ):
            assert expected in body
        screenshot(page, "dashboard-checklist.png", tmp_path)
    finally:
        dash.stop()


def test_a_person_sees_only_the_releases_they_may_read(
    world: World, browser: Browser, kubectl: Kubectl, tmp_path: Path
) -> None:
    """dana may list releases in `other` only: with -A she sees that one, not prod's, whose page says forbidden;
    with -n prod the list says she may not read it. The server answers only on 127.0.0.1, with its token, for its
    own Host, and only to reads."""
    sign(kubectl, ERIN, world.other, "billing-api-1.4.0", role="engineering-lead", decision="reject",
         comment="<b>p99</b> regressed")  # fmt: skip
    dash = Dashboard(world.dana, tmp_path / "dana.log", "-A")
    try:
        page = browser.new_page()
        page.goto(dash.url)
        eventually(lambda: shows(page, "billing-api-1.4.0", "Vetoed"), timeout=60, what="dana's readable release")
        body = text(page)
        assert RELEASE not in body
        assert world.prod not in body
        assert "namespace(s) are not shown: you may not list their releases" in body
        page.locator(f'a[href$="/releases/{world.other}/billing-api-1.4.0"]').click()
        eventually(lambda: shows(page, "Vetoes (1)"), timeout=60, what="the veto")
        assert "as engineering-lead by erin" in text(page)
        assert "“<b>p99</b> regressed”" in text(page)  # shown as text, not markup

        response = page.goto(f"{dash.url}releases/{world.prod}/{RELEASE}")
        assert response is not None
        assert response.status == 403
        body = text(page)
        assert f"you may not read releasereadiness {world.prod}/{RELEASE}" in body
        assert "Outstanding" not in body

        def status(path: str, **headers: str) -> int:
            request = urllib.request.Request(f"http://127.0.0.1:{dash.port}{path}", headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=30) as resp:
                    return int(resp.status)
            except urllib.error.HTTPError as err:
                return err.code

        token_path = dash.url.split(f":{dash.port}", 1)[1]
        assert status(token_path) == 200
        assert status(token_path, Host=f"rebound.example:{dash.port}") == 421  # DNS rebinding
        assert status("/") == 403  # no token
        post = urllib.request.Request(dash.url, data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError, match="405"):
            urllib.request.urlopen(post, timeout=30)
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.2", dash.port), timeout=10):
            pass  # bound to 127.0.0.1 only
    finally:
        dash.stop()

    scoped = Dashboard(world.dana, tmp_path / "dana-prod.log", "-n", world.prod)
    try:
        page = browser.new_page()
        page.goto(scoped.url)
        eventually(lambda: shows(page, "you may not read releases in namespace"), timeout=60, what="forbidden")
        assert RELEASE not in text(page)
    finally:
        scoped.stop()
