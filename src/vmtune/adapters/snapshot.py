"""``vmtune host snapshot``: capture the sysfs/procfs files the topology reader needs as a .tar.gz, and open
such a snapshot again as a sysfs root (``--sysfs snap.tar.gz``).

The archive's members are relative to the root (``sys/devices/system/cpu/online``, ``proc/meminfo``), so
``tar xzf snap.tar.gz -C DIR`` gives a DIR that works with ``--sysfs DIR`` too. Only topology files are
taken (the list below), never anything that identifies the machine beyond its CPU model and kernel
command line. Real sysfs files report a size of 4096 whatever they hold, so each file is read and stored
with its real length. The ``nodeN/cpuM`` symlinks are kept: old kernels and libvirt's trimmed trees have
no ``cpulist``/``cpumap``, and the link is then the only node membership there is.

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
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vmtune.adapters.files import atomic_write
from vmtune.errors import InputError

__all__ = ["SnapshotStats", "is_snapshot", "open_root", "snapshot_members", "write_snapshot"]

CPU = "sys/devices/system/cpu"
NODE = "sys/devices/system/node"
HUGE = "sys/kernel/mm/hugepages"
_CPU_FILES = ("online", "present", "possible", "offline", "kernel_max", "isolated", "nohz_full")
_CPUN_FILES = ("online", "cpu_capacity")
_NODE_FILES = ("cpulist", "cpumap", "distance", "meminfo")
_NODE_HUGE_FILES = ("nr_hugepages", "free_hugepages", "surplus_hugepages")
_PROC_FILES = ("meminfo", "cmdline", "cpuinfo", "sysinfo")
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


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotStats:
    files: int
    links: int
    skipped: int
    """Files listed but unreadable (permission, EIO from a driver): left out, the reader tolerates that."""
    bytes: int


def snapshot_members(root: Path) -> Iterator[tuple[str, Path]]:
    """(archive name, path) of every file and node symlink to capture below ``root``, in stable order."""
    cpu = root / CPU
    yield from _files(root, cpu, _CPU_FILES)
    for d in _subdirs(cpu, _CPU_DIR):
        yield from _files(root, d, _CPUN_FILES)
        yield from _all_files(root, d / "topology")
        for index in _subdirs(d / "cache", _INDEX_DIR):
            yield from _all_files(root, index)
    node = root / NODE
    yield from ((n, p) for n, p in _all_files(root, node) if p.name in {"online", "possible"}
                or p.name.startswith("has_"))  # fmt: skip
    for d in _subdirs(node, _NODE_DIR):
        yield from _files(root, d, _NODE_FILES)
        for link in _entries(d):
            if _CPU_DIR.fullmatch(link.name) and link.is_symlink():
                yield _rel(root, link), link
        for size in _entries(d / "hugepages"):
            if size.name.startswith("hugepages-"):
                yield from _files(root, size, _NODE_HUGE_FILES)
    for size in _entries(root / HUGE):
        if size.name.startswith("hugepages-"):
            yield from _all_files(root, size)
    yield from _files(root, root / "proc", _PROC_FILES)


def _entries(d: Path) -> list[Path]:
    try:
        return sorted(d.iterdir(), key=lambda p: _natural(p.name))
    except OSError:
        return []


def _natural(name: str) -> tuple[str, int]:
    m = re.fullmatch(r"(\D*)(\d+)", name)
    return (m.group(1), int(m.group(2))) if m else (name, -1)


def _subdirs(d: Path, pattern: re.Pattern[str]) -> list[Path]:
    return [p for p in _entries(d) if pattern.fullmatch(p.name) and not p.is_symlink() and p.is_dir()]


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _files(root: Path, d: Path, names: tuple[str, ...]) -> Iterator[tuple[str, Path]]:
    for name in names:
        p = d / name
        if p.is_file() and not p.is_symlink():
            yield _rel(root, p), p


def _all_files(root: Path, d: Path) -> Iterator[tuple[str, Path]]:
    for p in _entries(d):
        if p.name not in _SKIP and not p.is_symlink() and p.is_file():
            yield _rel(root, p), p


def write_snapshot(root: Path, out: Path) -> SnapshotStats:
    """Capture ``root``'s topology files into the gzip tarball ``out`` (written atomically)."""
    if not (root / CPU).is_dir():
        raise InputError(f"{root / CPU}: not found; {root} is not a sysfs root")
    buf = io.BytesIO()
    files = links = skipped = total = 0
    # mtime 0 (members and gzip header) and root ownership keep two snapshots of one host byte-identical.
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for name, path in snapshot_members(root):
            _add_dirs(tar, name, dirs)
            if path.is_symlink():
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


def _read(path: Path) -> bytes:
    with path.open("rb") as fh:
        if path.name == "cpuinfo":
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
    with tempfile.TemporaryDirectory(prefix="vmtune-snapshot-") as tmp:
        _extract(path, Path(tmp))
        yield Path(tmp)


def _extract(path: Path, dest: Path) -> None:
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            _extract_members(path, tar, dest)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        # gzip errors arrive as tarfile.ReadError or OSError ("Not a gzipped file"); EOFError: truncated
        why = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(":")
        raise InputError(f"{path}: not a readable host snapshot (.tar.gz): {why}") from None
    if not (dest / CPU).is_dir():
        raise InputError(f"{path}: snapshot has no {CPU}; not a vmtune host snapshot")


def _extract_members(path: Path, tar: tarfile.TarFile, dest: Path) -> None:
    """Regular files and directories under relative, ``..``-free names; symlinks only in the one shape
    snapshots hold (``node/nodeN/cpuM -> ../../cpu/cpuM``), so nothing can point or write outside ``dest``.
    Devices, FIFOs and hard links are skipped. (tarfile's ``data`` filter is as safe but resolves every
    member with realpath: seconds for the ~4,000 files of a 64-CPU host.)"""
    made: set[Path] = {dest}
    total = 0
    for count, member in enumerate(tar, start=1):
        total += max(member.size, 0)
        if count > MAX_MEMBERS or member.size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
            raise InputError(f"{path}: too large to be a vmtune host snapshot")
        parts = PurePosixPath(member.name).parts
        if not parts or member.name.startswith("/") or any(p in ("..", "") for p in parts):
            raise InputError(f"{path}: unsafe member name {member.name!r}")
        target = dest.joinpath(*parts)
        if member.isdir():
            _mkdirs(target, made)
        elif member.isreg():
            _mkdirs(target.parent, made)
            src = tar.extractfile(member)
            data = src.read() if src is not None else b""
            with open(target, "xb") as fh:
                fh.write(data)
        elif member.issym():
            if not (_NODE_LINK.fullmatch(member.name) and _LINK_TARGET.fullmatch(member.linkname)):
                raise InputError(f"{path}: unexpected symlink {member.name!r} -> {member.linkname!r}")
            _mkdirs(target.parent, made)
            os.symlink(member.linkname, target)


def _mkdirs(d: Path, made: set[Path]) -> None:
    if d not in made:
        d.mkdir(parents=True, exist_ok=True)
        made.add(d)
