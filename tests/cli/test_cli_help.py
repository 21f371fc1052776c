"""``--version``, and ``-h``/``--help`` on every command (typer 0.7 and newer alike)."""

from __future__ import annotations

import pytest
import typer

from vmtune import __version__
from vmtune.cli import app, main


def _paths(cmd: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in getattr(cmd, "commands", {}).items():
        found += _paths(sub, (*path, name))
    return found


COMMANDS = _paths(typer.main.get_command(app))


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"vmtune {__version__}\n"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "vmtune")
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_on_every_command(path: tuple[str, ...], flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path, flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: vmtune {' '.join(path)}".rstrip()), out
    assert "-h, --help" in out


def test_commands_listed_in_design_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-h"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.split("Commands:\n")[1].splitlines()]
    assert listed == ["plan", "apply", "check", "verify", "hook", "host"]


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_hook_install_help(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hook", "install", flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: vmtune hook") and "--dir" in out
