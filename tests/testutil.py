"""Paths and the golden-file helper shared by test modules (import as ``from testutil import ...``).

Kept out of conftest.py: tests/e2e has its own conftest, and two modules named ``conftest`` collide.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["CORPORA", "DATA", "GOLDEN", "HOSTS", "REPO", "check_golden"]

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
