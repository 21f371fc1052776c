"""``vmtune host snapshot``: capture the sysfs/procfs files the topology reader needs as a .tar.gz, and read
such a snapshot again as a sysfs root (``--sysfs snap.tar.gz``).

The archive's members are relative to the root (``sys/devices/system/cpu/online``, ``proc/meminfo``), so
``tar xzf snap.tar.gz -C DIR`` gives a DIR that works with ``--sysfs DIR`` too. Only topology files are
taken (the list below), plus the few files the host probes read (KVM APICv/AVIC parameters, the cgroup
RT budget, PCI devices' NUMA nodes, resctrl's cache resources and group schemata), never anything that
identifies the machine beyond its CPU model, PCI addresses and kernel command line. Real sysfs files
report a size of 4096 whatever they hold, so each file is read and stored with its real length. The
``nodeN/cpuM`` symlinks are kept: old kernels and libvirt's trimmed trees have no ``cpulist``/``cpumap``,
and the link is then the only node membership.

The first member, ``vmtune-manifest.json``, holds the member, file, link, CPU and node counts and the
sha256 of every byte after it up to the end of the archive: a truncated or edited snapshot is refused
instead of describing a smaller host. Snapshots of earlier vmtune versions have no manifest; they are read
with a note. Reading parses the archive in memory (:func:`read_snapshot`): no file is extracted, nothing
is left behind by a kill, and a 900-CPU snapshot reads in about the time of the same tree on disk.
:func:`open_root` still extracts one, into a private temp dir removed on exit and on SIGTERM, for callers
that need real files (the probes, a snapshot of a snapshot).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vmtune.adapters.files import atomic_write, signals_raise
from vmtune.adapters.sysfs import PMU_DIRS
from vmtune.adapters.sysfsio import FileTree
from vmtune.errors import InputError

__all__ = [
    "MANIFEST",
    "Snapshot",
    "SnapshotStats",
    "is_snapshot",
    "open_root",
    "read_snapshot",
    "snapshot_members",
    "write_snapshot",
]

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
_CPU_MEMBER = re.compile(r"sys/devices/system/cpu/(cpu\d+)(?:/|$)")
_NODE_MEMBER = re.compile(r"sys/devices/system/node/(node\d+)(?:/|$)")

# /proc/cpuinfo of a 960-CPU host is megabytes of repeated blocks; the reader looks at the first block.
CPUINFO_LIMIT = 256 * 1024
# A 4096-CPU snapshot has ~150k small files; anything far beyond is not a snapshot.
MAX_MEMBERS = 400_000
MAX_MEMBER_BYTES = 16 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
SHM = "/dev/shm"
SHM_SPARE = 256 * 1024 * 1024  # leave tmpfs room for whoever else uses it
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024
MANIFEST = "vmtune-manifest.json"
_FORMAT = "vmtune-host-snapshot"
_BLOCK = 512
_RECORD = 10240
_TEMP_PREFIX = "vmtune-snapshot-"
_STALE_SECONDS = 3600


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
    for pmu in PMU_DIRS:  # Intel hybrid: which CPUs are P-cores and which E-cores
        yield from _files(base, f"{base}/sys/devices/{pmu}", ("cpus",))
    yield from _files(base, f"{base}/proc", _PROC_FILES)
    yield from _probe_members(base)


def _probe_members(base: str) -> Iterator[tuple[str, str, bool]]:
    """The files ``adapters.probes`` reads, so ``plan``/``check --sysfs SNAPSHOT`` gate on the captured
    host's APICv/AVIC, cgroup RT budget and PCI NUMA as they would there (README: host probes)."""
    module = f"{base}/sys/module"
    yield from _files(base, f"{module}/kvm_intel/parameters", ("enable_apicv",))
    yield from _files(base, f"{module}/kvm_amd/parameters", ("avic",))
    yield from _files(base, f"{base}/proc/sys/kernel", ("sched_rt_runtime_us",))
    cgroup = f"{base}/sys/fs/cgroup"
    yield from _files(base, cgroup, ("cgroup.controllers",))
    for ctl in _CGROUP_CPU_DIRS:  # cgroup v1; "cpu" is usually a link to "cpu,cpuacct": keep what is a dir
        d = f"{cgroup}/{ctl}"
        if os.path.isdir(d) and not os.path.islink(d):
            yield from _files(base, d, ("cpu.rt_runtime_us",))
            for slice_name in ("machine.slice", "machine"):
                yield from _files(base, f"{d}/{slice_name}", ("cpu.rt_runtime_us",))
    # resctrl: the cache resources and every control group's schemata (--cache-share plans from them)
    resctrl = f"{base}/sys/fs/resctrl"
    yield from _files(base, resctrl, ("schemata",))
    for info in _scan(f"{resctrl}/info"):
        yield from _files(base, info.path, ("cbm_mask", "min_cbm_bits", "num_closids", "shareable_bits"))
    for group in _scan(resctrl):
        if group.name != "info" and group.is_dir(follow_symlinks=False):
            yield from _files(base, group.path, ("schemata",))
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
    """Capture ``root``'s topology files into the gzip tarball ``out`` (written atomically), the manifest
    first."""
    if not (root / CPU).is_dir():
        raise InputError(f"{root / CPU}: not found; {root} is not a sysfs root")
    body, stats, names = _members_tar(root)
    if not stats.files:
        raise InputError(f"{root}: no topology files found to snapshot")
    cpus, nodes = _counts(names)
    manifest = {
        "format": _FORMAT, "version": 1, "members": len(names), "files": stats.files, "links": stats.links,
        "cpus": cpus, "nodes": nodes, "sha256": hashlib.sha256(body).hexdigest(),
    }  # fmt: skip
    head = io.BytesIO()
    with tarfile.open(fileobj=head, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
        info = _info(MANIFEST, tarfile.REGTYPE, 0o444)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        manifest_end = tar.offset
    archive = head.getvalue()[:manifest_end] + body + bytes(2 * _BLOCK)
    archive += bytes(-len(archive) % _RECORD)
    # mtime 0 (members and gzip header) and root ownership keep two snapshots of one host byte-identical
    atomic_write(out, _gzip(archive), mode=0o644)
    return stats


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def _members_tar(root: Path) -> tuple[bytes, SnapshotStats, list[str]]:
    """The members' tar blocks (no end-of-archive), what was taken, and every member name in order.
    ustar: every name here fits it, and its headers are cheaper to build than pax ones. No directory
    members: every directory holds a member, and ``tar x`` creates the parents (reading is faster too)."""
    buf = io.BytesIO()
    files = links = skipped = total = 0
    names: list[str] = []
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, path, is_link in snapshot_members(root):
            if is_link:
                info = _info(name, tarfile.SYMTYPE, 0o777)
                info.linkname = os.readlink(path)
                tar.addfile(info)
                links += 1
                names.append(name)
                continue
            try:
                data = _read(path)
            except OSError:
                skipped += 1
                continue
            info = _info(name, tarfile.REGTYPE, 0o444)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            names.append(name)
            files += 1
            total += len(data)
        end = tar.offset
    stats = SnapshotStats(files=files, links=links, skipped=skipped, bytes=total)
    return buf.getvalue()[:end], stats, names


def _counts(names: list[str]) -> tuple[int, int]:
    """(CPUs, NUMA nodes): the ``cpuN`` and ``nodeN`` directories the members name."""
    cpus = {m.group(1) for n in names if (m := _CPU_MEMBER.match(n))}
    nodes = {m.group(1) for n in names if (m := _NODE_MEMBER.match(n))}
    return len(cpus), len(nodes)


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


# -- reading ---------------------------------------------------------------------------------------------

_Member = tuple[str, bytes, int, int, str]
"""(name, tar type flag, offset of the data, size, link target) of one archive member."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    tree: FileTree
    """The members below the archive's own path: ``str(path) + "/sys/devices/system/cpu/online"``."""
    note: str | None = None
    """Set when the archive has no manifest (an earlier vmtune's): read without a check."""


class _Foreign(Exception):
    """The archive uses pax or GNU headers (not vmtune's own): parsed by tarfile instead."""


def is_snapshot(path: Path) -> bool:
    """A file (not a directory) given as ``--sysfs``: a snapshot tarball."""
    return path.is_file()


def read_snapshot(path: Path) -> Snapshot:
    """Inflate and parse ``path`` in memory and check it against its manifest. Anything that is not an
    intact snapshot is an InputError naming the file."""
    data = _inflate(path)
    try:
        members, end = _parse(path, data)
    except _Foreign:
        members, end = _parse_tarfile(path, data), None
    if not members or _clean(members[0][0]) != MANIFEST:
        note = (f"{path}: no manifest (written by an earlier vmtune), read without a check; a new"
                " 'vmtune host snapshot' writes a verifiable one")  # fmt: skip
        return Snapshot(tree=_tree(path, data, members), note=note)
    tree = _tree(path, data, members[1:])
    _verify(path, data, members, end, tree)
    return Snapshot(tree=tree)


def _damaged(path: Path, why: str) -> InputError:
    return InputError(f"{path}: truncated or damaged host snapshot ({why}); nothing read")


def _inflate(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_ARCHIVE_BYTES + 1)
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror or err}") from None
    if len(raw) > MAX_ARCHIVE_BYTES:
        raise InputError(f"{path}: too large to be a vmtune host snapshot")
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        data = inflater.decompress(raw, MAX_TOTAL_BYTES + 1)
    except zlib.error as err:
        raise InputError(f"{path}: not a readable host snapshot (.tar.gz): {err}") from None
    if len(data) > MAX_TOTAL_BYTES:
        raise InputError(f"{path}: too large to be a vmtune host snapshot")
    if not inflater.eof:
        raise _damaged(path, "the gzip stream ends early")
    return data


