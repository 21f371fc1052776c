"""The knob table: every knob parses and prints alike as a flag and as a metadata attribute, round-trips
through ``<vmtune:tuning>``, and a bad value fails naming where it was written (the flag, or FILE: XPath)."""

from __future__ import annotations

import io
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from testutil import DATA, HOSTS
from vmtune.adapters.hookenv import HookPaths
from vmtune.cli.app import app, main
from vmtune.cli.tuning import Tuning, _given
from vmtune.core.intent.model import (
    KNOBS,
    CacheFit,
    CacheShare,
    CoreKind,
    CpuPolicy,
    EmulatorPolicy,
    Fit,
    HypervMode,
    Intent,
    MemoryMode,
    Numa,
    OsFamily,
    PageSize,
    PowerIdle,
    Profile,
    ThreadPolicy,
    VcpuMask,
    intent_args,
    intent_texts,
    with_settings,
)
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError
from vmtune.hook import run_hook
from vmtune.xmlmap.metadata import VMTUNE_NS, read_intent, write_intent

HOST = HOSTS / "dual-skylake-ht-interleaved"
XPATH = "/domain/metadata/vmtune:tuning"
KNOB = {k.name: k for k in KNOBS}

# (knob, text as written, parsed value, text vmtune writes back)
GOOD: list[tuple[str, str, object, str]] = [
    ("profiles", "latency, windows", (Profile.LATENCY, Profile.WINDOWS), "latency,windows"),
    ("cpu_policy", "Shared", CpuPolicy.SHARED, "shared"),
    ("cpu_policy", "mixed", CpuPolicy.MIXED, "mixed"),
    ("dedicated_mask", "^0", VcpuMask(vcpus=CpuSet([0]), all_but=True), "^0"),
    ("dedicated_mask", "0-3,^1", VcpuMask(vcpus=CpuSet([0, 2, 3])), "0,2-3"),
    ("thread_policy", "isolate", ThreadPolicy.ISOLATE, "isolate"),
    ("emulator", "isolate", EmulatorPolicy.ISOLATE, "isolate"),
    ("iothreads", "2", 2, "2"),
    ("numa", "OFF", Numa(off=True), "off"),
    ("numa", "3", Numa(nodes=3), "3"),
    ("numa", "auto", Numa(), "auto"),
    ("numa_fit", "Spread", Fit.SPREAD, "spread"),
    ("cache_fit", "pack", CacheFit.PACK, "pack"),
    ("cache_fit", "Own", CacheFit.OWN, "own"),
    ("memory_mode", "interleave", MemoryMode.INTERLEAVE, "interleave"),
    ("hugepages", "2m", PageSize.HUGE_2M, "2M"),
    ("hugepages", "1G", PageSize.HUGE_1G, "1G"),
    ("hugepages", "none", PageSize.NONE, "none"),
    ("realtime_mask", "^0-1", VcpuMask(vcpus=CpuSet([0, 1]), all_but=True), "^0-1"),
    ("realtime_mask", "0-5,^2", VcpuMask(vcpus=CpuSet([0, 1, 3, 4, 5])), "0-1,3-5"),
    ("hyperv", "off", HypervMode.OFF, "off"),
    ("reserve", "0-3,^2", CpuSet([0, 1, 3]), "0-1,3"),
    ("memory_reserve", "2048M", 2 * 1024 * 1024, "2G"),
    ("os", "windows", OsFamily.WINDOWS, "windows"),
    ("core_kind", "little", CoreKind.LITTLE, "little"),
    ("cache_share", "25 %", CacheShare(percent=25), "25%"),
    ("cache_share", "3", CacheShare(ways=3), "3"),
    ("cache_share", "4ways", CacheShare(ways=4), "4"),
    ("cache_share", "None", CacheShare(), "none"),
    ("force", "yes", True, "yes"),
    ("reshape", "yes", True, "yes"),
    ("isolate_host", "yes", True, "yes"),
    ("power_idle", "governor:powersave", PowerIdle(governor="powersave"), "governor:powersave"),
    ("power_idle", " offline ", PowerIdle(offline=True), "offline"),
]

