"""Shell completion for `kubectl readiness`: what to offer for a partly typed command line, and the bash and zsh
scripts that ask for it.

One engine serves every shell. It reads the plugin's argparse parser (commands, flags, their choices) and asks a
`Lookups` for what lives in the cluster (release names, namespaces, the release checklist's item ids and roles).
It answers in Cobra's `__complete` format, one candidate a line (`value<TAB>description`) and a last line
`:<directive>`, because that is what kubectl (>= 1.26) expects from a plugin's `kubectl_complete-<plugin>`
executable: with it on PATH, `kubectl readiness <TAB>` completes through kubectl's own completion. The scripts
`kubectl readiness completion bash|zsh` prints call the same engine for the `kubectl-readiness` command.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "DIRECTIVE_DEFAULT",
    "DIRECTIVE_NO_FILE",
    "SHELLS",
    "Completion",
    "Lookups",
    "complete",
    "flags_given",
    "script",
]

# Cobra's ShellCompDirective values (kubectl reads them from a plugin's completion output).
DIRECTIVE_DEFAULT = 0  # the shell may fall back to file names
DIRECTIVE_NO_FILE = 4  # offer only the candidates given


class Lookups(Protocol):
    """What completion reads from the cluster; every method returns [] when the cluster cannot say."""

    def namespaces(self) -> list[str]: ...
    def contexts(self) -> list[str]: ...
    def releases(self, namespace: str | None) -> list[str]: ...
    def checklists(self) -> list[str]: ...
    def items(self, namespace: str | None, release: str) -> list[str]: ...
    def roles(self, namespace: str | None, release: str) -> list[str]: ...


@dataclass
class Completion:
    candidates: list[str]
    directive: int = DIRECTIVE_NO_FILE

    def render(self) -> str:
        """Cobra's `__complete` output."""
        return "".join(f"{c}\n" for c in self.candidates) + f":{self.directive}\n"


@dataclass
class _Line:
    """What the words before the one being completed say."""

    command: str | None = None
    positionals: list[str] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)  # dest (without the `top_` prefix) -> last value
    pending: argparse.Action | None = None  # a flag still waiting for its value


def _subparsers(p: argparse.ArgumentParser) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    return next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def _dest(action: argparse.Action) -> str:
    return action.dest.removeprefix("top_")


def _read(p: argparse.ArgumentParser, words: Sequence[str]) -> tuple[_Line, argparse.ArgumentParser]:
    line = _Line()
    commands = _subparsers(p).choices
    current = p
    for word in words:
        if line.pending is not None:
            line.flags[_dest(line.pending)] = word
            line.pending = None
        elif word.startswith("-") and len(word) > 1:
            name, eq, value = word.partition("=")
            action = current._option_string_actions.get(name) or p._option_string_actions.get(name)
            if action is None or not _takes_value(action):
                continue
            if eq:
                line.flags[_dest(action)] = value
            else:
                line.pending = action
        elif line.command is None and word in commands:
            line.command = word
            current = commands[word]
        elif line.command is not None:
            line.positionals.append(word)
        else:
            line.command = word  # not a command: nothing to offer after it
    return line, current


def _values(action: argparse.Action, line: _Line, lookups: Lookups) -> Completion:
    """Candidates for a flag's or positional's value."""
    if action.choices is not None:
        return Completion([str(c) for c in action.choices])
    namespace = line.flags.get("namespace")
    release = line.positionals[0] if line.positionals else ""
    by_dest: dict[str, Callable[[], list[str]]] = {
        "namespace": lookups.namespaces,
        "context": lookups.contexts,
        "release": lambda: lookups.releases(namespace),
        "checklist": lookups.checklists,
        "item": lambda: lookups.items(namespace, release) if release else [],
        "items": lambda: lookups.items(namespace, release) if release else [],
        "role": lambda: lookups.roles(namespace, release) if release else [],
    }
    dest = _dest(action)
    if dest in ("kubeconfig", "filename", "kustomize") or re.search(r"\b(FILE|DIR)\b", str(action.metavar or "")):
        return Completion([], DIRECTIVE_DEFAULT)  # paths: the shell completes them
    finder = by_dest.get(dest)
    return Completion(finder() if finder else [])


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    out: list[str] = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        out += [f"{o}\t{action.help}" if action.help else o for o in action.option_strings]
    return out