def _parse(path: Path, data: bytes) -> tuple[list[_Member], int]:
    """The members of the ustar archive ``data`` and where its end-of-archive blocks start. A plain loop
    over the 512-byte headers reading fields in place: tarfile builds an object per member, and that
    alone took longer than reading the same tree from disk."""
    if len(data) < _BLOCK or data[257:265] != b"ustar\x0000":
        raise _Foreign  # GNU tar's own format, or not a tar at all: tarfile tells which
    members: list[_Member] = []
    off, total = 0, len(data)
    while off + _BLOCK <= total:
        if data[off] == 0:
            if data.count(0, off, off + _BLOCK) != _BLOCK:
                raise _damaged(path, f"bad header at byte {off}")
            return members, off
        kind = data[off + 156 : off + 157]
        if kind in _FOREIGN_TYPES:
            raise _Foreign
        # a field ends at its first NUL or fills its width (find's -1 modulo gives the width's end)
        name = data[off : data.find(b"\0", off, off + 100) % (off + 101)]
        if data[off + 345]:  # ustar's prefix field: only names over 100 bytes use it
            name = data[off + 345 : data.find(b"\0", off + 345, off + 500) % (off + 501)] + b"/" + name
        try:
            size = int(data[off + 124 : off + 135], 8)
        except ValueError:
            raise _damaged(path, f"bad header at byte {off}") from None
        if len(members) >= MAX_MEMBERS or size > MAX_MEMBER_BYTES:
            raise InputError(f"{path}: too large to be a vmtune host snapshot")
        link = (
            ""
            if kind != b"2"
            else data[off + 157 : data.find(b"\0", off + 157, off + 257) % (off + 258)].decode()
        )
        members.append((name.decode("utf-8", "replace"), kind, off + _BLOCK, size, link))
        off += _BLOCK + -(-size // _BLOCK) * _BLOCK
    raise _damaged(path, "the archive ends inside a member" if off > total else "no end-of-archive marker")


_FOREIGN_TYPES = frozenset({b"x", b"g", b"L", b"K"})


def _parse_tarfile(path: Path, data: bytes) -> list[_Member]:
    members: list[_Member] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if len(members) >= MAX_MEMBERS or member.size > MAX_MEMBER_BYTES:
                    raise InputError(f"{path}: too large to be a vmtune host snapshot")
                members.append((member.name, member.type, member.offset_data, member.size, member.linkname))
    except tarfile.TarError as err:
        why = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(":")
        raise InputError(f"{path}: not a readable host snapshot (.tar.gz): {why}") from None
    return members


def _verify(path: Path, data: bytes, members: list[_Member], end: int | None, tree: FileTree) -> None:
    """The manifest's counts and checksum against the members after it."""
    _name, _kind, start, size, _link = members[0]
    try:
        manifest = json.loads(data[start : start + size])
        want = {key: manifest[key] for key in ("members", "files", "links", "cpus", "nodes", "sha256")}
    except (ValueError, KeyError, TypeError):
        raise InputError(
            f"{path}: altered host snapshot (its manifest is unreadable); nothing read"
        ) from None
    body = start + -(-size // _BLOCK) * _BLOCK
    got = {
        "members": len(members) - 1, "files": sum(m[1] in _FILE_TYPES for m in members[1:]),
        "links": sum(m[1] == tarfile.SYMTYPE for m in members[1:]),
        "cpus": _count_dirs(tree, f"{path}/{CPU}", _CPU_DIR),
        "nodes": _count_dirs(tree, f"{path}/{NODE}", _NODE_DIR),
        "sha256": hashlib.sha256(memoryview(data)[body:end]).hexdigest() if end is not None else None,
    }  # fmt: skip
    wrong = [key for key in want if want[key] != got[key]]
    if wrong:
        raise InputError(f"{path}: altered or incomplete host snapshot ({', '.join(wrong)} differ from its"
                         " manifest); nothing read")  # fmt: skip


def _count_dirs(tree: FileTree, base: str, pattern: re.Pattern[str]) -> int:
    return sum(1 for e in tree.dirs.get(base, ()) if pattern.fullmatch(e) and f"{base}/{e}" in tree.dirs)


_FILE_TYPES = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE})


