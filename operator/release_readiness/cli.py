"""`kubectl readiness`: read, sign and wait on releases from kubectl (an entry point named kubectl-readiness).

It follows kubectl's conventions: flags go before or after the command, and kubectl's global flags work
(-n, --context, --kubeconfig, --as, --as-group, --as-uid, --request-timeout; -A for `list`). Times are
durations like kubectl's (30s, 5m, 1h30m; a bare number is seconds).
Signoffs are created as the caller: the identity is the API server's, not the command's (with --as, the
impersonated user's, if the API server lets you impersonate).
`list` and `status` take kubectl's -o (name, wide, json, yaml). `completion bash|zsh` prints a completion
script; with kubectl_complete-readiness on PATH, `kubectl readiness <TAB>` completes through kubectl.
Errors from the API server are printed as one sentence; `wait` exits 0 when Ready, 1 on timeout or
veto, 2 on error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from release_readiness import GROUP, VERSION, __version__, completion
from release_readiness.api import ReadinessChecklist, ReleaseReadiness, ReleaseSignoff
from release_readiness.audit import DEFAULT_CHECKLIST_PATH, InputError, Manifest, audit, load_checklist, parse_documents
from release_readiness.audit_output import FORMATS, render
from release_readiness.clierror import CliError
from release_readiness.constants import SATISFIED
from release_readiness.dashboard.command import add_dashboard_command
from release_readiness.evidence import (
    MAX_REPORT_BYTES,
    ReportError,
    ci_run_url,
    evidence_items,
    parse_mapping,
    read_metrics,
)
from release_readiness.kube import authenticated_username
from release_readiness.report import render_json, render_markdown
from release_readiness.seed import SEED_PATH

__all__ = ["CliError", "complete_main", "main"]

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
SYMBOLS = {"Passed": "✓", "Failed": "✗", "Pending": "…", "Waived": "~", "NotApplicable": "-"}
COLOURS = {
    "Passed": "32",
    "Failed": "31",
    "Pending": "33",
    "Waived": "36",
    "NotApplicable": "90",
    "Approved": "32",
    "Missing": "33",
    "Stale": "35",
    "Rejected": "31",
}


class Api:
    def __init__(self, args: argparse.Namespace) -> None:
        kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG") or None
        try:
            config.load_kube_config(config_file=kubeconfig, context=args.context)
            _, active = config.list_kube_config_contexts(config_file=kubeconfig)
            if args.context:
                contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
                active = next((c for c in contexts if c["name"] == args.context), active)
        except (config.ConfigException, FileNotFoundError) as err:
            raise CliError(f"cannot load the kubeconfig ({err}); set --kubeconfig or KUBECONFIG") from None
        self.namespace: str = args.namespace or (active.get("context") or {}).get("namespace") or "default"
        self.client = client.ApiClient()
        _impersonate_and_time_out(self.client, impersonation(args), args.request_timeout)
        self.custom = client.CustomObjectsApi(self.client)

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return _dict(
            self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace or self.namespace, plural, name)
        )

    def release(self, name: str) -> ReleaseReadiness:
        return ReleaseReadiness.model_validate(self.get("releasereadinesses", name))

    def checklist(self, name: str) -> ReadinessChecklist:
        body = self.custom.get_cluster_custom_object(GROUP, VERSION, "readinesschecklists", name)
        return ReadinessChecklist.model_validate(body)

    def signoffs(self, release: str) -> list[ReleaseSignoff]:
        body = _dict(self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "releasesignoffs"))
        out = [ReleaseSignoff.model_validate(i) for i in body.get("items", [])]
        return [s for s in out if s.spec.release == release]

    def whoami(self) -> str:
        """The caller's user name as the API server authenticates it (a SelfSubjectReview)."""
        username = authenticated_username(self.client)
        if username is None:
            raise CliError("the API server did not say who you are (SelfSubjectReview)")
        return username

    def create_signoff(self, release: str, spec: dict[str, Any]) -> dict[str, Any]:
        name = f"{release[:40].rstrip('.-')}-{uuid.uuid4().hex[:6]}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ReleaseSignoff",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"release": release, **spec},
        }
        return _dict(
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "releasesignoffs", body)
        )


