"""``vmtune host snapshot``: capture the sysfs/procfs files the topology reader needs as a .tar.gz, and open
such a snapshot again as a sysfs root (``--sysfs snap.tar.gz``).

The archive's members are relative to the root (``sys/devices/system/cpu/online``, ``proc/meminfo``), so
``tar xzf snap.tar.gz -C DIR`` gives a DIR that works with ``--sysfs DIR`` too. Only topology files are
taken (the list below), plus the few files the host probes read (KVM APICv/AVIC parameters, the cgroup
RT budget, PCI devices' NUMA nodes), never anything that identifies the machine beyond its CPU model,
PCI addresses and kernel command line. Real sysfs files report a size of 4096 whatever they hold, so
each file is read and stored with its real length. The ``nodeN/cpuM`` symlinks are kept: old kernels and
libvirt's trimmed trees have no ``cpulist``/``cpumap``, and the link is then the only node membership.

Reading a snapshot back extracts it into a temp dir that is removed when the caller is done, accepting
only what a snapshot holds (relative ``..``-free names, files, dirs, the node links; see
``_extract_members``), with caps on member count and size.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vmtune.adapters.files import atomic_write
from vmtune.errors import InputError

__all__ = ["SnapshotStats", "is_snapshot", "open_root", "snapshot_members", "write_snapshot"]

CPU = "sys/devices/system/cpu"
NODE = "sys/devices/system/node"
HUGE = "sys/kernel/mm/hugepages"
_CPU_FILES = ("online", "present", "possible", "offline", "kernel_max", "isolated", "nohz_full")
_CPUN_FILES = ("online", "cpu_capacity")
_NODE_FILES = ("cpulist", "cpumap", "distance", "meminfo")
# What the reader uses of a cache index (geometry like ways_of_associativity is left out: on a big host the
# snapshot is mostly cache files, and each extracted file costs a create).
_CACHE_FILES = ("level", "type", "size", "id", "shared_cpu_list", "shared_cpu_map")
_NODE_HUGE_FILES = ("nr_hugepages", "free_hugepages", "surplus_hugepages")
_PROC_FILES = ("meminfo", "cmdline", "cpuinfo", "sysinfo")
_CGROUP_CPU_DIRS = ("cpu,cpuacct", "cpu", "cpuacct,cpu")
_CPU_DIR = re.compile(r"cpu\d+")
_NODE_DIR = re.compile(r"node\d+")
_INDEX_DIR = re.compile(r"index\d+")
_SKIP = frozenset({"uevent"})
_NODE_LINK = re.compile(r"sys/devices/system/node/node\d+/cpu\d+")
_LINK_TARGET = re.compile(r"\.\./\.\./cpu/cpu\d+")

# /proc/cpuinfo of a 960-CPU host is megabytes of repeated blocks; the reader looks at the first block.
CPUINFO_LIMIT = 256 * 1024
# A 4096-CPU snapshot has ~150k small files; anything far beyond is not a snapshot.
MAX_MEMBERS = 400_000
MAX_MEMBER_BYTES = 16 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
SHM = "/dev/shm"
SHM_SPARE = 256 * 1024 * 1024  # leave tmpfs room for whoever else uses it


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotStats:
    files: int
    links: int
    skipped: int
    """Files listed but unreadable (permission, EIO from a driver): left out, the reader tolerates that."""
    bytes: int


def snapshot_members(root: Path) -> Iterator[tuple[str, str, bool]]:
    """(archive name, path, is a symlink) of every file and node link to capture below ``root``, in a
    stable order. Walks with ``os.scandir``: the file type comes with the directory entry, so a 960-CPU
    host's ~45,000 files cost no extra stat calls."""
    base = str(root)
    cpu = f"{base}/{CPU}"
    yield from _files(base, cpu, _CPU_FILES)
    for d in _subdirs(cpu, _CPU_DIR):
        yield from _files(base, d, _CPUN_FILES)
        yield from _files(base, f"{d}/topology")
        for index in _subdirs(f"{d}/cache", _INDEX_DIR):
            yield from _files(base, index, _CACHE_FILES)
    node = f"{base}/{NODE}"
    for name, path, link in _files(base, node):
        last = name.rsplit("/", 1)[-1]
        if last in ("online", "possible") or last.startswith("has_"):
            yield name, path, link
    for d in _subdirs(node, _NODE_DIR):
        yield from _files(base, d, _NODE_FILES)
        for entry in _scan(d):
            if _CPU_DIR.fullmatch(entry.name) and entry.is_symlink():
                yield _rel(base, entry.path), entry.path, True
        for size in _scan(f"{d}/hugepages"):
            if size.name.startswith("hugepages-"):
                yield from _files(base, size.path, _NODE_HUGE_FILES)
    for size in _scan(f"{base}/{HUGE}"):
        if size.name.startswith("hugepages-"):
            yield from _files(base, size.path)
    yield from _files(base, f"{base}/proc", _PROC_FILES)
    yield from _probe_members(base)


