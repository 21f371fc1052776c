"""The element modules: each declaration reads back what it writes, and errors name the file and XPath."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from lxml import etree

from testutil import DATA
from vmtune.core.guest import (
    GuestSpec,
    GuestTopology,
    IOThreadPin,
    Memballoon,
    MemNode,
    NumaCell,
    Timer,
    VcpuPin,
    VcpuSched,
)
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError
from vmtune.xmlmap.elements import READ, clock, cpu, cputune, memballoon, numatune
from vmtune.xmlmap.elements.view import Reader, Record
from vmtune.xmlmap.guest import read_guest
from vmtune.xmlmap.safe import parse_xml

ROUND_TRIPS: list[tuple[Record[Any], object]] = [
    (cputune.VCPUPIN, VcpuPin(vcpu=3, cpus=CpuSet([4, 36]))),
    (cputune.IOTHREADPIN, IOThreadPin(iothread=1, cpus=CpuSet.range(0, 1))),
    (cputune.VCPUSCHED, VcpuSched(vcpus=CpuSet.range(1, 3), scheduler="fifo", priority=1)),
    (cputune.VCPUSCHED, VcpuSched(vcpus=CpuSet([0]), scheduler="batch")),
    (numatune.MEMNODE, MemNode(cellid=1, mode="interleave", nodeset=CpuSet([0, 1]))),
    (cpu.TOPOLOGY, GuestTopology(sockets=2, dies=2, cores=4, threads=2)),
    (cpu.TOPOLOGY, GuestTopology(sockets=1, clusters=2)),
    (cpu.CELL, NumaCell(id=1, cpus=CpuSet.range(8, 15), memory_kib=33554432)),
    (clock.TIMER, Timer(name="hpet", present=False)),
    (clock.TIMER, Timer(name="rtc", present=True, tickpolicy="catchup")),
    (memballoon.MEMBALLOON, Memballoon(model="virtio", autodeflate=True, freepage_reporting=False)),
]


@pytest.mark.parametrize(("record", "value"), ROUND_TRIPS, ids=lambda v: getattr(v, "tag", ""))
def test_declaration_reads_back_what_it_writes(record: Record[Any], value: object) -> None:
    elem = etree.SubElement(etree.Element("domain"), record.tag)
    record.write(elem, value)
    assert record.read(Reader(source="t"), elem) == value
    record.write(elem, value)  # a second write changes nothing
    assert record.read(Reader(source="t"), elem) == value


def test_implied_attributes_are_not_written() -> None:
    elem = etree.Element("topology")
    cpu.TOPOLOGY.write(elem, GuestTopology(sockets=1, cores=4, threads=2))
    assert dict(elem.attrib) == {"sockets": "1", "cores": "4", "threads": "2"}


def test_every_guestspec_field_has_a_reader() -> None:
    """Meta-test: each GuestSpec field is filled by some element module on the golden inputs."""
    reader = Reader(source="t")
    read: set[str] = set()
    for path in sorted((DATA / "domains").glob("*.xml")):
        root = parse_xml(path.read_bytes(), source=path.name, root="domain").getroot()
        for element in READ:
            read |= set(element.read(root, reader))
    fields = {f.name for f in dataclasses.fields(GuestSpec)} - {"source", "running"}
    assert fields - read == set()
    assert read - fields == set()


DOMAIN = "<domain type='kvm'><name>x</name><vcpu>2</vcpu>{}</domain>"
ERRORS = {
    "iothreadpin-missing-id": (
        "<cputune><iothreadpin cpuset='1'/></cputune>",
        "/domain/cputune/iothreadpin/@iothread: missing",
    ),
    "memnode-bad-cellid": (
        "<numatune><memnode cellid='one' mode='strict' nodeset='0'/></numatune>",
        "/domain/numatune/memnode/@cellid: not an integer",
    ),
    "cell-bad-memory": (
        "<cpu><numa><cell id='0' cpus='0-1' memory='lots'/></numa></cpu>",
        "/domain/cpu/numa/cell: not an integer",
    ),
    "page-bad-unit": (
        "<memoryBacking><hugepages><page size='2' unit='furlongs'/></hugepages></memoryBacking>",
        "/domain/memoryBacking/hugepages/page/@size: unknown memory unit",
    ),
    "topology-not-int": (
        "<cpu><topology sockets='1' cores='two' threads='1'/></cpu>",
        "/domain/cpu/topology/@cores: not an integer",
    ),
    "emulatorpin-bad-cpuset": (
        "<cputune><emulatorpin cpuset='0-'/></cputune>",
        "/domain/cputune/emulatorpin/@cpuset",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors_name_file_and_xpath(case: str) -> None:
    body, message = ERRORS[case]
    with pytest.raises(InputError) as info:
        read_guest(DOMAIN.format(body).encode(), source=f"{case}.xml")
    assert str(info.value).startswith(f"{case}.xml: ")
    assert message in str(info.value)