class ClusterLookups:
    """What shell completion reads from the cluster, through the flags typed so far (--kubeconfig, --context,
    -n, --as): quick (a 5 s request timeout) and silent (nothing offered when the cluster cannot say)."""

    def __init__(self, flags: dict[str, str]) -> None:
        self._flags = flags
        self._api: Api | None = None

    def _connect(self, namespace: str | None = None) -> Api:
        if self._api is None:
            f = self._flags
            args = argparse.Namespace(
                kubeconfig=f.get("kubeconfig"), context=f.get("context"), namespace=f.get("namespace"),
                as_user=f.get("as_user"), as_group=[f["as_group"]] if "as_group" in f else [],
                as_uid=f.get("as_uid"), request_timeout=5.0,
            )  # fmt: skip
            self._api = Api(args)
        if namespace:
            self._api.namespace = namespace
        return self._api

    def namespaces(self) -> list[str]:
        try:
            found = client.CoreV1Api(self._connect().client).list_namespace()
        except Exception:
            return []
        return sorted(str(n.metadata.name) for n in found.items if n.metadata)

    def contexts(self) -> list[str]:
        try:
            contexts, _ = config.list_kube_config_contexts(
                config_file=self._flags.get("kubeconfig") or os.environ.get("KUBECONFIG") or None
            )
        except Exception:
            return []
        return sorted(str(c["name"]) for c in contexts)

    def releases(self, namespace: str | None) -> list[str]:
        try:
            api = self._connect(namespace)
            body = _dict(api.custom.list_namespaced_custom_object(GROUP, VERSION, api.namespace, "releasereadinesses"))
        except Exception:
            return []
        return sorted(str(i["metadata"]["name"]) for i in body.get("items", []))

    def checklists(self) -> list[str]:
        try:
            body = _dict(self._connect().custom.list_cluster_custom_object(GROUP, VERSION, "readinesschecklists"))
        except Exception:
            return []
        return sorted(str(i["metadata"]["name"]) for i in body.get("items", []))

    def _checklist(self, namespace: str | None, release: str) -> ReadinessChecklist | None:
        try:
            api = self._connect(namespace)
            return api.checklist(api.release(release).spec.checklist)
        except Exception:
            return None

    def items(self, namespace: str | None, release: str) -> list[str]:
        checklist = self._checklist(namespace, release)
        return [i.id for i in checklist.spec.items] if checklist else []

    def roles(self, namespace: str | None, release: str) -> list[str]:
        checklist = self._checklist(namespace, release)
        return [a.role for a in checklist.spec.approvals] if checklist else []


def impersonation(args: argparse.Namespace) -> list[tuple[str, str]]:
    """kubectl's --as/--as-group/--as-uid as the API server's impersonation headers (one header per group)."""
    if (args.as_group or args.as_uid) and not args.as_user:
        raise CliError("--as-group and --as-uid need --as USER (e.g. --as erin --as-group eng-leads)")
    headers = [("Impersonate-User", args.as_user)] if args.as_user else []
    headers += [("Impersonate-Group", group) for group in args.as_group or []]
    headers += [("Impersonate-Uid", args.as_uid)] if args.as_uid else []
    return headers


def _impersonate_and_time_out(api_client: client.ApiClient, headers: list[tuple[str, str]], timeout: float) -> None:
    """Add the impersonation headers and the request timeout to every request the client sends. The generated
    client keeps headers in a dict (one value per name), so repeated Impersonate-Group headers are added where
    the request leaves it, in urllib3."""
    pool = api_client.rest_client.pool_manager
    send = pool.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        merged = urllib3.HTTPHeaderDict(kwargs.get("headers") or {})
        for name, value in headers:
            merged.add(name, value)
        kwargs["headers"] = merged
        if timeout and kwargs.get("timeout") is None:
            kwargs["timeout"] = timeout
        return send(method, url, *args, **kwargs)

    pool.request = request  # type: ignore[method-assign]


def _dict(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CliError(f"unexpected answer from the API server: {value!r}")
    return value


def explain(err: ApiException) -> str:
    """One readable sentence for an API error."""
    message = ""
    try:
        message = json.loads(err.body or "{}").get("message", "")
    except ValueError:
        message = str(err.body or "")
    match = re.match(r'admission webhook "([^"]+)" denied the request: (.*)', message, re.S)
    if match:
        return f"refused by {match.group(1)}: {match.group(2).strip()}"
    if err.status == 403:
        return f"forbidden: {message or err.reason}"
    if err.status == 404:
        return f"not found: {message or err.reason}"
    return f"the API server said {err.status} {err.reason}: {message}".rstrip(": ")


def _colour(text: str, state: str, enabled: bool) -> str:
    code = COLOURS.get(state)
    return f"\033[{code}m{text}\033[0m" if enabled and code else text


DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: str, bare_seconds: bool = True) -> float:
    """Seconds in a kubectl-style duration: 30s, 5m, 1h30m, 500ms, 7d; a bare number is seconds (as before) when
    `bare_seconds`."""
    text = value.strip()
    if bare_seconds and re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{value!r} is not a duration")
    return sum(float(n) * DURATION_UNITS[u] for n, u in parts)


def duration(flag: str) -> Any:
    """An argparse type for a duration flag; the error names the flag and gives examples."""

    def parse(value: str) -> float:
        try:
            return parse_duration(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a duration: use e.g. {flag} 30s, 5m or 1h30m (a bare number is seconds)"
            ) from None

    parse.__name__ = "duration"
    return parse


def _expires(value: str, now: dt.datetime) -> dt.datetime:
    try:
        return now + dt.timedelta(seconds=parse_duration(value, bare_seconds=False))
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"--expires {value!r} is neither a date nor a duration: use e.g. --expires 7d, 36h, 2026-12-01 or "
            "2026-12-01T18:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


