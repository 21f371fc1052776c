"""File IO with user-facing errors: reads name the path; writes replace a file atomically and keep what
the old file carried.

:func:`atomic_write` writes a temp file next to the target, fsyncs it, renames it over the target and
fsyncs the directory, so a reader (or a crash) sees the old bytes or the new ones, never a mix. The
replaced file's owner, group, mode and extended attributes (the SELinux label libvirt's access depends on,
``user.*`` tags of config management) move to the new inode. A symlink is written through: its final
target is replaced and the link stays a link (libvirt's ``autostart/`` layout and config management rely on
that). A file with several hard links is refused: a rename would leave the other names on the old bytes,
and rewriting the inode in place could leave it half written after a crash.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from vmtune.errors import InputError, VmtuneError

__all__ = [
    "MAX_XML_BYTES",
    "STALE_TEMP_SECONDS",
    "TEMP_SUFFIX",
    "atomic_write",
    "read_bytes",
    "read_text",
    "real_target",
    "signals_raise",
]

# Domain and capabilities XML of real hosts stay far below this; a larger file is a mistake or an attack.
MAX_XML_BYTES = 64 * 1024 * 1024
TEMP_SUFFIX = ".vmtune-tmp"
STALE_TEMP_SECONDS = 3600
"""A temp file this old was left by a killed run (a write takes milliseconds): the next write sweeps it."""
_NOT_SUPPORTED = frozenset({errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENODATA})

# Directories already swept by this process: a batch of a thousand files in one folder scans it once.
_swept: set[str] = set()


def read_bytes(path: Path, *, limit: int = MAX_XML_BYTES) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror or err}") from None
    if len(data) > limit:
        raise InputError(f"{path}: larger than {limit // (1024 * 1024)} MiB, refusing to read")
    return data


def read_text(path: Path, *, limit: int = MAX_XML_BYTES) -> str:
    data = read_bytes(path, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start})") from None


def real_target(path: Path) -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or the final target of a symlink."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise SystemExit (like Ctrl-C raises KeyboardInterrupt), so the
    ``finally`` blocks that remove temp files run. Only where Python allows handlers (the main thread), and
    only over the default action: a handler someone else installed stays."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    taken: list[signal.Signals] = []

    def _exit(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _exit)
            taken.append(sig)
    try:
        yield
    finally:
        for sig in taken:
            signal.signal(sig, signal.SIG_DFL)


def atomic_write(
    path: Path,
    data: bytes,
    *,
    mode: int | None = None,
    backup: bool = False,
    expected: bytes | None = None,
    before_commit: Callable[[], None] | None = None,
) -> None:
    """Replace ``path`` (through a symlink: its target) with ``data``; see the module docstring.

    ``mode`` forces a mode; by default the old file's is kept (0644 for a new file). ``backup`` keeps the
    old file as ``FILE~`` (a hard link: the same inode, so the same owner and mode). ``expected``: the bytes
    the caller read; the write is refused (InputError, nothing written) when the file no longer holds them,
    checked right before the rename. ``before_commit`` runs between writing the temp file and that check
    (tests use it to edit the file at the worst moment).
    """
    target = real_target(path)
    directory = target.parent if str(target.parent) else Path(".")
    _sweep_stale(directory)
    try:
        old: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        old = None
    except OSError as err:
        raise InputError(f"{path}: cannot write: {err.strerror or err}") from None
    if old is not None and old.st_nlink > 1:
        raise InputError(
            f"{path}: has {old.st_nlink} hard links; replacing it would leave the other names with the old "
            "content, nothing written (write with -o and copy over it, or break the link first)"
        )
    if expected is not None and old is None:
        raise InputError(f"{path}: changed while planning (removed), nothing written")
    with signals_raise():
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=directory)
        except OSError as err:
            raise InputError(f"{path}: cannot write in {directory}: {err.strerror or err}") from None
        try:
            _fill(fd, data, target, old, mode)
            if before_commit is not None:
                before_commit()
            if expected is not None:
                _check_unchanged(path, target, expected)
            if backup and old is not None:
                _backup(target)
            os.replace(tmp_name, target)
            _fsync_dir(directory)
        except OSError as err:
            _remove(tmp_name)
            raise VmtuneError(f"{path}: write failed: {err.strerror or err}") from None
        except BaseException:
            _remove(tmp_name)
            raise


def _fill(fd: int, data: bytes, target: Path, old: os.stat_result | None, mode: int | None) -> None:
    """Write and fsync the temp file, then give it the old file's owner, mode and extended attributes
    (owner first: chown clears set-id bits, chmod sets them back)."""
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        if old is not None:
            _chown(fh.fileno(), old)
            _copy_xattrs(target, fh.fileno())
        os.fchmod(fh.fileno(), mode if mode is not None else (old.st_mode & 0o7777 if old else 0o644))
        os.fsync(fh.fileno())


def _chown(fd: int, old: os.stat_result) -> None:
    """Keep owner and group; a user who may not give a file away keeps at least the group when a member."""
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) == (old.st_uid, old.st_gid):
        return
    try:
        os.fchown(fd, old.st_uid, old.st_gid)
    except PermissionError:
        with contextlib.suppress(PermissionError):
            os.fchown(fd, -1, old.st_gid)


def _copy_xattrs(source: Path, fd: int) -> None:
    """Every extended attribute the old file shows (security.selinux, user.*); a filesystem without
    xattrs has nothing to copy. Failing to set one (an SELinux label this process may not set) fails the
    write: the new file would differ in who may read it."""
    try:
        names = os.listxattr(source)
    except OSError as err:
        if err.errno in _NOT_SUPPORTED:
            return
        raise
    for name in names:
        try:
            value = os.getxattr(source, name)
        except OSError as err:
            if err.errno in _NOT_SUPPORTED:
                continue
            raise
        try:
            os.setxattr(fd, name, value)
        except OSError as err:
            if err.errno in _NOT_SUPPORTED:
                continue
            raise OSError(err.errno, f"cannot keep extended attribute {name}: {err.strerror}") from None


def _backup(target: Path) -> None:
    bak = target.with_name(target.name + "~")
    with contextlib.suppress(FileNotFoundError):
        bak.unlink()
    os.link(target, bak)


def _check_unchanged(path: Path, target: Path, expected: bytes) -> None:
    """Refuse when the file no longer holds ``expected``: its stat is taken around the read, so a write
    landing during the read shows as a changed size, mtime or inode."""
    try:
        before = os.stat(target)
        with open(target, "rb") as fh:
            current = fh.read(len(expected) + 1)
        after = os.stat(target)
    except FileNotFoundError:
        raise InputError(f"{path}: changed while planning (removed), nothing written") from None
    if current != expected or _stamp(before) != _stamp(after):
        raise InputError(f"{path}: changed while planning, nothing written")


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _remove(name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name)


def _sweep_stale(directory: Path) -> None:
    """Remove ``.NAME.*.vmtune-tmp`` files a killed run left in ``directory`` (older than an hour, so a
    concurrent run's temp file is never taken)."""
    key = os.path.abspath(directory)
    if key in _swept:
        return
    _swept.add(key)
    limit = time.time() - STALE_TEMP_SECONDS
    try:
        with os.scandir(directory) as entries:
            stale = [
                e.path
                for e in entries
                if e.name.startswith(".") and e.name.endswith(TEMP_SUFFIX)
                and e.is_file(follow_symlinks=False) and e.stat(follow_symlinks=False).st_mtime < limit
            ]  # fmt: skip
    except OSError:
        return
    for name in stale:
        _remove(name)
