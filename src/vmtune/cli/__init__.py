"""Thin typer wiring: gather via adapters -> decide in core -> show via render.

Each command lives in its own small module that exposes ``register(app)``; ``vmtune.cli.app`` builds the
app and owns the single translation of VmtuneError to exit codes. This package only holds the console
entry point (``main``), which sends libvirt's hook calls past typer, and re-exports ``app`` lazily.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmtune.cli.app import app

__all__ = ["app", "main"]


def _is_libvirt_hook(argv: list[str]) -> bool:
    """``hook GUEST OP SUBOP [EXTRA]`` exactly as libvirt passes it (not ``hook install``, no options).

    typer keeps such an argv verbatim anyway (the hook command disallows interspersed options), so
    skipping it changes nothing but the ~0.1-0.2 s of importing typer on every guest start and stop.
    """
    return (
        len(argv) in (4, 5)
        and argv[0] == "hook"
        and argv[1] != "install"
        and not any(a.startswith("-") for a in argv[1:4])
    )


def main(argv: list[str] | None = None) -> int:
    """Console entry point (``vmtune``): see ``vmtune.cli.app.main``."""
    args = sys.argv[1:] if argv is None else argv
    if not _is_libvirt_hook(args):
        from vmtune.cli.app import main as typer_main

        return typer_main(args)
    from vmtune.errors import VmtuneError
    from vmtune.hook import run_hook

    # the same exit-code translation as vmtune.cli.app.main for what the hook command can raise
    try:
        return run_hook(args[1:], sys.stdin.buffer, sys.stdout.buffer, sys.stderr)
    except VmtuneError as err:
        print(f"vmtune: error: {err}", file=sys.stderr)
        return int(err.exit_code)
    except KeyboardInterrupt:
        print("vmtune: aborted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def __getattr__(name: str) -> Any:
    # `from vmtune.cli import app` still works; importing the package no longer imports typer
    if name == "app":
        from vmtune.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
