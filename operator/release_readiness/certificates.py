"""The webhook's serving certificate and the caBundle of its webhook configurations, owned by the operator
(as Kyverno and Gatekeeper do), so the chart renders no key material and renders the same way every time.

Every replica runs the same loop (RR_WEBHOOK_CERT_NAME): read the Secret (ca.crt: the trusted CAs, newest
first; ca.key; tls.crt; tls.key), decide with `plan` (pure), write a change back with the Secret's
resourceVersion as a precondition (so two replicas never both win), patch the caBundle of the named webhook
configurations to the Secret's ca.crt, and write the files the webhook server serves from (it reloads them in
place, without a restart). A rotation never opens a window of refusals:

- a new serving certificate is issued by the same CA, which the API server already trusts;
- a new CA is first added to ca.crt (the old one stays) and to the caBundle; only on a later pass, once the
  configurations were seen trusting it, is a serving certificate issued by it; an old CA leaves ca.crt when it
  expires.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from release_readiness.pki import CertificateAuthority

__all__ = [
    "CertificateKeeper",
    "CertificateMaterial",
    "Lifetimes",
    "plan",
    "service_hosts",
]

log = logging.getLogger(__name__)

FIELD_MANAGER = "release-readiness-operator"


@dataclass(frozen=True)
class Lifetimes:
    """How long certificates live and when they are replaced."""

    ca_validity: dt.timedelta = dt.timedelta(days=5 * 365)
    ca_renew_before: dt.timedelta = dt.timedelta(days=365)
    serving_validity: dt.timedelta = dt.timedelta(days=365)
    serving_renew_before: dt.timedelta = dt.timedelta(days=90)


@dataclass(frozen=True)
class CertificateMaterial:
    """The Secret's four keys, PEM."""

    ca_bundle: bytes
    ca_key: bytes
    tls_crt: bytes
    tls_key: bytes

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str | bytes] | None) -> CertificateMaterial | None:
        """From a Secret's data (base64 strings, as the API returns them)."""
        data = data or {}
        try:
            decoded = {k: base64.b64decode(data[k], validate=True) for k in ("ca.crt", "ca.key", "tls.crt", "tls.key")}
        except (KeyError, ValueError):
            return None
        return cls(decoded["ca.crt"], decoded["ca.key"], decoded["tls.crt"], decoded["tls.key"])

    def secret_data(self) -> dict[str, str]:
        return {
            "ca.crt": base64.b64encode(self.ca_bundle).decode(),
            "ca.key": base64.b64encode(self.ca_key).decode(),
            "tls.crt": base64.b64encode(self.tls_crt).decode(),
            "tls.key": base64.b64encode(self.tls_key).decode(),
        }


def service_hosts(service: str, namespace: str) -> tuple[str, ...]:
    """The names the API server may use for a Service-referenced webhook (it verifies `<svc>.<ns>.svc`)."""
    return (f"{service}.{namespace}.svc", service, f"{service}.{namespace}", f"{service}.{namespace}.svc.cluster.local")


