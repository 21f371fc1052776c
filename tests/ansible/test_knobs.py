"""The Ansible collection's knob options are derived from the one intent declaration and never drift."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from testutil import REPO
from vmtune.adapters.hookenv import HookPaths, hook_lock
from vmtune.core.intent.knob import Knob
from vmtune.core.intent.model import KNOBS, parse_intent


def _load(path: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load("ansible/gen_knobs.py", "vmtune_gen_knobs")


@pytest.fixture
def module_utils(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The collection's module_utils, imported as Ansible does (``ansible_collections`` on the path)."""
    monkeypatch.syspath_prepend(str(REPO / "ansible"))
    name = "ansible_collections.vmtune.libvirt.plugins.module_utils.vmtune"
    module = importlib.import_module(name)
    yield module
    for loaded in [m for m in sys.modules if m.startswith("ansible_collections")]:
        del sys.modules[loaded]


def test_the_committed_table_and_docs_are_what_the_model_gives() -> None:
    """Fails when a knob is added to core/intent/model.py (or changed) and gen_knobs.py was not re-run."""
    rows = gen.knob_rows()
    assert gen.TABLE.read_text() == gen.render_table(rows), "run: PYTHONPATH=src python ansible/gen_knobs.py"
    module_text = gen.MODULE.read_text()
    assert module_text == gen.updated(module_text, rows), "run: PYTHONPATH=src python ansible/gen_knobs.py"


def test_a_new_knob_is_a_difference_the_drift_test_sees() -> None:
    extra: Knob[Any] = Knob(help="A knob only this test has.", parse=str).named("turbo_mode")
    rows = gen.knob_rows((*KNOBS, extra))
    assert rows[-1] == {"option": "turbo_mode", "flag": "--turbo-mode", "type": "str", "help": extra.help}
    assert gen.render_table(rows) != gen.TABLE.read_text()
    assert "  turbo_mode:\n" in gen.render_docs(rows)


def test_every_knob_is_an_option_named_as_its_flag_in_snake_case() -> None:
    options = [row["option"] for row in gen.knob_rows()]
    assert options == [k.flag.removeprefix("--").replace("-", "_") for k in KNOBS]
    assert {"profile", "cpu_policy", "thread_policy", "emulator", "iothreads", "numa", "memory_mode",
            "hugepages", "realtime_mask", "hyperv", "reserve", "force"} <= set(options)  # fmt: skip


def test_module_options_become_flags_the_knob_parsers_accept(module_utils: ModuleType) -> None:
    spec = module_utils.knob_argument_spec()
    profiles = ["balanced", "latency", "realtime", "windows"]
    assert spec["profile"] == {"type": "list", "elements": "str", "choices": profiles}
    assert spec["force"] == {"type": "bool"}
    params = {"profile": ["latency", "windows"], "iothreads": 2, "hugepages": "none", "force": True,
              "reshape": False, "numa": None, "isolate_host": False}  # fmt: skip
    args = module_utils.knob_args(params)
    # false is passed on only for a switch a profile can turn on: it opts out of the profile's default
    assert args == ["--profile", "latency,windows", "--iothreads", "2", "--hugepages", "none", "--force",
                    "--no-isolate-host"]  # fmt: skip
    by_flag = {k.flag: k for k in KNOBS} | {k.no_flag: k for k in KNOBS if k.negatable}
    raw: dict[str, str] = {}
    it = iter(args)
    for flag in it:
        knob = by_flag[flag]
        raw[knob.name] = ("no" if flag == knob.no_flag else "yes") if knob.switch else next(it)
    intent = parse_intent(raw, where=lambda k: k.flag)
    assert intent.iothreads == 2 and intent.force and len(intent.profiles) == 2
    assert intent.isolate_host is False


class _Failed(Exception):
    pass


class _Module:
    """The part of AnsibleModule that hook_lock uses."""

    def fail_json(self, msg: str, **_: Any) -> None:
        raise _Failed(msg)


def test_the_modules_take_the_hooks_lock(module_utils: ModuleType, tmp_path: Path) -> None:
    assert Path(module_utils.HOOK_LOCK) == HookPaths().state_dir / "hook.lock"
    lock = tmp_path / "vmtune" / "hook.lock"
    held, failed = hook_lock(HookPaths(state_dir=lock.parent)), pytest.raises(_Failed, match="not acquired")
    with held, failed, module_utils.hook_lock(_Module(), path=str(lock), timeout=0.3):
        pass
    with module_utils.hook_lock(_Module(), path=str(lock), timeout=0.3):
        pass  # free again once the hook let go