def _probe_members(base: str) -> Iterator[tuple[str, str, bool]]:
    """The files ``adapters.probes`` reads, so ``plan``/``check --sysfs SNAPSHOT`` gate on the captured
    host's APICv/AVIC, cgroup RT budget and PCI NUMA as they would there (README: host probes)."""
    module = f"{base}/sys/module"
    yield from _files(base, f"{module}/kvm_intel/parameters", ("enable_apicv",))
    yield from _files(base, f"{module}/kvm_amd/parameters", ("avic",))
    cgroup = f"{base}/sys/fs/cgroup"
    yield from _files(base, cgroup, ("cgroup.controllers",))
    for ctl in _CGROUP_CPU_DIRS:  # cgroup v1; "cpu" is usually a link to "cpu,cpuacct": keep what is a dir
        d = f"{cgroup}/{ctl}"
        if os.path.isdir(d) and not os.path.islink(d):
            yield from _files(base, d, ("cpu.rt_runtime_us",))
            for slice_name in ("machine.slice", "machine"):
                yield from _files(base, f"{d}/{slice_name}", ("cpu.rt_runtime_us",))
    # /sys/bus/pci/devices/* are links into /sys/devices/pci*; the snapshot stores the numa_node files
    # under the link names, as plain files (the only name the probe uses)
    for dev in _scan(f"{base}/sys/bus/pci/devices"):
        node = f"{dev.path}/numa_node"
        if os.path.isfile(node):
            yield _rel(base, node), node, False


