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


def _register_all() -> None:
    if app.registered_commands or app.registered_groups:
        return  # main() runs many times in one test process: registering twice duplicates every command
    from vmtune.cli import check_cmd, host_cmd, live_cmd, plan_cmd

    for module in (host_cmd, plan_cmd, check_cmd, live_cmd):
        module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, map VmtuneError to its exit code with one stderr line."""
    _register_all()
    try:
        # click returns (not raises) the code of a typer.Exit in non-standalone mode: `check` exits 5 so
        result = app(args=argv, prog_name="vmtune", standalone_mode=False)
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
