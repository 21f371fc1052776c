"""Write vmtune(1) and static bash/zsh completion files from the CLI's own command tree.

    python3 packaging/gendocs.py OUTDIR     # OUTDIR/vmtune.1, OUTDIR/vmtune.bash, OUTDIR/_vmtune

Run at package build time (debian/rules) against the source tree, so the man page and the completions list
exactly the commands and options of the build; the completions are plain shell (no vmtune run per TAB).
Only click's public attributes are read, so typer 0.7 (Debian 12) and newer typer give the same files.
"""

from __future__ import annotations

import datetime
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from vmtune import __version__
from vmtune.cli import app
from vmtune.errors import ExitCode

EXIT_CODES = {
    ExitCode.OK: "success; for check, no error-level finding; for verify, no drift",
    ExitCode.UNEXPECTED: "unexpected error (a bug: please report it with the command line)",
    ExitCode.BAD_INPUT: "bad input: the message names the file, flag or XPath",
    ExitCode.INFEASIBLE: "infeasible: the host cannot hold the guest (needed vs. free is shown)",
    ExitCode.LIBVIRT: "libvirt error (connection refused, unknown domain, host unreachable)",
    ExitCode.FINDINGS: "check found error-level problems, or verify found drift",
}
EXAMPLES = [
    ("vmtune host", "this host: sockets, NUMA nodes, cache groups, cores, threads"),
    ("vmtune host --json", "the same as JSON, for scripts"),
    ("vmtune host snapshot /tmp/h.tar.gz", "capture the topology; use it elsewhere with --sysfs /tmp/h.tar.gz"),
    ("vmtune plan guest.xml --profile latency --explain", "decide, show the diff and every reason"),
    ("vmtune apply guest.xml --in-place --backup", "rewrite the file atomically, keep guest.xml~"),
    ("vmtune apply --connect qemu:///system --domain db1 --live", "define through libvirt and re-pin now"),
    ("vmtune check /etc/libvirt/qemu --sarif > vmtune.sarif", "audit for CI systems and editors"),
    ("vmtune verify --connect qemu:///system", "real thread affinity and memory per node vs. the XML"),
    ("vmtune hook install", "install the libvirt hook (restart libvirtd to load it)"),
    ("vmtune hook recover", "finish a killed hook run: host isolation restored or re-applied"),
]
FILES = [
    ("/etc/libvirt/hooks/qemu.d/vmtune", "the libvirt hook written by vmtune hook install"),
    ("/run/vmtune/", "the hook's lock, CPU claims, hugepage and host-isolation journals (root, 0700)"),
    ("/var/cache/vmtune/", "domcapabilities saved by hook install --connect, nested-host probe results"),
]
CHOICES = re.compile(r"^<([A-Za-z0-9]+(?:\|[A-Za-z0-9]+)+)>$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One command of the tree: its words after ``vmtune``, the click object and its subcommands."""

    path: tuple[str, ...]
    cmd: Any
    subs: tuple[Command, ...]


def tree(cmd: Any, path: tuple[str, ...] = ()) -> Command:
    children = getattr(cmd, "commands", {})
    subs = tuple(tree(c, (*path, name)) for name, c in children.items() if not c.hidden)
    return Command(path=path, cmd=cmd, subs=subs)


def walk(node: Command) -> Iterator[Command]:
    yield node
    for sub in node.subs:
        yield from walk(sub)


def options(node: Command) -> list[Any]:
    """Visible options, then ``-h, --help`` (click adds it per context, not as a declared parameter)."""
    return [p for p in node.cmd.params if p.param_type_name == "option" and not p.hidden]


def arguments(node: Command) -> list[Any]:
    return [p for p in node.cmd.params if p.param_type_name == "argument"]


def metavar(param: Any) -> str:
    if param.param_type_name == "option" and param.is_flag:
        return ""
    return str(param.metavar or param.name.upper())


def paragraphs(text: str) -> list[tuple[bool, str]]:
    """Help text as (keep line breaks, text) paragraphs; click's ``\\b`` marks a verbatim paragraph."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        verbatim = block.startswith("\b")
        out.append((verbatim, block.removeprefix("\b").strip("\n")))
    return out


# -- man page -------------------------------------------------------------------------------------------


def roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in text.splitlines())


def man_command(node: Command) -> list[str]:
    name = " ".join(("vmtune", *node.path))
    args = " ".join(metavar(a) for a in arguments(node))
    sub = " COMMAND" if node.subs else ""
    lines = [f".SS {roff(name)}", f".B {roff(name)}", f"[OPTIONS]{sub} {roff(args)}".rstrip(), ".PP"]
    for verbatim, para in paragraphs(node.cmd.help or ""):
        lines += [".nf", roff(para), ".fi"] if verbatim else [roff(" ".join(para.split())), ".PP"]
    for param in [*arguments(node), *options(node)]:
        names = ", ".join([*param.opts, *param.secondary_opts]) if param.param_type_name == "option" else ""
        label = f"\\fB{roff(names)}\\fR" if names else ""
        if mv := metavar(param):
            label = f"{label} \\fI{roff(mv)}\\fR".strip()
        lines += [".TP", label, roff(" ".join((param.help or "").split()) or "-")]
    lines += [".TP", "\\fB\\-h\\fR, \\fB\\-\\-help\\fR", "Show the help of this command and exit."]
    return lines


def man_page(root: Command) -> str:
    date = datetime.datetime.fromtimestamp(
        int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or datetime.datetime.now(datetime.UTC).timestamp(),
        tz=datetime.UTC,
    ).strftime("%Y-%m-%d")
    lines = [
        f'.TH VMTUNE 1 "{date}" "vmtune {__version__}" "User Commands"',
        ".SH NAME",
        "vmtune \\- topology\\-aware tuning, audit and verification of libvirt/KVM guests",
        ".SH SYNOPSIS",
        ".B vmtune",
        "[\\fB\\-\\-version\\fR] [\\fB\\-h\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]",
        ".SH DESCRIPTION",
        roff(" ".join((root.cmd.help or "").split())),
        ".PP",
        "Every command takes \\fB\\-h\\fR or \\fB\\-\\-help\\fR.",
        ".SH COMMANDS",
    ]
    for node in walk(root):
        if node.path:
            lines += man_command(node)
    lines += [".SH EXIT STATUS"]
    for code in ExitCode:
        lines += [".TP", f"\\fB{int(code)}\\fR", roff(EXIT_CODES[code])]
    lines += [".SH ENVIRONMENT", ".TP", "\\fBVMTUNE_HOST_TIMEOUT\\fR"]
    lines += [roff("Seconds a fleet run waits for one host (default 120, 0 = no limit).")]
    lines += [".SH FILES"]
    for path, what in FILES:
        lines += [".TP", f"\\fI{roff(path)}\\fR", roff(what)]
    lines += [".SH EXAMPLES"]
    for cmd, what in EXAMPLES:
        lines += [".TP", f"\\fB{roff(cmd)}\\fR", roff(what)]
    lines += [".SH SEE ALSO", "\\fBvirsh\\fR(1), \\fBlibvirtd\\fR(8), /usr/share/doc/vmtune/"]
    return "\n".join(lines) + "\n"


# -- completions ----------------------------------------------------------------------------------------


def value_kind(param: Any) -> str:
    """How to complete an option's value: ``words:a b``, ``dirs``, ``files`` or ``none``."""
    if m := CHOICES.match(str(param.metavar or "")):
        return "words:" + m.group(1).replace("|", " ")
    if param.type.name == "path":
        return "dirs" if param.metavar == "DIR" else "files"
    return "none"


def bash(root: Command) -> str:
    nodes = [n for n in walk(root)]
    steps = [f'            "{" ".join(n.path[:-1])}:{n.path[-1]}") cmd="{" ".join(n.path)}" ;;' for n in nodes[1:]]
    values, words = [], []
    for node in nodes:
        key = " ".join(node.path)
        opts = [o for p in options(node) for o in (*p.opts, *p.secondary_opts)]
        subs = " ".join(s.path[-1] for s in node.subs)
        words.append(f'        "{key}") opts="{" ".join([*opts, "-h", "--help"])}"; subs="{subs}" ;;')
        for p in options(node):
            if p.is_flag:
                continue
            kind = value_kind(p)
            action = {"dirs": "_filedir -d", "files": "_filedir", "none": ":"}.get(kind)
            if action is None:
                action = f'COMPREPLY=($(compgen -W "{kind.removeprefix("words:")}" -- "$cur"))'
            pattern = "|".join(f'"{key}:{o}"' for o in (*p.opts, *p.secondary_opts))
            values.append(f"        {pattern}) {action}; return ;;")
    return "\n".join([
        "# bash completion for vmtune(1); generated from the CLI at build time (packaging/gendocs.py)",
        "_vmtune() {",
        "    local cur prev words cword",
        "    _init_completion || return",
        '    local cmd="" i opts subs',
        "    for ((i = 1; i < cword; i++)); do",
        '        case "$cmd:${words[i]}" in',
        *steps,
        "        esac",
        "    done",
        '    case "$cmd:$prev" in',
        *values,
        "    esac",
        '    case "$cmd" in',
        *words,
        "    esac",
        '    if [[ $cur == -* ]]; then',
        '        COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
        '    elif [[ -n $subs ]]; then',
        '        COMPREPLY=($(compgen -W "$subs" -- "$cur"))',
        "    else",
        "        _filedir",
        "    fi",
        "}",
        "complete -F _vmtune vmtune",
        "",
    ])


def zsh_text(text: str) -> str:
    first = " ".join(text.split()).split(". ")[0].rstrip(".")
    for ch in "\\[]:'":
        first = first.replace(ch, "\\" + ch if ch != "'" else "'\\''")
    return first


def zsh_function(node: Command) -> list[str]:
    fname = "_vmtune" + "".join("_" + w.replace("-", "_") for w in node.path)
    specs = []
    for p in options(node):
        names = [*p.opts, *p.secondary_opts]
        kind = value_kind(p)
        value = ""
        if not p.is_flag:
            action = {"dirs": "_directories", "files": "_files", "none": " "}.get(kind)
            action = action or f"({kind.removeprefix('words:')})"
            value = f":{zsh_text(metavar(p))}:{action}"
        many = "*" if getattr(p, "multiple", False) else ""
        label = f"[{zsh_text(p.help or '')}]{value}"
        if len(names) > 1:
            group = "*" if many else f"'({' '.join(names)})'"
            specs.append(f"{group}{{{','.join(names)}}}'{label}'")
        else:
            specs.append(f"'{many}{names[0]}{label}'")
    specs.append("'(- *)'{-h,--help}'[Show help]'")
    lines = [f"{fname}() {{", "    local curcontext=$curcontext state line ret=1"]
    if node.subs:
        subs = " ".join(f"'{s.path[-1]}:{zsh_text(s.cmd.short_help or s.cmd.help or '')}'" for s in node.subs)
        lines += [f"    _arguments -C {' '.join(specs)} ': :->command' '*:: :->args' && ret=0"]
        lines += ["    case $state in", f"        command) local -a subs=({subs}); _describe command subs ;;"]
        lines += ['        args) case $line[1] in']
        for s in node.subs:
            lines += [f"            {s.path[-1]}) {fname}_{s.path[-1].replace('-', '_')} ;;"]
        lines += ["        esac ;;", "    esac", "    return ret", "}"]
        return lines
    args = [f"'*:{zsh_text(metavar(a))}:_files'" for a in arguments(node)]
    lines += [f"    _arguments {' '.join([*specs, *args])}", "}"]
    return lines


def zsh(root: Command) -> str:
    lines = ["#compdef vmtune", "# zsh completion for vmtune(1); generated from the CLI at build time", ""]
    for node in walk(root):
        lines += [*zsh_function(node), ""]
    lines += ['_vmtune "$@"', ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    root = tree(typer.main.get_command(app))
    (out / "vmtune.1").write_text(man_page(root))
    (out / "vmtune.bash").write_text(bash(root))
    (out / "_vmtune").write_text(zsh(root))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