def _scan(d: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(d) as it:
            entries = list(it)
    except OSError:
        return []
    entries.sort(key=lambda e: _natural(e.name))
    return entries


def _natural(name: str) -> tuple[str, int]:
    m = re.fullmatch(r"(\D*)(\d+)", name)
    return (m.group(1), int(m.group(2))) if m else (name, -1)


def _subdirs(d: str, pattern: re.Pattern[str]) -> list[str]:
    return [e.path for e in _scan(d) if pattern.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]


def _rel(base: str, path: str) -> str:
    return path[len(base) :].lstrip("/")


def _files(base: str, d: str, names: tuple[str, ...] | None = None) -> Iterator[tuple[str, str, bool]]:
    """Regular files directly in ``d`` (only ``names`` when given), never symlinks or ``uevent``."""
    wanted = None if names is None else frozenset(names)
    for entry in _scan(d):
        if (wanted is None and entry.name in _SKIP) or (wanted is not None and entry.name not in wanted):
            continue
        if entry.is_file(follow_symlinks=False):
            yield _rel(base, entry.path), entry.path, False


def write_snapshot(root: Path, out: Path) -> SnapshotStats:
    """Capture ``root``'s topology files into the gzip tarball ``out`` (written atomically)."""
    if not (root / CPU).is_dir():
        raise InputError(f"{root / CPU}: not found; {root} is not a sysfs root")
    buf = io.BytesIO()
    files = links = skipped = total = 0
    # mtime 0 (members and gzip header) and root ownership keep two snapshots of one host byte-identical;
    # ustar: every name here fits it, and its headers are cheaper to build than pax ones.
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        dirs: set[str] = set()
        for name, path, is_link in snapshot_members(root):
            _add_dirs(tar, name, dirs)
            if is_link:
                info = _info(name, tarfile.SYMTYPE, 0o777)
                info.linkname = os.readlink(path)
                tar.addfile(info)
                links += 1
                continue
            try:
                data = _read(path)
            except OSError:
                skipped += 1
                continue
            info = _info(name, tarfile.REGTYPE, 0o444)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            files += 1
            total += len(data)
    if not files:
        raise InputError(f"{root}: no topology files found to snapshot")
    atomic_write(out, gzip.compress(buf.getvalue(), compresslevel=6, mtime=0), mode=0o644)
    return SnapshotStats(files=files, links=links, skipped=skipped, bytes=total)


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        if path.endswith("/cpuinfo"):
            data = fh.read(CPUINFO_LIMIT)
            if len(data) == CPUINFO_LIMIT:  # cut at a processor block boundary, as if the host were smaller
                data = data[: data.rfind(b"\n\n") + 2] or data
            return data
        return fh.read(MAX_MEMBER_BYTES)


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _add_dirs(tar: tarfile.TarFile, name: str, seen: set[str]) -> None:
    parts = name.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        d = "/".join(parts[:i])
        if d not in seen:
            seen.add(d)
            tar.addfile(_info(d, tarfile.DIRTYPE, 0o755))


def is_snapshot(path: Path) -> bool:
    """A file (not a directory) given as ``--sysfs``: a snapshot tarball."""
    return path.is_file()


@contextlib.contextmanager
def open_root(path: Path) -> Iterator[Path]:
    """A sysfs root for ``path``: the directory itself, or a snapshot extracted to a temp dir."""
    if not is_snapshot(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="vmtune-snapshot-", dir=_scratch_dir(path)) as tmp:
        _extract(path, Path(tmp))
        yield Path(tmp)


def _scratch_dir(path: Path) -> str | None:
    """Where to extract: ``$TMPDIR`` when the user set one; else ``/dev/shm`` when it is a writable tmpfs
    with room, because a big host's snapshot is ~40,000 small files and creating (then deleting) them on a
    journaling disk is most of the run (27 s vs 10 s for 960 CPUs measured here); else the default.
    Room: a tmpfs file takes at least a 4 KiB page and a tar member at least 1 KiB, so 4x the
    uncompressed size (gzip's ISIZE trailer, mod 4 GiB, plenty for a snapshot) is an upper bound."""
    if os.environ.get("TMPDIR") or not os.path.isdir(SHM) or not os.access(SHM, os.W_OK | os.X_OK):
        return None
    try:
        with open(path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            isize = int.from_bytes(fh.read(4), "little")
        free = shutil.disk_usage(SHM).free
    except OSError:
        return None
    return SHM if free > 4 * isize + SHM_SPARE else None


def _extract(path: Path, dest: Path) -> None:
    try:
        # stream mode: members are read in order, with no seeks back into the gzip stream
        with tarfile.open(path, mode="r|gz") as tar:
            _extract_members(path, tar, str(dest))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        # gzip errors arrive as tarfile.ReadError or OSError ("Not a gzipped file"); EOFError: truncated
        why = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(":")
        raise InputError(f"{path}: not a readable host snapshot (.tar.gz): {why}") from None
    if not (dest / CPU).is_dir():
        raise InputError(f"{path}: snapshot has no {CPU}; not a vmtune host snapshot")


def _extract_members(path: Path, tar: tarfile.TarFile, dest: str) -> None:
    """Regular files and directories under relative, ``..``-free names; symlinks only in the one shape
    snapshots hold (``node/nodeN/cpuM -> ../../cpu/cpuM``), so nothing can point or write outside ``dest``.
    Devices, FIFOs and hard links are skipped. (tarfile's ``data`` filter is as safe but resolves every
    member with realpath: seconds for the ~4,000 files of a 64-CPU host.)"""
    made: set[str] = {dest}
    total = 0
    for count, member in enumerate(tar, start=1):
        total += max(member.size, 0)
        if count > MAX_MEMBERS or member.size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
            raise InputError(f"{path}: too large to be a vmtune host snapshot")
        name = member.name.rstrip("/")
        while name.startswith("./"):  # `tar czf snap.tar.gz -C dir .` writes ./sys/...
            name = name[2:]
        if name in ("", ".") and member.isdir():
            continue
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("..", ".", "") for p in parts):
            raise InputError(f"{path}: unsafe member name {member.name!r}")
        target = f"{dest}/{name}"
        if member.isdir():
            _mkdirs(target, made)
        elif member.isreg():
            _mkdirs(target.rpartition("/")[0], made)
            src = tar.extractfile(member)
            data = src.read() if src is not None else b""
            with open(target, "xb") as fh:
                fh.write(data)
        elif member.issym():
            if not (_NODE_LINK.fullmatch(name) and _LINK_TARGET.fullmatch(member.linkname)):
                raise InputError(f"{path}: unexpected symlink {member.name!r} -> {member.linkname!r}")
            _mkdirs(target.rpartition("/")[0], made)
            os.symlink(member.linkname, target)


def _mkdirs(d: str, made: set[str]) -> None:
    if d not in made:
        os.makedirs(d, exist_ok=True)
        made.add(d)
