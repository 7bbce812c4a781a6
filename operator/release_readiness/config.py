"""The operator's configuration: one typed object, read from the environment once."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from release_readiness.kinds import GatedKind, gated_kinds, parse_extra_kinds

__all__ = ["Settings"]


_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _pod_namespace() -> str | None:
    try:
        return _SA_NAMESPACE.read_text().strip() or None
    except OSError:
        return None


def _list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


@dataclass(frozen=True)
class Settings:
    resync_seconds: float = 120.0
    """RR_RESYNC_SECONDS: every release is re-evaluated at least this often (waivers, certificate days)."""
    workers: int = 4
    """RR_WORKERS: releases evaluated concurrently."""
    secret_ttl_seconds: float = 60.0
    """RR_SECRET_TTL_SECONDS: how long a TLS Secret read for an Ingress is reused."""
    prometheus_url: str | None = None
    """RR_PROMETHEUS_URL: default Prometheus for prometheus checks (the platform's: a release may only pick another
    server the platform allows, see prometheus_urls)."""
    prometheus_urls: tuple[str, ...] = field(default_factory=tuple)
    """RR_PROMETHEUS_URLS: comma-separated further Prometheus servers a release may pick with spec.prometheusUrl
    (with RR_PROMETHEUS_URL and its checklist's spec.rules.prometheusUrls; any other URL is refused)."""
    prometheus_timeout_seconds: float = 5.0
    """RR_PROMETHEUS_TIMEOUT_SECONDS: how long one Prometheus query may take."""
    metrics_interval_seconds: float = 30.0
    """RR_METRICS_INTERVAL_SECONDS: how often releases with prometheus items are evaluated again."""
    webhook_port: int = 9443
    """RR_WEBHOOK_PORT: HTTPS port of the admission webhooks."""
    webhook_host: str = "0.0.0.0"  # noqa: S104 - in a pod the Service reaches us on the pod IP
    """RR_WEBHOOK_HOST: address the webhook server binds."""
    webhook_cert_dir: str | None = None
    """RR_WEBHOOK_CERT_DIR: tls.crt/tls.key (and ca.crt) for the webhook; generated when unset."""
    webhook_client_ca: str | None = None
    """RR_WEBHOOK_CLIENT_CA: a CA file; when set, the webhook requires a TLS client certificate signed by it (the
    API server's, configured with an AdmissionConfiguration) and refuses every other client at the handshake."""
    webhook_cert_name: str | None = None
    """RR_WEBHOOK_CERT_NAME: the operator owns the serving certificate: it keeps this Secret (in its namespace,
    RR_LEASE_NAMESPACE) with a CA and a serving certificate, rotates them, writes them into RR_WEBHOOK_CERT_DIR
    (a writable directory) and patches the caBundle of RR_WEBHOOK_CONFIGURATIONS. Unset: the files in
    RR_WEBHOOK_CERT_DIR come from elsewhere (cert-manager)."""
    webhook_service: str = "release-readiness"
    """RR_WEBHOOK_SERVICE: the Service in front of the webhook (the serving certificate's names)."""
    webhook_configurations: tuple[str, ...] = field(default_factory=tuple)
    """RR_WEBHOOK_CONFIGURATIONS: comma-separated names of the Validating/MutatingWebhookConfigurations whose
    caBundle the operator keeps (with RR_WEBHOOK_CERT_NAME)."""
    webhook_cert_check_seconds: float = 60.0
    """RR_WEBHOOK_CERT_CHECK_SECONDS: how often the certificate Secret and the served files are checked."""
    default_checklist: str | None = None
    """RR_DEFAULT_CHECKLIST: a ReadinessChecklist manifest (file) the operator applies once its webhook answers
    (server-side apply; a checklist someone else changed is left as it is)."""
    webhook_max_body_bytes: int = 8 * 1024 * 1024
    """RR_WEBHOOK_MAX_BODY_BYTES: larger request bodies are refused with 400 without being read (the API server
    accepts up to 3 MiB a request, and a review carries the object and the old one)."""
    webhook_max_connections: int = 256
    """RR_WEBHOOK_MAX_CONNECTIONS: connections the webhook server holds at once (open or in their TLS handshake);
    a new one past that is reset before its handshake, and the API server applies the failurePolicy. Each costs
    memory (TLS buffers); the API server needs about one per request in flight."""
    webhook_max_in_flight: int = 64
    """RR_WEBHOOK_MAX_IN_FLIGHT: requests being answered at once (reading their bodies, judged); past that a
    request is answered 503 at once, without reading its body, and the API server applies the failurePolicy."""
    webhook_max_bytes_in_flight: int = 32 * 1024 * 1024
    """RR_WEBHOOK_MAX_BYTES_IN_FLIGHT: request bodies being answered at once, in bytes (by Content-Length); past
    that a request is answered 503 at once, like past RR_WEBHOOK_MAX_IN_FLIGHT (at least one of the largest)."""
    break_glass_groups: tuple[str, ...] = field(default_factory=tuple)
    """RR_BREAK_GLASS_GROUPS: comma-separated groups allowed to use readiness.dev/break-glass."""
    health_port: int = 8080
    """RR_HEALTH_PORT: liveness and readiness probes (/healthz)."""
    metrics_port: int = 8081
    """RR_METRICS_PORT: Prometheus metrics (/metrics); 0 turns the endpoint off."""
    log_format: str = "json"
    """RR_LOG_FORMAT: json or text."""
    leader_election: bool = True
    """RR_LEADER_ELECTION: only the holder of a Lease writes release status (every replica serves webhooks)."""
    lease_namespace: str = "default"
    """RR_LEASE_NAMESPACE: where the Lease lives (in a pod: its own namespace)."""
    lease_name: str = "release-readiness-reconciler"
    """RR_LEASE_NAME: the Lease's name."""
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    """RR_IDENTITY: this replica's name in the Lease (in a pod: the pod name)."""
    platform_admin_groups: tuple[str, ...] = field(default_factory=tuple)
    """RR_PLATFORM_ADMIN_GROUPS: comma-separated groups that may delete anyone's signoff, change its metadata, and
    change a namespace's readiness.dev/gate label."""
    max_signoffs_per_release: int = 200
    """RR_MAX_SIGNOFFS_PER_RELEASE: live signoffs one release may have (more are refused at admission, except a
    veto: a reject is always recordable)."""
    max_signoffs_per_signer: int = 20
    """RR_MAX_SIGNOFFS_PER_SIGNER: live signoffs one person may have on one release (so one role holder cannot fill
    the release's quota)."""
    access_review_timeout_seconds: float = 2.0
    """RR_ACCESS_REVIEW_TIMEOUT_SECONDS: how long the SubjectAccessReview at release creation may take (then the
    creation is refused: fail closed)."""
    extra_gated_kinds: tuple[GatedKind, ...] = ()
    """RR_EXTRA_GATED_KINDS: kinds that carry a pod template besides the built-in ones, as a JSON list of
    {"kind", "group", "version", "plural", "template" (dotted path), "controller" (optional identity that
    creates their ReplicaSets and Pods)}; e.g. Argo Rollouts. Their webhook rules must be registered too
    (the chart's gate.extraKinds does both)."""

    notify_namespace: str = ""
    """RR_NOTIFY_NAMESPACE: where the notification sink Secrets and the ledger ConfigMaps live (default: the Lease's
    namespace, in a pod its own)."""
    notify_sinks: tuple[str, ...] | None = None
    """RR_NOTIFY_SINKS: comma-separated names of the sink Secrets in notify_namespace, read by name (the chart sets it
    from notifications.sinks, and grants `get` on exactly these; set but empty: no notifications). Unset: every
    Secret there labelled readiness.dev/notification-sink=true (needs `list secrets` in that namespace)."""
    notify_queue_size: int = 1000
    """RR_NOTIFY_QUEUE_SIZE: notifications waiting to be sent; when full, more are dropped (counted), never waited
    for."""
    notify_workers: int = 4
    """RR_NOTIFY_WORKERS: notifications sent concurrently."""
    notify_timeout_seconds: float = 5.0
    """RR_NOTIFY_TIMEOUT_SECONDS: how long one POST to a sink may take."""
    notify_retry_max_seconds: float = 60.0
    """RR_NOTIFY_RETRY_MAX_SECONDS: the longest wait between two tries (back-off doubles from 1 s up to it)."""
    notify_give_up_seconds: float = 3600.0
    """RR_NOTIFY_GIVE_UP_SECONDS: after this long without success a notification is recorded as failed."""
    notify_claim_seconds: float = 180.0
    """RR_NOTIFY_CLAIM_SECONDS: a replica's claim on a notification not refreshed for this long (it died) is taken
    over by the leader's sweep; keep it above RR_NOTIFY_RETRY_MAX_SECONDS + RR_NOTIFY_TIMEOUT_SECONDS."""
    notify_refusal_interval_seconds: float = 60.0
    """RR_NOTIFY_REFUSAL_INTERVAL_SECONDS: at most one refusal notification a release in this interval, per replica
    (retries of the same rollout are one notification whatever the interval)."""
    notify_sinks_seconds: float = 30.0
    """RR_NOTIFY_SINKS_SECONDS: how often the sink Secrets are listed again."""
    notify_sweep_seconds: float = 30.0
    """RR_NOTIFY_SWEEP_SECONDS: how often the leader looks for stale claims and ledgers of deleted releases."""

    @property
    def gated_kinds(self) -> tuple[GatedKind, ...]:
        """Every kind the gate judges: the built-in ones and the configured ones."""
        return gated_kinds(self.extra_gated_kinds)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        d = cls()
        return cls(
            resync_seconds=float(e.get("RR_RESYNC_SECONDS", d.resync_seconds)),
            workers=int(e.get("RR_WORKERS", d.workers)),
            secret_ttl_seconds=float(e.get("RR_SECRET_TTL_SECONDS", d.secret_ttl_seconds)),
            prometheus_url=e.get("RR_PROMETHEUS_URL") or None,
            prometheus_urls=_list(e.get("RR_PROMETHEUS_URLS", "")),
            prometheus_timeout_seconds=float(e.get("RR_PROMETHEUS_TIMEOUT_SECONDS", d.prometheus_timeout_seconds)),
            metrics_interval_seconds=float(e.get("RR_METRICS_INTERVAL_SECONDS", d.metrics_interval_seconds)),
            webhook_port=int(e.get("RR_WEBHOOK_PORT", d.webhook_port)),
            webhook_host=e.get("RR_WEBHOOK_HOST", d.webhook_host),
            webhook_cert_dir=e.get("RR_WEBHOOK_CERT_DIR") or None,
            webhook_client_ca=e.get("RR_WEBHOOK_CLIENT_CA") or None,
            webhook_cert_name=e.get("RR_WEBHOOK_CERT_NAME") or None,
            webhook_service=e.get("RR_WEBHOOK_SERVICE") or d.webhook_service,
            webhook_configurations=_list(e.get("RR_WEBHOOK_CONFIGURATIONS", "")),
            webhook_cert_check_seconds=float(e.get("RR_WEBHOOK_CERT_CHECK_SECONDS", d.webhook_cert_check_seconds)),
            default_checklist=e.get("RR_DEFAULT_CHECKLIST") or None,
            webhook_max_body_bytes=int(e.get("RR_WEBHOOK_MAX_BODY_BYTES", d.webhook_max_body_bytes)),
            webhook_max_connections=int(e.get("RR_WEBHOOK_MAX_CONNECTIONS", d.webhook_max_connections)),
            webhook_max_in_flight=int(e.get("RR_WEBHOOK_MAX_IN_FLIGHT", d.webhook_max_in_flight)),
            webhook_max_bytes_in_flight=int(e.get("RR_WEBHOOK_MAX_BYTES_IN_FLIGHT", d.webhook_max_bytes_in_flight)),
            break_glass_groups=_list(e.get("RR_BREAK_GLASS_GROUPS", "")),
            health_port=int(e.get("RR_HEALTH_PORT", d.health_port)),
            metrics_port=int(e.get("RR_METRICS_PORT", d.metrics_port)),
            log_format=e.get("RR_LOG_FORMAT", d.log_format),
            leader_election=e.get("RR_LEADER_ELECTION", "true").lower() not in ("0", "false", "no"),
            lease_namespace=e.get("RR_LEASE_NAMESPACE") or _pod_namespace() or d.lease_namespace,
            lease_name=e.get("RR_LEASE_NAME", d.lease_name),
            identity=e.get("RR_IDENTITY") or d.identity,
            extra_gated_kinds=parse_extra_kinds(e.get("RR_EXTRA_GATED_KINDS", "")),
            platform_admin_groups=_list(e.get("RR_PLATFORM_ADMIN_GROUPS", "")),
            max_signoffs_per_release=int(e.get("RR_MAX_SIGNOFFS_PER_RELEASE", d.max_signoffs_per_release)),
            max_signoffs_per_signer=int(e.get("RR_MAX_SIGNOFFS_PER_SIGNER", d.max_signoffs_per_signer)),
            notify_namespace=e.get("RR_NOTIFY_NAMESPACE")
            or e.get("RR_LEASE_NAMESPACE")
            or _pod_namespace()
            or d.lease_namespace,
            notify_sinks=_list(e["RR_NOTIFY_SINKS"]) if "RR_NOTIFY_SINKS" in e else None,
            notify_queue_size=int(e.get("RR_NOTIFY_QUEUE_SIZE", d.notify_queue_size)),
            notify_workers=int(e.get("RR_NOTIFY_WORKERS", d.notify_workers)),
            notify_timeout_seconds=float(e.get("RR_NOTIFY_TIMEOUT_SECONDS", d.notify_timeout_seconds)),
            notify_retry_max_seconds=float(e.get("RR_NOTIFY_RETRY_MAX_SECONDS", d.notify_retry_max_seconds)),
            notify_give_up_seconds=float(e.get("RR_NOTIFY_GIVE_UP_SECONDS", d.notify_give_up_seconds)),
            notify_claim_seconds=float(e.get("RR_NOTIFY_CLAIM_SECONDS", d.notify_claim_seconds)),
            notify_refusal_interval_seconds=float(
                e.get("RR_NOTIFY_REFUSAL_INTERVAL_SECONDS", d.notify_refusal_interval_seconds)
            ),
            notify_sinks_seconds=float(e.get("RR_NOTIFY_SINKS_SECONDS", d.notify_sinks_seconds)),
            notify_sweep_seconds=float(e.get("RR_NOTIFY_SWEEP_SECONDS", d.notify_sweep_seconds)),
            access_review_timeout_seconds=float(
                e.get("RR_ACCESS_REVIEW_TIMEOUT_SECONDS", d.access_review_timeout_seconds)
            ),
        )
