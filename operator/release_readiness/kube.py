"""The few direct API calls the operator makes (status patches, events, named TLS Secrets, its own identity,
and the SubjectAccessReview made when a release is created).

`KubeApi` names them; the core (reconciler, notifier, the gate's recorder) depends on that protocol only.
`KubeClient` makes them with the kubernetes client; unit tests use an in-memory implementation
(release_readiness_dev/fakekube.py). Synchronous calls; the core runs them in a thread so the event loop never
blocks.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from typing import Any, Protocol

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from release_readiness import GROUP, VERSION

__all__ = ["AccessReviewer", "KubeApi", "KubeClient", "authenticated_username", "without_private_key"]

log = logging.getLogger(__name__)


def authenticated_username(api_client: client.ApiClient) -> str | None:
    """The client's user name as the API server authenticates it (a SelfSubjectReview); None when it says none."""
    review = client.AuthenticationV1Api(api_client).create_self_subject_review(
        client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")
    )
    user = review.status.user_info if review.status else None
    return str(user.username) if user is not None and user.username else None


def without_private_key(secret: dict[str, Any]) -> dict[str, Any]:
    """A TLS Secret with its certificate only: the private key never stays in the operator's memory, only whether
    it exists. Nothing else of the Secret is kept either: a Secret applied with `kubectl apply` carries its whole
    data, the key too, in its last-applied-configuration annotation (and any annotation or field may hold it)."""
    data = secret.get("data") or {}
    meta = secret.get("metadata") or {}
    return {
        "apiVersion": secret.get("apiVersion", "v1"),
        "kind": secret.get("kind", "Secret"),
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion") if k in meta},
        "type": secret.get("type"),
        "data": {"tls.crt": data.get("tls.crt", ""), "tls.key": "present" if data.get("tls.key") else ""},
    }


class AccessReviewer(Protocol):
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
    ) -> tuple[bool, str]: ...


class KubeApi(AccessReviewer, Protocol):
    """What the operator asks of the API server besides its watches (see KubeClient for what each does); `may`
    (a SubjectAccessReview) is all the admission adapter may ask of it."""

    def replace_release_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...
    def patch_checklist_status(self, name: str, status: dict[str, Any]) -> None: ...
    def whoami(self) -> str: ...
    def served(self, group: str, version: str, plural: str) -> bool: ...
    def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def post_event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None: ...
    def list_labelled(self, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]: ...
    def read_named_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def read_config_map(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def write_config_map(self, namespace: str, body: dict[str, Any]) -> bool: ...
    def delete_config_map(self, namespace: str, name: str) -> None: ...


class KubeClient:
    """KubeApi with the kubernetes client (in-cluster configuration, else $KUBECONFIG)."""

    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        if api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                # The client reads $KUBECONFIG when imported; `make run` sets it later, so pass it.
                config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
            api_client = client.ApiClient()
        self.api_client = api_client
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    def replace_release_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Replace .status whole (JSON patch), so items and conditions that went away go away."""
        self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            "releasereadinesses",
            name,
            [{"op": "add", "path": "/status", "value": status}],
            _content_type="application/json-patch+json",
        )

    def patch_checklist_status(self, name: str, status: dict[str, Any]) -> None:
        self.custom.patch_cluster_custom_object_status(GROUP, VERSION, "readinesschecklists", name, {"status": status})

    def whoami(self) -> str:
        """The operator's own user name, as the API server authenticates it (a SelfSubjectReview)."""
        username = authenticated_username(self.api_client)
        if username is None:
            raise RuntimeError("the SelfSubjectReview returned no user name")
        return username

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
        """(allowed, the authorizer's reason) of a SubjectAccessReview for `user` (raises on API errors)."""
        review = client.V1SubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SubjectAccessReview",
            spec=client.V1SubjectAccessReviewSpec(
                user=user,
                groups=groups or None,
                extra=extra or None,
                uid=uid or None,
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb, group=group, resource=resource, namespace=namespace
                ),
            ),
        )
        answer = client.AuthorizationV1Api(self.api_client).create_subject_access_review(
            review, _request_timeout=timeout
        )
        status = answer.status
        if status is None:
            raise RuntimeError("the SubjectAccessReview returned no status")
        return bool(status.allowed) and not bool(status.denied), str(status.reason or status.evaluation_error or "")

    def served(self, group: str, version: str, plural: str) -> bool:
        """Whether the API server serves group/version/plural (an optional kind's CRD is installed)."""
        try:
            found = self.custom.get_api_resources(group, version)
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return any(r.name == plural for r in found.resources or [])

    def _read(self, reader: Any, namespace: str, name: str, absent: tuple[int, ...] = (404,)) -> dict[str, Any] | None:
        """An object by name as a plain dict; None when the API server answers one of `absent`."""
        try:
            body = reader(name, namespace)
        except ApiException as err:
            if err.status in absent:
                return None
            raise
        result: dict[str, Any] = self.api_client.sanitize_for_serialization(body)
        return result

    def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A TLS Secret an Ingress names (None when missing or not readable), without its private key."""
        result = self._read(self.core.read_namespaced_secret, namespace, name, absent=(403, 404))
        return None if result is None else without_private_key(result)

    def post_event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = involved["metadata"]
        now = dt.datetime.now(dt.UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                name=f"{meta['name']}.{uuid.uuid4().hex[:12]}", namespace=meta.get("namespace") or "default"
            ),
            involved_object=client.V1ObjectReference(
                api_version=involved.get("apiVersion"),
                kind=involved.get("kind"),
                name=meta["name"],
                namespace=meta.get("namespace"),
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
            reason=reason,
            message=message[:1024],
            type=type_,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component="release-readiness"),
            reporting_component="readiness.dev/operator",
            reporting_instance="release-readiness",
        )
        try:
            self.core.create_namespaced_event(meta.get("namespace") or "default", event)
        except ApiException as err:
            log.warning("could not post event %s on %s: %s", reason, meta["name"], err.reason)

    # -- notifications: sink Secrets and the ledger ConfigMaps, in the operator's own namespace --------------

    def list_labelled(self, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        """Secrets or ConfigMaps (`kind`) of one namespace with a label, as plain dicts."""
        lister = self.core.list_namespaced_secret if kind == "Secret" else self.core.list_namespaced_config_map
        items = lister(namespace, label_selector=label_selector).items
        return [self.api_client.sanitize_for_serialization(i) for i in items]

    def read_named_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A Secret by name, whole (a notification sink); None when it does not exist."""
        return self._read(self.core.read_namespaced_secret, namespace, name)

    def read_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(self.core.read_namespaced_config_map, namespace, name)

    def write_config_map(self, namespace: str, body: dict[str, Any]) -> bool:
        """Create the ConfigMap (no resourceVersion) or replace it if unchanged since read (its resourceVersion);
        False when someone else wrote it first (409: read again)."""
        try:
            if body["metadata"].get("resourceVersion"):
                self.core.replace_namespaced_config_map(body["metadata"]["name"], namespace, body)  # type: ignore[arg-type]  # a dict serializes as it is
            else:
                self.core.create_namespaced_config_map(namespace, body)  # type: ignore[arg-type]
        except ApiException as err:
            if err.status == 409:
                return False
            raise
        return True

    def delete_config_map(self, namespace: str, name: str) -> None:
        try:
            self.core.delete_namespaced_config_map(name, namespace)
        except ApiException as err:
            if err.status != 404:
                raise