# (knob, bad text, the reason both sources give)
BAD: list[tuple[str, str, str]] = [
    ("profiles", "fast", "choose from balanced, latency, realtime, windows"),
    ("profiles", " , ", "empty list"),
    ("cpu_policy", "x", "choose from dedicated, shared, mixed"),
    ("dedicated_mask", "x", "not a CPU number: 'x' in 'x'"),
    ("thread_policy", "never", "choose from prefer, isolate, require"),
    ("iothreads", "-1", "expected a whole number >= 0"),
    ("numa", "x", "expected auto, off or a number of nodes >= 1"),
    ("numa", "0", "expected auto, off or a number of nodes >= 1"),
    ("hugepages", "3M", "expected 2M, 1G or none"),
    ("realtime_mask", "", "expected vCPU ids in cpuset syntax (e.g. ^0 or 2-5)"),
    ("realtime_mask", "2,^2", "selects no vCPU"),
    ("reserve", "zz", "not a CPU number: 'zz' in 'zz'"),
    ("hyperv", "maybe", "choose from auto, on, off"),
    ("cache_share", "100%", "a share from 1% to 99% (the host keeps some ways)"),
    ("cache_share", "0", "expected a share (25%), a number of cache ways (3), or none"),
    ("cache_share", "big", "expected a share (25%), a number of cache ways (3), or none"),
    ("force", "maybe", "expected yes or no"),
    ("reshape", "maybe", "expected yes or no"),
    ("isolate_host", "maybe", "expected yes or no"),
    ("power_idle", "off", "expected governor:NAME or offline"),
    (
        "power_idle",
        "governor:../x",
        "governor '../x': a cpufreq governor name is [a-z0-9_-], at most 15 chars",
    ),
]


