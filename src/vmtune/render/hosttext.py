"""Styled lines and tree branches: what the host tree and map are built of before rich draws them.

The views build plain data (text runs with rich style names) so the layout rules can be tested without a
console; ``Styled.text`` turns a line into rich ``Text`` at the last moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text

__all__ = ["Branch", "Styled"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Styled:
    """``Text(runs[0], style=base)`` with the other runs appended in their own styles ("" for none)."""

    runs: tuple[tuple[str, str], ...]
    base: str = ""

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.runs)

    def text(self) -> Text:
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
