"""Prometheus metrics of the operator itself (served on /metrics by prometheus-client).

Per-release series carry only `namespace` and `release` labels (bounded by the number of releases)
and are removed when the release is deleted. Every name here is listed in METRIC_NAMES, which the
dashboard and alert tests check their queries against.
"""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram, Info

from release_readiness import __version__
from release_readiness.api import ReleaseStatus
from release_readiness.constants import ItemState

__all__ = [
    "ADMISSION_LATENCY",
    "ADMISSION_MALFORMED",
    "ADMISSION_REQUESTS",
    "ADMISSION_SHED",
    "BREAK_GLASS",
    "METRIC_NAMES",
    "NOTIFICATIONS",
    "NOTIFICATION_QUEUE",
    "OTHER",
    "RECONCILE_DURATION",
    "RECONCILE_ERRORS",
    "WEBHOOK_CONNECTIONS",
    "forget_release",
    "observe_release",
]

STATES: tuple[str, ...] = tuple(s.value for s in ItemState)

BUILD_INFO = Info("release_readiness_build", "Version of the release-readiness operator.")
BUILD_INFO.info({"version": __version__})

RELEASE_READY = Gauge("release_readiness_release_ready", "1 when the release is Ready.", ["namespace", "release"])
RELEASE_ITEMS = Gauge("release_readiness_release_items", "Checklist items by state.", ["namespace", "release", "state"])
RELEASE_REQUIRED_OUTSTANDING = Gauge(
    "release_readiness_release_required_items_outstanding",
    "Required pre-deployment items not satisfied.",
    ["namespace", "release"],
)
RELEASE_APPROVALS_OUTSTANDING = Gauge(
    "release_readiness_release_approvals_outstanding", "Required approvals not granted.", ["namespace", "release"]
)
RELEASE_CREATED = Gauge(
    "release_readiness_release_created_timestamp_seconds",
    "When the release was created (time() minus it is its age).",
    ["namespace", "release"],
)
RELEASE_BLOCKED_SINCE = Gauge(
    "release_readiness_release_not_ready_since_timestamp_seconds",
    "When the release's Ready condition last became False (absent while Ready).",
    ["namespace", "release"],
)
OTHER = "other"
"""The label value for a path or kind outside the fixed sets: random posts never create series."""

ADMISSION_REQUESTS = Counter(
    "release_readiness_admission_requests", "Admission requests answered.", ["webhook", "kind", "mode", "decision"]
)
ADMISSION_LATENCY = Histogram(
    "release_readiness_admission_duration_seconds",
    "Time to answer an admission request.",
    ["webhook"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
ADMISSION_ERRORS = Counter(
    "release_readiness_admission_errors", "Admission requests that failed with an error (not a refusal).", ["webhook"]
)
ADMISSION_MALFORMED = Counter(
    "release_readiness_admission_malformed",
    "Requests to the webhook port refused with 400/404 before any handler: not a well-formed AdmissionReview.",
    ["webhook"],
)
SHED_REASONS = ("connections", "requests")
ADMISSION_SHED = Counter(
    "release_readiness_admission_shed",
    "Work refused at once because the webhook server was at a limit: connections reset before their TLS handshake "
    "(reason connections), requests answered 503 without being read (reason requests). The API server applies the "
    "webhook's failurePolicy to each.",
    ["reason"],
)
for _reason in SHED_REASONS:
    ADMISSION_SHED.labels(_reason)
WEBHOOK_CONNECTIONS = Gauge(
    "release_readiness_admission_connections", "Connections open to the webhook server (or in their TLS handshake)."
)
BREAK_GLASS = Counter("release_readiness_break_glass", "Rollouts admitted by break-glass.", ["namespace", "release"])
RECONCILE_DURATION = Histogram(
    "release_readiness_reconcile_duration_seconds",
    "Time to evaluate a release and write its status.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RECONCILE_ERRORS = Counter("release_readiness_reconcile_errors", "Reconciles that raised an error.")
STATUS_WRITES = Counter("release_readiness_status_writes", "Release status patches written (only on change).")
LEADER = Gauge("release_readiness_leader", "1 on the replica that reconciles (holds the Lease).")
NOTIFICATIONS = Counter(
    "release_readiness_notifications",
    "Notifications by transition, sink format and outcome (sent, failed, retried; duplicate: another replica or an "
    "earlier run has it; repeated: this replica queued it a moment ago; limited: one refusal a release per interval; "
    "dropped: the queue was full, or one namespace held three quarters of it).",
    ["transition", "format", "outcome"],
)
NOTIFICATION_QUEUE = Gauge("release_readiness_notification_queue", "Notifications waiting to be sent.")

_PER_RELEASE = (
    RELEASE_READY,
    RELEASE_REQUIRED_OUTSTANDING,
    RELEASE_APPROVALS_OUTSTANDING,
    RELEASE_CREATED,
    RELEASE_BLOCKED_SINCE,
)

METRIC_NAMES = frozenset(
    {
        "release_readiness_build_info",
        "release_readiness_release_ready",
        "release_readiness_release_items",
        "release_readiness_release_required_items_outstanding",
        "release_readiness_release_approvals_outstanding",
        "release_readiness_release_created_timestamp_seconds",
        "release_readiness_release_not_ready_since_timestamp_seconds",
        "release_readiness_admission_requests_total",
        "release_readiness_admission_duration_seconds_bucket",
        "release_readiness_admission_duration_seconds_count",
        "release_readiness_admission_duration_seconds_sum",
        "release_readiness_admission_errors_total",
        "release_readiness_admission_malformed_total",
        "release_readiness_admission_shed_total",
        "release_readiness_admission_connections",
        "release_readiness_break_glass_total",
        "release_readiness_reconcile_duration_seconds_bucket",
        "release_readiness_reconcile_duration_seconds_count",
        "release_readiness_reconcile_duration_seconds_sum",
        "release_readiness_reconcile_errors_total",
        "release_readiness_status_writes_total",
        "release_readiness_leader",
        "release_readiness_notifications_total",
        "release_readiness_notification_queue",
        "process_resident_memory_bytes",
        "up",
    }
)
"""Every series name a dashboard panel or alert may use (plus Prometheus's own `up`)."""


def observe_release(namespace: str, name: str, status: ReleaseStatus, created: float | None) -> None:
    ready = status.condition("Ready")
    RELEASE_READY.labels(namespace, name).set(1 if ready and ready.status == "True" else 0)
    counts: dict[str, int] = dict.fromkeys(STATES, 0)
    for item in status.items:
        counts[item.state] = counts.get(item.state, 0) + 1
    for state, count in counts.items():
        RELEASE_ITEMS.labels(namespace, name, state).set(count)
    summary = status.summary
    if summary is not None:
        RELEASE_REQUIRED_OUTSTANDING.labels(namespace, name).set(summary.required_outstanding)
        RELEASE_APPROVALS_OUTSTANDING.labels(namespace, name).set(
            summary.approvals_required - summary.approvals_approved
        )
    if created is not None:
        RELEASE_CREATED.labels(namespace, name).set(created)
    if ready is not None and ready.status != "True":
        RELEASE_BLOCKED_SINCE.labels(namespace, name).set(ready.last_transition_time.timestamp())
    else:
        _remove(RELEASE_BLOCKED_SINCE, namespace, name)


def _remove(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)


def forget_release(namespace: str, name: str) -> None:
    """Remove every series of a deleted release."""
    for gauge in _PER_RELEASE:
        _remove(gauge, namespace, name)
    for state in STATES:
        _remove(RELEASE_ITEMS, namespace, name, state)
