"""The typer app and the one place where exceptions become exit codes (house rule 9)."""

from __future__ import annotations

import sys

import typer

from vmtune.errors import ExitCode, VmtuneError

__all__ = ["app", "main"]

app = typer.Typer(
    name="vmtune",
    help="Make libvirt/KVM guests fast and predictable on this host: plan, apply, check, verify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Make libvirt/KVM guests fast and predictable on this host: plan, apply, check, verify."""
    # An explicit callback keeps `vmtune` a command group even when only one command is registered
    # (typer otherwise collapses a one-command app into that command).


# Which module defines each command. Only the invoked command's module is imported: start-up time is part of
# every hook run and every `plan`, and the check rules or the rich renderers of other commands cost ~0.1 s.
_COMMAND_MODULES = {
    "host": "host_cmd",
    "plan": "plan_cmd",
    "apply": "plan_cmd",
    "check": "check_cmd",
    "verify": "live_cmd",
    "hook": "live_cmd",
}
_ORDER = ("host_cmd", "plan_cmd", "check_cmd", "live_cmd")
_registered: set[str] = set()


def _register(argv: list[str]) -> None:
    import importlib

    wanted = _COMMAND_MODULES.get(argv[0]) if argv else None
    for name in (wanted,) if wanted else _ORDER:
        if name in _registered:
            continue  # main() runs many times in one test process: registering twice duplicates commands
        importlib.import_module(f"vmtune.cli.{name}").register(app)
        _registered.add(name)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, map VmtuneError to its exit code with one stderr line."""
    args = sys.argv[1:] if argv is None else argv
    _register(args)
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
        return 0
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