def _certificates(pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        return []


def _pem(certs: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _sans(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return set(ext.value.get_values_for_type(x509.DNSName))


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, Exception):  # InvalidSignature is not a ValueError
        return False
    return True


def _serving_pair_ok(material: CertificateMaterial) -> x509.Certificate | None:
    try:
        cert = x509.load_pem_x509_certificate(material.tls_crt)
        key = serialization.load_pem_private_key(material.tls_key, password=None)
    except ValueError:
        return None
    return cert if key.public_key() == cert.public_key() else None


def plan(
    current: CertificateMaterial | None,
    hosts: Sequence[str],
    now: dt.datetime,
    *,
    configurations_trust_current_ca: bool,
    lifetimes: Lifetimes = Lifetimes(),
) -> tuple[CertificateMaterial, str] | None:
    """The material to write and why, or None when `current` is fine. `configurations_trust_current_ca`: the
    webhook configurations were seen with a caBundle equal to current's ca.crt before this pass (only then may
    a serving certificate from a new CA be served)."""
    if current is None:
        first = CertificateAuthority("release-readiness-webhook-ca", lifetimes.ca_validity)
        pair = first.issue(hosts[0], hosts=tuple(hosts), validity=lifetimes.serving_validity)
        return CertificateMaterial(first.cert_pem, first.key_pem, pair.cert_pem, pair.key_pem), "created"
    bundle = _certificates(current.ca_bundle)
    ca: CertificateAuthority | None = None
    if bundle:
        with contextlib.suppress(ValueError):
            ca = CertificateAuthority.from_pem(_pem(bundle[:1]), current.ca_key)
    served = _serving_pair_ok(current)
    trusted_by_bundle = served is not None and any(_issued_by(served, c) for c in bundle)
    if ca is None or ca.certificate.not_valid_after_utc - lifetimes.ca_renew_before <= now:
        # A new CA goes first in ca.crt; the old ones stay while they are valid, so what is served stays trusted.
        new_ca = CertificateAuthority("release-readiness-webhook-ca", lifetimes.ca_validity)
        keep = [c for c in bundle if c.not_valid_after_utc > now]
        material = CertificateMaterial(
            _pem([new_ca.certificate, *keep]), new_ca.key_pem, current.tls_crt, current.tls_key
        )
        if not trusted_by_bundle:  # nothing valid is served anyway: issue from the new CA at once
            pair = new_ca.issue(hosts[0], hosts=tuple(hosts), validity=lifetimes.serving_validity)
            material = CertificateMaterial(material.ca_bundle, material.ca_key, pair.cert_pem, pair.key_pem)
        return material, "new CA" if ca is not None else "the CA was unusable: new CA"
    reason = None
    if served is None:
        reason = "the serving certificate was unusable"
    elif not trusted_by_bundle:
        reason = "the serving certificate is not issued by a trusted CA"
    elif _issued_by(served, ca.certificate) or configurations_trust_current_ca:
        # A certificate from the current CA may be served: the API server trusts it (or trusts what is served
        # now no more than it would trust the new one).
        if served.not_valid_after_utc - lifetimes.serving_renew_before <= now:
            reason = "the serving certificate expires soon"
        elif _sans(served) != set(hosts):
            reason = "the serving certificate names other hosts"
        elif not _issued_by(served, ca.certificate):
            reason = "the serving certificate is issued by the previous CA"
    expired = [c for c in bundle[1:] if c.not_valid_after_utc <= now]
    if reason is None and not expired:
        return None
    keep = [bundle[0], *(c for c in bundle[1:] if c.not_valid_after_utc > now)]
    tls_crt, tls_key = current.tls_crt, current.tls_key
    if reason is not None:
        pair = ca.issue(hosts[0], hosts=tuple(hosts), validity=lifetimes.serving_validity)
        tls_crt, tls_key = pair.cert_pem, pair.key_pem
    return CertificateMaterial(_pem(keep), current.ca_key, tls_crt, tls_key), reason or "expired CAs dropped"


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    os.replace(tmp, path)


def write_serving_files(directory: Path, material: CertificateMaterial) -> bool:
    """tls.crt, tls.key and ca.crt in `directory` (the webhook server's RR_WEBHOOK_CERT_DIR); True when changed.
    The key is written before the certificate: the server reloads when both match."""
    directory.mkdir(parents=True, exist_ok=True)
    want = {"tls.key": material.tls_key, "tls.crt": material.tls_crt, "ca.crt": material.ca_bundle}
    changed = False
    for name, data in want.items():
        path = directory / name
        if not path.exists() or path.read_bytes() != data:
            _write_atomically(path, data, 0o600 if name == "tls.key" else 0o644)
            changed = True
    return changed


def fingerprint(pem: bytes) -> str:
    return hashlib.sha256(pem).hexdigest()[:12]


class CertificateKeeper:
    """Keeps the Secret, the webhook configurations' caBundle and the served files in step (see the module doc)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        secret: str,
        service: str,
        configurations: Sequence[str],
        directory: Path,
        interval: float = 60.0,
        lifetimes: Lifetimes = Lifetimes(),
    ) -> None:
        self.core = client.CoreV1Api(api_client)
        self.admission = client.AdmissionregistrationV1Api(api_client)
        self.namespace = namespace
        self.secret = secret
        self.hosts = service_hosts(service, namespace)
        self.configurations = tuple(configurations)
        self.directory = directory
        self.interval = interval
        self.lifetimes = lifetimes

    # -- the API ---------------------------------------------------------------------------------------------

    def _read_secret(self) -> tuple[CertificateMaterial | None, str | None]:
        try:
            secret = self.core.read_namespaced_secret(self.secret, self.namespace)
        except ApiException as err:
            if err.status == 404:
                return None, None
            raise
        version = secret.metadata.resource_version if secret.metadata else None
        return CertificateMaterial.from_secret_data(secret.data), version

    def _write_secret(self, material: CertificateMaterial, resource_version: str | None) -> None:
        """Server-side apply, with the resourceVersion read as a precondition (409 when another replica won)."""
        metadata: dict[str, Any] = {
            "name": self.secret,
            "namespace": self.namespace,
            "labels": {"app.kubernetes.io/name": "release-readiness", "app.kubernetes.io/component": "webhook"},
        }
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": metadata,
            "data": material.secret_data(),
        }
        self.core.patch_namespaced_secret(
            self.secret,
            self.namespace,
            body,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    def _configurations(self) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = []
        for name in self.configurations:
            for kind, read in (
                ("validating", self.admission.read_validating_webhook_configuration),
                ("mutating", self.admission.read_mutating_webhook_configuration),
            ):
                try:
                    found.append((kind, read(name)))
                except ApiException as err:
                    if err.status != 404:
                        raise
        return found

    @staticmethod
    def _bundles(config: Any) -> list[bytes]:
        return [base64.b64decode(h.client_config.ca_bundle or "") for h in config.webhooks or []]

    def _patch_bundle(self, kind: str, config: Any, bundle: bytes) -> None:
        encoded = base64.b64encode(bundle).decode()
        ops: list[dict[str, Any]] = []
        for i, hook in enumerate(config.webhooks or []):
            if base64.b64decode(hook.client_config.ca_bundle or "") != bundle:
                ops.append({"op": "test", "path": f"/webhooks/{i}/name", "value": hook.name})
                ops.append({"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": encoded})
        if not ops:
            return
        patch = (
            self.admission.patch_validating_webhook_configuration
            if kind == "validating"
            else self.admission.patch_mutating_webhook_configuration
        )
        patch(config.metadata.name, ops, field_manager=FIELD_MANAGER, _content_type="application/json-patch+json")
        log.info("caBundle of the %s webhook configuration %s updated", kind, config.metadata.name)

    # -- one pass --------------------------------------------------------------------------------------------

    def sync_once(self, now: dt.datetime | None = None) -> bool:
        """One pass; True when the served files changed. Raises ApiException on API errors (a 409: another
        replica wrote first; the next pass reads its result)."""
        now = now or dt.datetime.now(dt.UTC)
        current, resource_version = self._read_secret()
        configs = self._configurations()
        trusted = current is not None and all(
            b == current.ca_bundle for _, config in configs for b in self._bundles(config)
        )
        decided = plan(current, self.hosts, now, configurations_trust_current_ca=trusted, lifetimes=self.lifetimes)
        if decided is not None:
            material, reason = decided
            self._write_secret(material, resource_version)
            log.info(
                "webhook certificate Secret %s/%s: %s (serving certificate %s)",
                self.namespace,
                self.secret,
                reason,
                fingerprint(material.tls_crt),
            )
            current = material
        assert current is not None
        for kind, config in configs:
            self._patch_bundle(kind, config, current.ca_bundle)
        return write_serving_files(self.directory, current)

    async def run(self) -> None:
        """Pass after pass, for as long as the operator runs."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self.sync_once)
            except ApiException as err:
                level = logging.INFO if err.status == 409 else logging.WARNING
                log.log(level, "webhook certificate: %s %s; retrying in %gs", err.status, err.reason, self.interval)
            except Exception:
                log.exception("webhook certificate: the pass failed; retrying in %gs", self.interval)

    async def first(self, give_up_after: float = 120.0) -> None:
        """The first pass, retried until it succeeds (the webhook server needs its files)."""
        deadline = asyncio.get_running_loop().time() + give_up_after
        delay = 0.5
        while True:
            try:
                await asyncio.to_thread(self.sync_once)
                return
            except ApiException as err:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(
                        f"cannot keep the webhook certificate Secret {self.namespace}/{self.secret}: {err.status} "
                        f"{err.reason}; the operator's ServiceAccount needs get, create and patch on it (the chart's "
                        "Role grants these)"
                    ) from err
                log.info("webhook certificate: %s %s; retrying", err.status, err.reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
