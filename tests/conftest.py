"""Shared test fixtures: corpus location, named host fixtures, hypothesis profile, --regen for goldens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
HOSTS = DATA / "hosts"
GOLDEN = REPO / "tests" / "golden"
# The shared corpora live beside the checkout in this workplace; tests that need them skip elsewhere.
CORPORA = Path(os.environ.get("VMTUNE_CORPORA", REPO.parent / "shared" / "corpora"))

settings.register_profile(
    "ci", derandomize=True, max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen", action="store_true", help="rewrite golden files instead of comparing")


@pytest.fixture
def regen(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--regen"))


@pytest.fixture(scope="session")
def corpora() -> Path:
    if not CORPORA.is_dir():
        pytest.skip(f"shared corpora not found at {CORPORA}")
    return CORPORA


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
