"""packaging/gendocs.py: the man page names every command, option and exit code of the CLI; the static
completions offer them without running vmtune."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import typer

from vmtune.cli import app
from vmtune.errors import ExitCode

GENDOCS = Path(__file__).resolve().parents[2] / "packaging" / "gendocs.py"


def _gendocs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gendocs", GENDOCS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gendocs"] = module  # its dataclass resolves its annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gendocs")
    assert _gendocs().main([str(out)]) == 0
    return out


def _commands(cmd: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    found = [(path, cmd)]
    for name, sub in getattr(cmd, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


def test_man_page_names_every_command_option_and_exit_code(generated: Path) -> None:
    page = (generated / "vmtune.1").read_text()
    plain = page.replace("\\-", "-")
    for path, cmd in _commands(typer.main.get_command(app)):
        if path:
            assert f".SS vmtune {' '.join(path)}\n" in plain, path
        for param in cmd.params:  # type: ignore[attr-defined]
            if param.param_type_name == "option" and not param.hidden:
                for name in param.opts:
                    assert name in plain, (path, name)
    for code in ExitCode:
        assert f".TP\n\\fB{int(code)}\\fR\n" in page
    assert ".SH EXAMPLES" in page


@pytest.mark.skipif(shutil.which("man") is None, reason="needs man (man-db) to render the page")
def test_man_page_renders_without_warnings(generated: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "MANWIDTH": "80"}
    cmd = ["man", "--warnings", "-l", "-P", "cat", str(generated / "vmtune.1")]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert res.returncode == 0 and not res.stderr, res.stderr
    assert "vmtune hook" in res.stdout and "--realtime-mask" in res.stdout


def _complete(script: Path, line: str) -> list[str]:
    """What bash completion offers for ``line`` (completing its last word), without bash-completion."""
    words = line.split(" ")
    driver = (
        "_init_completion() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]};"
        ' words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }\n'
        "_filedir() { COMPREPLY=(FILES); }\n"
        f"source {script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        "_vmtune; printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    res = subprocess.run(["bash", "-c", driver], capture_output=True, text=True, check=True)
    return res.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_is_static_and_knows_the_tree(generated: Path) -> None:
    script = generated / "vmtune.bash"
    assert "vmtune " not in script.read_text().split("complete -F")[0].replace(
        "# bash completion for vmtune", ""
    )
    assert _complete(script, "vmtune ") == ["plan", "apply", "check", "verify", "hook", "host"]
    assert _complete(script, "vmtune host ") == ["snapshot"]
    assert "--hugepages" in _complete(script, "vmtune plan --h")
    assert _complete(script, "vmtune plan --hugepages ") == ["2M", "1G", "none"]
    assert _complete(script, "vmtune plan --sysfs ") == ["FILES"]
    assert "--sarif" in _complete(script, "vmtune check --")
