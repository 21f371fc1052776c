"""Windows rules VT301-VT304 on GuestSpecs built in code: each fires on its bad guest, not on the twin."""

from __future__ import annotations

import pytest

from rulehosts import check_fires_on_bad_not_on_fixed, findings, guest
from vmtune.core.audit.engine import Family, catalog
from vmtune.core.audit.windows import RECOMMENDED_HYPERV
from vmtune.core.guest import GuestSpec, HypervFeature, Timer
from vmtune.core.intent.model import Intent, OsFamily, Profile
from vmtune.core.plan import Level
from vmtune.core.topology.caps import HostCaps

WIN = OsFamily.WINDOWS
FULL_HV = tuple(HypervFeature(name=n) for n in RECOMMENDED_HYPERV)
GOOD_TIMERS = (
    Timer(name="rtc", tickpolicy="catchup"),
    Timer(name="pit", tickpolicy="delay"),
    Timer(name="hpet", present=False),
    Timer(name="hypervclock", present=True),
)
NESTED = HostCaps(hyperv=frozenset({"relaxed", "vapic", "spinlocks", "vendor_id"}))

CASES: list[tuple[str, str, GuestSpec, GuestSpec, HostCaps, Level]] = [
    ("no-hyperv", "VT301", guest(os_family=WIN), guest(os_family=WIN, hyperv_mode="custom", hyperv=FULL_HV),
     HostCaps(), Level.WARNING),
    ("partial-hyperv", "VT301",
     guest(os_family=WIN, hyperv_mode="custom", hyperv=(HypervFeature(name="relaxed"),)),
     guest(os_family=WIN, hyperv_mode="passthrough"), HostCaps(), Level.WARNING),
    ("windows-profile", "VT301", guest(intent=Intent(profiles=(Profile.WINDOWS,))),
     guest(intent=Intent(profiles=(Profile.WINDOWS,)), hyperv_mode="custom", hyperv=FULL_HV),
     HostCaps(), Level.WARNING),
    ("timers", "VT302", guest(os_family=WIN, timers=(Timer(name="rtc", tickpolicy="catchup"),)),
     guest(os_family=WIN, timers=GOOD_TIMERS), HostCaps(), Level.WARNING),
    ("apicv-off", "VT303", guest(os_family=WIN), guest(os_family=OsFamily.LINUX),
     HostCaps(apicv=False), Level.WARNING),
    ("unsupported-enlightenment", "VT304", guest(os_family=WIN, hyperv_mode="custom", hyperv=FULL_HV),
     guest(os_family=WIN, hyperv_mode="custom",
           hyperv=tuple(HypervFeature(name=n) for n in ("relaxed", "vapic", "spinlocks"))),
     NESTED, Level.ERROR),
]  # fmt: skip


@pytest.mark.parametrize(("code", "bad", "fixed", "caps", "severity"), [c[1:] for c in CASES],
                         ids=[f"{c[1]}-{c[0]}" for c in CASES])  # fmt: skip
def test_rule_fires_on_bad_not_on_fixed(
    code: str, bad: GuestSpec, fixed: GuestSpec, caps: HostCaps, severity: Level
) -> None:
    check_fires_on_bad_not_on_fixed(code, bad, fixed, caps=caps, severity=severity)


def test_every_windows_rule_has_a_case() -> None:
    assert {c[1] for c in CASES} == {r.code for r in catalog() if r.family is Family.WINDOWS}


def test_vt301_asks_only_for_what_the_host_can_give() -> None:
    g = guest(os_family=WIN, hyperv_mode="custom",
              hyperv=tuple(HypervFeature(name=n) for n in ("relaxed", "vapic", "spinlocks")))  # fmt: skip
    assert findings("VT301", (g,), caps=NESTED) == ()
    assert findings("VT301", (g,)) == ()  # unknown host: only what every KVM host gives (what plan writes)
    (f,) = findings("VT301", (g,), caps=HostCaps(hyperv=frozenset(RECOMMENDED_HYPERV)))
    assert "vpindex" in f.message


def test_vt302_lists_every_timer_problem() -> None:
    full = HostCaps(hyperv=frozenset(RECOMMENDED_HYPERV))
    (f,) = findings("VT302", (guest(os_family=WIN),), caps=full)
    assert f.message == "Windows guest timers: no hypervclock, hpet not off, rtc not catchup, pit not delay"


def test_vt302_asks_for_hypervclock_only_where_the_planner_would_write_it() -> None:
    """No domcapabilities, or a host without hv-time: the planner adds no hypervclock, nor does VT302."""
    no_hv_time = HostCaps(hyperv=frozenset({"spinlocks", "vendor_id"}))  # no KVM-backed enlightenment
    for caps in (None, no_hv_time):
        (f,) = findings("VT302", (guest(os_family=WIN),), caps=caps)
        assert f.message == "Windows guest timers: hpet not off, rtc not catchup, pit not delay", caps


def test_vt303_unknown_apicv_says_nothing_and_linux_is_left_alone() -> None:
    assert findings("VT303", (guest(os_family=WIN),)) == ()
    assert findings("VT303", (guest(),), caps=HostCaps(apicv=False)) == ()


def test_vt303_names_the_amd_module_on_amd() -> None:
    (f,) = findings("VT303", (guest(os_family=WIN),), caps=HostCaps(apicv=False, cpu_vendor="AMD"))
    assert "kvm_amd avic=1" in f.fix


def test_vt304_ignores_switched_off_features_and_unknown_caps() -> None:
    off = guest(os_family=WIN, hyperv_mode="custom", hyperv=(HypervFeature(name="synic", state=False),))
    assert findings("VT304", (off,), caps=NESTED) == ()
    assert findings("VT304", (guest(os_family=WIN, hyperv_mode="custom", hyperv=FULL_HV),)) == ()


def test_windows_on_arm_has_no_hyperv_or_pc_timers() -> None:
    g = guest(os_family=WIN, arch="aarch64")
    assert findings("VT301", (g,)) == () and findings("VT302", (g,)) == ()
    assert findings("VT301", (guest(os_family=WIN, arch="x86_64"),)) != ()
