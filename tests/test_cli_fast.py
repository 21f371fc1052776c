"""The typer-free start-up paths (vmtune.cli.main): plain `vmtune plan`/`vmtune host` argvs, libvirt's hook.

They must be invisible: the same arguments reach the same code as through typer, the same bytes come out,
and every argv the fast parser is unsure of still goes to typer (with typer's messages).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testutil import DATA
from vmtune.cli import main as fast_main
from vmtune.cli import plan_fast
from vmtune.cli.app import _register, app
from vmtune.cli.app import main as typer_main
from vmtune.cli.plan_fast import PLAN, Spec, parse

HOST = DATA / "hosts" / "dual-skylake-ht-interleaved"
SERVER = DATA / "domains" / "linux-server.xml"
WIN = DATA / "domains" / "win11-desktop.xml"
REPO = Path(__file__).resolve().parent.parent


def _command(name: str) -> Any:
    import typer.main

    _register([name])
    return typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]


def parse_plan(argv: list[str], environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    return parse(PLAN, argv, environ)


@pytest.mark.parametrize(("command", "spec"), [("plan", PLAN), ("host", plan_fast.HOST)])
def test_option_table_matches_typer(command: str, spec: Spec) -> None:
    """Every option the fast parser takes is the typer command's, of the same kind, converted alike."""
    import enum

    params = {p.name: p for p in _command(command).params}
    seen = set()
    for opt, (name, kind) in spec.options.items():
        param = params[name]
        seen.add(name)
        assert opt in param.opts and not param.is_flag and not param.multiple and param.envvar is None
        type_name = type(param.type).__name__
        if kind == "path":
            assert type_name == "TyperPath" and not param.type.exists and param.type.readable
        elif kind == "text":
            assert type(param.type).__name__ == "StringParamType"
        elif kind == "count":
            assert type_name == "IntRange" and param.type.min == 0 and param.type.max is None
        else:
            enum_type = plan_fast.enum_kind(kind)
            assert enum_type is not None and issubclass(enum_type, enum.Enum)
            assert list(param.type.choices) == [m.value for m in enum_type] and param.type.case_sensitive
    for opt, name in spec.flags.items():
        seen.add(name)
        assert params[name].opts == [opt] and params[name].is_flag and not params[name].secondary_opts
    # a new option that the table lacks is fine (typer parses it), but must not be a positional
    positional = [spec.positional] if spec.positional else []
    assert seen | set(positional) <= set(params)
    assert [p.name for p in params.values() if p.param_type_name == "argument"] == positional


ARGVS = [
    [str(SERVER), "--sysfs", str(HOST)],
    [str(SERVER), f"--sysfs={HOST}", "--json"],
    ["--sysfs", str(HOST), str(SERVER), str(WIN), "--explain"],
    [str(SERVER), "--sysfs", str(HOST), "--profile", "latency,windows", "--thread-policy", "isolate",
     "--emulator", "isolate", "--iothreads", "2", "--numa", "1", "--memory-mode", "preferred",
     "--hugepages", "2M", "--realtime-mask", "^0", "--hyperv", "on", "--reserve", "0-1", "--os", "windows",
     "--core-kind", "any", "--force", "--domcapabilities", str(SERVER), "--domains", str(HOST)],
    [str(SERVER), "--sysfs", "/nonexistent", "--sysfs", str(HOST), "--iothreads=007", "--profile="],
    [str(SERVER), "--capabilities", str(HOST) + ".capabilities.xml", "--connect", "test:///default"],
]  # fmt: skip


