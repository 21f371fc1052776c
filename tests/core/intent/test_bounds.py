"""Sizes nothing could run are refused at once, exit 2, with one line naming the flag or file and XPath."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner_hosts import guest, host_named
from testutil import DATA
from vmtune.cli.app import main
from vmtune.core.intent.bounds import MAX_VCPUS, vcpu_limit
from vmtune.core.intent.model import Intent, Numa, parse_intent
from vmtune.core.intent.values import MAX_IOTHREADS
from vmtune.core.planner import plan_guest
from vmtune.core.topology.caps import HostCaps
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError
from vmtune.xmlmap.domcaps import parse_domcapabilities

HOST = DATA / "hosts" / "dual-skylake-ht-interleaved"
SERVER = DATA / "domains" / "linux-server.xml"


@pytest.mark.parametrize(
    ("machine", "limit"),
    [
        ("pc-i440fx-7.2", 255),
        ("pc", 255),
        ("pc-q35-2.7", 255),
        ("pc-q35-7.2", 288),
        ("pc-q35-8.2", 1024),
        ("pc-q35-9.0", 4096),
        ("q35", MAX_VCPUS),
        ("virt-8.2", MAX_VCPUS),
        (None, MAX_VCPUS),
    ],
)
def test_vcpu_limit_by_machine_type(machine: str | None, limit: int) -> None:
    assert vcpu_limit(machine, None)[0] == limit


def test_domcapabilities_vcpu_max_lowers_the_limit() -> None:
    caps = parse_domcapabilities((DATA / "domcapabilities" / "this-machine-kvm.xml").read_text(), "dc.xml")
    assert caps.max_vcpus == 255
    assert vcpu_limit("q35", caps) == (255, "this host's QEMU (domcapabilities <vcpu max='255'/>)")
    assert vcpu_limit("pc-q35-2.7", HostCaps(max_vcpus=4096))[0] == 255
    assert vcpu_limit("q35", HostCaps(max_vcpus=8192))[0] == 8192  # unversioned: QEMU's word goes


def test_too_many_vcpus_names_file_and_xpath() -> None:
    big = guest("big", vcpus=5000, machine="pc-q35-9.0")
    with pytest.raises(InputError, match=r"^big.xml: /domain/vcpu: 5000 vCPUs, more than the 4096 "):
        plan_guest(host=host_named("huge-960"), guest=big, tenants=(), intent=Intent())


def test_numa_above_the_node_count_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"^--numa 3: this host has 2 NUMA nodes"):
        plan_guest(
            host=host_named("dual-ht-adjacent"), guest=guest(), tenants=(), intent=Intent(numa=Numa(nodes=3))
        )


def test_iothreads_knob_is_bounded() -> None:
    assert parse_intent({"iothreads": str(MAX_IOTHREADS)}, where=lambda k: k.flag).iothreads == MAX_IOTHREADS
    with pytest.raises(InputError, match=r"^--iothreads '1025': at most 1024 IOThreads"):
        parse_intent({"iothreads": "1025"}, where=lambda k: k.flag)


def test_reserve_naming_absent_cpus_is_refused() -> None:
    host = host_named("dual-ht-adjacent")
    with pytest.raises(InputError, match=r"^--reserve 0,999: no CPU 999 on this host \(its CPUs: 0-31\)"):
        plan_guest(host=host, guest=guest(), tenants=(), intent=Intent(reserve=CpuSet([0, 999])))


def test_reserve_from_the_guests_metadata_on_a_smaller_host_is_a_warning() -> None:
    """A migrated guest keeps its reserve in its metadata: the hook still places it."""
    wish = Intent(reserve=CpuSet([0, 999]))
    plan = plan_guest(host=host_named("dual-ht-adjacent"), guest=guest(intent=wish), tenants=(), intent=wish)
    assert any("names CPUs 999 this host does not have; ignored" in n.message for n in plan.notes)
    assert plan.vcpupins and all(0 not in p.cpus for p in plan.vcpupins)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--numa", "99"], "vmtune: error: --numa 99: this host has 2 NUMA nodes"),
        (["--reserve", "999"], "vmtune: error: --reserve 999: no CPU 999 on this host (its CPUs: 0-39)"),
        (["--iothreads", "100000"], "vmtune: error: --iothreads '100000': at most 1024 IOThreads"),
    ],
)
def test_cli_bounds_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(SERVER), "--sysfs", str(HOST), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_cli_too_many_vcpus_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    xml = tmp_path / "wide.xml"
    xml.write_text(SERVER.read_text().replace("<vcpu>4</vcpu>", "<vcpu>100000</vcpu>"))
    assert main(["plan", str(xml), "--sysfs", str(HOST), "--cpu-policy", "shared"]) == 2
    err = capsys.readouterr().err
    assert f"{xml}: /domain/vcpu: 100000 vCPUs, more than the 288 QEMU machine type pc-q35-7.2" in err


def test_4k_pages_are_normal_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """libvirt accepts a 4 KiB <page>: it is the base page, so no hugepage pool is looked for."""
    xml = tmp_path / "p4k.xml"
    backing = "<memoryBacking><hugepages><page size='4' unit='KiB'/></hugepages></memoryBacking>"
    xml.write_text(SERVER.read_text().replace("<vcpu>4</vcpu>", f"<vcpu>4</vcpu>\n  {backing}"))
    assert main(["plan", str(xml), "--sysfs", str(HOST)]) == 0
    changed = [line for line in capsys.readouterr().out.splitlines() if line[:1] in "+-"]
    assert changed and not any("page" in line for line in changed)
