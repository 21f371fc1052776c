"""IOThreads get work: virtio disks and virtio-scsi controllers without one are spread over the plan's."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from planner_hosts import host_named
from testutil import DATA
from vmtune.core.guest import IOThreadDevice, IOThreadDeviceKind, iothread_ids
from vmtune.core.intent.model import CpuPolicy, EmulatorPolicy, Intent, VcpuMask
from vmtune.core.plan import Level
from vmtune.service import Planned, plan_document
from vmtune.xmlmap.guest import read_guest
from vmtune.xmlmap.safe import parse_xml
from vmtune.xmlmap.validate import validate_domain

SCHEMA = Path("/work/shared/corpora/schemas/libvirt-10.7.0/domain.rng")
DEVICES = """
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/a.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' iothread='{vdb}'/>
      <source file='/var/lib/libvirt/images/b.qcow2'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <source file='/var/lib/libvirt/images/boot.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/var/lib/libvirt/images/c.raw'/>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <controller type='usb' index='0' model='qemu-xhci'/>
    <controller type='scsi' index='0' model='virtio-scsi'/>
"""


def _domain(vdb: int, iothreads: int = 0) -> bytes:
    text = (DATA / "domains" / "linux-server.xml").read_text()
    start, end = text.index("    <disk"), text.index("</disk>") + len("</disk>\n")
    text = text[:start] + DEVICES.format(vdb=vdb).lstrip("\n") + text[end:]
    if iothreads:
        text = text.replace("<vcpu>4</vcpu>", f"<vcpu>4</vcpu>\n  <iothreads>{iothreads}</iothreads>")
    return text.encode()


def _plan(raw: bytes, **intent: object) -> Planned:
    host = host_named("dual-ht-adjacent")
    return plan_document(raw, source="d.xml", host=host, tenants=(), intent=Intent(**intent), caps=None)  # type: ignore[arg-type]


def _assigned(xml: bytes) -> dict[str, str | None]:
    root = etree.fromstring(xml)
    out: dict[str, str | None] = {}
    for disk in root.iterfind("devices/disk"):
        driver = disk.find("driver")
        out[str(disk.find("target").get("dev"))] = None if driver is None else driver.get("iothread")  # type: ignore[union-attr]
    for ctl in root.iterfind("devices/controller"):
        driver = ctl.find("driver")
        out[f"{ctl.get('type')}{ctl.get('index')}"] = None if driver is None else driver.get("iothread")
    return out


def test_reader_finds_virtio_disks_and_virtio_scsi_controllers() -> None:
    guest = read_guest(parse_xml(_domain(vdb=2), source="d.xml", root="domain"), source="d.xml")
    disk, ctl = IOThreadDeviceKind.DISK, IOThreadDeviceKind.CONTROLLER
    assert guest.iothread_devices == (
        IOThreadDevice(kind=disk, ordinal=0, label="vda"),
        IOThreadDevice(kind=disk, ordinal=1, label="vdb", iothread=2),
        IOThreadDevice(kind=disk, ordinal=3, label="vdc"),
        IOThreadDevice(kind=ctl, ordinal=1, label="SCSI controller 0"),
    )


@pytest.mark.parametrize("policy", list(CpuPolicy))
def test_devices_without_an_iothread_get_the_least_used_one(policy: CpuPolicy) -> None:
    mask = VcpuMask.parse("0-1") if policy is CpuPolicy.MIXED else None
    planned = _plan(_domain(vdb=2), iothreads=2, cpu_policy=policy, dedicated_mask=mask)
    # vdb keeps 2; each other device takes the IOThread with the fewest devices, the lower id on a tie
    assert _assigned(planned.after) == {
        "vda": "1",
        "vdb": "2",
        "sda": None,
        "vdc": "1",
        "usb0": None,
        "scsi0": "2",
    }
    note = next(n for n in planned.plan.notes if n.topic == "iothreads")
    assert "vda -> 1, vdc -> 1, SCSI controller 0 -> 2" in note.message
    if SCHEMA.exists():
        assert validate_domain(parse_xml(planned.after, source="d.xml", root="domain"), SCHEMA)


def test_round_robin_when_none_has_one_and_replanning_keeps_it() -> None:
    raw = _domain(vdb=0).replace(b" iothread='0'", b"")
    planned = _plan(raw, iothreads=3)
    assert _assigned(planned.after) == {
        "vda": "1",
        "vdb": "2",
        "sda": None,
        "vdc": "3",
        "usb0": None,
        "scsi0": "1",
    }
    again = _plan(planned.after, iothreads=3)
    assert again.plan.device_iothreads is None
    assert again.after == planned.after


def test_an_iothread_beyond_the_plan_is_moved_with_a_warning() -> None:
    planned = _plan(_domain(vdb=5, iothreads=5), iothreads=2)
    assert _assigned(planned.after)["vdb"] in ("1", "2")
    assert any(
        n.level is Level.WARNING and "vdb named an IOThread beyond the 2" in n.message
        for n in planned.plan.notes
    )


def test_no_iothreads_left_removes_the_attribute() -> None:
    planned = _plan(_domain(vdb=1, iothreads=1), iothreads=0)
    assigned = _assigned(planned.after)
    assert assigned["vdb"] is None and b"<iothreads>" not in planned.after


def test_no_iothreads_planned_leaves_devices_alone() -> None:
    raw = _domain(vdb=0).replace(b" iothread='0'", b"")
    planned = _plan(raw)
    assert planned.plan.device_iothreads is None
    assert not any(n.topic == "iothreads" for n in planned.plan.notes)


@pytest.mark.parametrize(
    ("given", "count", "ids"),
    [
        ((), 3, (1, 2, 3)),
        ((5, 6), 4, (5, 6, 1, 2)),  # libvirt's iothreads-ids-partial test
        ((8,), 1, (8,)),  # libvirt's genericxml2xml iothreadids test
        ((2, 1), 3, (2, 1, 3)),
        ((4, 5), 1, (4, 5)),  # <iothreads> below the list: libvirt keeps the listed ones
    ],
)
def test_iothread_ids_are_libvirts(given: tuple[int, ...], count: int, ids: tuple[int, ...]) -> None:
    assert iothread_ids(given, count) == ids


def test_pins_and_devices_name_the_ids_iothreadids_gives() -> None:
    """libvirt refuses an ``<iothreadpin>`` or ``<driver iothread=>`` naming an IOThread it does not have."""
    listed = "<iothreads>3</iothreads>\n  <iothreadids><iothread id='7'/></iothreadids>"
    raw = _domain(vdb=2).decode().replace("<vcpu>4</vcpu>", f"<vcpu>4</vcpu>\n  {listed}").encode()
    for emulator in (EmulatorPolicy.SHARE, EmulatorPolicy.ISOLATE):
        planned = _plan(raw, emulator=emulator)
        root = etree.fromstring(planned.after)
        pinned = sorted(int(p.get("iothread")) for p in root.iterfind("cputune/iothreadpin"))
        assert pinned == [1, 2, 7], emulator
        used = {int(v) for v in _assigned(planned.after).values() if v is not None}
        assert used and used <= {1, 2, 7}, used
        assert validate_domain(parse_xml(planned.after, source="d.xml", root="domain"), SCHEMA)


def test_fewer_iothreads_trim_the_iothreadsched_that_names_them() -> None:
    sched = (
        "<cputune><iothreadsched iothreads='1-3,^2' scheduler='batch'/>"
        "<iothreadsched iothreads='2' scheduler='rr' priority='0'/></cputune>"
    )
    raw = (
        _domain(vdb=1, iothreads=4).decode().replace("<vcpu>4</vcpu>", f"<vcpu>4</vcpu>\n  {sched}").encode()
    )
    planned = _plan(raw, iothreads=2)
    root = etree.fromstring(planned.after)
    got = [(s.get("iothreads"), s.get("scheduler")) for s in root.iterfind("cputune/iothreadsched")]
    assert got == [("1", "batch"), ("2", "rr")]
    assert any("no longer names IOThread(s) 3" in n.message for n in planned.plan.notes)
    assert _plan(raw, iothreads=4).after.count(b"<iothreadsched") == 2  # nothing to trim: left alone


def test_a_vhost_user_disk_gets_no_iothread() -> None:
    disk = (
        "<disk type='vhostuser' device='disk'><driver name='qemu' type='raw'/>"
        "<source type='unix' path='/tmp/vhost1.sock'/><target dev='vdz' bus='virtio'/></disk>"
    )
    raw = _domain(vdb=1, iothreads=2).decode().replace("<devices>", f"<devices>\n    {disk}", 1).encode()
    assigned = _assigned(_plan(raw).after)
    assert assigned["vdz"] is None and assigned["vda"] is not None, assigned
