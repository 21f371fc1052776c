"""resolve(): profile defaults, explicit knobs winning, and the flags it refuses."""

from __future__ import annotations

import pytest

from tuning_hosts import GUESTS
from vmtune.core.intent.model import (
    EmulatorPolicy,
    HypervMode,
    Intent,
    OsFamily,
    Profile,
    ThreadPolicy,
    VcpuMask,
    parse_intent,
)
from vmtune.core.intent.profiles import resolve
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError


def _r(*profiles: str, guest: str = "nfv", **knobs: object):  # type: ignore[no-untyped-def]
    """resolve() of the Intent the flags ``--profile P,.. --KNOB VALUE`` ask for (the CLI's own parser)."""
    texts = {name: "yes" if value is True else str(value) for name, value in knobs.items()}
    intent = parse_intent({"profiles": ",".join(profiles), **texts}, where=lambda k: k.flag)
    return resolve(intent, GUESTS[guest])


@pytest.mark.parametrize(
    "case",
    [
        (("balanced",), ThreadPolicy.PREFER, EmulatorPolicy.SHARE, False, False, False),
        (("latency",), ThreadPolicy.ISOLATE, EmulatorPolicy.ISOLATE, True, True, False),
        (("realtime",), ThreadPolicy.ISOLATE, EmulatorPolicy.ISOLATE, True, True, True),
        (("windows",), ThreadPolicy.PREFER, EmulatorPolicy.SHARE, False, False, False),
        (("latency", "windows"), ThreadPolicy.ISOLATE, EmulatorPolicy.ISOLATE, True, True, False),
    ],
)
def test_profile_defaults(
    case: tuple[tuple[str, ...], ThreadPolicy, EmulatorPolicy, bool, bool, bool],
) -> None:
    profiles, thread, emulator, passthrough, if_free, required = case
    r = _r(*profiles)
    assert (r.thread_policy, r.emulator, r.host_passthrough) == (thread, emulator, passthrough)
    assert (r.hugepages_if_free, r.hugepages_required) == (if_free, required)
    assert r.windows is ("windows" in profiles)
    assert r.hyperv is ("windows" in profiles)


def test_explicit_knobs_win() -> None:
    r = _r("realtime", thread_policy=ThreadPolicy.PREFER, emulator=EmulatorPolicy.SHARE, hugepages="2M")
    assert (r.thread_policy, r.emulator, r.hugepages_kib, r.hugepages_if_free) == (
        ThreadPolicy.PREFER, EmulatorPolicy.SHARE, 2048, False,
    )  # fmt: skip
    assert r.hugepages_required
    assert _r("latency", hugepages="none").hugepages_off


def test_realtime_mask_default_keeps_vcpu0_for_housekeeping() -> None:
    assert _r("realtime").realtime_vcpus == CpuSet.parse("1-5")
    assert _r("realtime", realtime_mask="^0-1").realtime_vcpus == CpuSet.parse("2-5")
    assert _r("realtime", realtime_mask="2,4").realtime_vcpus == CpuSet.parse("2,4")
    assert _r("realtime", realtime_mask="0-5", force=True).realtime_vcpus == CpuSet.parse("0-5")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"realtime_mask": "0-5"}, "leaving none for housekeeping"),
        ({"realtime_mask": "^0-5"}, "selects no vCPU"),
        ({"realtime_mask": "4-9"}, "vCPU 6-9 not in the guest's vCPUs 0-5"),
        ({"realtime_mask": "x"}, "--realtime-mask 'x': not a CPU number"),
        ({"hugepages": "4M"}, "--hugepages '4M': expected 2M, 1G or none"),
        ({"numa": "two"}, "--numa 'two': expected auto, off or a number of nodes >= 1"),
    ],
)
def test_refused(kw: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        _r("realtime", **kw)


def test_realtime_mask_without_realtime_is_refused() -> None:
    with pytest.raises(InputError, match="only meaningful with --profile realtime"):
        _r("latency", realtime_mask="^0")


def test_one_vcpu_realtime_guest_needs_an_explicit_mask() -> None:
    from dataclasses import replace

    from vmtune.core.intent.profiles import resolve as res

    one = replace(GUESTS["linux"], vcpus=1)
    with pytest.raises(InputError, match="has one vCPU"):
        res(Intent(profiles=(Profile.REALTIME,)), one)
    r = res(Intent(profiles=(Profile.REALTIME,), realtime_mask=VcpuMask.parse("0"), force=True), one)
    assert r.realtime_vcpus == CpuSet([0])


def test_windows_follows_the_os_and_hyperv_mode() -> None:
    assert _r("balanced", guest="win11").windows
    assert _r("balanced", guest="win11").hyperv
    off = _r("balanced", guest="win11", hyperv=HypervMode.OFF)
    assert (off.windows, off.hyperv, off.hyperv_off) == (True, False, True)
    on = _r("balanced", guest="linux", hyperv=HypervMode.ON)
    assert (on.windows, on.hyperv) == (False, True)
    assert _r("balanced", guest="linux", os=OsFamily.WINDOWS).windows
