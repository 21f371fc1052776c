"""Two simple placement baselines the planner is compared with (bench/placement.py).

* ``sequential``: the lowest free CPU ids first - what a naive script or ``virt-install --cpuset=auto``-era
  tooling does.
* ``packed``: kubelet's static CPU manager ``takeByTopology`` without cache awareness: whole sockets when
  the request is at least a socket, then whole physical cores, then single threads, always from the socket
  / core with the fewest free CPUs left that can still serve (it packs to keep big blocks whole).

Both use the same free pool as vmtune (online minus the reserved housekeeping CPUs minus tenants' CPUs),
so differences come from the choice alone.
"""

from __future__ import annotations

from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet

__all__ = ["packed", "sequential"]


def sequential(host: Host, free: CpuSet, n: int) -> CpuSet | None:
    if len(free) < n:
        return None
    return free.take(n)


def packed(host: Host, free: CpuSet, n: int) -> CpuSet | None:
    if len(free) < n:
        return None
    out = CpuSet()
    avail = free
    need = n
    # 1. whole sockets
    for socket in sorted(host.sockets, key=lambda s: s.index):
        sock_cpus = socket.cpus
        if need >= len(sock_cpus) and sock_cpus.issubset(avail):
            out, avail, need = out | sock_cpus, avail - sock_cpus, need - len(sock_cpus)
    if need == 0:
        return out
    # 2. whole cores, from the socket with the fewest free CPUs that still has free whole cores
    while need > 0:
        whole = [c for c in host.cores if c.cpus and c.cpus.issubset(avail) and len(c.cpus) <= need]
        if not whole:
            break

        left = {s.index: len(avail & s.cpus) for s in host.sockets}
        core = min(whole, key=lambda c: (left[c.socket], c.index))
        out, avail, need = out | core.cpus, avail - core.cpus, need - len(core.cpus)
    # 3. single threads: prefer threads of cores already partly used (kubelet's "fewest free" ordering)
    while need > 0:
        threads = sorted(avail, key=lambda cpu: (len(host.siblings(cpu) & avail), cpu))
        if not threads:
            return None
        cpu = threads[0]
        out, avail, need = out | CpuSet([cpu]), avail - CpuSet([cpu]), need - 1
    return out