def complete(p: argparse.ArgumentParser, words: Sequence[str], lookups: Lookups) -> Completion:
    """Candidates for the last of `words` (the word under the cursor, possibly empty), given those before it."""
    partial = words[-1] if words else ""
    line, current = _read(p, words[:-1])
    if line.pending is not None:
        result = _values(line.pending, line, lookups)
        prefix = ""
    elif partial.startswith("-") and "=" in partial:
        name, _, partial = partial.partition("=")
        action = current._option_string_actions.get(name) or p._option_string_actions.get(name)
        if action is None or not _takes_value(action):
            return Completion([])
        result, prefix = _values(action, line, lookups), f"{name}="
    elif partial.startswith("-"):
        result, prefix = Completion(_flags(current)), ""
    elif line.command is None:
        sub = _subparsers(p)
        helps = {a.dest: a.help for a in sub._choices_actions}
        result = Completion([f"{name}\t{helps[name]}" if helps.get(name) else name for name in sub.choices])
        prefix = ""
    else:
        positionals = [a for a in current._actions if not a.option_strings] if current is not p else []
        if not positionals:
            return Completion([])
        index = min(len(line.positionals), len(positionals) - 1)
        action = positionals[index]
        if len(line.positionals) >= len(positionals) and action.nargs not in ("+", "*"):
            return Completion([])
        result, prefix = _values(action, line, lookups), ""
    matching = [f"{prefix}{c}" for c in result.candidates if c.startswith(partial)]
    return Completion(matching, result.directive)


def flags_given(p: argparse.ArgumentParser, words: Sequence[str]) -> dict[str, str]:
    """The flags with values among `words` (dest -> last value), e.g. the namespace and context to look in."""
    line, _ = _read(p, words)
    return line.flags


SHELLS = ("bash", "zsh")

_BASH = r"""# bash completion for kubectl-readiness (`kubectl readiness`); load it with
#   source <(kubectl readiness completion bash)
# `kubectl readiness <TAB>` itself completes through kubectl's completion (kubectl >= 1.26) when the
# kubectl_complete-readiness executable, installed beside kubectl-readiness, is on PATH.
_kubectl_readiness() {
    local cur="${COMP_WORDS[COMP_CWORD]}" out directive line
    local -a words=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
    out=$(kubectl-readiness __complete "${words[@]}" "$cur" 2>/dev/null) || return
    directive=${out##*:}
    COMPREPLY=()
    while IFS= read -r line; do
        [[ -z $line || $line == :* ]] && continue
        COMPREPLY+=("${line%%$'\t'*}")
    done <<< "$out"
    if (( ${#COMPREPLY[@]} == 0 && (directive & 4) == 0 )); then
        compopt -o default 2>/dev/null
    fi
}
complete -F _kubectl_readiness kubectl-readiness
"""

_ZSH = r"""#compdef kubectl-readiness
# zsh completion for kubectl-readiness (`kubectl readiness`); load it with
#   source <(kubectl readiness completion zsh)
# `kubectl readiness <TAB>` itself completes through kubectl's completion (kubectl >= 1.26) when the
# kubectl_complete-readiness executable, installed beside kubectl-readiness, is on PATH.
_kubectl_readiness() {
    local -a lines completions
    local line directive
    lines=("${(@f)$(kubectl-readiness __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    directive=${${lines[-1]}#:}
    for line in "${(@)lines[1,-2]}"; do
        [[ -z $line ]] && continue
        completions+=("${${line%%$'\t'*}//:/\\:}${${(M)line:#*$'\t'*}:+:${line#*$'\t'}}")
    done
    if (( ${#completions} )); then
        _describe -t values 'kubectl readiness' completions
    elif (( (directive & 4) == 0 )); then
        _files
    fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _kubectl_readiness "$@"
else
    compdef _kubectl_readiness kubectl-readiness
fi
"""


def script(shell: str) -> str:
    """The completion script for `shell` (bash or zsh)."""
    scripts = {"bash": _BASH, "zsh": _ZSH}
    if shell not in scripts:
        raise ValueError(f"no completion for shell {shell!r}: use one of {', '.join(SHELLS)}")
    return scripts[shell]
