"""Shell completion of `kubectl readiness` (pure: a fake cluster), its bash script in a real bash, and the -o
outputs of `list` and `status`."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from release_readiness import completion
from release_readiness.cli import age, list_rows, main, parser, print_objects


class FakeCluster:
    """Two namespaces; payments-prod holds two releases of the checklist below."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, Any]] = []

    def namespaces(self) -> list[str]:
        return ["payments-prod", "payments-staging"]

    def contexts(self) -> list[str]:
        return ["local", "prod-admin"]

    def releases(self, namespace: str | None) -> list[str]:
        self.asked.append(("releases", namespace))
        return ["payments-api-3.1.0", "payments-api-3.2.0"] if namespace in (None, "payments-prod") else []

    def checklists(self) -> list[str]:
        return ["pre-production", "lightweight"]

    def items(self, namespace: str | None, release: str) -> list[str]:
        self.asked.append(("items", (namespace, release)))
        return ["unit-test-coverage", "latency-p95", "limits"]

    def roles(self, namespace: str | None, release: str) -> list[str]:
        self.asked.append(("roles", (namespace, release)))
        return ["engineering-lead", "vp-engineering"]


def offered(*words: str, cluster: FakeCluster | None = None) -> tuple[list[str], int]:
    answer = completion.complete(parser(), list(words), cluster or FakeCluster())
    return [c.split("\t")[0] for c in answer.candidates], answer.directive


def test_commands_then_their_flags() -> None:
    names, directive = offered("")
    assert {"status", "approve", "waive", "wait", "list", "completion", "version"} <= set(names)
    assert directive == completion.DIRECTIVE_NO_FILE
    assert offered("st") == (["status"], completion.DIRECTIVE_NO_FILE)
    assert offered("w") == (["waive", "withdraw", "wait"], completion.DIRECTIVE_NO_FILE)
    flags, _ = offered("status", "r", "--o")
    assert flags == ["--output", "--outstanding"]
    assert "--interval" not in offered("wait", "r", "--")[0]  # hidden flags stay hidden
    assert "--as-group" in offered("-n", "x", "--as")[0]  # the global flags before a command too


def test_release_names_come_from_the_namespace_typed_so_far() -> None:
    cluster = FakeCluster()
    assert offered("status", "-n", "payments-prod", "", cluster=cluster)[0] == [
        "payments-api-3.1.0",
        "payments-api-3.2.0",
    ]
    assert offered("-n", "payments-prod", "approve", "payments-api-3.2", cluster=cluster)[0] == ["payments-api-3.2.0"]
    assert offered("status", "--namespace=other", "", cluster=cluster)[0] == []
    assert cluster.asked == [("releases", "payments-prod"), ("releases", "payments-prod"), ("releases", "other")]
    assert offered("status", "payments-api-3.2.0", "")[0] == []  # one release only


def test_items_and_roles_of_the_release_checklist() -> None:
    cluster = FakeCluster()
    assert offered("waive", "payments-api-3.2.0", "l", "-n", "payments-p", cluster=cluster)[0] == ["payments-prod"]
    assert offered("waive", "payments-api-3.2.0", "l", cluster=cluster)[0] == ["latency-p95", "limits"]
    assert offered("waive", "payments-api-3.2.0", "limits", "", cluster=cluster)[0] == [
        "unit-test-coverage",
        "latency-p95",
        "limits",
    ]  # nargs='+': still items
    assert offered("attest", "rel", "unit", cluster=cluster)[0] == ["unit-test-coverage"]
    assert offered("attest", "rel", "unit-test-coverage", "")[0] == []
    assert offered("approve", "rel", "--role", "")[0] == ["engineering-lead", "vp-engineering"]
    assert offered("-n", "ns1", "approve", "rel", "--role", "v", cluster=cluster)[0] == ["vp-engineering"]
    assert ("roles", ("ns1", "rel")) in cluster.asked
    assert offered("approve", "--role", "")[0] == []  # no release named yet: no checklist to read


def test_flag_values() -> None:
    assert offered("status", "r", "-o", "")[0] == ["text", "wide", "name", "json", "yaml"]
    assert offered("list", "--output=j")[0] == ["--output=json"]
    assert offered("-n", "payments-s")[0] == ["payments-staging"]
    assert offered("list", "--context", "")[0] == ["local", "prod-admin"]
    assert offered("completion", "")[0] == ["bash", "zsh"]
    assert offered("status", "--kubeconfig", "") == ([], completion.DIRECTIVE_DEFAULT)  # the shell's file names
    assert offered("audit", "-f", "") == ([], completion.DIRECTIVE_DEFAULT)
    assert offered("init", "app", "1.0", "--checklist", "pre")[0] == ["pre-production"]
    assert offered("audit", "-k", "") == ([], completion.DIRECTIVE_DEFAULT)
    assert offered("nonsense", "") == ([], completion.DIRECTIVE_NO_FILE)


