"""The one way vmtune makes a rich Console, so every command behaves the same on terminals and pipes.

- stdout carries the product, stderr notes and warnings (house rule 10): ask for the stream you print to.
- ``NO_COLOR`` (https://no-color.org) drops colours; a stream that is not a terminal gets no escape codes at
  all (rich's own detection; ``FORCE_COLOR`` / ``TTY_COMPATIBLE`` still override it, as rich documents).
- Width: ``COLUMNS`` when set, the terminal's width on a terminal, else 100 columns (rich would use 80 for
  pipes, which wraps the host tree needlessly in ``less`` and in golden files).
- No automatic highlighting, markup or emoji: domain names such as ``db[1]`` or ``:cpu:`` are data.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from rich.console import Console

__all__ = ["DEFAULT_WIDTH", "make_console", "plain_width"]

DEFAULT_WIDTH = 100


def make_console(*, stderr: bool = False, file: TextIO | None = None, width: int | None = None) -> Console:
    """A Console on stdout (default), stderr, or ``file`` (tests), honouring NO_COLOR and non-TTY streams."""
    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    if width is None:
        width = plain_width(stream)
    return Console(
        file=stream,
        width=width,
        no_color=bool(os.environ.get("NO_COLOR")) or None,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
    )


def plain_width(stream: TextIO) -> int | None:
    """The width ``make_console(file=stream)`` gives rich, or None on a terminal (rich measures it)."""
    width = _env_width()
    if width is None and not _isatty(stream):
        width = DEFAULT_WIDTH
    return width


def _env_width() -> int | None:
    raw = os.environ.get("COLUMNS", "").strip()
    if raw.isdigit() and int(raw) >= 20:
        return int(raw)
    return None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
