"""Lines for a stream rich would not colour, written without importing rich (start-up of every `vmtune plan`).

``make_console()`` on a pipe or a file prints no escape codes, so a diff or a note line comes out as the
text itself, after what rich's ``Text`` always does: drop BEL/BS/VT/FF/CR (``rich.control``) and expand
tabs to 8-column stops. ``Plain`` does exactly that for the common lines (printable ASCII wherever a cell
count matters) and hands anything else to a real ``make_console()`` on the same stream, so the bytes are
rich's in every case; tests/test_render_plain.py compares the two. Importing rich costs ~50 ms, a third of
``vmtune plan``'s budget next to ``virt-xml`` (bench/xml.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Plain", "rich_would_style"]

# rich.control.STRIP_CONTROL_CODES: removed from every Text before it is printed
_STRIP: dict[int, None] = dict.fromkeys((7, 8, 11, 12, 13))
_DEFAULT_WIDTH = 100  # vmtune.render.console.DEFAULT_WIDTH (not imported: that module imports rich)


def rich_would_style(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when rich treats ``stream`` as a terminal (``Console.is_terminal``): colours, live progress.

    The same order as rich 13-15: TTY_COMPATIBLE=0/1 decides, then a set FORCE_COLOR (non-empty = on,
    https://force-color.org), then ``isatty()``.
    """
    env = os.environ if environ is None else environ
    compatible = env.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    force = env.get("FORCE_COLOR")
    if force is not None:
        return force != ""
    return _isatty(stream)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _cells_are_chars(text: str) -> bool:
    """Printable ASCII: one character is one terminal cell, so tab stops and widths count characters."""
    return all(" " <= ch <= "~" for ch in text)


class Plain:
    """Write lines to a stream that rich would not style, byte for byte as ``make_console()`` would."""

    __slots__ = ("_console", "file")

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self._console: Console | None = None

    def line(self, text: str, *, soft_wrap: bool = True) -> None:
        """``console.print(Text(text), soft_wrap=soft_wrap)`` on a console without colours."""
        clean = text.translate(_STRIP)
        if "\t" in clean:
            if not _cells_are_chars(clean.replace("\t", " ")):
                self._rich(text, soft_wrap)  # rich counts cells (wide CJK, zero-width marks) to the tab stop
                return
            clean = clean.expandtabs(8)  # == rich's Text.expand_tabs for one-cell characters
        if not soft_wrap:
            width = self._width()
            if width is None or len(clean) > width or not _cells_are_chars(clean):
                self._rich(text, soft_wrap)  # rich wraps at the console width
                return
        self.file.write(clean + "\n")

    def flush(self) -> None:
        self.file.flush()  # rich flushes after every print: keep stdout/stderr interleaved the same way

    def console(self) -> Console:
        """The rich console this stream would have had (tables, odd lines)."""
        if self._console is None:
            from vmtune.render.console import make_console

            self._console = make_console(file=self.file)
        return self._console

    def _rich(self, text: str, soft_wrap: bool) -> None:
        from rich.text import Text

        self.console().print(Text(text), soft_wrap=soft_wrap)

    def _width(self) -> int | None:
        """make_console()'s width for this stream; None when rich measures a terminal itself."""
        if _isatty(self.file):
            return None
        raw = os.environ.get("COLUMNS", "").strip()
        return int(raw) if raw.isdigit() and int(raw) >= 20 else _DEFAULT_WIDTH
