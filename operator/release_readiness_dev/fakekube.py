"""An in-memory KubeApi for unit tests: what the operator's core asks of the API server, answered from dicts,
with the API server's compare-and-swap on resourceVersion, and failures to inject.

Thread-safe (the core calls KubeApi in worker threads). Every call is recorded in `calls` with its time
(time.monotonic(), the event loop's clock), so a test can tell when and how often the core wrote.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

from release_readiness.kube import KubeApi, without_private_key

__all__ = ["AccessRule", "FakeKubeApi"]

Body = dict[str, Any]
AccessRule = Callable[[str, list[str], str, str, str, str], tuple[bool, str]]
"""(user, groups, verb, group, resource, namespace) -> (allowed, reason): a SubjectAccessReview's answer."""


def _matches(labels: dict[str, str], selector: str) -> bool:
    """An equality label selector (`a=b,c=d`, or `a` for presence)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.partition("=")
        if key not in labels or ("=" in term and labels[key] != value):
            return False
    return True


class FakeKubeApi:
    """KubeApi in memory. Secrets and ConfigMaps are stored whole (`put` them); release and checklist statuses
    and events are recorded as written; `fail(method, error, ...)` makes the next calls of a method raise."""

    def __init__(
        self,
        *,
        user: str = "system:serviceaccount:release-readiness:release-readiness",
        served: set[tuple[str, str, str]] | None = None,
        access: AccessRule | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.user = user
        self.clock = clock
        """Stamps creationTimestamp on what is created."""
        self.served_kinds = set(served or ())
        """(group, version, plural) of the optional kinds whose CRD is installed."""
        self.access = access
        self.objects: dict[tuple[str, str, str], Body] = {}
        """(kind, namespace, name) -> a Secret or ConfigMap as stored."""
        self.release_statuses: dict[tuple[str, str], Body] = {}
        self.checklist_statuses: dict[str, Body] = {}
        self.events: list[tuple[Body, str, str, str]] = []
        """(involved object, type, reason, message) of every event posted, in order."""
        self.calls: list[tuple[str, float]] = []
        self.failures: dict[str, list[Exception]] = {}
        self.version = 0
        self._lock = threading.Condition()

    # -- for the test ------------------------------------------------------------------------------------

    def fail(self, method: str, *errors: Exception) -> None:
        """The next len(errors) calls of `method` raise these, in order."""
        with self._lock:
            self.failures.setdefault(method, []).extend(errors)

    def put(self, body: Body) -> Body:
        """Store a Secret or ConfigMap as the API server would (a new resourceVersion); a copy of it."""
        with self._lock:
            return self._store(body)

    def called(self, method: str) -> list[float]:
        """When `method` was called (its failed calls too)."""
        with self._lock:
            return [at for name, at in self.calls if name == method]

    def wait_for_calls(self, method: str, times: int, timeout: float = 30.0) -> None:
        """Block until `method` has been called `times` times (from a thread: asyncio.to_thread); AssertionError
        after `timeout` seconds."""
        with self._lock:
            if not self._lock.wait_for(lambda: len([n for n, _ in self.calls if n == method]) >= times, timeout):
                raise AssertionError(f"{method} called {len(self.called(method))} times in {timeout}s, not {times}")

    def reasons(self) -> list[str]:
        """The reasons of the events posted, in order."""
        with self._lock:
            return [reason for _, _, reason, _ in self.events]

    def _enter(self, method: str) -> None:
        """Record the call; raise the failure injected for it, if any (the caller holds the lock)."""
        self.calls.append((method, time.monotonic()))
        self._lock.notify_all()
        pending = self.failures.get(method)
        if pending:
            raise pending.pop(0)

    def _store(self, body: Body) -> Body:
        meta = body["metadata"]
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        key = (body["kind"], meta.get("namespace", ""), meta["name"])
        created = self.objects[key]["metadata"].get("creationTimestamp") if key in self.objects else None
        stored["metadata"]["creationTimestamp"] = created or f"{self.clock():%Y-%m-%dT%H:%M:%SZ}"
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def _get(self, kind: str, namespace: str, name: str) -> Body | None:
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    # -- KubeApi -----------------------------------------------------------------------------------------

    def replace_release_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        with self._lock:
            self._enter("replace_release_status")
            self.release_statuses[(namespace, name)] = copy.deepcopy(status)

    def patch_checklist_status(self, name: str, status: dict[str, Any]) -> None:
        with self._lock:
            self._enter("patch_checklist_status")
            self.checklist_statuses[name] = {**self.checklist_statuses.get(name, {}), **copy.deepcopy(status)}

    def whoami(self) -> str:
        with self._lock:
            self._enter("whoami")
            return self.user

    def may(
        self,
        user: str,
        groups: list[str],
        extra: dict[str, list[str]],
        uid: str | None,
        verb: str,
        group: str,
        resource: str,
        namespace: str,
        timeout: float,
    ) -> tuple[bool, str]:
        with self._lock:
            self._enter("may")
        if self.access is None:
            return False, "no RBAC rule in the fake allows it"
        return self.access(user, groups, verb, group, resource, namespace)

    def served(self, group: str, version: str, plural: str) -> bool:
        with self._lock:
            self._enter("served")
            return (group, version, plural) in self.served_kinds

    def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """As KubeClient: the certificate only; whether a private key exists, never the key."""
        with self._lock:
            self._enter("read_secret")
            found = self._get("Secret", namespace, name)
        return None if found is None else without_private_key(found)

    def post_event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        with self._lock:
            self._enter("post_event")
            self.events.append((copy.deepcopy(involved), type_, reason, message[:1024]))

    def list_labelled(self, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        with self._lock:
            self._enter("list_labelled")
            return [
                copy.deepcopy(body)
                for (k, ns, _), body in sorted(self.objects.items())
                if k == kind and ns == namespace and _matches(body["metadata"].get("labels") or {}, label_selector)
            ]

    def read_named_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            self._enter("read_named_secret")
            return self._get("Secret", namespace, name)

    def read_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            self._enter("read_config_map")
            return self._get("ConfigMap", namespace, name)

    def write_config_map(self, namespace: str, body: dict[str, Any]) -> bool:
        """Create (no resourceVersion) or replace if unchanged since read; False on a conflict, as the API server."""
        with self._lock:
            self._enter("write_config_map")
            current = self.objects.get(("ConfigMap", namespace, body["metadata"]["name"]))
            expected = body["metadata"].get("resourceVersion")
            if (current is None) != (not expected) or (
                current is not None and current["metadata"]["resourceVersion"] != expected
            ):
                return False
            self._store({**body, "kind": "ConfigMap", "metadata": {**body["metadata"], "namespace": namespace}})
            return True

    def delete_config_map(self, namespace: str, name: str) -> None:
        with self._lock:
            self._enter("delete_config_map")
            self.objects.pop(("ConfigMap", namespace, name), None)


def _satisfies(fake: FakeKubeApi) -> KubeApi:
    return fake  # mypy checks that the fake has every operation of the protocol, with the same signature
