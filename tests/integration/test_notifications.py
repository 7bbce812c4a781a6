"""Notifications against a real local HTTP receiver, from two operator replicas on their own control plane: the
message of each transition in each format, once across replicas, a leader change and a restart, a receiver that
is down and then back, and a slow receiver that does not slow admission."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from release_readiness_dev import builders
from release_readiness_dev.localcluster import LocalCluster
from tests.integration.conftest import Kubectl, OperatorProcess, Person, eventually, sign
from tests.integration.receiver import Receiver, transition_of
from tests.integration.test_availability import Pair

LABELS = {"app.kubernetes.io/name": "shop-api", "app.kubernetes.io/version": "2.0.0"}
ERIN: Person = ("erin", ("eng-leads",))
FRANK: Person = ("frank", ("eng-leads",))
SRE: Person = ("sam", ("sre-oncall",))
SINKS = {"slack": "/slack", "webhook": "/webhook", "cloudevents": "/ce"}
"""Every transition to these three; plus /ce-structured (Ready only) and /ops (devops-lead's channel)."""


def deployment(namespace: str, replicas: int = 2, name: str = "shop-api", image: str = "reg/shop:2.0.0") -> str:
    body = builders.deployment(
        name, namespace, labels=LABELS, containers=[{"name": "api", "image": image}], replicas=replicas
    )
    return json.dumps(body)


def sink(name: str, url: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default", "labels": {"readiness.dev/notification-sink": "true"}},
        "stringData": {"url": url, **data},
    }


def counted(replica: OperatorProcess, transition: str, outcome: str) -> float:
    pattern = re.compile(r"^release_readiness_notifications_total\{(.*)\} (\S+)$")
    total = 0.0
    for line in replica.metrics().splitlines():
        m = pattern.match(line)
        if m and f'transition="{transition}"' in m.group(1) and f'outcome="{outcome}"' in m.group(1):
            total += float(m.group(2))
    return total


def skipped(replica: OperatorProcess) -> float:
    """Refusals a replica did not send: the ledger had them, or it had queued them itself a moment ago."""
    return counted(replica, "RolloutRefused", "duplicate") + counted(replica, "RolloutRefused", "repeated")


class Env:
    def __init__(self, cluster: LocalCluster, tmp: Path) -> None:
        self.receiver = Receiver().start()
        self.pair = Pair(
            cluster,
            tmp,
            RR_NOTIFY_SINKS_SECONDS="1",
            RR_NOTIFY_SWEEP_SECONDS="2",
            RR_NOTIFY_RETRY_MAX_SECONDS="2",
            RR_NOTIFY_TIMEOUT_SECONDS="60",
            RR_NOTIFY_CLAIM_SECONDS="90",
            RR_NOTIFY_REFUSAL_INTERVAL_SECONDS="0",  # each refusal of the slow-receiver test is one message
        )
        self.kubectl: Kubectl = self.pair.kubectl
        k = self.kubectl
        k.run("create", "namespace", "stg")
        k.apply(json.dumps({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": "prod", "labels": {"readiness.dev/gate": "enforce"}}}))  # fmt: skip
        signer = [{"apiGroups": ["readiness.dev"], "resources": ["releasesignoffs"],
                   "verbs": ["get", "list", "create", "delete"]}]  # fmt: skip
        k.apply(json.dumps(builders.cluster_role("signer", signer, groups=("eng-leads",))))
        deployer = [{"apiGroups": ["apps"], "resources": ["deployments"],
                     "verbs": ["get", "list", "create", "update", "patch"]}]  # fmt: skip
        k.apply(json.dumps(builders.cluster_role("deployer", deployer, groups=("sre-oncall",))))
        items = [
            {"id": "replicas", "section": "Infra", "title": "three replicas",
             "check": {"workload": "replicas", "params": {"min": 3}}},
            {"id": "scaled-out", "section": "Infra", "title": "four replicas", "phase": "post",
             "check": {"workload": "replicas", "params": {"min": 4}}},
        ]  # fmt: skip
        approvals = [
            {"role": "engineering-lead", "title": "Engineering Lead", "groups": ["eng-leads"]},
            {"role": "devops-lead", "groups": ["devops-leads"], "required": False},
        ]
        k.apply(json.dumps(builders.checklist("shop", items, approvals)))
        r = self.receiver
        secrets = [sink(f"to-{fmt}", r.url(path), format=fmt, namespaces="prod") for fmt, path in SINKS.items()]
        secrets += [
            sink("ce-structured", r.url("/ce-structured"), format="cloudevents", mode="structured", events="Ready"),
            sink("ops-channel", r.url("/ops"), format="slack", roles="devops-lead", events="ApprovalNeeded,Vetoed"),
            sink("elsewhere", r.url("/elsewhere"), namespaces="other-prod"),
            sink("broken", "ftp://nowhere", format="slack"),
        ]
        k.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": secrets}))
        k.apply(deployment("stg", replicas=2))
        k.apply(json.dumps(builders.release("rel", "prod", "shop-api", "2.0.0", "shop", "stg")))

    def once_per_sink(self, transition: str, paths: tuple[str, ...] = tuple(SINKS.values())) -> dict[str, Any]:
        """Wait for `transition` on every path; return what arrived, by path."""
        eventually(
            lambda: all(self.receiver.on(p, transition) for p in paths), timeout=90, what=f"{transition} on {paths}"
        )
        return {p: self.receiver.on(p, transition) for p in paths}

    def close(self) -> None:
        self.pair.close()
        self.receiver.stop()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("notify")
    with LocalCluster(tmp / "cluster") as cluster:
        e = Env(cluster, tmp)
        yield e
        e.close()


def test_waiting_for_a_role_in_every_format(env: Env) -> None:
    got = env.once_per_sink("ApprovalNeeded")
    text = got["/slack"][0].json()["text"]
    assert text.startswith("*ApprovalNeeded*: ReleaseReadiness prod/rel (shop-api 2.0.0) waits for a sign-off as ")
    assert "engineering-lead (Engineering Lead)" in text
    assert "*Who*: groups eng-leads" in text
    assert "*Run*: `kubectl readiness approve rel --role engineering-lead -n prod`" in text
    body = got["/webhook"][0].json()
    assert body["release"]["namespace"] == "prod"
    assert body["release"]["name"] == "rel"
    assert body["role"] == "engineering-lead"
    assert body["command"] == "kubectl readiness approve rel --role engineering-lead -n prod"
    ce = got["/ce"][0]
    assert ce.headers["ce-specversion"] == "1.0"
    assert ce.headers["ce-type"] == "dev.readiness.release.ApprovalNeeded"
    assert ce.headers["ce-source"] == "/apis/readiness.dev/v1alpha1/namespaces/prod/releasereadinesses/rel"
    assert ce.headers["ce-subject"] == "prod/rel"
    assert ce.headers["ce-id"] == body["id"]  # one id for one transition, whichever the sink
    assert ce.headers["content-type"] == "application/json"
    assert ce.json()["needed"] == body["needed"]
    # devops-lead is optional: its channel hears nothing; the other namespace's sink neither.
    assert env.receiver.on("/ops") == []
    assert env.receiver.on("/elsewhere") == []


def test_a_refusal_is_sent_once_across_retries_replicas_a_leader_change_and_a_restart(env: Env) -> None:
    kubectl, (first, second) = env.kubectl, env.pair.replicas
    refused = kubectl.run("apply", "-f", "-", stdin=deployment("prod"), check=False)
    assert "is not Ready" in refused.stderr
    got = env.once_per_sink("RolloutRefused")
    text = got["/slack"][0].json()["text"]
    assert "the rollout of Deployment prod/shop-api (by " in text
    assert "*Who*: engineering-lead: groups eng-leads" in text
    assert "*Run*: `kubectl readiness status rel -n prod --outstanding`" in text
    assert "replicas" in got["/webhook"][0].json()["needed"]

    kubectl.run("apply", "-f", "-", stdin=deployment("prod"), check=False)  # a CD tool retrying
    eventually(lambda: counted(first, "RolloutRefused", "repeated") >= 1, what="replica-0 to know it queued it")
    first.stop()  # the leader and the webhook's first backend
    again = kubectl.run("apply", "-f", "-", stdin=deployment("prod"), check=False)
    assert "is not Ready" in again.stderr  # answered by replica-1, which never saw it: the ledger says sent
    eventually(lambda: counted(second, "RolloutRefused", "duplicate") >= 3, what="replica-1 to find it sent")
    eventually(lambda: env.pair.lease_holder() == "replica-1", timeout=60, what="the lease to move")
    first.start()  # back, with nothing in memory (the API server may keep its connection to replica-1)
    before = skipped(second)
    kubectl.run("apply", "-f", "-", stdin=deployment("prod"), check=False)
    eventually(lambda: skipped(first) + skipped(second) > before, what="the replica that answered to skip it")
    assert {p: len(env.receiver.on(p, "RolloutRefused")) for p in SINKS.values()} == dict.fromkeys(SINKS.values(), 1)


def test_a_veto_names_who_alone_can_lift_it(env: Env) -> None:
    sign(env.kubectl, FRANK, "prod", "rel", name="veto", role="engineering-lead", decision="reject", comment="no")
    got = env.once_per_sink("Vetoed")
    text = got["/slack"][0].json()["text"]
    assert text.startswith("*Vetoed*: ReleaseReadiness prod/rel (shop-api 2.0.0) is vetoed by frank as ")
    assert "vetoed by frank as engineering-lead\n" in text
    assert "*Who*: frank only" in text
    assert "*Run*: `kubectl readiness withdraw rel --role engineering-lead -n prod`" in text
    env.kubectl.run("delete", "releasesignoff", "veto", "-n", "prod", as_user=FRANK[0], as_groups=FRANK[1])


def test_break_glass_and_failing_post_deployment_checks(env: Env) -> None:
    glass = json.loads(deployment("prod", name="shop-api-hotfix"))
    glass["metadata"]["annotations"] = {"readiness.dev/break-glass": "INC-7 checkout down"}
    admitted = env.kubectl.run("apply", "-f", "-", stdin=json.dumps(glass), as_user=SRE[0], as_groups=SRE[1])
    assert "bypassed by break-glass" in admitted.stderr
    text = env.once_per_sink("BreakGlass")["/slack"][0].json()["text"]
    assert "Deployment prod/shop-api-hotfix was admitted by break-glass by sam although ReleaseReadiness" in text
    assert "(reason: INC-7 checkout down)" in text
    # Now something of this version runs in production: its post-deployment item is judged, and fails.
    text = env.once_per_sink("PostDeploymentFailed")["/slack"][0].json()["text"]
    assert "post-deployment checks fail in prod (scaled-out)" in text
    assert "*Run*: `kubectl readiness status rel -n prod --outstanding`" in text


def test_a_receiver_down_then_back_gets_each_notification_once(env: Env) -> None:
    leader = env.pair.replicas[1]
    env.receiver.stop()
    env.kubectl.apply(deployment("stg", replicas=3))
    sign(env.kubectl, ERIN, "prod", "rel", role="engineering-lead")
    eventually(lambda: counted(leader, "Ready", "retried") >= 1, timeout=90, what="a Ready notification retried")
    env.receiver.start()
    got = env.once_per_sink("Ready", (*SINKS.values(), "/ce-structured"))
    doc = got["/ce-structured"][0]
    assert doc.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
    event = doc.json()
    assert event["specversion"] == "1.0"
    assert event["type"] == "dev.readiness.release.Ready"
    assert event["id"] == got["/webhook"][0].json()["id"]
    assert event["data"]["summary"] == (
        "ReleaseReadiness prod/rel (shop-api 2.0.0) is Ready: the gate admits its rollout into prod"
    )


def test_a_slow_receiver_does_not_slow_admission(env: Env) -> None:
    env.receiver.hold()
    try:
        for n in range(3):  # each a new pod template, so each a new notification, all held by the receiver
            refused = env.kubectl.run(
                "apply", "-f", "-", stdin=deployment("prod", image=f"reg/shop:2.0.{n + 1}"), check=False
            )
            assert refused.returncode != 0
            assert "denied the request: deployment prod/shop-api: its images are not the ones" in refused.stderr
            assert "failed calling webhook" not in refused.stderr
    finally:
        env.receiver.release()
    eventually(lambda: len(env.receiver.on("/webhook", "RolloutRefused")) == 4, timeout=90, what="the held refusals")


def test_nothing_arrived_twice(env: Env) -> None:
    seen = Counter((r.path, transition_of(r), r.body) for r in env.receiver.received)
    assert [k for k, n in seen.items() if n > 1] == []
    ids = Counter((r.path, r.json()["id"]) for r in env.receiver.received if r.path == "/webhook")
    assert [k for k, n in ids.items() if n > 1] == []
    logs = env.pair.replicas[0].logs() + env.pair.replicas[1].logs()
    assert "Secret default/broken: data.url must be an http(s) URL" in logs
