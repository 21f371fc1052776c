"""The README is part of the product: its set-up commands, every command and every rule code must be there."""

from __future__ import annotations

import re

from testutil import REPO
from vmtune.cli.app import app
from vmtune.core.audit.engine import catalog

README = (REPO / "README.md").read_text()


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


def test_every_rule_code_has_a_readme_row_and_a_docs_page() -> None:
    codes = [rule.code for rule in catalog()]
    assert len(codes) == 25
    for code in codes:
        assert f"[{code}](docs/rules/{code}.md)" in README, code
        assert (REPO / "docs" / "rules" / f"{code}.md").is_file(), code
