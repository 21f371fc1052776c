"""File primitives of the sysfs reader: read small attributes fast, name the path in every error.

A 960-CPU host means thousands of tiny files, so the helpers work on plain ``str`` paths with
``os.open``/``os.read`` (no Path objects, no buffered file objects), and a CPU list or mask string seen
before is not parsed again (package, die and cache masks repeat across CPUs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

__all__ = ["FileTree", "SysfsFiles"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FileTree:
    """A sysfs root held in memory (a snapshot read straight from its archive), keyed by full path."""

    files: Mapping[str, bytes]
    dirs: Mapping[str, list[str]]
    """Directory -> its entry names (files, subdirectories and links)."""


_MAX_FILE = 1 << 20  # sysfs attributes are <= PAGE_SIZE; proc files we read are small too


class SysfsFiles:
    """Read helpers returning None for a missing file and raising InputError(path) for a bad one."""

    def __init__(self, tree: FileTree | None = None) -> None:
        self._tree = tree
        self._lists: dict[str, CpuSet] = {}
        self._masks: dict[str, CpuSet] = {}
        self._anchor = "\0"  # a directory prefix opened as _anchor_fd (see anchor)
        self._anchor_fd = -1

    def anchor(self, directory: str) -> None:
        """Open paths under ``directory`` relative to an fd of it: the kernel then walks two or three
        path components instead of ten (15% of a 960-CPU read). Close with :meth:`close`."""
        try:
            self._anchor_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return  # plain paths still work, and name the problem if there is one
        self._anchor = directory + "/"

    def close(self) -> None:
        if self._anchor_fd >= 0:
            os.close(self._anchor_fd)
            self._anchor, self._anchor_fd = "\0", -1

    def raw(self, path: str) -> bytes | None:
        """File contents as bytes; None when it doesn't exist."""
        if self._tree is not None:
            return self._tree.files.get(path)
        try:
            if path.startswith(self._anchor):
                fd = os.open(path[len(self._anchor) :], os.O_RDONLY, dir_fd=self._anchor_fd)
            else:
                fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            raise InputError(f"{path}: cannot read: {err.strerror or err}") from None
        try:
            # sysfs attributes fit in one page; a small first read avoids allocating a huge buffer per
            # file (that alone cost 20 us/file), the loop covers /proc files of any size.
            data = os.read(fd, 8192)
            if len(data) == 8192:
                while len(data) < _MAX_FILE and (more := os.read(fd, 65536)):
                    data += more
        except OSError as err:
            raise InputError(f"{path}: cannot read: {err.strerror or err}") from None
        finally:
            os.close(fd)
        return data

    def text(self, path: str) -> str | None:
        """File contents without NUL padding and surrounding whitespace; None when it doesn't exist."""
        data = self.raw(path)
        if data is None:
            return None
        try:
            return data.replace(b"\x00", b"").strip().decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not text") from None

    def text_head(self, path: str) -> str:
        """The first 256 KiB of a file (a 900-CPU /proc/cpuinfo is megabytes; the vendor is at the top)."""
        if self._tree is not None:
            return self._tree.files.get(path, b"")[: 256 * 1024].decode("utf-8", "replace")
        try:
            with open(path, "rb") as fh:
                return fh.read(256 * 1024).decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        except OSError as err:
            raise InputError(f"{path}: cannot read: {err.strerror or err}") from None

    def exists(self, path: str) -> bool:
        if self._tree is not None:
            parent, _, name = path.rpartition("/")
            return (
                path in self._tree.files or path in self._tree.dirs or name in self._tree.dirs.get(parent, ())
            )
        if path.startswith(self._anchor):
            return os.access(path[len(self._anchor) :], os.F_OK, dir_fd=self._anchor_fd)
        return os.access(path, os.F_OK)

    def listdir(self, path: str) -> list[str]:
        if self._tree is not None:
            return list(self._tree.dirs.get(path, ()))
        try:
            return os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as err:
            raise InputError(f"{path}: cannot list: {err.strerror or err}") from None

    def integer(self, path: str) -> int | None:
        data = self.raw(path)
        if data is None:
            return None
        try:
            return int(data)  # int() takes ASCII bytes and strips the newline itself
        except ValueError:
            pass
        raw = self.text(path) or ""  # NUL padding, or garbage to quote in the message
        try:
            return int(raw)
        except ValueError:
            raise InputError(f"{path}: expected an integer, found {raw[:40]!r}") from None

    def cpulist(self, path: str) -> CpuSet | None:
        raw = self.text(path)
        if raw is None:
            return None
        parsed = self._lists.get(raw)
        if parsed is None:
            # Thread siblings are short comma lists ("5,485"), distinct per core: skip the general parser.
            ids = raw.split(",")
            if len(ids) <= 8 and raw.isascii() and all(i.isdigit() and len(i) < 4 for i in ids):
                parsed = CpuSet(map(int, ids))  # < 1000: in range, so no error to word
            else:
                parsed = CpuSet.parse(raw, what=path)
            self._lists[raw] = parsed
        return parsed

    def cpumask(self, path: str) -> CpuSet | None:
        raw = self.text(path)
        if raw is None:
            return None
        parsed = self._masks.get(raw)
        if parsed is None:
            parsed = self._masks[raw] = CpuSet.parse_mask(raw, what=path)
        return parsed

    def set_from(self, base: str, entries: set[str] | None, *names: str) -> CpuSet | None:
        """First of ``names`` that exists (``*_list`` names parse as lists, others as masks)."""
        for name in names:
            if entries is not None and name not in entries:
                continue
            path = f"{base}/{name}"
            value = self.cpulist(path) if name.endswith("list") else self.cpumask(path)
            if value is not None:
                return value
        return None
