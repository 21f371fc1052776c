"""Thin typer wiring: gather via adapters -> decide in core -> show via render.

Each command lives in its own small module that exposes ``register(app)``; ``vmtune.cli.app`` builds the
app and owns the translation of VmtuneError to exit codes. This package holds the console entry point
(``main``) and re-exports ``app`` lazily: importing typer costs ~0.1 s, which libvirt pays on every guest
start and stop (``vmtune hook``), which is as much as the work of ``vmtune plan`` on one guest and a fifth
of ``vmtune host`` on a 900-CPU host, so those argvs skip typer when they are plain (``_fast``;
``cli.plan_fast`` parses plan and host); everything else goes to ``app.main``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmtune.cli.app import app

__all__ = ["app", "main"]


def _is_libvirt_hook(argv: list[str]) -> bool:
    """``hook GUEST OP SUBOP [EXTRA]`` exactly as libvirt passes it (not ``hook install``, no options).

    typer hands such an argv to the hook verbatim anyway (the hook command disallows interspersed
    options), so skipping it changes nothing but the start-up time.
    """
    return (
        len(argv) in (4, 5)
        and argv[0] == "hook"
        and argv[1] != "install"
        and not any(a.startswith("-") for a in argv[1:4])
    )


def _fast(argv: list[str]) -> Callable[[], int] | None:
    """The command to run without typer, or None when typer must parse ``argv``."""
    if _is_libvirt_hook(argv):
        from vmtune.hook import run_hook

        return lambda: run_hook(argv[1:], sys.stdin.buffer, sys.stdout.buffer, sys.stderr)
    if argv[:1] in (["plan"], ["host"]):
        from vmtune.cli.plan_fast import fast_command

        return fast_command(argv)
    return None


def _guarded(command: Callable[[], int]) -> int:
    """What ``app.main`` (and typer's non-standalone main under it) make of these exceptions."""
    from vmtune.errors import VmtuneError

    try:
        return command()
    except VmtuneError as err:
        print(f"vmtune: error: {err}", file=sys.stderr)
        return int(err.exit_code)
    except KeyboardInterrupt:
        return 130  # typer: Exit(130), silently
    except EOFError:
        print(file=sys.stderr)  # typer: a newline, then Abort, which app.main reports
        print("vmtune: aborted", file=sys.stderr)
        return 130
    except OSError as err:
        if err.errno != errno.EPIPE:
            raise
        # click: the reader of stdout went away; exit 1 without "Exception ignored ... BrokenPipeError"
        # when Python flushes stdout at exit
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def main(argv: list[str] | None = None) -> int:
    """Console entry point (``vmtune``): ``vmtune.cli.app.main``, or a fast path that skips typer."""
    args = sys.argv[1:] if argv is None else argv
    command = _fast(args)
    if command is not None:
        return _guarded(command)
    from vmtune.cli.app import main as typer_main

    return typer_main(args)


def __getattr__(name: str) -> Any:
    # `from vmtune.cli import app` still works; importing the package no longer imports typer
    if name == "app":
        from vmtune.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