# -- commands ------------------------------------------------------------------------------------------


def cmd_version(args: argparse.Namespace) -> int:
    print(f"kubectl-readiness {__version__}")
    return EXIT_OK


def cmd_completion(args: argparse.Namespace) -> int:
    print(completion.script(args.shell), end="")
    return EXIT_OK


LOCAL_COMMANDS = {"version": cmd_version, "completion": cmd_completion}  # need no cluster


def cmd_init(api: Api, args: argparse.Namespace) -> int:
    name = args.name or f"{args.application}-{args.version}"
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ReleaseReadiness",
        "metadata": {"name": name, "namespace": api.namespace},
        "spec": {
            "application": args.application,
            "version": args.version,
            "checklist": args.checklist,
            "candidate": {"namespace": args.candidate_namespace},
        },
    }
    api.custom.create_namespaced_custom_object(GROUP, VERSION, api.namespace, "releasereadinesses", body)
    print(f"releasereadiness {api.namespace}/{name} created; `kubectl readiness status {name}` shows its checklist")
    return EXIT_OK


KIND_NAME = f"releasereadiness.{GROUP}"  # kubectl's `-o name` prefix


def age(created: dt.datetime | None, now: dt.datetime) -> str:
    """kubectl's short age: 45s, 12m, 5h, 3d."""
    if created is None:
        return "<unknown>"
    seconds = max(0, int((now - created).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3 * 3600:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def print_objects(objects: list[dict[str, Any]], output: str, single: bool = False) -> bool:
    """Print objects as kubectl's -o name, json or yaml do (several as a v1 List); False for other outputs."""
    if output == "name":
        for obj in objects:
            print(f"{KIND_NAME}/{obj['metadata']['name']}")
        return True
    if output not in ("json", "yaml"):
        return False
    data: dict[str, Any] = (
        objects[0] if single else {"apiVersion": "v1", "kind": "List", "items": objects, "metadata": {}}
    )
    print(json.dumps(data, indent=4) if output == "json" else yaml.safe_dump(data, sort_keys=False).rstrip("\n"))
    return True


def list_rows(raws: list[dict[str, Any]], wide: bool, now: dt.datetime) -> list[tuple[str, ...]]:
    """The table `list` prints (with -o wide: checklist, candidate, fingerprint and age too)."""
    header = ("NAMESPACE", "NAME", "APPLICATION", "VERSION", "READY", "PASSED", "APPROVALS", "REASON")
    extra = ("CHECKLIST", "CANDIDATE", "FINGERPRINT", "AGE")
    rows: list[tuple[str, ...]] = [header + extra if wide else header]
    for raw in raws:
        r = ReleaseReadiness.model_validate(raw)
        ready = r.status.condition("Ready") if r.status else None
        summary = r.status.summary if r.status else None
        row: tuple[str, ...] = (
            r.metadata.namespace or "",
            r.metadata.name,
            r.spec.application,
            r.spec.version,
            ready.status if ready else "Unknown",
            summary.progress if summary else "-",
            summary.approvals if summary else "-",
            ready.reason if ready else "",
        )
        if wide:
            candidate = r.status.candidate if r.status else None
            row += (
                r.spec.checklist,
                r.spec.candidate.namespace,
                (candidate.fingerprint if candidate else "") or "<none>",
                age(r.metadata.creation_timestamp, now),
            )
        rows.append(row)
    return rows


def cmd_list(api: Api, args: argparse.Namespace) -> int:
    if args.all_namespaces:
        body = _dict(api.custom.list_cluster_custom_object(GROUP, VERSION, "releasereadinesses"))
    else:
        body = _dict(api.custom.list_namespaced_custom_object(GROUP, VERSION, api.namespace, "releasereadinesses"))
    raws: list[dict[str, Any]] = body.get("items", [])
    for raw in raws:  # kubectl's List items carry their kind, the API's list items do not
        raw.setdefault("apiVersion", f"{GROUP}/{VERSION}")
        raw.setdefault("kind", "ReleaseReadiness")
    if print_objects(raws, args.output or ""):
        return EXIT_OK
    if not raws:
        where = "in any namespace" if args.all_namespaces else f"in namespace {api.namespace}"
        print(f"No releases found {where}.", file=sys.stderr)
        return EXIT_OK
    rows = list_rows(raws, args.output == "wide", dt.datetime.now(dt.UTC))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def cmd_status(api: Api, args: argparse.Namespace) -> int:
    data = api.get("releasereadinesses", args.release)
    if print_objects([data], args.output, single=True):
        return EXIT_OK
    release = ReleaseReadiness.model_validate(data)
    wide = args.output == "wide"
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    checklist = api.checklist(release.spec.checklist)
    status = release.status
    ready = status.condition("Ready") if status else None
    verdict = "Ready" if ready and ready.status == "True" else "Not ready"
    print(
        f"{release.metadata.namespace}/{release.metadata.name}: {release.spec.application} {release.spec.version} "
        f"— {_colour(verdict, 'Passed' if verdict == 'Ready' else 'Failed', colour)}"
        + (f" ({ready.reason})" if ready else " (not evaluated yet)")
    )
    if status and status.summary:
        s = status.summary
        print(
            f"{s.passed}/{s.total} passed, {s.failed} failed, {s.pending} pending, {s.waived} waived; "
            f"approvals {s.approvals}; {s.required_outstanding} required item(s) outstanding"
        )
    candidate = status.candidate if status else None
    if candidate is not None and candidate.fingerprint:
        print(f"candidate {candidate.fingerprint} ({len(candidate.workloads)} workload(s) in {candidate.namespace})")
    elif status is not None:
        print("candidate not inspected (no workload matches): nothing to approve yet")
    items = {i.id: i for i in (status.items if status else [])}
    section = None
    for item in checklist.spec.items:
        state = items.get(item.id)
        if args.outstanding and state is not None and state.state in SATISFIED:
            continue
        if item.section != section:
            section = item.section
            print(f"\n{section}")
        name = state.state if state else "Pending"
        checked = f"{state.checked_at:%Y-%m-%d %H:%M:%S} " if wide and state and state.checked_at else ""
        line = f"  {SYMBOLS.get(name, '?')} {item.id:<45} {name:<8} {checked}{state.message if state else ''}"
        print(_colour(line.rstrip(), name, colour))
    print("\nApprovals")
    for approval in status.approvals if status else []:
        who = f"{approval.by} at {approval.at:%Y-%m-%d %H:%M} UTC" if approval.by and approval.at else approval.message
        if approval.state in ("Rejected", "Stale") and approval.message:
            who += f": {approval.message}"
        print(_colour(f"  {approval.role:<20} {approval.state:<9} {who}", approval.state, colour))
    if status and status.refused_signoffs:
        print("\nNot counted")
        for refused in status.refused_signoffs:
            print(_colour(f"  {refused.name:<30} {refused.signer}: {refused.reason}", "Failed", colour))
    return EXIT_OK


def cmd_report(api: Api, args: argparse.Namespace) -> int:
    release = api.release(args.release)
    checklist = api.checklist(release.spec.checklist)
    if args.format == "json":
        print(json.dumps(render_json(release, checklist), indent=2, default=str))
    else:
        # Only this release object's signoffs (not those of a deleted release of the same name).
        signoffs = [s for s in api.signoffs(args.release) if s.spec.release_uid == release.metadata.uid]
        print(render_markdown(SEED_PATH.read_text(), release, checklist, signoffs), end="")
    return EXIT_OK


def _reviewed(api: Api, args: argparse.Namespace) -> str | None:
    """The candidate fingerprint the signer vouches for (spec.expectedFingerprint): --fingerprint, or for approve
    and attest the one the release shows now (read just before signing). A veto is about the release, whatever
    the candidate: it sends one only when asked (--fingerprint), so it is always recordable."""
    if args.fingerprint:
        return str(args.fingerprint)
    if args.command == "reject":
        return None
    try:
        status = api.release(args.release).status
    except ApiException:
        return None  # e.g. not found: creating the signoff says so
    fingerprint = status.candidate.fingerprint if status and status.candidate else ""
    return fingerprint or None


def cmd_sign(api: Api, args: argparse.Namespace) -> int:
    spec: dict[str, Any] = {}
    if args.command in ("approve", "reject"):
        spec = {"role": args.role, "decision": "approve" if args.command == "approve" else "reject"}
    else:
        entry = (
            {"id": args.item}
            | ({"value": args.value} if args.value is not None else {})
            | ({"evidence": args.evidence} if args.evidence else {})
        )
        spec = {"items": [entry]}
    if args.comment:
        spec["comment"] = args.comment
    reviewed = _reviewed(api, args)
    if reviewed:
        spec["expectedFingerprint"] = reviewed
    created = api.create_signoff(args.release, spec)
    signer = created["spec"].get("signer", {}).get("username", "?")
    if args.command == "approve":
        what = f"approved as {args.role}"
    elif args.command == "reject":
        what = f"vetoed as {args.role}"
    else:
        what = f"attested {args.item}"
    candidate = created["spec"].get("candidateFingerprint")
    bound = f" for candidate {candidate}" if candidate else ""
    print(f"releasesignoff {api.namespace}/{created['metadata']['name']}: {signer} {what}{bound}")
    return EXIT_OK


def cmd_waive(api: Api, args: argparse.Namespace) -> int:
    now = dt.datetime.now(dt.UTC)
    expires = _expires(args.expires, now)
    spec = {
        "role": args.role,
        "decision": "waive",
        "items": [{"id": item} for item in args.items],
        "comment": args.reason,
        "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    created = api.create_signoff(args.release, spec)
    signer = created["spec"].get("signer", {}).get("username", "?")
    print(
        f"releasesignoff {api.namespace}/{created['metadata']['name']}: {signer} waived {', '.join(args.items)} "
        f"as {args.role} until {expires:%Y-%m-%dT%H:%M:%SZ}; approvals signed before it turn Stale and must be "
        "signed again"
    )
    return EXIT_OK


def cmd_withdraw(api: Api, args: argparse.Namespace) -> int:
    """Delete the caller's own vetoes (or all their signoffs) for a role: only a veto's signer can lift it."""
    me = api.whoami()
    mine = [
        s
        for s in api.signoffs(args.release)
        if s.spec.signer is not None
        and s.spec.signer.username == me
        and s.spec.role == args.role
        and (args.all or s.spec.decision == "reject")
    ]
    if not mine:
        what = "signoffs" if args.all else "vetoes"
        raise CliError(f"{me} has no {what} as {args.role} on {api.namespace}/{args.release}")
    for signoff in mine:
        api.custom.delete_namespaced_custom_object(
            GROUP, VERSION, api.namespace, "releasesignoffs", signoff.metadata.name
        )
        print(f"releasesignoff {api.namespace}/{signoff.metadata.name} ({signoff.spec.decision}) withdrawn by {me}")
    return EXIT_OK


def cmd_evidence(args: argparse.Namespace) -> int:
    """Record evidence items from CI's reports in one ReleaseSignoff (as the caller: CI's identity). Every report
    is read and every key mapped before anything is signed: one bad report, and nothing is. With --dry-run and
    --checklist FILE it needs no cluster (a pull request's pipeline checks its mapping)."""
    if not args.mappings:
        raise CliError("evidence needs --from KEY=FORMAT:METRIC:FILE (repeatable), e.g. --from "
                       "coverage-percent=cobertura:line-percent:coverage.xml")  # fmt: skip
    run_url = args.run_url or ci_run_url(os.environ)
    if run_url is not None and (len(run_url) > 1024 or not re.match(r"^https?://\S+$", run_url)):
        raise CliError(f"--run-url {run_url[:80]!r} is not an http(s) URL of at most 1024 characters")
    try:
        mappings = [parse_mapping(text) for text in args.mappings]
        reports = {}
        for m in mappings:
            if (m.format, m.file) not in reports:
                data = _read_bytes(Path(m.file), m.file)
                reports[(m.format, m.file)] = read_metrics(m.format, data, m.file)
        if args.checklist:
            if not args.dry_run:
                raise CliError("--checklist FILE is for --dry-run: signing maps onto the release's own checklist")
            checklist = load_checklist(_read_text(Path(args.checklist), args.checklist), args.checklist)
            api = None
        else:
            api = Api(args)
            checklist = api.checklist(api.release(args.release).spec.checklist)
        items = evidence_items(checklist, mappings, reports, run_url)
    except (ReportError, InputError) as err:
        raise CliError(f"{err}; nothing signed") from None
    for item in items:
        src = item["source"]
        what = f"{src['metric']} of {src['format']} {src['file']}, {src['digest'][:19]}…"
        print(f"  {item['id']} = {item['value']}  ({what})")
    if args.dry_run or api is None:
        print(f"dry run: {len(items)} item(s) not signed")
        return EXIT_OK
    comment = "evidence read from CI reports" + (f" of {run_url}" if run_url else "")
    spec: dict[str, Any] = {"items": items, "comment": comment}
    reviewed = _reviewed(api, args)
    if reviewed:
        spec["expectedFingerprint"] = reviewed
    created = api.create_signoff(args.release, spec)
    signer = created["spec"].get("signer", {}).get("username", "?")
    candidate = created["spec"].get("candidateFingerprint")
    bound = f" for candidate {candidate}" if candidate else ""
    print(
        f"releasesignoff {api.namespace}/{created['metadata']['name']}: {signer} recorded {len(items)} evidence "
        f"item(s){bound}"
    )
    return EXIT_OK


LOCAL_COMMANDS["evidence"] = cmd_evidence  # connects itself, unless a dry run maps onto a checklist file


def _read_bytes(path: Path, shown: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_REPORT_BYTES + 1)  # read_metrics refuses more, naming the file
    except OSError as err:
        raise CliError(f"cannot read {shown}: {err.strerror or err}; nothing signed") from None
    return data


def cmd_wait(api: Api, args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    last = ""
    while True:
        release = api.release(args.release)
        status = release.status
        ready = status.condition("Ready") if status else None
        stalled = status.condition("Stalled") if status else None
        summary = status.summary if status else None
        progress = (
            f"{summary.progress} passed, approvals {summary.approvals}, "
            f"{summary.required_outstanding} required outstanding"
            if summary
            else "not evaluated yet"
        )
        line = f"{progress} — {ready.reason if ready else 'waiting'}"
        if line != last:
            print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {release.metadata.name}: {line}", flush=True)
            last = line
        if (
            ready is not None
            and ready.status == "True"
            and status
            and status.observed_generation == release.metadata.generation
        ):
            print(f"{release.metadata.name} is Ready")
            return EXIT_OK
        if stalled is not None and stalled.status == "True" and stalled.reason == "Vetoed":
            print(f"{release.metadata.name} is vetoed: {stalled.message}", file=sys.stderr)
            return EXIT_FAILED
        if time.monotonic() >= deadline:
            print(f"timed out after {args.timeout:g}s: {ready.message if ready else 'not evaluated'}", file=sys.stderr)
            return EXIT_FAILED
        time.sleep(min(args.interval, max(0.1, deadline - time.monotonic())))


MAX_INPUT_BYTES = 64 * 1024 * 1024
"""Largest manifest input read from one file, stdin or a kustomize rendering."""
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def _read_text(path: Path, shown: str) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as err:
        raise CliError(f"cannot read {shown}: {err.strerror or err}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise CliError(f"{shown} is larger than {MAX_INPUT_BYTES // 2**20} MiB; audit it in parts")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CliError(f"{shown} is not UTF-8 text (byte {err.start}); pass YAML or JSON manifests") from None


def read_manifests(filenames: Sequence[str], kustomizations: Sequence[str]) -> list[Manifest]:
    """The objects of every -f FILE|DIR|- (a directory: its .yaml, .yml and .json files, in name order) and every
    -k DIR (rendered by `kubectl kustomize`)."""
    out: list[Manifest] = []
    for name in filenames:
        if name == "-":
            data = sys.stdin.read(MAX_INPUT_BYTES + 1)
            if len(data) > MAX_INPUT_BYTES:
                raise CliError(f"stdin is larger than {MAX_INPUT_BYTES // 2**20} MiB; audit it in parts")
            out += parse_documents(data, "stdin")
            continue
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
            if not files:
                raise CliError(f"-f {name}: the directory has no .yaml, .yml or .json file")
            for file in files:
                out += parse_documents(_read_text(file, str(file)), str(file))
        else:
            out += parse_documents(_read_text(path, name), name)
    for directory in kustomizations:
        kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
        if not kubectl:
            raise CliError(f"-k {directory} needs kubectl on PATH (it runs `kubectl kustomize {directory}`)")
        proc = subprocess.run([kubectl, "kustomize", directory], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise CliError(f"kubectl kustomize {directory} failed: {reason}")
        if len(proc.stdout) > MAX_INPUT_BYTES:
            raise CliError(f"kubectl kustomize {directory} rendered more than {MAX_INPUT_BYTES // 2**20} MiB")
        out += parse_documents(proc.stdout, directory, lines=False)
    return out


def _audit_checklist(args: argparse.Namespace) -> ReadinessChecklist:
    """--checklist: a file, or the name of a ReadinessChecklist in the cluster; default: the shipped one."""
    if args.checklist is None:
        return load_checklist(DEFAULT_CHECKLIST_PATH.read_text(), "the shipped pre-production checklist")
    path = Path(args.checklist)
    if path.is_file():
        return load_checklist(_read_text(path, args.checklist), args.checklist)
    if path.suffix in MANIFEST_SUFFIXES or "/" in args.checklist:
        raise CliError(f"--checklist {args.checklist}: no such file (give a file or a ReadinessChecklist's name)")
    return Api(args).checklist(args.checklist)


def cmd_audit(args: argparse.Namespace) -> int:
    """The checklist's checks over manifests, offline: exit 0 when everything that ran passed, 1 on findings,
    2 on errors. Items that need the cluster, Prometheus or a signoff are reported as not run."""
    if not args.filename and not args.kustomize:
        raise CliError("audit needs manifests: -f FILE|DIR|- (repeatable) or -k DIR")
    if args.filename.count("-") > 1:
        raise CliError("-f - (stdin) can be given once")
    try:
        manifests = read_manifests(args.filename, args.kustomize)
        checklist = _audit_checklist(args)
        report = audit(manifests, checklist, dt.datetime.now(dt.UTC), args.namespace or "default")
    except InputError as err:
        raise CliError(str(err)) from None
    sys.stdout.write(render(report, args.output))
    return report.exit_code


LOCAL_COMMANDS["audit"] = cmd_audit  # the cluster only when --checklist names one there


# -- parsing -------------------------------------------------------------------------------------------------


def _signing_commands(sub: Callable[..., argparse.ArgumentParser]) -> None:
    """approve, reject, attest, waive, withdraw: each creates (or deletes) the caller's own ReleaseSignoffs."""
    reviewed = (
        "the candidate fingerprint you reviewed, as `status` shows it; refused if the candidate changed since "
        "(approve and attest default to the release's current one; reject sends one only when given)"
    )
    for verb, helptext in (("approve", "sign a role's approval"), ("reject", "veto as a role")):
        s = sub(verb, help=helptext)
        s.add_argument("release")
        s.add_argument("--role", required=True)
        s.add_argument("--comment", required=verb == "reject")
        s.add_argument("--fingerprint", help=reviewed)
        s.set_defaults(fn=cmd_sign)

    at = sub("attest", help="attest an item (with a value for evidence items)")
    at.add_argument("release")
    at.add_argument("item")
    at.add_argument("--value")
    at.add_argument("--evidence", help="URL of the evidence")
    at.add_argument("--comment")
    at.add_argument("--fingerprint", help=reviewed)
    at.set_defaults(fn=cmd_sign)

    wv = sub("waive", help="waive items until a date, as a role the checklist lets waive them")
    wv.add_argument("release")
    wv.add_argument("items", nargs="+", metavar="item")
    wv.add_argument("--role", required=True, help="the waiving role (the checklist's spec.rules.waivers)")
    wv.add_argument("--reason", required=True)
    wv.add_argument(
        "--expires",
        required=True,
        help="a duration (7d, 36h) or a date (2026-12-01, 2026-12-01T18:00:00Z), within maxWaiverDays",
    )
    wv.set_defaults(fn=cmd_waive)

    wd = sub("withdraw", help="withdraw your veto for a role (only its signer can)")
    wd.add_argument("release")
    wd.add_argument("--role", required=True)
    wd.add_argument("--all", action="store_true", help="withdraw every signoff you made as this role, not only vetoes")
    wd.set_defaults(fn=cmd_withdraw)


GLOBAL_FLAGS = ("namespace", "all_namespaces", "context", "kubeconfig", "as_user", "as_group", "as_uid")


def _global_flags(prefix: str) -> argparse.ArgumentParser:
    """kubectl's global flags, accepted before the command (dests prefixed `prefix`) and after it: argparse would
    let a subcommand's defaults overwrite what was given before it, so the two are kept apart and merged."""
    g = argparse.ArgumentParser(add_help=False)
    flags = g.add_argument_group("kubectl flags (before or after the command)")
    flags.add_argument("-n", "--namespace", dest=f"{prefix}namespace", help="namespace (default: the context's)")
    flags.add_argument(
        "-A", "--all-namespaces", dest=f"{prefix}all_namespaces", action="store_true", default=None,
        help="list, dashboard: in every namespace",
    )  # fmt: skip
    flags.add_argument("--context", dest=f"{prefix}context", help="kubeconfig context")
    flags.add_argument("--kubeconfig", dest=f"{prefix}kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    flags.add_argument("--as", dest=f"{prefix}as_user", metavar="USER", help="impersonate USER")
    flags.add_argument(
        "--as-group", dest=f"{prefix}as_group", metavar="GROUP", action="append", help="impersonate GROUP (repeatable)"
    )
    flags.add_argument("--as-uid", dest=f"{prefix}as_uid", metavar="UID", help="impersonate UID")
    flags.add_argument(
        "--request-timeout", dest=f"{prefix}request_timeout", type=duration("--request-timeout"), metavar="DURATION",
        help="per request to the API server, e.g. 30s (default 0: none)",
    )  # fmt: skip
    return g


def merge_global_flags(args: argparse.Namespace) -> argparse.Namespace:
    """One value per global flag: the one after the command wins; --as-group values from both sides add up."""
    for name in (*GLOBAL_FLAGS, "request_timeout"):
        before = getattr(args, f"top_{name}", None)
        after = getattr(args, name, None)
        delattr(args, f"top_{name}")
        if name == "as_group":
            setattr(args, name, [*(before or []), *(after or [])])
        else:
            setattr(args, name, after if after is not None else before)
    args.all_namespaces = bool(args.all_namespaces)
    args.request_timeout = args.request_timeout or 0.0
    if args.all_namespaces and args.command not in ("list", "dashboard"):
        raise CliError(
            f"-A/--all-namespaces applies to `list` and `dashboard` only, not `{args.command}`: use -n NAMESPACE"
        )
    return args


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubectl readiness",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_flags("top_")],
    )
    common = _global_flags("")
    subparsers = p.add_subparsers(dest="command", required=True)

    def sub(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """A command that accepts the global flags after it too."""
        parsed: argparse.ArgumentParser = subparsers.add_parser(name, parents=[common], **kwargs)
        return parsed

    sub("version", help="print the plugin's version").set_defaults(fn=cmd_version)
    comp = sub("completion", help="print a bash or zsh completion script: source <(kubectl readiness completion bash)")
    comp.add_argument("shell", choices=completion.SHELLS)
    comp.set_defaults(fn=cmd_completion)

    init = sub("init", help="create a ReleaseReadiness")
    init.add_argument("application")
    init.add_argument("version")
    init.add_argument("--candidate-namespace", required=True, help="where the release candidate runs")
    init.add_argument("--checklist", default="pre-production")
    init.add_argument("--name", help="default: APPLICATION-VERSION")
    init.set_defaults(fn=cmd_init)

    ls = sub("list", help="list releases (-A: in every namespace)")
    ls.add_argument("-o", "--output", choices=["wide", "name", "json", "yaml"], help="as kubectl get -o")
    ls.set_defaults(fn=cmd_list)

    st = sub("status", help="items by section, approvals and the summary")
    st.add_argument("release")
    st.add_argument(
        "-o", "--output", choices=["text", "wide", "name", "json", "yaml"], default="text",
        help="text (default), wide (with each item's check time), or as kubectl get -o",
    )  # fmt: skip
    st.add_argument("--outstanding", action="store_true", help="only what is not yet satisfied")
    st.set_defaults(fn=cmd_status)

    rp = sub("report", help="the filled-in checklist")
    rp.add_argument("release")
    rp.add_argument("--format", choices=["markdown", "json"], default="markdown")
    rp.set_defaults(fn=cmd_report)

    _signing_commands(sub)

    au = sub(
        "audit",
        help="run a checklist's checks on manifests, offline (CI): exit 0 passed, 1 findings, 2 error",
        description="Runs the checklist's checks over manifests with the operator's own check functions. "
        "Objects without a namespace go to -n (default: default). Items that need the cluster, Prometheus or a "
        "signoff are reported as not run, never as passed.",
    )
    au.add_argument(
        "-f", "--filename", action="append", default=[], metavar="FILE|DIR|-",
        help="manifests: a file, a directory (its .yaml/.yml/.json files) or - for stdin (e.g. helm template); "
        "repeatable",
    )  # fmt: skip
    au.add_argument("-k", "--kustomize", action="append", default=[], metavar="DIR", help="render DIR with kustomize")
    au.add_argument("-o", "--output", choices=FORMATS, default="text", help="text, json, sarif or junit")
    au.add_argument(
        "--checklist",
        help="a ReadinessChecklist file, or its name in the cluster (default: the shipped pre-production)",
    )
    au.set_defaults(fn=cmd_audit)

    ev = sub(
        "evidence",
        help="record evidence items from CI reports (JUnit, Cobertura, coverage.py, lcov, SARIF, Trivy, k6)",
        description="Reads CI's reports and records the checklist's evidence keys in one ReleaseSignoff, with each "
        "report's sha256 and the CI run's URL. Run it as CI's identity: the checklist says who may record evidence. "
        "Metrics: junit: tests passed failed failures errors skipped flaky pass-rate-percent; cobertura, "
        "coverage-py, lcov: line-percent branch-percent (lcov: function-percent); sarif: total error warning note "
        "none suppressed; trivy: critical high medium low unknown total secrets misconfigurations; k6: "
        "p95-latency-ms p90-latency-ms avg-latency-ms max-latency-ms request-rate requests error-rate-percent "
        "checks-pass-rate-percent.",
    )
    ev.add_argument("release")
    ev.add_argument(
        "--from", dest="mappings", action="append", default=[], metavar="KEY=FORMAT:METRIC:FILE",
        help="the evidence KEY takes METRIC of the FORMAT report FILE (repeatable), e.g. "
        "coverage-percent=cobertura:line-percent:coverage.xml",
    )  # fmt: skip
    ev.add_argument(
        "--run-url",
        help="the CI run's URL (default: from GitHub Actions' or GitLab CI's variables), recorded with each value",
    )
    ev.add_argument("--fingerprint", help="the candidate fingerprint CI tested (default: the release's current one)")
    ev.add_argument("--dry-run", action="store_true", help="read and map the reports, print the values, sign nothing")
    ev.add_argument(
        "--checklist", metavar="FILE", help="with --dry-run: map onto this ReadinessChecklist file (no cluster needed)"
    )
    ev.set_defaults(fn=cmd_evidence)

    wt = sub("wait", help="wait for Ready: exit 0 Ready, 1 timeout or veto, 2 error")
    wt.add_argument("release")
    wt.add_argument(
        "--timeout", type=duration("--timeout"), default=600.0, metavar="DURATION", help="30s, 5m, 1h30m (default 10m)"
    )
    wt.add_argument("--interval", type=duration("--interval"), default=2.0, help=argparse.SUPPRESS)
    wt.set_defaults(fn=cmd_wait)

    add_dashboard_command(sub)
    return p


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_ERROR)


def complete_main(argv: Sequence[str] | None = None) -> int:
    """`kubectl_complete-readiness WORD...` (and `kubectl readiness __complete WORD...`): the completions of the
    last word, in Cobra's format, which kubectl >= 1.26 asks a plugin's kubectl_complete-<plugin> for."""
    words = list(sys.argv[1:] if argv is None else argv) or [""]
    p = parser()
    answer = completion.complete(p, words, ClusterLookups(completion.flags_given(p, words[:-1])))
    sys.stdout.write(answer.render())
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["__complete"]:
        return complete_main(words[1:])
    args = parser().parse_args(words)
    try:
        merge_global_flags(args)
        local = LOCAL_COMMANDS.get(args.command)
        code: int = local(args) if local else args.fn(Api(args), args)
    except ApiException as err:
        fail(explain(err))
    except CliError as err:
        fail(str(err))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `| head` closed the pipe: stop quietly, as kubectl does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return code


if __name__ == "__main__":
    sys.exit(main())