@pytest.mark.parametrize("argv", ARGVS)
def test_fast_parser_calls_plan_like_typer(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from vmtune.cli import plan_run

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def record(*args: Any, **kwargs: Any) -> int:
        calls.append((tuple(tuple(a) if isinstance(a, list | tuple) else a for a in args), kwargs))
        return 0

    monkeypatch.setattr(plan_run, "plan", record)
    assert parse_plan(argv) is not None
    assert fast_main(["plan", *argv]) == 0
    assert typer_main(["plan", *argv]) == 0
    assert len(calls) == 2 and calls[0] == calls[1]


@pytest.mark.parametrize(
    "argv",
    [
        [str(SERVER), "--help"],
        [str(SERVER), "-c", "test:///default"],
        [str(SERVER), "--", "--sysfs"],
        [str(SERVER), "--thread-policy", "Isolate"],
        [str(SERVER), "--iothreads", "-1"],
        [str(SERVER), "--iothreads", " 2"],
        [str(SERVER), "--json=1"],
        [str(SERVER), "--sysfs"],
        [str(SERVER), "--sysfs", ""],
        ["--sysfs", str(HOST)],
        ["-"],
        [str(SERVER), "--sysfz", str(HOST)],
        [str(SERVER), "--no-json"],
    ],
)
def test_fast_parser_leaves_the_rest_to_typer(argv: list[str]) -> None:
    assert parse_plan(argv) is None


def test_completion_requests_go_to_typer() -> None:
    assert parse_plan([str(SERVER)], {"_VMTUNE_COMPLETE": "bash_source"}) is None


def test_typer_still_reports_what_the_fast_parser_declines(capsys: pytest.CaptureFixture[str]) -> None:
    assert fast_main(["plan", str(SERVER), "--thread-policy", "Isolate"]) == 2
    assert "--thread-policy" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [str(SERVER), "--sysfs", str(HOST)],
        [str(SERVER), "--sysfs", str(HOST), "--explain", "--profile", "latency"],
        [str(SERVER), "--sysfs", str(HOST), "--json"],
        [str(SERVER), str(WIN), "--sysfs", str(HOST)],  # batch: summary table through rich
        [str(SERVER), "--sysfs", str(HOST), "--numa", "many"],  # InputError: exit 2, one line
        [str(DATA / "nonexistent.xml"), "--sysfs", str(HOST)],
    ],
)
def test_fast_and_typer_paths_print_the_same(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = fast_main(["plan", *argv])
    fast = capsys.readouterr()
    assert typer_main(["plan", *argv]) == code
    assert capsys.readouterr() == fast
    assert fast.out or fast.err


HOST_ARGVS = [
    [],
    ["--sysfs", str(HOST)],
    [f"--sysfs={HOST}", "--json"],
    ["--json", "--sysfs", str(HOST), "--domains", str(DATA / "domains"), "--reserve", "0-1"],
    ["--map", "--sysfs", "/nonexistent", "--sysfs", str(HOST), "--reserve=19,39", "--map"],
    ["--capabilities", str(HOST) + ".capabilities.xml", "--json"],
]


@pytest.mark.parametrize("argv", HOST_ARGVS)
def test_fast_parser_calls_host_like_typer(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from vmtune.cli import host_run

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(host_run, "host", lambda **kwargs: calls.append(kwargs))
    assert parse(plan_fast.HOST, argv) is not None
    assert fast_main(["host", *argv]) == 0
    assert typer_main(["host", *argv]) == 0
    assert len(calls) == 2 and calls[0] == calls[1]


@pytest.mark.parametrize(
    "argv",
    [
        ["snapshot", "/tmp/out.tar.gz"],
        ["--sysfs", str(HOST), "snapshot", "/tmp/out.tar.gz"],
        [str(HOST)],
        ["--connect", "test:///default"],
        ["-c", "test:///default", "--json"],
        ["--sysfs", str(HOST), "--help"],
        ["--json=1"],
        ["--map=yes"],
        ["--sysfs"],
        ["--sysfs", ""],
        ["--domains", ""],
        ["--", "--json"],
        ["--explain"],
        ["--no-json"],
    ],
)
def test_fast_host_parser_leaves_the_rest_to_typer(argv: list[str]) -> None:
    assert parse(plan_fast.HOST, argv) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--sysfs", str(HOST)],
        ["--sysfs", str(HOST), "--json"],
        ["--sysfs", str(HOST), "--json", "--domains", str(DATA / "domains"), "--reserve", "0"],
        ["--sysfs", str(HOST), "--map", "--reserve", "0,20"],
        ["--capabilities", str(HOST) + ".capabilities.xml"],
        ["--sysfs", str(HOST), "--json", "--map"],  # InputError: exit 2, one line
        ["--sysfs", str(HOST), "--reserve", "0-x"],
        ["--sysfs", str(DATA / "nonexistent")],
    ],
)
def test_fast_and_typer_host_print_the_same(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    code = fast_main(["host", *argv])
    fast = capsys.readouterr()
    assert typer_main(["host", *argv]) == code
    assert capsys.readouterr() == fast
    assert fast.out or fast.err


def _modules_after(args: list[str], stdin: bytes = b"", env: dict[str, str] | None = None) -> set[str]:
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['vmtune', *{args!r}]\n"
        "try:\n    runpy.run_module('vmtune', run_name='__main__')\n"
        "except SystemExit as done:\n    code = done.code\n"
        "print(code, *sorted(sys.modules), file=sys.stderr)\n"
    )
    # a pipe without forced colours: rich would rightly be used under FORCE_COLOR / TTY_COMPATIBLE=1
    base = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    res = subprocess.run(
        [sys.executable, "-c", probe], input=stdin, capture_output=True, check=False, cwd=REPO,
        env={**base, **(env or {})},
    )  # fmt: skip
    last = res.stderr.decode().strip().splitlines()[-1].split()
    assert last[0] == "0", res.stderr.decode()
    return set(last[1:])


