"""Every benchmark in bench/ runs to completion from this checkout: a README table must come from a script
that works. Figures are not asserted here (timings belong to bench/, not to the tests); the exit code,
the table header and the absence of a traceback are.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testutil import CORPORA, REPO

BENCH = REPO / "bench"


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "VMTUNE_CORPORA": str(CORPORA)}
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True, text=True, env=env, check=False, timeout=600,
    )  # fmt: skip


def test_placement_bench_runs(tmp_path: Path) -> None:
    res = _run("placement.py", "--results", str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "| host | algo | placed |" in res.stdout
    assert "huge-960 (960 CPUs, 16 nodes) with 100 tenants" in res.stdout
    assert (tmp_path / "placement.md").read_text().startswith("| host | algo | placed |")


def test_host_render_bench_runs() -> None:
    res = _run("host_render.py", "--runs", "1")
    assert res.returncode in (0, 1), res.stderr[-2000:]  # 1: a target missed on a loaded machine
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "|" in res.stdout


def test_xml_speed_bench_runs() -> None:
    if not (CORPORA / "domains").is_dir() or not (CORPORA / "sysfs").is_dir():
        pytest.skip(f"shared corpora not found at {CORPORA}")
    res = _run("xml_speed.py", "--runs", "1")
    assert res.returncode in (0, 1), res.stderr[-2000:]
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "python -m vmtune.hook g started begin -" in res.stdout
    assert "files/s" in res.stdout


def test_snapshot_read_bench_runs() -> None:
    res = _run("snapshot_read.py", "--runs", "1")
    assert res.returncode in (0, 1), res.stderr[-2000:]  # 1: archive over 2x the folder on a loaded machine
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "896 CPUs" in res.stdout


def test_scale_bench_runs() -> None:
    res = _run("scale.py", "--quick", "--runs", "1")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "| huge-8192 (8192 CPUs) | dedicated |" in res.stdout
    assert "worst lock hold:" in res.stdout


def test_memory_bench_runs() -> None:
    res = _run("memory.py", "--guests", "12")
    assert res.returncode == 0, res.stderr[-2000:]  # 1: a node over capacity, or VT206 on the stream
    assert "| backing | placed | node | committed / capacity | VT206 |" in res.stdout
    assert "nodes over capacity: 0" in res.stderr


def test_fit_bench_runs() -> None:
    res = _run("fit.py", "--quick")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "| host | placed | nodes over min | groups over min | guests with VT105 |" in res.stdout
    assert "huge-960 (960 CPUs, 16 nodes) with 100 tenants" in res.stdout
