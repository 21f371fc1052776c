"""``<cachetune>``: read from libvirt's own test domains (any unit, CDP types, monitors), written as planned
with the ``<monitor>`` children kept and a stale ``id`` dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmtune.core.guest import CacheAlloc, CacheTune
from vmtune.core.plan import Plan
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError
from vmtune.xmlmap.apply import apply_plan
from vmtune.xmlmap.diff import detect_style, serialize
from vmtune.xmlmap.guest import read_guest
from vmtune.xmlmap.safe import parse_xml

MIB = 1 << 20


def both(cache_id: int, size: int, kind: str = "both") -> CacheAlloc:
    return CacheAlloc(id=cache_id, level=3, type=kind, size_bytes=size)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cachetune.xml", (CacheTune(vcpus=CpuSet([0, 1]), caches=(both(0, 3 * MIB), both(1, 3 * MIB))),
                           CacheTune(vcpus=CpuSet([3]), caches=(both(0, 3 * MIB),)))),
        ("cachetune-small.xml", (CacheTune(vcpus=CpuSet([0, 1]), caches=(both(0, 768 << 10),)),
                                 CacheTune(vcpus=CpuSet([2, 3])))),
        ("cachetune-cdp.xml", (CacheTune(vcpus=CpuSet([0, 1]),
                                         caches=(both(0, 7680 << 10, "code"), both(1, 3840 << 10, "data"))),
                               CacheTune(vcpus=CpuSet([2]), caches=(both(1, 6 * MIB, "code"),)),
                               CacheTune(vcpus=CpuSet([3]), caches=(both(1, 6912 << 10, "data"),)))),
    ],
)  # fmt: skip
def test_reads_libvirts_own_cachetune_domains(
    corpora: Path, name: str, expected: tuple[CacheTune, ...]
) -> None:
    path = corpora / "domains" / "libvirt" / "genericxml2xml" / "in" / name
    assert read_guest(path.read_bytes(), source=str(path)).cachetunes == expected


def test_write_keeps_monitors_and_drops_a_stale_id(corpora: Path) -> None:
    raw = (corpora / "domains" / "libvirt" / "genericxml2xml" / "in" / "cachetune.xml").read_bytes()
    doc = parse_xml(raw, source="t", root="domain")
    tunes = (CacheTune(vcpus=CpuSet([0, 1]), caches=(both(0, 5 << 20),)),)  # same vCPUs, one cache left
    out = serialize(apply_plan(doc, Plan(cachetunes=tunes)), detect_style(raw, doc)).decode()
    assert (
        "    <cachetune vcpus='0-1' id='vcpus_0-1'>\n"
        "      <cache id='0' level='3' type='both' size='5120' unit='KiB'/>\n"
        "      <monitor level='3' vcpus='0-1'/>\n"
        "    </cachetune>\n"
        "  </cputune>"
    ) in out  # the second <cachetune> is gone: the plan holds exactly one
    moved = (CacheTune(vcpus=CpuSet([0, 1, 2, 3]), caches=(both(0, 1536),)),)  # not a whole KiB: bytes
    out = serialize(apply_plan(doc, Plan(cachetunes=moved)), detect_style(raw, doc)).decode()
    assert "<cachetune vcpus='0-3'>" in out and "size='1536' unit='B'" in out
    assert read_guest(out.encode(), source="t").cachetunes == moved


def test_bad_size_names_the_xpath() -> None:
    raw = (b"<domain type='kvm'><name>g</name><memory>1024</memory><vcpu>1</vcpu><cputune>"
           b"<cachetune vcpus='0'><cache id='0' level='3' type='both' size='3.5' unit='MiB'/></cachetune>"
           b"</cputune><os><type>hvm</type></os></domain>")  # fmt: skip
    with pytest.raises(InputError, match=r"g.xml: /domain/cputune/cachetune/cache/@size: not a whole number"):
        read_guest(raw, source="g.xml")