def _clean(name: str) -> str:
    """The member name without ``./`` (``tar czf snap.tar.gz -C DIR .`` writes ./sys/...) and trailing /."""
    name = name.rstrip("/")
    while name.startswith("./"):
        name = name[2:]
    return name


def _tree(path: Path, data: bytes, members: list[_Member]) -> FileTree:
    """Regular files and directories under relative, ``..``-free names; symlinks only in the one shape
    snapshots hold (``node/nodeN/cpuM -> ../../cpu/cpuM``). Devices, FIFOs and hard links are skipped."""
    base = str(path)
    files: dict[str, bytes] = {}
    dirs: dict[str, list[str]] = {base: []}
    parent, entries = base, dirs[base]  # members come directory by directory: look the parent up once
    for raw_name, kind, start, size, link in members:
        name = _checked_name(path, raw_name)
        if not name:
            continue
        key = f"{base}/{name}"
        if kind == tarfile.DIRTYPE:
            _directory(dirs, key)
            continue
        if kind == tarfile.SYMTYPE:
            if not (_NODE_LINK.fullmatch(name) and _LINK_TARGET.fullmatch(link)):
                raise InputError(f"{path}: unexpected symlink {raw_name!r} -> {link!r}")
        elif kind not in _FILE_TYPES or key in files:
            continue
        else:
            files[key] = data[start : start + size]
        cut = key.rfind("/")
        if key[:cut] != parent:
            parent = key[:cut]
            entries = dirs.get(parent) or _directory(dirs, parent)
        entries.append(key[cut + 1 :])
    if f"{base}/{CPU}" not in dirs:
        raise InputError(f"{path}: snapshot has no {CPU}; not a vmtune host snapshot")
    return FileTree(files=files, dirs=dirs)


