"""Show ``vmtune check`` findings: a table grouped by guest, JSON, or SARIF 2.1.0 (CI systems, editors).

SARIF mapping: one run, ``tool.driver.rules`` = the whole catalog (so viewers can show titles even for codes
that did not fire), one result per finding with the guest's file as the artifact, a ``region`` (startLine, and
startColumn in code points) when the finding's line is known, the XPath / CPU list as a logical location, and
the fix hint in the message and in ``properties.fix``. Severities map error->error, warning->warning,
info->note (SARIF has no "info"). A finding without a line (a CPU list, a libvirt domain with no file) has
no region: viewers show it on the file as a whole.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.table import Table
from rich.text import Text

from vmtune import __version__
from vmtune.core.audit.engine import Finding, Rule
from vmtune.core.plan import Level

__all__ = [
    "SARIF_SCHEMA_URI",
    "finding_dict",
    "render_json",
    "render_sarif",
    "render_table",
    "sarif_log",
    "summary",
    "where",
]

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {Level.ERROR: "error", Level.WARNING: "warning", Level.INFO: "note"}
_STYLE = {Level.ERROR: "bold red", Level.WARNING: "yellow", Level.INFO: "cyan"}


def summary(findings: Sequence[Finding], guests: int) -> dict[str, Any]:
    sev = Counter(f.severity.value for f in findings)
    return {
        "guests": guests,
        "guests_with_findings": len({(f.guest, f.source) for f in findings}),
        "findings": len(findings),
        "errors": sev.get("error", 0),
        "warnings": sev.get("warning", 0),
        "info": sev.get("info", 0),
        "codes": dict(sorted(Counter(f.code for f in findings).items())),
    }


def finding_dict(f: Finding) -> dict[str, str | int | None]:
    return {
        "code": f.code,
        "severity": f.severity.value,
        "guest": f.guest,
        "source": f.source,
        "line": f.line,
        "column": f.column,
        "location": f.location,
        "message": f.message,
        "fix": f.fix,
    }


def where(f: Finding) -> str | None:
    """``file:line[:column]`` (what editors and terminals open), or None when the line is unknown."""
    if f.line is None:
        return None
    return f"{f.source}:{f.line}" + (f":{f.column}" if f.column is not None else "")


def render_json(findings: Sequence[Finding], guests: int) -> str:
    return json.dumps(
        {"findings": [finding_dict(f) for f in findings], "summary": summary(findings, guests)}, indent=2
    )


def _uri(source: str) -> str:
    if source.startswith("libvirt:"):
        return source
    if source.startswith("/"):
        return "file://" + quote(source)
    return quote(source)


def sarif_log(findings: Sequence[Finding], rules: Sequence[Rule]) -> dict[str, Any]:
    index = {r.code: i for i, r in enumerate(rules)}
    descriptors = [
        {
            "id": r.code,
            "name": r.code,
            "shortDescription": {"text": r.title},
            "fullDescription": {"text": f"{r.title} ({r.family.value} rule; see {r.doc})"},
            "help": {"text": f"{r.doc} explains why it matters and how to fix it."},
            "defaultConfiguration": {"level": _SARIF_LEVEL[r.severity]},
            "properties": {"tags": [r.family.value]},
        }
        for r in rules
    ]
    results = []
    for f in findings:
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(f.source)}}
        if f.line is not None:
            region = {"startLine": f.line}
            if f.column is not None:
                region["startColumn"] = f.column
            physical["region"] = region
        result: dict[str, Any] = {
            "ruleId": f.code,
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f"{f.guest}: {f.message}. Fix: {f.fix}"},
            "locations": [
                {
                    "physicalLocation": physical,
                    "logicalLocations": [
                        {
                            "name": f.location,
                            "fullyQualifiedName": f"{f.guest}:{f.location}",
                            "kind": "element",
                        }
                    ],
                }
            ],
            "properties": {"guest": f.guest, "location": f.location, "fix": f.fix},
        }
        if f.code in index:
            result["ruleIndex"] = index[f.code]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "vmtune",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": descriptors,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def render_sarif(findings: Sequence[Finding], rules: Sequence[Rule]) -> str:
    return json.dumps(sarif_log(findings, rules), indent=2)


def render_table(console: Console, findings: Sequence[Finding], guests: int) -> None:
    """One table per guest that has findings, then a one-line summary."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.guest, f.source), []).append(f)
    for (guest, source), items in groups.items():
        table = Table(
            title=Text.assemble((guest, "bold"), f"  {source}"),
            title_justify="left",
            show_header=True,
            header_style="bold",
            expand=False,
            pad_edge=False,
        )
        table.add_column("code", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("where", overflow="fold", max_width=34)
        table.add_column("finding / fix", overflow="fold")
        for f in items:
            text = Text.assemble(f.message, "\n", ("fix: " + f.fix, "dim"))
            at = where(f)
            if at is not None:
                text.append("\nat " + at, style="dim")  # its own line: terminals make file:line:col a link
            table.add_row(f.code, Text(f.severity.value, style=_STYLE[f.severity]), f.location, text)
        console.print(table)
        console.print()
    s = summary(findings, guests)
    if not findings:
        console.print(f"{guests} guest(s) checked: no findings")
        return
    codes = ", ".join(f"{code}×{n}" for code, n in s["codes"].items())
    console.print(
        f"{s['findings']} finding(s) in {s['guests_with_findings']} of {guests} guest(s): "
        f"{s['errors']} error(s), {s['warnings']} warning(s), {s['info']} info  [{codes}]"
    )
