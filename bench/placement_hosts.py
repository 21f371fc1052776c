"""The placement benchmark's host shapes: real sysfs dumps from the shared corpora and generated machines.

Generated machines are ``tests/sysfsgen.HostSpec``s turned into a Host by the tests' one factory
(``tests/hosts.host_of``), so they are exactly what the sysfs reader would read from ``write_sysfs``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hosts import host_named, host_of  # noqa: E402
from sysfsgen import CoreKind, HostSpec  # noqa: E402
from vmtune.adapters.sysfs import read_sysfs  # noqa: E402
from vmtune.core.topology.model import Host  # noqa: E402

__all__ = ["SHAPES", "Shape", "corpora"]


def corpora() -> Path:
    return Path(os.environ.get("VMTUNE_CORPORA", ROOT.parent / "shared" / "corpora"))


def _dump(name: str) -> Callable[[], Host]:
    return lambda: read_sysfs(corpora() / "sysfs" / name)


def _spec(**kw: object) -> Callable[[], Host]:
    return lambda: host_of(HostSpec(**kw))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, kw_only=True)
class Shape:
    name: str
    what: str
    load: Callable[[], Host]

    def host(self) -> Host:
        """The host, named after the shape: its streams are seeded by name, which must not depend on where
        the corpora sit (a sysfs dump's host is named after its path)."""
        return dataclasses.replace(self.load(), name=self.name)


def _s2500_distances() -> tuple[tuple[int, ...], ...]:
    """16 nodes, 8 per socket: 10 local, 20 to the node pair, 30 inside the socket, 40 across."""
    return tuple(
        tuple(10 if a == b else 20 if a // 2 == b // 2 else 30 if a // 8 == b // 8 else 40 for b in range(16))
        for a in range(16)
    )


SHAPES: tuple[Shape, ...] = (
    Shape(name="xeon-2s", what="corpus hwloc-32intel64-2p8co2t+8ve: dual Skylake-SP, 2 nodes, SMT2, L3 per "
          "socket", load=_dump("hwloc-32intel64-2p8co2t+8ve")),
    Shape(name="epyc-naples-8n", what="corpus utillinux-x86_64-epyc_7451: 2 sockets x 4 nodes (8 nodes), "
          "two 3-core CCX (L3) per node, SMT2", load=_dump("utillinux-x86_64-epyc_7451")),
    Shape(name="epyc-genoa-nps1", what="generated: 1 socket NPS1, 96 cores in 12 CCDs of 8 (L3 each), SMT2",
          load=_spec(name="epyc-genoa-nps1", cores_per_node=96, threads_per_core=2,
                     sibling_numbering="interleaved", l2_kib=1024, l3_cores=8, l3_kib=32768,
                     mem_per_node_kib=768 * 1024 * 1024, vendor="AMD")),
    Shape(name="epyc-milan-nps4", what="generated: 1 socket NPS4, 4 nodes x 2 CCDs of 8 cores (L3 each), "
          "SMT2",
          load=_spec(name="epyc-milan-nps4", nodes_per_socket=4, cores_per_node=16, threads_per_core=2,
                     sibling_numbering="interleaved", l2_kib=512, l3_cores=8, l3_kib=32768,
                     mem_per_node_kib=64 * 1024 * 1024, vendor="AMD")),
    Shape(name="phytium-s2500-2s", what="generated: 2 sockets x 8 nodes (16 nodes), 4-core L2 clusters, "
          "no L3",
          load=_spec(name="phytium-s2500-2s", arch="aarch64", sockets=2, nodes_per_socket=8, cores_per_node=8,
                     kinds=(CoreKind(cores=8, l2_cores=4, l2_kib=2048, capacity=1024),),
                     distances=_s2500_distances(), mem_per_node_kib=32 * 1024 * 1024)),
    Shape(name="spr-snc4", what="generated: Sapphire Rapids SNC4, 2 sockets x 4 nodes x 14 cores, SMT2, "
          "L3 spans the socket", load=_spec(name="spr-snc4", sockets=2, nodes_per_socket=4, cores_per_node=14,
                                            threads_per_core=2, sibling_numbering="interleaved", l2_kib=2048,
                                            l3_cores=56, l3_kib=107520, mem_per_node_kib=64 * 1024 * 1024,
                                            vendor="Intel")),
    Shape(name="raptor-lake", what="corpus hwloc-20em64t-hybrid-1p6c2t+2ca4co1t: 6 P-cores SMT2 + 8 E-cores "
          "in "
          "two L2 clusters", load=_dump("hwloc-20em64t-hybrid-1p6c2t+2ca4co1t")),
    Shape(name="isol-offline", what="generated: 2 sockets x 16 cores SMT2, isolcpus on cores 2-15 of each "
          "socket, CPUs 45 (a sibling) and 30,62 (a core) offline",
          load=_spec(name="isol-offline", sockets=2, cores_per_node=16, threads_per_core=2,
                     sibling_numbering="interleaved", l3_cores=16, isolated=(*range(2, 16), *range(18, 32),
                     *range(34, 48), *range(50, 64)), offline=(30, 45, 62), vendor="Intel")),
    Shape(name="huge-960", what="generated: 8 sockets x 2 nodes x 30 cores SMT2 (960 CPUs), 10-core L3",
          load=lambda: host_named("huge-960")),
)  # fmt: skip
"""At least: 2-node and 8-node hosts, AMD CCX/CCD (NPS1 and NPS4), L2 clusters, SNC, hybrid, isolcpus with
offline CPUs, and one of 900+ CPUs."""
