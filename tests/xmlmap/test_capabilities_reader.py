"""Capabilities reader: agreement with the sysfs reader on named hosts, the shared corpus, bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from testutil import REPO
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError
from vmtune.xmlmap.capabilities import parse_capabilities

HOSTS = REPO / "tests" / "data" / "hosts"
sys.path.insert(0, str(REPO / "tests"))
import sysfsgen  # noqa: E402

NAMED = [
    "dual-skylake-ht-interleaved",
    "dual-ht-adjacent",
    "epyc-2ccx-per-node",
    "snc2-xeon",
    "phytium-s2500",
    "hybrid-pe",
    "offline-cpus",
    "memoryless-node",
    "small-2cpu",
]


def _pair(name: str, tmp: Path) -> tuple[Host, Host]:
    root, caps = HOSTS / name, HOSTS / f"{name}.capabilities.xml"
    if not (root / "sys").is_dir() or not caps.is_file():
        spec = sysfsgen.NAMED_HOSTS[name]
        root, caps = tmp / name, tmp / f"{name}.capabilities.xml"
        sysfsgen.write_sysfs(spec, root)
        caps.write_text(sysfsgen.write_capabilities(spec))
    return read_sysfs(root), parse_capabilities(caps.read_text(), source=str(caps))


def _shape(host: Host) -> dict[str, object]:
    """What both readers must agree on. Not L2: libvirt exposes caches from L3 up (cache_min_level = 3)."""
    s = host.summary()
    return {
        "summary": (s.sockets, s.numa_nodes, s.cores, s.threads, s.threads_per_core, s.cache_groups[3]),
        "online": host.online,
        "cores": [c.cpus for c in host.cores],
        # big and little cores: sysfs has cpu_core/cpu_atom or cpu_capacity, capabilities only the layout
        "kinds": [c.kind for c in host.cores],
        "core_socket_node": [(c.socket, c.node) for c in host.cores],
        "sockets": [s.cpus for s in host.sockets],
        "nodes": [(n.id, n.cpus, n.mem_total_kib, n.distances) for n in host.nodes],
        "hugepages": [[(h.size_kib, h.total) for h in n.hugepages] for n in host.nodes],
        "l3": [g.cpus for g in host.groups(3)],
        # the L3 group by its CPUs: indices into Host.caches count the L2 groups first
        "cpu_places": [
            (
                c.id,
                c.online,
                c.socket,
                c.core,
                c.node,
                None if 3 not in c.caches else host.caches[c.caches[3]].cpus,
            )
            for c in host.cpus
            if c.online
        ],
    }


@pytest.mark.parametrize("name", NAMED)
def test_both_readers_agree(name: str, tmp_path: Path) -> None:
    from_sysfs, from_caps = _pair(name, tmp_path)
    a, b = _shape(from_sysfs), _shape(from_caps)
    for key in a:
        assert a[key] == b[key], f"{name}: {key} differs between sysfs and capabilities"
    # capabilities may omit offline CPUs altogether (sysfsgen does); those it lists must be offline in sysfs
    assert from_caps.offline.issubset(from_sysfs.offline)


def test_this_machine_agrees_when_captured() -> None:
    root, caps = HOSTS / "this-machine", HOSTS / "this-machine.capabilities.xml"
    if not (root / "sys").is_dir() or not caps.is_file():
        pytest.skip("this-machine fixture not captured")
    a = read_sysfs(root)
    b = parse_capabilities(caps.read_text(), source=str(caps))
    sa, sb = a.summary(), b.summary()
    assert (sa.sockets, sa.numa_nodes, sa.cores, sa.threads, sa.cache_groups[3]) == (
        sb.sockets,
        sb.numa_nodes,
        sb.cores,
        sb.threads,
        sb.cache_groups[3],
    )
    assert [c.cpus for c in a.cores] == [c.cpus for c in b.cores]


def test_caps_details() -> None:
    xml = """<capabilities><host><cpu><arch>x86_64</arch><vendor>Intel</vendor><model>Skylake</model>
      <pages unit='KiB' size='4'/><pages unit='KiB' size='2048'/></cpu>
      <topology><cells num='2'>
        <cell id='0'><memory unit='KiB'>1048576</memory>
          <pages unit='KiB' size='4'>200000</pages><pages unit='KiB' size='2048'>16</pages>
          <distances><sibling id='0' value='10'/><sibling id='1' value='21'/></distances>
          <cpus num='3'>
            <cpu id='0' socket_id='0' die_id='0' core_id='0' siblings='0,2'/>
            <cpu id='1' socket_id='0' die_id='0' core_id='1' siblings='1'/>
            <cpu id='2' socket_id='0' die_id='0' core_id='0' siblings='0,2'/>
          </cpus></cell>
        <cell id='1'><memory unit='GiB'>2</memory>
          <distances><sibling id='0' value='21'/><sibling id='1' value='10'/></distances>
          <cpus num='2'><cpu id='3' socket_id='1' core_id='0' siblings='3'/><cpu id='4'/></cpus></cell>
      </cells></topology>
      <cache><bank id='0' level='3' type='both' size='8' unit='MiB' cpus='0-2'/>
             <bank id='1' level='3' type='both' size='8' unit='MiB' cpus='3-4'/></cache>
    </host></capabilities>"""
    host = parse_capabilities(xml, source="caps.xml")
    assert (host.arch, host.vendor, host.model) == ("x86_64", "Intel", "Skylake")
    assert host.siblings(2) == CpuSet([0, 2])
    assert host.offline == CpuSet([4])  # a bare <cpu id/> beside detailed ones is offline
    assert host.node(1).mem_total_kib == 2 * 1024 * 1024  # type: ignore[union-attr]
    hp = host.node(0).hugepages_of(2048)  # type: ignore[union-attr]
    assert hp is not None and hp.total == 16 and hp.free == 16
    assert host.node(0).hugepages_of(4) is None  # type: ignore[union-attr]  # base page is no hugepage
    assert host.node(1).distance_to(0) == 21  # type: ignore[union-attr]
    assert [g.size_kib for g in host.groups(3)] == [8192, 8192]
    assert host.groups(3)[1].cpus == CpuSet([3])
    assert any("free hugepage" in w for w in host.warnings)


# -- corpus ---------------------------------------------------------------------------------------------
NO_CELLS = {"caps-test2.xml"}  # libvirt test driver: no <cells>, so no CPUs to read


@pytest.mark.corpus
def test_capabilities_corpus(corpora: Path) -> None:
    files = sorted((corpora / "capabilities").rglob("*.xml"))
    assert len(files) == 31
    for path in files:
        if path.name in NO_CELLS:
            with pytest.raises(InputError, match="no <host><topology><cells>"):
                parse_capabilities(path.read_text(), source=str(path))
            continue
        host = parse_capabilities(path.read_text(), source=str(path))
        s = host.summary()
        cells = path.read_text().count("<cell ")
        assert s.numa_nodes == cells, path.name
        assert 1 <= s.sockets <= s.cores <= s.threads, path.name
        assert s.threads == len(host.online) and s.threads_per_core <= 8, path.name
        assert sum(len(n.cpus) for n in host.nodes) == s.threads, path.name


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # sockets, numa_nodes, cores, threads, threads_per_core, l2_groups, l3_groups
        ("libvirt/vircaps-x86_64-caches.xml", (1, 1, 4, 8, 2, 0, 1)),
        ("libvirt-newer/vircaps-x86_64-resctrl-amd.xml", (2, 2, 32, 64, 2, 32, 8)),
        ("virt-manager/kvm-ppc64le.xml", (2, 2, 12, 96, 8, 0, 0)),
        ("virt-manager/kvm-aarch64.xml", (2, 2, 160, 160, 1, 0, 0)),
        ("libvirt/vircaps-aarch64-basic-clusters.xml", (2, 2, 4, 8, 2, 0, 0)),
        ("vdsm/caps_libvirt_intel_E5649.xml", (2, 2, 12, 24, 2, 0, 0)),
    ],
)
def test_capabilities_counts(corpora: Path, name: str, expected: tuple[int, ...]) -> None:
    path = corpora / "capabilities" / name
    s = parse_capabilities(path.read_text(), source=str(path)).summary()
    assert (
        s.sockets,
        s.numa_nodes,
        s.cores,
        s.threads,
        s.threads_per_core,
        s.cache_groups[2],
        s.cache_groups[3],
    ) == expected


# -- bad input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<capabilities><host>", r"^caps\.xml:1:\d+: malformed XML"),
        ("<domain/>", r"^caps\.xml: root element is <domain>, expected <capabilities>"),
        ("<capabilities/>", r"^caps\.xml: no <host>"),
        (
            "<capabilities><host><topology><cells><cell id='x'/></cells></topology></host></capabilities>",
            r"^caps\.xml:1: <cell id='x'> is not an integer",
        ),
        (
            "<capabilities><host><topology><cells><cell id='0'><cpus><cpu id='0' siblings='0-z'/>"
            "</cpus></cell></cells></topology></host></capabilities>",
            r"^caps\.xml:1: siblings: ",
        ),
        (
            "<capabilities><host><topology><cells><cell id='0'><memory unit='parsecs'>1</memory>"
            "</cell></cells></topology></host></capabilities>",
            r"unknown unit 'parsecs'",
        ),
    ],
)
def test_bad_capabilities_name_the_file(xml: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        parse_capabilities(xml, source="caps.xml")
    assert err.value.exit_code == 2


def test_cli_malformed_capabilities_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vmtune.cli.app import main

    bad = tmp_path / "caps.xml"
    bad.write_text("<capabilities>\n  <host>\n")
    code = main(["host", "--capabilities", str(bad), "--json"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{bad}:" in err and "Traceback" not in err
