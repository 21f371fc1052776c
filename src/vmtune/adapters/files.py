"""File IO with user-facing errors: reads name the path; writes are atomic (temp + fsync + rename)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from vmtune.errors import InputError, VmtuneError

__all__ = ["MAX_XML_BYTES", "atomic_write", "read_bytes", "read_text"]

# Domain and capabilities XML of real hosts stay far below this; a larger file is a mistake or an attack.
MAX_XML_BYTES = 64 * 1024 * 1024


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


def atomic_write(path: Path, data: bytes, *, mode: int | None = None, backup: bool = False) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a partial one.

    The temp file lives in the target directory (rename is atomic only within one filesystem); it is
    fsynced before the rename and the directory after it. ``mode`` defaults to the old file's mode.
    ``backup`` keeps the old file as ``path~`` (hard link, so it is also atomic).
    """
    import tempfile  # here, not at the top: reading (every `vmtune plan`) does not need it (~5 ms)

    directory = path.parent if str(path.parent) else Path(".")
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".vmtune-tmp", dir=directory)
    except OSError as err:
        raise InputError(f"{path}: cannot write in {directory}: {err.strerror or err}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if backup and path.exists():
            bak = path.with_name(path.name + "~")
            with contextlib.suppress(FileNotFoundError):
                bak.unlink()
            os.link(path, bak)
        os.replace(tmp, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise VmtuneError(f"{path}: write failed: {err.strerror or err}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
