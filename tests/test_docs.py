"""The README is part of the product: its set-up commands, every command, and
a way to every rule page (one per registered rule, none without a rule)."""

from __future__ import annotations

import re

from testutil import REPO
from vmtune.cli.app import app
from vmtune.core.audit.catalog import BY_CODE
from vmtune.core.audit.engine import Family, catalog

README = (REPO / "README.md").read_text()
RULE_DOCS = REPO / "docs" / "rules"


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    block = re.search(r"```sh\n(.*?)```", _section("Set up"), re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M), ".ci/run must call the README's test command"


def test_every_command_is_documented_in_the_usage() -> None:
    groups = {
        g.name or (g.typer_instance.info.name if g.typer_instance else None) for g in app.registered_groups
    }
    names = {c.name for c in app.registered_commands} | groups
    assert names >= {"host", "plan", "apply", "check", "verify", "hook"}
    usage = _section("Usage")
    for name in sorted(n for n in names if n):
        assert re.search(rf"^vmtune {name}\b", usage, re.M), f"`vmtune {name}` missing from README usage"


def test_every_registered_rule_has_a_docs_page_and_every_page_a_rule() -> None:
    pages = {p.stem for p in RULE_DOCS.glob("VT*.md")}
    assert pages == set(BY_CODE), "docs/rules/VTnnn.md pages and the registered rules differ"
    for rule in catalog():
        text = (REPO / rule.doc).read_text()
        assert text.startswith(f"# {rule.code}: {rule.title}\n"), f"{rule.doc}: title must match the rule"
        header = f"Family: {rule.family.value} · default severity: {rule.severity.value}"
        assert header in text.splitlines()[2], f"{rule.doc}: {header!r} must be its third line"
        for section in ("## Why it matters", "## How to fix", "## Example"):
            assert section in text, f"{rule.doc}: no {section!r}"


def test_the_rule_docs_are_reachable_from_the_readme() -> None:
    assert "(docs/rules/README.md)" in _section("Audit rules")
    index = (RULE_DOCS / "README.md").read_text()
    for family in Family:
        assert f"| {family.value} |" in index, f"docs/rules/README.md: no row for the {family} family"
