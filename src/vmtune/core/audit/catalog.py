"""The audit rule catalog (DESIGN.md), one module per family; codes are stable, documented in docs/rules/."""

from __future__ import annotations

from vmtune.core.audit import cpu, memory, realtime, windows
from vmtune.core.audit.engine import Rule

__all__ = ["ALL_RULES", "BY_CODE"]

ALL_RULES: tuple[Rule, ...] = tuple(
    sorted((*cpu.RULES, *memory.RULES, *windows.RULES, *realtime.RULES), key=lambda r: r.code)
)
BY_CODE: dict[str, Rule] = {r.code: r for r in ALL_RULES}
