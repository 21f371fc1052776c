"""The typer app and the one place where exceptions become exit codes (house rule 9)."""

from __future__ import annotations

import contextlib
import os
import sys

import typer

from vmtune import __version__
from vmtune.cli import check_cmd, host_cmd, live_cmd, plan_cmd
from vmtune.cli.compat import App
from vmtune.errors import ExitCode, VmtuneError

__all__ = ["app", "main"]

app = App(
    name="vmtune",
    help="Make libvirt/KVM guests fast and predictable on this host: plan, apply, check, verify.",
    no_args_is_help=True,
)


def _show_version(wanted: bool) -> None:
    if wanted:
        print(f"vmtune {__version__}")
        raise typer.Exit()


VERSION_OPT: bool = typer.Option(
    False, "--version", help="Print the version and exit.", callback=_show_version, is_eager=True
)


@app.callback()
def _root(version: bool = VERSION_OPT) -> None:
    """Make libvirt/KVM guests fast and predictable on this host: plan, apply, check, verify."""
    # An explicit callback keeps `vmtune` a command group even when only one command is registered
    # (typer otherwise collapses a one-command app into that command).


def _register() -> None:
    for module in (host_cmd, plan_cmd, check_cmd, live_cmd):
        module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, map VmtuneError to its exit code with one stderr line."""
    args = sys.argv[1:] if argv is None else argv
    try:
        # click returns (not raises) the code of a typer.Exit in non-standalone mode: `check` exits 5 so
        result = app(args=args, prog_name="vmtune", standalone_mode=False)
        if isinstance(result, int) and result:
            return result
    except VmtuneError as err:
        print(f"vmtune: error: {err}", file=sys.stderr)
        return int(err.exit_code)
    except typer.Exit as done:
        return int(done.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("vmtune: aborted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away: exit quietly, without Python's "Exception ignored" at shutdown
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as err:
        # Usage errors arrive here in non-standalone mode. typer >= 0.29 raises its vendored copy of click's
        # exceptions (typer._click.exceptions), which are not click.ClickException, so match by class name.
        if any(cls.__name__ in ("ClickException", "UsageError") for cls in type(err).__mro__):
            ctx = getattr(err, "ctx", None)
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            print(f"vmtune: error: {err.format_message()}{where}", file=sys.stderr)  # type: ignore[attr-defined]
            return int(ExitCode.BAD_INPUT)
        raise
    return int(ExitCode.OK)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
