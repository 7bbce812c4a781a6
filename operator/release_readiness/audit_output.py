"""`kubectl readiness audit` output: text for people, JSON, SARIF 2.1.0 (code scanning) and JUnit XML (CI test
reports). Each renders one AuditReport; nothing here judges anything."""

from __future__ import annotations

import hashlib
import json
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

from release_readiness import __version__
from release_readiness.audit import ApplicationResult, AuditReport, ItemResult, Manifest, Outcome

__all__ = ["FORMATS", "render"]

FORMATS = ("text", "json", "sarif", "junit")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://readiness.dev/docs/ci"
SYMBOLS = {Outcome.PASSED: "✓", Outcome.FAILED: "✗", Outcome.NOT_RUN: "…", Outcome.NOT_APPLICABLE: "-"}


def _title(app: ApplicationResult) -> str:
    return f"{app.namespace}/{app.application} {app.version}"


def _counts(report: AuditReport) -> Counter[Outcome]:
    return Counter(r.outcome for a in report.applications for r in a.items)


def render_text(report: AuditReport) -> str:
    """Findings and passes per application; items not run are counted by what they need."""
    lines = [
        f"Audited {len(report.applications)} application(s) in {report.objects} object(s) with checklist "
        f"{report.checklist.metadata.name} ({len(report.checklist.spec.items)} items)."
    ]
    for app in report.applications:
        workloads = ", ".join(w.ref for w in app.workloads)
        lines.append(
            f"\n{_title(app)} ({workloads}): {app.count(Outcome.PASSED)} passed, {app.count(Outcome.FAILED)} failed, "
            f"{app.count(Outcome.NOT_APPLICABLE)} not applicable, {app.count(Outcome.NOT_RUN)} not run"
        )
        for result in app.items:
            if result.outcome in (Outcome.FAILED, Outcome.PASSED, Outcome.NOT_APPLICABLE):
                lines.append(f"  {SYMBOLS[result.outcome]} {result.item.id:<45} {result.message}".rstrip())
        cluster = [r.item.id for r in app.items if r.outcome == Outcome.NOT_RUN and r.needs == "the cluster"]
        if cluster:
            lines.append(
                f"  {SYMBOLS[Outcome.NOT_RUN]} not run, only the cluster can tell (-o json says why): "
                + ", ".join(cluster)
            )
        others = Counter(_need_kind(r) for r in app.items if r.outcome == Outcome.NOT_RUN and r.needs != "the cluster")
        if others:
            lines.append(
                f"  {SYMBOLS[Outcome.NOT_RUN]} not run, judged in the cluster: "
                + ", ".join(f"{n} need {what}" for what, n in sorted(others.items()))
            )
    if report.notes:
        lines.append("\nNotes")
        lines += [f"  {note}" for note in report.notes]
    counts = _counts(report)
    verdict = "FAILED" if report.findings else "PASSED"
    lines.append(
        f"\n{verdict}: {counts[Outcome.FAILED]} finding(s), {counts[Outcome.PASSED]} passed, "
        f"{counts[Outcome.NOT_RUN]} not run (they need the cluster, Prometheus or a signoff; never counted as passed)"
    )
    return "\n".join(lines) + "\n"


def _need_kind(result: ItemResult) -> str:
    """'CI evidence', 'an attestation', 'Prometheus', 'the rollout' for the summary line."""
    needs = result.needs
    if needs.startswith("CI evidence"):
        return "CI evidence"
    if needs.startswith("an attestation"):
        return "an attestation"
    return needs.split(" (")[0]


def _location_dict(m: Manifest) -> dict[str, Any]:
    return {"file": m.source, "line": m.line, "object": m.ref}


def render_json(report: AuditReport) -> str:
    counts = _counts(report)
    data = {
        "checklist": report.checklist.metadata.name,
        "objects": report.objects,
        "summary": {str(o): counts[o] for o in Outcome},
        "passed": not report.findings,
        "applications": [
            {
                "application": app.application,
                "version": app.version,
                "namespace": app.namespace,
                "workloads": [_location_dict(w) for w in app.workloads],
                "items": [
                    {
                        "id": r.item.id,
                        "section": r.item.section,
                        "title": r.item.title,
                        "required": r.item.required,
                        "check": r.item.check.kind,
                        "outcome": str(r.outcome),
                        "message": r.message,
                        **({"needs": r.needs} if r.needs else {}),
                        **({"locations": [_location_dict(m) for m in r.manifests]} if r.manifests else {}),
                    }
                    for r in app.items
                ],
            }
            for app in report.applications
        ],
        "notes": report.notes,
    }
    return json.dumps(data, indent=2) + "\n"


