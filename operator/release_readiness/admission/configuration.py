"""The Validating/MutatingWebhookConfigurations, owned by the project (not Kopf's managed ones).

Kopf's managed configuration has no namespaceSelector and uses timeoutSeconds 30; ours sends the
gate only namespaces labelled readiness.dev/gate, with a few seconds' timeout. The Helm chart
renders the same webhooks; the test harness and `make run` register these with a URL.

Failure policy per mode: `enforce` namespaces fail closed (no answer, no rollout: an outage must not
become a bypass); `warn` and `audit` namespaces fail open (they are advisory). Signoff stamping
fails closed so no unstamped signoff is ever stored.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from release_readiness import GROUP, VERSION
from release_readiness.admission.authority import SYSTEM_DELETERS
from release_readiness.kinds import GatedKind, gated_kinds
from release_readiness.pki import write_serving_certificate
from release_readiness.suites import SUITE_LABEL

__all__ = [
    "WEBHOOK_NAME",
    "Endpoint",
    "admission_kinds",
    "gate_webhooks",
    "prepare_local_webhook",
    "webhook_configurations",
]

WEBHOOK_NAME = "release-readiness"
TIMEOUT_SECONDS = 5


def admission_kinds(extra_kinds: Sequence[GatedKind] = ()) -> frozenset[str]:
    """The kinds the webhooks receive: the only values of the admission metrics' `kind` label (others: `other`)."""
    return frozenset({"ReleaseReadiness", "ReleaseSignoff", "ReadinessChecklist", "Namespace"}) | {
        k.kind for k in gated_kinds(extra_kinds)
    }


@dataclass(frozen=True)
class Endpoint:
    """Where the API server reaches the webhook: a URL (local) or a Service (in a cluster)."""

    ca_bundle: bytes
    base_url: str | None = None
    service: dict[str, Any] | None = None

    def client_config(self, path: str) -> dict[str, Any]:
        config: dict[str, Any] = {"caBundle": base64.b64encode(self.ca_bundle).decode()}
        if self.service is not None:
            config["service"] = {**self.service, "path": f"/{path}"}
        else:
            config["url"] = f"{self.base_url}/{path}"
        return config