def test_plan_into_a_pipe_imports_neither_typer_nor_rich() -> None:
    loaded = _modules_after(["plan", str(SERVER), "--sysfs", str(HOST)])
    assert "vmtune.core.planner" in loaded and "lxml.etree" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("typer", "click", "rich")}


def test_host_json_imports_neither_typer_nor_rich() -> None:
    loaded = _modules_after(["host", "--sysfs", str(HOST), "--json"])
    assert "vmtune.render.hostjson" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("typer", "click", "rich")}
    assert "vmtune.core.ledger.ownership" not in loaded  # no --domains: no owners to work out
    assert "vmtune.core.intent.model" not in loaded  # plan's enum options are resolved only when used


def test_host_tree_into_a_pipe_imports_no_typer() -> None:
    loaded = _modules_after(["host", "--sysfs", str(HOST)])
    assert "vmtune.render.host" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("typer", "click")}


def test_hook_noop_imports_no_planner_no_lxml(tmp_path: Path) -> None:
    env = {"VMTUNE_HOOK_STATE_DIR": str(tmp_path / "state"), "VMTUNE_HOOK_STATUS_DIR": str(tmp_path)}
    loaded = _modules_after(["hook", "g", "started", "begin", "-"], env=env)
    assert "vmtune.hook" in loaded
    heavy = {"typer", "click", "rich", "lxml"}
    assert not {m for m in loaded if m.split(".")[0] in heavy or m.startswith("vmtune.core")}


@pytest.mark.parametrize(
    ("argv", "fast"),
    [
        (["hook", "g", "started", "begin", "-"], True),
        (["hook", "g", "stopped", "end"], True),
        (["hook", "install", "started", "begin", "-"], False),  # typer decides: a guest named install
        (["hook", "--dir", "/x", "g", "started"], False),
        (["hook", "g", "started"], False),
        (["hook", "g", "started", "begin", "-", "extra"], False),
        (["plan"], False),
    ],
)
def test_hook_fast_path_is_only_libvirts_argv(argv: list[str], fast: bool) -> None:
    from vmtune.cli import _fast

    assert (_fast(argv) is not None) is fast


def test_hook_fast_path_answers_like_typer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    monkeypatch.setenv("VMTUNE_HOOK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("VMTUNE_HOOK_STATUS_DIR", str(tmp_path))
    claims = tmp_path / "state" / "claims"
    claims.mkdir(parents=True)
    for run in (fast_main, typer_main):
        (claims / "g.xml").write_bytes(SERVER.read_bytes())
        assert run(["hook", "g", "started", "begin", "-"]) == 0
        assert not (claims / "g.xml").exists()  # the claim is dropped either way
        assert capfdbinary.readouterr() == (b"", b"")
