"""``--textfile PATH`` of `vmtune verify` and `vmtune check`: metrics for node_exporter's textfile collector.

The file is replaced atomically (temp file + rename in the same folder, ``atomic_write``), so the collector
never reads half a file; the temp name does not end in ``.prom``, so it is never collected either. It is
world-readable (0644): node_exporter runs as its own user. A run that fails before the audit or the
comparison finishes leaves the previous file, whose ``vmtune_last_run_timestamp_seconds`` then ages.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import typer

from vmtune.adapters.files import atomic_write
from vmtune.adapters.libvirt import open_host
from vmtune.core.audit.engine import Finding, catalog
from vmtune.core.verify.compare import Observed, Report
from vmtune.core.verify.sample import sample
from vmtune.render.metrics import check_metrics, verify_metrics

__all__ = ["TEXTFILE_OPT", "write_check_textfile", "write_verify_textfile"]

TEXTFILE_OPT: Path | None = typer.Option(
    None,
    "--textfile",
    help="Also write Prometheus metrics to PATH (node_exporter textfile collector, *.prom), atomically.",
    metavar="PATH",
)


def write_verify_textfile(
    path: Path | None, uri: str, reports: Sequence[Report], observed: Sequence[Observed]
) -> None:
    """The verify metrics of ``reports`` (``observed[i]`` is what ``reports[i]`` compared) into ``path``."""
    if path is None:
        return
    host = open_host(uri)  # which node each CPU is on, for the memory locality
    samples = [sample(rep, obs, host) for rep, obs in zip(reports, observed, strict=True)]
    atomic_write(path, verify_metrics(samples, now=time.time()).encode(), mode=0o644)


def write_check_textfile(path: Path | None, findings: Sequence[Finding]) -> None:
    if path is None:
        return
    atomic_write(path, check_metrics(findings, catalog(), now=time.time()).encode(), mode=0o644)
