"""The typer app class every command hangs on; it lets one CLI run on typer 0.7 (Debian 12) and newer.

Options are declared in typer's default-value style (``sysfs: Path | None = SYSFS_OPT``), which every typer
release reads; ``Annotated`` options need typer 0.9. ``App`` closes the other gaps of the old releases for
every command at once: typer before 0.9 cannot read PEP 604 unions (``Path | None``), so it gets each
command's annotations as ``typing.Optional``; and it formats help with rich whenever rich can be imported
and sorts commands by name, so every command and group prints click's plain help with commands in the
order they were added (what newer typer does with ``rich_markup_mode=None``). ``-h`` is ``--help``
everywhere: subcommands inherit the root's option names.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from types import NoneType, UnionType
from typing import Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = ["App", "PlainCommand", "PlainGroup"]

F = TypeVar("F", bound=Callable[..., Any])

HELP_NAMES = {"help_option_names": ["-h", "--help"]}


class PlainCommand(TyperCommand):
    """A command whose ``--help`` is click's plain text on every typer release."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        super(TyperCommand, self).format_help(ctx, formatter)


class PlainGroup(TyperGroup):
    """A group whose ``--help`` is click's plain text on every typer release."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        super(TyperGroup, self).format_help(ctx, formatter)

    def list_commands(self, ctx: Any) -> list[str]:
        """Commands in the order they were added (the order of DESIGN.md), as newer typer lists them."""
        return list(self.commands)


def _optional(hint: Any) -> Any:
    """``X | None`` as ``typing.Optional[X]``; any other hint as it is."""
    if isinstance(hint, UnionType):
        args = typing.get_args(hint)
        if NoneType in args:
            return typing.Union[tuple(args)]  # noqa: UP007 - the spelling typer 0.7 understands
    return hint


def plain_hints(func: F) -> F:
    """Give ``func`` evaluated annotations with ``typing.Optional`` for ``X | None`` (typer reads these)."""
    hints = typing.get_type_hints(func)
    func.__annotations__ = {name: _optional(hint) for name, hint in hints.items()}
    return func


class App(typer.Typer):
    """``typer.Typer`` with vmtune's settings: plain help, ``-h``, no completion or pretty tracebacks."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(
            cls=PlainGroup,
            add_completion=False,
            pretty_exceptions_enable=False,
            rich_markup_mode=None,
            context_settings=HELP_NAMES,
            **settings,
        )

    def command(self, name: str | None = None, **settings: Any) -> Callable[[F], F]:
        register = super().command(name, cls=PlainCommand, **settings)

        def decorator(func: F) -> F:
            register(plain_hints(func))
            return func

        return decorator

    def callback(self, **settings: Any) -> Callable[[F], F]:
        register = super().callback(cls=PlainGroup, **settings)

        def decorator(func: F) -> F:
            register(plain_hints(func))
            return func

        return decorator
