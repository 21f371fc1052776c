"""Paths and the golden-file helper shared by test modules (import as ``from testutil import ...``).

Kept out of conftest.py: tests/e2e has its own conftest, and two modules named ``conftest`` collide.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import sysfsgen
from vmtune.cli.app import main

__all__ = ["CORPORA", "DATA", "GOLDEN", "HOSTS", "REPO", "check_golden", "host_root", "run"]

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
HOSTS = DATA / "hosts"
GOLDEN = REPO / "tests" / "golden"
# The shared corpora live beside the checkout in this workplace; tests that need them skip elsewhere.
CORPORA = Path(os.environ.get("VMTUNE_CORPORA", REPO.parent / "shared" / "corpora"))


def check_golden(path: Path, actual: str, regen: bool) -> None:
    """Compare ``actual`` with the golden file at ``path``; ``pytest --regen`` rewrites it."""
    if regen or not path.exists():
        if not regen:
            pytest.fail(f"golden {path.relative_to(REPO)} missing: run pytest --regen and review it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    expected = path.read_text()
    assert actual == expected, f"output differs from golden {path.relative_to(REPO)} (pytest --regen)"


def host_root(name: str, tmp: Path) -> Path:
    """The committed fixture tree of a named host, or the generator's output when it isn't committed."""
    committed = HOSTS / name
    if (committed / "sys").is_dir():
        return committed
    root = tmp / name
    if not (root / "sys").is_dir():
        sysfsgen.write_sysfs(sysfsgen.NAMED_HOSTS[name], root)
    return root


def run(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cwd: Path
) -> tuple[int, str, str]:
    """Run the CLI in-process from ``cwd`` with COLUMNS=100 and NO_COLOR, as the goldens are taken."""
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(cwd)
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err
