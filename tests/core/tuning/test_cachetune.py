"""``--cache-share``: the <cachetune> vmtune plans from a resctrl test root written like the kernel's.

The host is a one-socket Skylake-SP shape (8 cores x 2 threads, one 27.5 MiB L3 of 11 ways: cbm_mask 7ff,
2560 KiB a way) or its two-socket twin; its sysfs tree and /sys/fs/resctrl are written below a tmp root
and read back by the real readers (``read_sysfs``, ``probe_host_caps``), as ``--sysfs ROOT`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resctrlgen import SKX, WAY_KIB, write_resctrl
from sysfsgen import HostSpec, write_sysfs
from testutil import GOLDEN, check_golden
from vmtune.adapters.probes import probe_host_caps
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.audit.engine import run_rules
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import CacheShare, Intent, Profile
from vmtune.core.plan import Level
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError
from vmtune.service import Planned, next_tenants, plan_document

SKX2 = dataclasses.replace(SKX, name="skx-2s", sockets=2)
GUEST = """<domain type='kvm'>
  <name>{name}</name>
  <memory unit='GiB'>2</memory>
  <vcpu>{vcpus}</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>{extra}
</domain>
"""


def host_root(tmp: Path, spec: HostSpec = SKX, **resctrl: object) -> tuple[Host, HostCaps]:
    write_sysfs(spec, tmp)
    if resctrl:
        write_resctrl(tmp, **resctrl)  # type: ignore[arg-type]
    return read_sysfs(tmp), probe_host_caps(tmp)


def plan(
    host: Host,
    caps: HostCaps,
    name: str,
    share: str,
    tenants: Sequence[GuestSpec] = (),
    *,
    vcpus: int = 2,
    extra: str = "",
    force: bool = False,
) -> Planned:
    intent = Intent(profiles=(Profile.LATENCY,), cache_share=CacheShare.parse(share), force=force)
    raw = GUEST.format(name=name, vcpus=vcpus, extra=extra).encode()
    return plan_document(raw, source=f"{name}.xml", host=host, tenants=tenants, intent=intent, caps=caps)


def sizes(planned: Planned) -> list[tuple[str, int, str, int]]:
    """(vCPUs, cache id, type, KiB) of each planned <cache>."""
    tunes = planned.plan.cachetunes or ()
    return [(str(t.vcpus), c.id, c.type, c.size_bytes // 1024) for t in tunes for c in t.caches]


@pytest.mark.parametrize(
    ("share", "resctrl", "expected"),
    [
        ("25%", {"default": {0: 0x1F}}, [("0-1", 0, "both", 3 * WAY_KIB)]),
        ("3", {"default": {0: 0x1F}}, [("0-1", 0, "both", 3 * WAY_KIB)]),
        ("3ways", {"default": {0: 0x1F}}, [("0-1", 0, "both", 3 * WAY_KIB)]),
        ("9%", {"default": {0: 0x1F}}, [("0-1", 0, "both", 1 * WAY_KIB)]),
        ("1%", {"default": {0: 0x1F}, "min_cbm_bits": 2}, [("0-1", 0, "both", 2 * WAY_KIB)]),
        ("50%", {"default": {0: 0x1F}}, [("0-1", 0, "both", 6 * WAY_KIB)]),
        (
            "2",
            {"default": {0: 0x3}, "cdp": True},
            [("0-1", 0, "code", 2 * WAY_KIB), ("0-1", 0, "data", 2 * WAY_KIB)],
        ),
    ],
    ids=["25pct", "3-ways", "3ways-spelled", "9pct-rounds-to-1", "min-cbm-bits", "half", "cdp"],
)
def test_share_to_cachetune(
    tmp_path: Path, share: str, resctrl: Mapping[str, object], expected: list[object]
) -> None:
    host, caps = host_root(tmp_path, **resctrl)
    assert sizes(plan(host, caps, "web", share)) == expected


@pytest.mark.parametrize("vcpus", [2, 12], ids=["one-socket", "wide"])
def test_only_the_l3_instances_the_vcpus_sit_on(tmp_path: Path, vcpus: int) -> None:
    """Two sockets, one L3 each: a small guest gets the ways of its socket's L3, a guest wider than one
    socket's free cores (7 each beside the housekeeping core) those of both."""
    host, caps = host_root(tmp_path, SKX2, default={0: 0x1F, 1: 0x1F})
    planned = plan(host, caps, "web", "25%", vcpus=vcpus)
    pins = CpuSet().union(*(p.cpus for p in planned.plan.vcpupins or ()))
    ids = sorted(g.cache_id for g in host.groups(3) if not g.cpus.isdisjoint(pins) and g.cache_id is not None)
    assert len(ids) == (1 if vcpus == 2 else 2)
    assert sizes(planned) == [(f"0-{vcpus - 1}", i, "both", 3 * WAY_KIB) for i in ids]


