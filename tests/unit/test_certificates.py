"""The operator's certificate plan: created once, renewed in the order that never serves an untrusted certificate."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

from cryptography import x509

from release_readiness.admission.webhooks import _load_pair
from release_readiness.certificates import CertificateMaterial, Lifetimes, plan, service_hosts, write_serving_files

HOSTS = service_hosts("rr", "rr-system")
NOW = dt.datetime.now(dt.UTC)


def _bundle(m: CertificateMaterial) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(m.ca_bundle)


def _leaf(m: CertificateMaterial) -> x509.Certificate:
    return x509.load_pem_x509_certificate(m.tls_crt)


def _reason(decided: tuple[CertificateMaterial, str] | None) -> str:
    assert decided is not None
    return decided[1]


def _created() -> CertificateMaterial:
    decided = plan(None, HOSTS, NOW, configurations_trust_current_ca=False)
    assert _reason(decided) == "created"
    return decided[0]


def test_created_once_then_left_alone() -> None:
    material = _created()
    leaf = _leaf(material)
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == list(HOSTS)
    leaf.verify_directly_issued_by(_bundle(material)[0])
    assert plan(material, HOSTS, NOW, configurations_trust_current_ca=True) is None
    assert plan(material, HOSTS, NOW, configurations_trust_current_ca=False) is None
    assert CertificateMaterial.from_secret_data(material.secret_data()) == material


def test_a_serving_certificate_near_its_end_is_renewed_by_the_same_ca() -> None:
    material = _created()
    later = NOW + Lifetimes().serving_validity - Lifetimes().serving_renew_before + dt.timedelta(days=1)
    decided = plan(material, HOSTS, later, configurations_trust_current_ca=False)
    assert _reason(decided) == "the serving certificate expires soon"
    renewed = decided[0]
    assert renewed.ca_bundle == material.ca_bundle, "the caBundle the API server holds stays valid"
    assert renewed.tls_crt != material.tls_crt
    _leaf(renewed).verify_directly_issued_by(_bundle(material)[0])


def test_a_new_ca_is_trusted_before_it_issues_what_is_served() -> None:
    short = Lifetimes(ca_validity=dt.timedelta(days=30), serving_validity=dt.timedelta(days=20))
    created = plan(None, HOSTS, NOW, configurations_trust_current_ca=False, lifetimes=short)
    assert created is not None
    material = created[0]
    later = NOW  # the CA expires within Lifetimes().ca_renew_before
    decided = plan(material, HOSTS, later, configurations_trust_current_ca=True)
    assert _reason(decided) == "new CA"
    step1 = decided[0]
    assert _bundle(step1)[1] == _bundle(material)[0], "the old CA stays in the bundle"
    assert step1.tls_crt == material.tls_crt, "the served certificate does not change yet"
    # The configurations do not hold the new bundle yet: nothing changes.
    assert plan(step1, HOSTS, later, configurations_trust_current_ca=False) is None
    # They do: the serving certificate is issued by the new CA; the old CA stays while it is valid.
    decided = plan(step1, HOSTS, later, configurations_trust_current_ca=True)
    assert _reason(decided) == "the serving certificate expires soon"
    step2 = decided[0]
    _leaf(step2).verify_directly_issued_by(_bundle(step1)[0])
    assert len(_bundle(step2)) == 2
    # Once the old CA has expired it leaves the bundle.
    gone = _bundle(material)[0].not_valid_after_utc + dt.timedelta(days=1)
    decided = plan(step2, HOSTS, gone, configurations_trust_current_ca=True)
    assert decided is not None
    assert len(_bundle(decided[0])) == 1


def test_broken_material_is_replaced() -> None:
    material = _created()
    other = _created()
    mismatched = CertificateMaterial(material.ca_bundle, material.ca_key, material.tls_crt, other.tls_key)
    decided = plan(mismatched, HOSTS, NOW, configurations_trust_current_ca=False)
    assert _reason(decided) == "the serving certificate was unusable"
    foreign = CertificateMaterial(material.ca_bundle, material.ca_key, other.tls_crt, other.tls_key)
    decided = plan(foreign, HOSTS, NOW, configurations_trust_current_ca=False)
    assert _reason(decided) == "the serving certificate is not issued by a trusted CA"
    wrong_key = CertificateMaterial(material.ca_bundle, other.ca_key, material.tls_crt, material.tls_key)
    decided = plan(wrong_key, HOSTS, NOW, configurations_trust_current_ca=False)
    assert _reason(decided) == "the CA was unusable: new CA"
    assert _leaf(decided[0]) == _leaf(material), "what is served stays (its CA is still in the bundle)"
    decided = plan(material, service_hosts("renamed", "rr-system"), NOW, configurations_trust_current_ca=True)
    assert _reason(decided) == "the serving certificate names other hosts"
    assert CertificateMaterial.from_secret_data({"ca.crt": "!!"}) is None


def test_files_are_written_and_a_live_context_takes_a_new_pair(tmp_path: Path) -> None:
    material = _created()
    assert write_serving_files(tmp_path, material)
    assert not write_serving_files(tmp_path, material), "unchanged files are not rewritten"
    assert (tmp_path / "tls.key").stat().st_mode & 0o777 == 0o600
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_pair(context, tmp_path / "tls.crt", tmp_path / "tls.key")
    other = _created()
    (tmp_path / "tls.key").write_bytes(other.tls_key)  # half-written: the pair does not match
    try:
        _load_pair(context, tmp_path / "tls.crt", tmp_path / "tls.key")
    except ssl.SSLError:
        pass
    else:
        raise AssertionError("a mismatched pair must not load")
