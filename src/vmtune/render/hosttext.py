"""Styled lines without rich: what the host tree and map print, drawn by rich or written as plain text.

The host views build ``Styled`` lines (text runs with rich style names) and branches; on a stream rich
would colour they become rich ``Text`` and ``Tree`` objects. On a pipe or a file, rich would print the
text alone, so ``write_plain`` writes it without importing rich or running its layout, which is most of
what ``vmtune host`` costs on a large host (bench/host_render.py). It does so only when
the result is certain to be rich's bytes: every character one cell wide, no tabs or control codes, a
UTF-8 stream (rich draws ASCII tree guides otherwise), and no line that rich would wrap; else it returns
False and the caller draws with rich. tests/test_render_host.py compares both on every named host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["Branch", "Styled", "tree_lines", "write_plain"]

# Printable ASCII and the few other characters the host views draw: each one terminal cell (rich agrees).
_ONE_CELL = frozenset(map(chr, range(0x20, 0x7F))) | frozenset("·×│├└─")
# rich.tree.Tree.TREE_GUIDES[0] (UTF-8 consoles): space, continue, fork, end
_GUIDES = ("    ", "│   ", "├── ", "└── ")


@dataclass(frozen=True, slots=True, kw_only=True)
class Styled:
    """``Text(runs[0], style=base)`` with the other runs appended in their own styles ("" for none)."""

    runs: tuple[tuple[str, str], ...]
    base: str = ""

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.runs)

    def text(self) -> Text:
        from rich.text import Text

        out = Text(style=self.base)
        for chunk, style in self.runs:
            out.append(chunk, style=style or None)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Branch:
    """One tree label and what hangs under it (rich ``Tree.add``)."""

    label: Styled
    children: list[Branch] = field(default_factory=list)

    def add(self, label: Styled) -> Branch:
        child = Branch(label=label)
        self.children.append(child)
        return child


def tree_lines(top: Sequence[Branch]) -> list[str]:
    """What ``Tree(hide_root=True)`` with these children prints on a wide enough console, line by line."""
    lines: list[str] = []

    def walk(branch: Branch, indent: str, guide: str) -> None:
        lines.append(indent + guide + branch.label.plain)
        # a hidden root's children carry no guide; their children start the guides
        below = indent + ("" if not guide else _GUIDES[0] if guide == _GUIDES[3] else _GUIDES[1])
        last = len(branch.children) - 1
        for i, child in enumerate(branch.children):
            walk(child, below, _GUIDES[3] if i == last else _GUIDES[2])

    for branch in top:
        walk(branch, "", "")
    return lines


def write_plain(stream: TextIO, lines: Sequence[tuple[str, bool]], width: int | None) -> bool:
    """Write ``(line, wraps)`` pairs as rich would without colours, or return False (nothing written).

    ``wraps``: rich would wrap the line at ``width`` (``soft_wrap=False``); the map's grid rows are printed
    ``no_wrap``/``crop=False`` and come out whole. ``width`` None: rich measures a terminal itself.
    """
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower()
    if width is None or not encoding.startswith("utf"):
        return False
    for line, wraps in lines:
        if (wraps and len(line) > width) or not _ONE_CELL.issuperset(line):
            return False
    stream.write("".join(line + "\n" for line, _ in lines))
    return True