def test_two_guests_each_25_percent(tmp_path: Path, regen: bool) -> None:
    """The 2-guest case: 11 ways, the default group keeps 5 (mask 1f), 6 are free; each guest asks 25% = 3
    ways = 7680 KiB, both fit; a third guest asking one more way is refused (exit 3), naming who holds what.
    VT110, judged with the same resctrl, finds nothing in the pair."""
    host, caps = host_root(tmp_path, default={0: 0x1F})
    first = plan(host, caps, "web1", "25%")
    second = plan(host, caps, "web2", "25%", next_tenants([], first))
    pair = next_tenants(next_tenants([], first), second)
    shown = [f"# {p.guest.name}\n" + _cputune(p.after.decode()) for p in (first, second)]
    check_golden(GOLDEN / "cachetune" / "two-guests-25pct--skx-1s.txt", "\n".join(shown), regen)
    assert sizes(first) == sizes(second) == [("0-1", 0, "both", 3 * WAY_KIB)]
    assert run_rules(host, pair, caps=caps, select=frozenset({"VT110"})) == ()
    with pytest.raises(
        InfeasibleError, match=r"L3 cache 0 needs 1 contiguous way\(s\), 0 free: 6 of its 11 .*web1 3, web2 3"
    ):
        plan(host, caps, "web3", "1", pair)


def _cputune(xml: str) -> str:
    start, end = xml.index("  <cputune>"), xml.index("</cputune>") + len("</cputune>\n")
    return xml[start:end]


def test_libvirt_groups_of_tenants_are_not_counted_twice_but_foreign_groups_are(tmp_path: Path) -> None:
    # web1 runs: libvirt made its group from its <cachetune>; "batch" is someone else's group of 2 ways
    host, caps = host_root(tmp_path, default={0: 0x1F}, groups={"qemu-7-web1-vcpus_0-1": {0: 0xE0}})
    first = plan(host, caps, "web1", "25%")
    tenants = next_tenants([], first)
    assert sizes(plan(host, caps, "web2", "25%", tenants)) == [("0-1", 0, "both", 3 * WAY_KIB)]
    host, caps = host_root(tmp_path / "b", default={0: 0x1F}, groups={"batch": {0: 0x600}})
    with pytest.raises(InfeasibleError, match="4 of its 11"):
        plan(host, caps, "web2", "25%", next_tenants([], plan(host, caps, "web1", "25%")))


def test_a_running_guest_replanned_does_not_count_its_own_group(tmp_path: Path) -> None:
    # web1 runs with 6 ways (libvirt's group holds them); re-planned at 25% it gets 3, not "0 free"
    host, caps = host_root(tmp_path, default={0: 0x1F}, groups={"qemu-4-web1-vcpus_0-1": {0: 0x7E0}})
    assert sizes(plan(host, caps, "web1", "25%")) == [("0-1", 0, "both", 3 * WAY_KIB)]
    with pytest.raises(InfeasibleError, match="0 of its 11"):
        plan(host, caps, "web2", "25%")  # web2 is not told web1 is a tenant: its group is foreign


def test_full_default_group_is_infeasible_unless_forced(tmp_path: Path) -> None:
    host, caps = host_root(tmp_path, default={0: 0x7FF})
    with pytest.raises(InfeasibleError, match=r"shrink the default group \(echo 'L3:0=<fewer bits>'"):
        plan(host, caps, "web", "25%")
    forced = plan(host, caps, "web", "25%", force=True)
    assert sizes(forced) == [("0-1", 0, "both", 3 * WAY_KIB)]
    assert any(n.level is Level.WARNING and n.message.startswith("--force") for n in forced.plan.notes)


def test_closids_run_out(tmp_path: Path) -> None:
    # 3 CLOSIDs: the default group, a foreign group, web1; none is left for web2
    host, caps = host_root(tmp_path, default={0: 0x3}, num_closids=3, groups={"batch": {0: 0x4}})
    first = plan(host, caps, "web1", "2")
    with pytest.raises(InfeasibleError, match="every CLOSID is taken"):
        plan(host, caps, "web2", "2", next_tenants([], first))