def _uri(source: str) -> str:
    """A relative URI for a file under the working directory (code scanning resolves it against the checkout)."""
    path = Path(source)
    if path.is_dir():
        path = next(
            (path / n for n in ("kustomization.yaml", "kustomization.yml", "Kustomization") if (path / n).exists()),
            path,
        )
    try:
        shown = os.path.relpath(path)
    except ValueError:
        shown = str(path)
    if shown.startswith(".."):
        shown = str(path.resolve())
    return quote(Path(shown).as_posix(), safe="/._-~")


def render_sarif(report: AuditReport) -> str:
    """One rule per checklist item that ran; one result per failed item and application, located at the
    manifests of the workloads it names (level error for required items, warning for the others)."""
    ran = {r.item.id: r.item for a in report.applications for r in a.items if r.outcome != Outcome.NOT_RUN}
    rules = [
        {
            "id": item.id,
            "name": item.id,
            "shortDescription": {"text": item.title},
            "fullDescription": {"text": item.rationale or item.title},
            "help": {
                "text": f"{item.section}: {item.title} (check: {item.check.kind} {item.check.workload or ''})".replace(
                    " )", ")"
                )
            },
            "defaultConfiguration": {"level": "error" if item.required else "warning"},
            "properties": {"section": item.section, "check": item.check.kind, "required": item.required},
        }
        for item in report.checklist.spec.items
        if item.id in ran
    ]
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = []
    for app, result in report.findings:
        locations = []
        for m in result.manifests:
            physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(m.source)}}
            if m.line:
                physical["region"] = {"startLine": m.line}
            locations.append(
                {
                    "physicalLocation": physical,
                    "logicalLocations": [
                        {"name": m.name, "fullyQualifiedName": f"{m.kind}/{m.namespace}/{m.name}", "kind": "resource"}
                    ],
                }
            )
        key = f"{result.item.id}\n{app.namespace}/{app.application}"
        results.append(
            {
                "ruleId": result.item.id,
                "ruleIndex": index[result.item.id],
                "level": "error" if result.item.required else "warning",
                "message": {"text": f"{_title(app)}: {result.message}"},
                "locations": locations,
                "partialFingerprints": {"readinessFinding/v1": hashlib.sha256(key.encode()).hexdigest()},
            }
        )
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kubectl-readiness",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "toolExecutionNotifications": [
                            {"level": "note", "message": {"text": note}} for note in report.notes
                        ],
                    }
                ],
                "results": results,
                "properties": {"checklist": report.checklist.metadata.name},
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    """Characters XML 1.0 cannot carry (from hostile manifests) are replaced, so the report always parses."""
    return _NOT_XML.sub("\ufffd", text)


def render_junit(report: AuditReport) -> str:
    """One testsuite per application, one testcase per item: failures for findings, skipped for items not run
    and not applicable ones (never a pass)."""
    counts = _counts(report)
    root = ET.Element(
        "testsuites",
        name="kubectl readiness audit",
        tests=str(sum(counts.values())),
        failures=str(counts[Outcome.FAILED]),
        errors="0",
        skipped=str(counts[Outcome.NOT_RUN] + counts[Outcome.NOT_APPLICABLE]),
    )
    for app in report.applications:
        suite = ET.SubElement(
            root,
            "testsuite",
            name=_xml_text(_title(app)),
            tests=str(len(app.items)),
            failures=str(app.count(Outcome.FAILED)),
            errors="0",
            skipped=str(app.count(Outcome.NOT_RUN) + app.count(Outcome.NOT_APPLICABLE)),
        )
        for result in app.items:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=_xml_text(f"{app.namespace}.{app.application}"),
                name=_xml_text(f"{result.item.id}: {result.item.title}"),
            )
            if result.outcome == Outcome.FAILED:
                failure = ET.SubElement(case, "failure", message=_xml_text(result.message[:1024]), type="finding")
                where = "\n".join(f"{m.ref} ({m.source}:{m.line or '-'})" for m in result.manifests)
                failure.text = _xml_text(f"{result.message}\n{where}")
            elif result.outcome == Outcome.NOT_RUN:
                ET.SubElement(
                    case, "skipped", message=_xml_text(f"not run offline: needs {result.needs}: {result.message}")
                )
            elif result.outcome == Outcome.NOT_APPLICABLE:
                ET.SubElement(case, "skipped", message=_xml_text(f"not applicable: {result.message}"))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render(report: AuditReport, fmt: str) -> str:
    renderers = {"text": render_text, "json": render_json, "sarif": render_sarif, "junit": render_junit}
    return renderers[fmt](report)