def test_flags_given_for_the_lookups() -> None:
    given = completion.flags_given(parser(), ["--kubeconfig", "/k", "status", "--context=c", "-n", "ns", "--as", "u"])
    assert given == {"kubeconfig": "/k", "context": "c", "namespace": "ns", "as_user": "u"}


def test_cobra_format_for_kubectl() -> None:
    answer = completion.Completion(["a\tfirst", "b"], completion.DIRECTIVE_NO_FILE)
    assert answer.render() == "a\tfirst\nb\n:4\n"


def test_complete_entry_point_needs_no_cluster_for_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    assert main(["__complete", "rep"]) == 0
    assert capsys.readouterr().out == "report\tthe filled-in checklist\n:4\n"
    assert main(["__complete", "status", ""]) == 0  # no cluster: nothing offered, no error
    assert capsys.readouterr().out == ":4\n"


def test_completion_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    for shell in completion.SHELLS:
        assert main(["completion", shell]) == 0
        text = capsys.readouterr().out
        assert "kubectl-readiness __complete" in text
    assert "complete -F _kubectl_readiness kubectl-readiness" in completion.script("bash")
    assert completion.script("zsh").startswith("#compdef kubectl-readiness\n")
    with pytest.raises(ValueError, match="no completion for shell 'fish'"):
        completion.script("fish")


def bash_complete(line: list[str], env: dict[str, str]) -> list[str]:
    """Press TAB after `line` (its last word is the one being typed) in a bash that sourced our script."""
    words = " ".join(f"'{w}'" for w in line)
    program = (
        'source <(kubectl-readiness completion bash)\n'
        f"COMP_WORDS=(kubectl-readiness {words}); COMP_CWORD={len(line)}\n"
        '_kubectl_readiness; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )  # fmt: skip
    bash = shutil.which("bash")
    assert bash
    out = subprocess.run([bash, "--norc", "-c", program], capture_output=True, text=True, env=env, check=True)
    return [w for w in out.stdout.splitlines() if w]


def test_the_bash_script_in_bash() -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "KUBECONFIG": "/nonexistent"}
    assert bash_complete(["app"], env) == ["approve"]
    assert bash_complete(["status", "x", "-o", "y"], env) == ["yaml"]


# -- -o ------------------------------------------------------------------------------------------------------


def release(name: str, ready: str = "False") -> dict[str, Any]:
    return {
        "apiVersion": "readiness.dev/v1alpha1",
        "kind": "ReleaseReadiness",
        "metadata": {"name": name, "namespace": "prod", "creationTimestamp": "2026-11-01T10:00:00Z"},
        "spec": {"application": "api", "version": "1.0", "checklist": "pre-production",
                 "candidate": {"namespace": "staging"}},
        "status": {
            "conditions": [{"type": "Ready", "status": ready, "reason": "ItemsOutstanding", "message": "m",
                            "lastTransitionTime": "2026-11-01T10:00:00Z"}],
            "summary": {"total": 3, "passed": 1, "progress": "1/3", "approvals": "0/5"},
            "candidate": {"namespace": "staging", "fingerprint": "sha256:abc", "workloads": []},
        },
    }  # fmt: skip


def test_output_name_json_and_yaml_like_kubectl(capsys: pytest.CaptureFixture[str]) -> None:
    objects = [release("a-1.0"), release("b-1.0")]
    assert print_objects(objects, "name")
    assert capsys.readouterr().out == "releasereadiness.readiness.dev/a-1.0\nreleasereadiness.readiness.dev/b-1.0\n"
    assert print_objects(objects, "json")
    listed = json.loads(capsys.readouterr().out)
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a-1.0", "b-1.0"]
    assert print_objects(objects[:1], "yaml", single=True)
    assert yaml.safe_load(capsys.readouterr().out) == objects[0]
    assert not print_objects(objects, "wide")
    assert not print_objects(objects, "text")


def test_list_wide_adds_checklist_candidate_fingerprint_and_age() -> None:
    now = dt.datetime(2026, 11, 1, 13, 0, tzinfo=dt.UTC)
    narrow = list_rows([release("a-1.0")], wide=False, now=now)
    assert narrow[1] == ("prod", "a-1.0", "api", "1.0", "False", "1/3", "0/5", "ItemsOutstanding")
    wide = list_rows([release("a-1.0")], wide=True, now=now)
    assert wide[0][-4:] == ("CHECKLIST", "CANDIDATE", "FINGERPRINT", "AGE")
    assert wide[1][-4:] == ("pre-production", "staging", "sha256:abc", "3h")


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (119, "119s"), (120, "2m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"),
                          (48 * 3600, "2d")]
)  # fmt: skip
def test_age_like_kubectl(seconds: int, text: str) -> None:
    now = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
    assert age(now - dt.timedelta(seconds=seconds), now) == text
    assert age(None, now) == "<unknown>"


def test_output_choices() -> None:
    assert parser().parse_args(["list", "-o", "wide"]).output == "wide"
    assert parser().parse_args(["status", "r", "-o", "name"]).output == "name"
    with pytest.raises(SystemExit):
        parser().parse_args(["list", "-o", "jsonpath"])
