"""The audit rule catalog (DESIGN.md): every ``Rule`` declared in a family module, in code order.

A rule is declared once, by decorating its check (``@guest_rule``/``@host_rule``) in the module of its
family; nothing else lists it. Codes are stable and each has a page ``docs/rules/VTnnn.md``.
"""

from __future__ import annotations

from types import ModuleType

from vmtune.core.audit import cache, cpu, memory, realtime, windows
from vmtune.core.audit.engine import Rule

__all__ = ["ALL_RULES", "BY_CODE", "FAMILY_MODULES"]

FAMILY_MODULES: tuple[ModuleType, ...] = (cpu, cache, memory, windows, realtime)


def _declared(module: ModuleType) -> list[Rule]:
    return [value for value in vars(module).values() if isinstance(value, Rule)]


ALL_RULES: tuple[Rule, ...] = tuple(
    sorted((r for m in FAMILY_MODULES for r in _declared(m)), key=lambda r: r.code)
)
BY_CODE: dict[str, Rule] = {r.code: r for r in ALL_RULES}