def _checked_name(path: Path, raw: str) -> str:
    """``raw`` without ``./``; "" for the root itself; InputError for an absolute or ``..`` name."""
    name = _clean(raw) if raw[:1] == "." or raw[-1:] == "/" else raw
    if name in ("", "."):
        return ""
    suspect = name[:1] in ("/", ".") or "/." in name or "//" in name  # cheap test first: ~40,000 names
    if suspect and (name[:1] == "/" or any(part in ("..", ".", "") for part in name.split("/"))):
        raise InputError(f"{path}: unsafe member name {raw!r}")
    return name


def _enter(dirs: dict[str, list[str]], key: str) -> None:
    parent, _, name = key.rpartition("/")
    entries = dirs.get(parent)
    if entries is None:
        entries = _directory(dirs, parent)
    entries.append(name)


def _directory(dirs: dict[str, list[str]], key: str) -> list[str]:
    entries = dirs.get(key)
    if entries is None:
        entries = dirs[key] = []
        _enter(dirs, key)
    return entries


# -- extracting ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def open_root(path: Path) -> Iterator[Path]:
    """A sysfs root of real files for ``path``: the directory itself, or the verified snapshot written into
    a private (0700) temp dir that is removed on exit, on Ctrl-C and on SIGTERM. A temp dir left by a
    SIGKILL is removed by a later run once it is an hour old."""
    if not is_snapshot(path):
        yield path
        return
    snap = read_snapshot(path)
    scratch = _scratch_dir(path)
    _sweep_stale(scratch or tempfile.gettempdir())
    with signals_raise():
        tmp = tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=scratch)
        try:
            _write_tree(snap.tree, str(path), tmp)
            yield Path(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _write_tree(tree: FileTree, base: str, dest: str) -> None:
    cut = len(base)
    for d, entries in tree.dirs.items():
        target = dest + d[cut:]
        os.makedirs(target, exist_ok=True)
        for name in entries:
            key = f"{d}/{name}"
            if key not in tree.files and key not in tree.dirs:  # a node link: its shape was checked
                os.symlink(f"../../cpu/{name}", f"{target}/{name}")
    for key, data in tree.files.items():
        with open(dest + key[cut:], "xb") as fh:
            fh.write(data)


def _sweep_stale(scratch: str) -> None:
    limit = time.time() - _STALE_SECONDS
    with contextlib.suppress(OSError), os.scandir(scratch) as entries:
        for entry in entries:
            if not entry.name.startswith(_TEMP_PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
            if st.st_uid == os.getuid() and st.st_mtime < limit:
                shutil.rmtree(entry.path, ignore_errors=True)


def _scratch_dir(path: Path) -> str | None:
    """Where to extract: ``$TMPDIR`` when the user set one; else ``/dev/shm`` when it is a writable tmpfs
    with room, because a big host's snapshot is ~40,000 small files and creating (then deleting) them on a
    journaling disk takes most of the run; else the default. Room: a tmpfs file takes at least a 4 KiB
    page and a tar member at least 1 KiB, so 4x the uncompressed size (gzip's ISIZE trailer, mod 4 GiB,
    plenty for a snapshot) is an upper bound."""
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