def test_no_resctrl_no_cachetune(tmp_path: Path) -> None:
    host, caps = host_root(tmp_path)
    assert caps.resctrl is None
    planned = plan(host, caps, "web", "25%")
    assert planned.plan.cachetunes is None
    assert b"cachetune" not in planned.after
    [note] = [n for n in planned.plan.notes if n.topic == "cache"]
    assert note.level is Level.WARNING and "/sys/fs/resctrl not mounted" in note.message


def test_none_removes_it_and_unset_leaves_it(tmp_path: Path) -> None:
    host, caps = host_root(tmp_path, default={0: 0x1F})
    tuned = plan(host, caps, "web", "25%").after.decode()
    extra = tuned[tuned.index("  <cputune>") - 1 : tuned.index("</cputune>") + len("</cputune>")]
    removed = plan(host, caps, "web", "none", extra=extra)
    assert removed.plan.cachetunes == () and b"cachetune" not in removed.after
    raw = GUEST.format(name="web", vcpus=2, extra=extra).encode()
    kept = plan_document(
        raw, source="web.xml", host=host, tenants=[], caps=caps, intent=Intent(profiles=(Profile.LATENCY,))
    )
    assert kept.plan.cachetunes is None and b"<cache id='0' level='3' type='both' size='7680'" in kept.after


@settings(max_examples=25)
@given(
    kept=st.integers(min_value=1, max_value=10),
    shares=st.lists(st.sampled_from(["10%", "25%", "40%", "1", "2", "3"]), min_size=2, max_size=4),
)
def test_guests_vmtune_accepts_never_trip_vt110(
    tmp_path_factory: pytest.TempPathFactory, kept: int, shares: list[str]
) -> None:
    """Invariant: the planner and VT110 share one budget, so the guests vmtune accepts one after another
    never overflow the ways the default group leaves, and VT110 stays silent on them."""
    host, caps = _cached_root(tmp_path_factory, kept)
    tenants: list[GuestSpec] = []
    for i, share in enumerate(shares):
        try:
            planned = plan(host, caps, f"g{i}", share, tenants, vcpus=1)
        except InfeasibleError:
            continue
        tenants = next_tenants(tenants, planned)
    asked = sum(c.size_bytes for g in tenants for t in g.cachetunes for c in t.caches) // (WAY_KIB * 1024)
    assert asked <= 11 - kept
    assert run_rules(host, tenants, caps=caps, select=frozenset({"VT110"})) == ()


_ROOTS: dict[int, tuple[Host, HostCaps]] = {}


def _cached_root(factory: pytest.TempPathFactory, kept: int) -> tuple[Host, HostCaps]:
    if kept not in _ROOTS:
        _ROOTS[kept] = host_root(factory.mktemp(f"skx{kept}"), default={0: (1 << kept) - 1})
    return _ROOTS[kept]


@pytest.mark.parametrize(("share", "fits"), [("4", True), ("5", False)])
def test_each_guest_needs_its_ways_contiguous(tmp_path: Path, share: str, fits: bool) -> None:
    """The default group holds ways 4-7 of 11: 7 ways are free, in runs of 4 and 3. libvirt gives a
    ``<cachetune>`` one contiguous run, so 5 ways do not fit although 7 are free."""
    host, caps = host_root(tmp_path, default={0: 0x0F0})
    if fits:
        assert sizes(plan(host, caps, "web", share)) == [("0-1", 0, "both", 4 * WAY_KIB)]
        return
    with pytest.raises(InfeasibleError, match=r"needs 5 contiguous way\(s\), 7 free: .* in runs of 4\+3"):
        plan(host, caps, "web", share)


def test_two_guests_pack_into_the_runs_largest_first(tmp_path: Path) -> None:
    """Runs of 4 and 3: guests of 3 and 4 ways fit (4 in the 4-run, 3 in the 3-run, whatever order
    they come in); a third guest of 1 way finds nothing left, though VT110 and the planner agree."""
    host, caps = host_root(tmp_path, default={0: 0x0F0})
    first = plan(host, caps, "a", "3")
    tenants = next_tenants([], first)
    second = plan(host, caps, "b", "4", tenants)
    tenants = next_tenants(tenants, second)
    assert run_rules(host, tenants, caps=caps, select=frozenset({"VT110"})) == ()
    with pytest.raises(InfeasibleError, match="needs 1 contiguous way"):
        plan(host, caps, "c", "1", tenants)