def test_the_table_is_the_intent() -> None:
    assert [k.name for k in KNOBS] == [f.name for f in fields(Intent)]
    assert [k.flag for k in KNOBS][:4] == ["--profile", "--cpu-policy", "--dedicated-mask", "--thread-policy"]
    assert {name for name, *_ in GOOD} == set(KNOB), "every knob needs a GOOD example"


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_help_lists_every_knob_in_table_order(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    at = [out.find(f"  {k.flag} ") for k in KNOBS]
    assert -1 not in at and at == sorted(at)


def _domain(attrs: str = "") -> etree._Element:
    meta = f"<metadata><vmtune:tuning xmlns:vmtune='{VMTUNE_NS}' {attrs}/></metadata>" if attrs else ""
    return etree.fromstring(f"<domain><name>g</name>{meta}</domain>")


def _reread(intent: Intent) -> Intent | None:
    domain = _domain()
    write_intent(domain, intent)
    return read_intent(etree.fromstring(etree.tostring(domain)), "g.xml")


@pytest.mark.parametrize(("name", "text", "value", "written"), GOOD)
def test_flag_and_metadata_parse_alike(name: str, text: str, value: object, written: str) -> None:
    knob = KNOB[name]
    from_flag = Tuning(flags=((name, text),)).intent()
    from_meta = read_intent(_domain(f"{knob.attr}='{text}'"), "g.xml")
    assert getattr(from_flag, name) == value
    assert from_meta == from_flag
    assert {k.name: t for k, t in intent_texts(from_flag)}[name] == written
    assert _reread(from_flag) == from_flag


@pytest.mark.parametrize(("name", "text", "reason"), BAD)
def test_bad_value_names_its_source(name: str, text: str, reason: str) -> None:
    knob = KNOB[name]
    with pytest.raises(InputError) as flag_err:
        Tuning(flags=((name, text),)).intent()
    assert str(flag_err.value) == f"{knob.flag} {text!r}: {reason}"
    with pytest.raises(InputError) as meta_err:
        read_intent(_domain(f"{knob.attr}='{text}'"), "g.xml")
    assert str(meta_err.value) == f"g.xml: {XPATH}/@{knob.attr} {text!r}: {reason}"


def test_unknown_attributes_are_ignored_and_unset_knobs_keep_defaults() -> None:
    assert read_intent(_domain("profile='latency' future-knob='1'"), "g.xml") == Intent(
        profiles=(Profile.LATENCY,)
    )
    assert read_intent(_domain(), "g.xml") is None


def _optional(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | values


_CPUS = st.sets(st.integers(0, 300), max_size=12).map(CpuSet)
STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "profiles": st.lists(st.sampled_from(Profile), min_size=1, max_size=4).map(tuple),
    "cpu_policy": _optional(st.sampled_from(CpuPolicy)),
    "dedicated_mask": _optional(
        st.builds(VcpuMask, vcpus=_CPUS.filter(bool), all_but=st.booleans())  # type: ignore[arg-type]
    ),
    "thread_policy": _optional(st.sampled_from(ThreadPolicy)),
    "emulator": _optional(st.sampled_from(EmulatorPolicy)),
    "iothreads": _optional(st.integers(0, 64)),
    "numa": st.just(Numa()) | st.just(Numa(off=True)) | st.integers(1, 64).map(lambda n: Numa(nodes=n)),
    "numa_fit": _optional(st.sampled_from(Fit)),
    "cache_fit": _optional(st.sampled_from(CacheFit)),
    "memory_mode": _optional(st.sampled_from(MemoryMode)),
    "hugepages": _optional(st.sampled_from(PageSize)),
    "realtime_mask": _optional(
        st.builds(VcpuMask, vcpus=_CPUS.filter(bool), all_but=st.booleans())  # type: ignore[arg-type]
    ),
    "hyperv": st.sampled_from(HypervMode),
    "reserve": _optional(_CPUS),
    "memory_reserve": _optional(st.integers(min_value=1, max_value=1 << 40)),
    "os": _optional(st.sampled_from(OsFamily)),
    "core_kind": _optional(st.sampled_from(CoreKind)),
    "cache_share": _optional(
        st.just(CacheShare())
        | st.integers(1, 99).map(lambda p: CacheShare(percent=p))
        | st.integers(1, 64).map(lambda w: CacheShare(ways=w))
    ),
    "force": st.booleans(),
    "reshape": st.booleans(),
    # a switch a profile turns on keeps an explicit "no" (the guest opts out of its profile's default)
    "isolate_host": st.sampled_from([None, True, False]),
    "power_idle": _optional(
        st.just(PowerIdle(offline=True))
        | st.from_regex(r"[a-z0-9_-]{1,15}", fullmatch=True).map(lambda g: PowerIdle(governor=g))
    ),
}
INTENTS = st.fixed_dictionaries(STRATEGIES).map(lambda kw: Intent(**kw))


def test_every_knob_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(KNOB)


@given(INTENTS)
def test_metadata_round_trip(intent: Intent) -> None:
    assert _reread(intent) == intent


@given(INTENTS)
def test_flags_round_trip(intent: Intent) -> None:
    flags = tuple((k.name, text) for k, text in intent_texts(intent))
    assert Tuning(flags=flags).intent() == intent


@given(INTENTS)
def test_intent_args_are_flags_the_cli_reads_back(intent: Intent) -> None:
    """``intent_args`` (how a finding's fix spells its command) parsed by the real ``vmtune apply``
    options gives the intent back."""
    command = typer.main.get_command(app).commands["apply"]  # type: ignore[attr-defined]
    params = command.make_context("apply", [*intent_args(intent), "g.xml"]).params
    flags = tuple((k.name, text) for k in KNOBS if (text := _given(k, params[k.name])) is not None)
    assert Tuning(flags=flags).intent() == intent


@pytest.mark.parametrize(
    ("stored", "settings", "profiles", "extra"),
    [
        (None, (("profiles", "realtime"),), (Profile.REALTIME,), {}),
        (Intent(profiles=(Profile.LATENCY,)), (("profiles", "realtime"),),
         (Profile.LATENCY, Profile.REALTIME), {}),
        (Intent(profiles=(Profile.BALANCED,)), (("profiles", "windows"),), (Profile.WINDOWS,), {}),
        (Intent(thread_policy=ThreadPolicy.REQUIRE, cache_fit=CacheFit.OWN), (("thread_policy", "isolate"),),
         (Profile.BALANCED,), {"thread_policy": ThreadPolicy.ISOLATE, "cache_fit": CacheFit.OWN}),
        (Intent(emulator=EmulatorPolicy.ISOLATE), (), (Profile.BALANCED,),
         {"emulator": EmulatorPolicy.ISOLATE}),
    ],
)  # fmt: skip
def test_with_settings_puts_a_fix_over_the_stored_intent(
    stored: Intent | None, settings: tuple[tuple[str, str], ...], profiles: tuple[Profile, ...],
    extra: dict[str, object],
) -> None:  # fmt: skip
    got = with_settings(stored, settings)
    assert got.profiles == profiles
    for name, value in extra.items():
        assert getattr(got, name) == value


# -- through the CLI and the hook ------------------------------------------------------------------------
def _guest_file(tmp_path: Path, attrs: str) -> Path:
    """compact.xml (2 vCPUs, 1 GiB) with ``<vmtune:tuning ATTRS/>``."""
    xml = (DATA / "domains" / "compact.xml").read_text()
    meta = f"<metadata><vmtune:tuning xmlns:vmtune='{VMTUNE_NS}' {attrs}/></metadata>"
    path = tmp_path / "g.xml"
    path.write_text(xml.replace("</name>", f"</name>{meta}", 1))
    return path


@pytest.mark.parametrize(
    ("attr", "text", "reason"),
    [
        ("hugepages", "3M", "expected 2M, 1G or none"),
        ("numa", "x", "expected auto, off or a number of nodes >= 1"),
        ("iothreads", "-1", "expected a whole number >= 0"),
        ("reserve", "zz", "not a CPU number: 'zz' in 'zz'"),
    ],
)
def test_plan_refuses_bad_metadata_naming_file_and_xpath(
    tmp_path: Path, attr: str, text: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _guest_file(tmp_path, f"profile='balanced' {attr}='{text}'")
    assert main(["plan", str(path), "--sysfs", str(HOST)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"vmtune: error: {path}: {XPATH}/@{attr} {text!r}: {reason}"]


def test_plan_refuses_a_bad_flag_naming_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _guest_file(tmp_path, "profile='balanced'")
    assert main(["plan", str(path), "--sysfs", str(HOST), "--cpu-policy", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vmtune: error: --cpu-policy 'x': choose from dedicated, shared, mixed"]


def test_metadata_hugepages_2m_is_read_like_the_flag(tmp_path: Path) -> None:
    """``hugepages='2m'`` in the metadata plans exactly as ``--hugepages 2m`` does (flags win over it)."""
    path = _guest_file(tmp_path, "profile='balanced' hugepages='2m'")
    stored, flagged = tmp_path / "stored.xml", tmp_path / "flagged.xml"
    assert main(["apply", str(path), "--sysfs", str(HOST), "-o", str(stored)]) == 0
    assert main(["apply", str(path), "--sysfs", str(HOST), "-o", str(flagged), "--hugepages", "2m"]) == 0
    out = stored.read_text()
    assert out == flagged.read_text()
    assert "hugepages='2M'" in out and "<hugepages>" in out


def _hook(tmp_path: Path, xml: bytes, op: str) -> tuple[int, bytes, str]:
    (tmp_path / "status").mkdir(exist_ok=True)
    paths = HookPaths(
        status_dir=tmp_path / "status", state_dir=tmp_path / "state", sysfs_root=HOST, domcaps=None
    )
    out, err = io.BytesIO(), io.StringIO()
    rc = run_hook(["g", op, "begin", "-"], io.BytesIO(xml), out, err, paths=paths)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("op", ["prepare", "migrate"])
def test_hook_refuses_bad_metadata_naming_the_xpath(tmp_path: Path, op: str) -> None:
    xml = _guest_file(tmp_path, "profile='latency' hugepages='3M'").read_bytes()
    rc, out, err = _hook(tmp_path, xml, op)
    assert (rc, out) == (2, b"")
    assert err == f"vmtune: hook {op} begin 'g': hook:g: {XPATH}/@hugepages '3M': expected 2M, 1G or none\n"


def test_hook_accepts_metadata_hugepages_2m(tmp_path: Path) -> None:
    xml = _guest_file(tmp_path, "profile='balanced' hugepages='2m'").read_bytes()
    rc, out, err = _hook(tmp_path, xml, "migrate")
    assert (rc, err) == (0, "")
    # an incoming guest gets only a host binding: its memory backing is part of what it was started with
    assert b"<vcpupin" in out and b"<hugepages>" not in out


@pytest.mark.parametrize(
    ("profiles", "given", "isolates"),
    [
        ("realtime", None, True),
        ("latency", None, False),
        ("balanced", None, False),
        ("balanced", "yes", True),
        ("realtime", "no", False),  # --no-isolate-host: a realtime guest opts out
    ],
)
def test_isolate_host_is_on_by_default_only_for_realtime(
    profiles: str, given: str | None, isolates: bool
) -> None:
    from vmtune.core.guest import GuestSpec
    from vmtune.core.intent.profiles import resolve

    flags = (("profiles", profiles),) + ((("isolate_host", given),) if given else ())
    resolved = resolve(Tuning(flags=flags).intent(), GuestSpec(name="g", source="g.xml", vcpus=4))
    assert resolved.isolate_host is isolates