def _webhook(
    name: str,
    path: str,
    rules: list[dict[str, Any]],
    endpoint: Endpoint,
    *,
    failure_policy: str,
    namespace_selector: dict[str, Any] | None = None,
    mutating: bool = False,
    object_selector: dict[str, Any] | None = None,
    match_conditions: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    hook: dict[str, Any] = {
        "name": f"{name}.{GROUP}",
        "clientConfig": endpoint.client_config(path),
        "rules": rules,
        "failurePolicy": failure_policy,
        "sideEffects": "NoneOnDryRun",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": TIMEOUT_SECONDS,
        "matchPolicy": "Equivalent",
    }
    if namespace_selector is not None:
        hook["namespaceSelector"] = namespace_selector
    if object_selector is not None:
        hook["objectSelector"] = object_selector
    if match_conditions:
        hook["matchConditions"] = match_conditions
    if mutating:
        hook["reinvocationPolicy"] = "Never"
    return hook


def _rule(group: str, version: str, resource: str | list[str], *operations: str) -> dict[str, Any]:
    return {
        "apiGroups": [group],
        "apiVersions": [version],
        "resources": [resource] if isinstance(resource, str) else resource,
        "operations": list(operations),
        "scope": "*",
    }


def gate_webhooks(endpoint: Endpoint, kinds: Sequence[GatedKind]) -> list[dict[str, Any]]:
    """Two webhooks a gated kind: enforce namespaces fail closed, warn/audit namespaces fail open. Each has its own
    path, so the gate knows which selector the API server matched even before it has listed the namespace."""
    hooks = []
    for modes, policy, suffix in ((["enforce"], "Fail", "enforce"), (["warn", "audit"], "Ignore", "advisory")):
        selector = {"matchExpressions": [{"key": f"{GROUP}/gate", "operator": "In", "values": modes}]}
        for kind in kinds:
            resources = [kind.plural] + [f"{kind.plural}/{sub}" for sub in kind.subresources]
            hooks.append(
                _webhook(
                    f"{kind.webhook}-{suffix}",
                    kind.webhook if suffix == "enforce" else kind.advisory_webhook,
                    [_rule(kind.group, kind.version, resources, "CREATE", "UPDATE")],
                    endpoint,
                    failure_policy=policy,
                    namespace_selector=selector,
                )
            )
    return hooks


GATE_LABEL_CHANGED = (
    "(has(object.metadata.labels) && '{label}' in object.metadata.labels ? object.metadata.labels['{label}'] : '')"
    " != (has(oldObject.metadata.labels) && '{label}' in oldObject.metadata.labels ? "
    "oldObject.metadata.labels['{label}'] : '')"
).format(label=f"{GROUP}/gate")


NOT_CLEANING = "!(request.userInfo.username in [{}])".format(", ".join(f"'{user}'" for user in sorted(SYSTEM_DELETERS)))


def _namespace_gate_webhook(name: str, at: Endpoint) -> dict[str, Any]:
    """Changes of a namespace's readiness.dev/gate label go to the webhook (platform admins only), and nothing
    else: the objectSelector sends only namespaces that carry the label before or after, the matchCondition only
    updates that change it. Namespace deletion (DELETE, namespaces/finalize, namespaces/status) never reaches it.
    Fails closed: while the webhook is down the label cannot change (a cluster admin can remove this webhook)."""
    return _webhook(
        "validate-namespace-gate",
        "validate-namespace-gate",
        [_rule("", "v1", "namespaces", "UPDATE")],
        at,
        failure_policy="Fail",
        object_selector={"matchExpressions": [{"key": f"{GROUP}/gate", "operator": "Exists"}]},
        match_conditions=[{"name": "gate-label-changed", "expression": GATE_LABEL_CHANGED}],
    )


def _suite_job_webhook(at: Endpoint, operations: tuple[str, ...] = ("CREATE", "UPDATE")) -> dict[str, Any]:
    """Suite Jobs (labelled readiness.dev/suite, before or after the request) get their creator stamped from the
    request's user info (mutating: CREATE, UPDATE), and only their creator or a platform admin may delete them
    (validating: DELETE) or change their labels (see suites.py); nothing else reaches these: no other Job, no
    status update, no cleaning controller. Both fail closed: while the webhook is down suite Jobs cannot be
    created, changed or deleted (an unstamped suite Job would not count anyway, and a failed run must not be
    deleted unseen)."""
    mutating = "DELETE" not in operations
    path = "stamp-suite-job" if mutating else "validate-suite-job-delete"
    return _webhook(
        path,
        path,
        [_rule("batch", "v1", "jobs", *operations)],
        at,
        failure_policy="Fail",
        mutating=mutating,
        object_selector={"matchExpressions": [{"key": SUITE_LABEL, "operator": "Exists"}]},
        match_conditions=[{"name": "not-a-cleaning-controller", "expression": NOT_CLEANING}],
    )


def webhook_configurations(
    ca_bundle: bytes,
    base_url: str | None = None,
    service: dict[str, Any] | None = None,
    name: str = WEBHOOK_NAME,
    extra_kinds: Sequence[GatedKind] = (),
) -> list[dict[str, Any]]:
    """[MutatingWebhookConfiguration, ValidatingWebhookConfiguration], reaching the webhook at base_url or service;
    the gate's webhooks cover the built-in gated kinds and `extra_kinds`."""
    at = Endpoint(ca_bundle, base_url, service)
    mutating = [
        _webhook(name, name, [_rule(GROUP, VERSION, plural, "CREATE")], at, failure_policy="Fail", mutating=True)
        for name, plural in (("stamp-signoff", "releasesignoffs"), ("record-creator", "releasereadinesses"))
    ]
    mutating.append(_suite_job_webhook(at))
    validating = [
        _webhook(
            f"validate-{what}",
            f"validate-{what}",
            [_rule(GROUP, VERSION, plural, *operations)],
            at,
            failure_policy="Fail",
        )
        for what, plural, operations in (
            # DELETE and UPDATE: only a signoff's signer (or a platform admin) may revoke it or touch its metadata.
            ("signoff", "releasesignoffs", ("CREATE", "UPDATE", "DELETE")),
            # DELETE: not while a veto holds (deleting the release would delete the veto).
            ("release", "releasereadinesses", ("CREATE", "UPDATE", "DELETE")),
            # Only the operator writes status (a Ready=True written by anyone else would open the gate).
            ("release-status", "releasereadinesses/status", ("UPDATE",)),
            ("checklist", "readinesschecklists", ("CREATE", "UPDATE")),
        )
    ]
    # Cleaning controllers (garbage collector, namespace controller) are allowed anyway; not calling the webhook
    # for them means deleting a release or a namespace never waits for the operator to be up.
    for hook in validating:
        if hook["name"] in (f"validate-signoff.{GROUP}", f"validate-release.{GROUP}"):
            hook["matchConditions"] = [{"name": "not-a-cleaning-controller", "expression": NOT_CLEANING}]
    validating += gate_webhooks(at, gated_kinds(extra_kinds))
    validating.append(_namespace_gate_webhook(name, at))
    validating.append(_suite_job_webhook(at, ("DELETE",)))
    labels = {"app.kubernetes.io/name": "release-readiness", "app.kubernetes.io/component": "admission"}
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name, "labels": labels},
            "webhooks": mutating,
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name, "labels": labels},
            "webhooks": validating,
        },
    ]


def prepare_local_webhook(directory: Path, port: int, extra_kinds: Sequence[GatedKind] = ()) -> list[dict[str, Any]]:
    """For a local control plane: a CA and a 127.0.0.1 serving certificate in `directory` (tls.crt, tls.key,
    ca.crt, the operator's RR_WEBHOOK_CERT_DIR), and the configurations that reach https://127.0.0.1:port."""
    ca = write_serving_certificate(directory, ("127.0.0.1", "localhost"), "release-readiness-webhook-ca")
    return webhook_configurations(ca, base_url=f"https://127.0.0.1:{port}", extra_kinds=extra_kinds)
