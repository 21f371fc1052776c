"""CpuSet: the one CPU-list type. Immutable, hashable, ordered by CPU id.

Parses and prints the Linux kernel list syntax (``0-3,8``, ``0-15:2/4`` stride groups as in
``bitmap_parselist``), libvirt's cpuset syntax with exclusions (``0-7,^2``), and the hex masks sysfs
writes (``00000000,0000000f``: comma-separated 32-bit words, most significant first; old kernels pad
with NUL bytes and size masks for NR_CPUS up to 4096+). Raw strings stop at the edges: everything past
the readers works on CpuSet.

Backed by a Python int used as a bitmap, so algebra on 1,000-CPU sets is a handful of machine ops.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from vmtune.errors import InputError

__all__ = ["MAX_CPU", "CpuSet"]

_MASK_FAST = re.compile(r"[0-9a-fA-F]{1,8}(?:,[0-9a-fA-F]{8})*")

# libvirt reads a domain's CPU lists into bitmaps of VIR_DOMAIN_CPUMASK_LEN (16384) bits, so a domain may
# name any CPU below it (its own cputune-cpuset-big-id test uses 16383); anything above is garbage, and
# refusing it keeps a typo like "0-99999999" from allocating a gigantic bitmap.
MAX_CPU = 16383


class CpuSet:
    """An immutable set of CPU ids (ints >= 0)."""

    __slots__ = ("_bits",)
    _bits: int

    def __init__(self, cpus: Iterable[int] = ()) -> None:
        bits = 0
        for cpu in cpus:
            if not 0 <= cpu <= MAX_CPU:
                raise InputError(f"CPU id {cpu} out of range 0-{MAX_CPU}")
            bits |= 1 << cpu
        object.__setattr__(self, "_bits", bits)

    # -- constructors ---------------------------------------------------------------------------------
    @classmethod
    def from_bits(cls, bits: int) -> CpuSet:
        if bits < 0:
            raise InputError("negative CPU bitmap")
        if bits.bit_length() > MAX_CPU + 1:
            raise InputError(f"CPU bitmap wider than {MAX_CPU + 1} bits")
        new = cls.__new__(cls)
        object.__setattr__(new, "_bits", bits)
        return new

    @classmethod
    def range(cls, first: int, last: int) -> CpuSet:
        """CPUs first..last inclusive."""
        if first > last:
            return cls()
        if first < 0 or last > MAX_CPU:
            raise InputError(f"CPU range {first}-{last} out of range 0-{MAX_CPU}")
        return cls.from_bits(((1 << (last - first + 1)) - 1) << first)

    @classmethod
    def parse(cls, text: str, *, what: str = "CPU list") -> CpuSet:
        """Parse kernel/libvirt list syntax; ``what`` names the source in the error message.

        Accepts empty strings, whitespace and NUL padding, ``a-b``, ``a-b:used/group`` (kernel), and
        libvirt's ``^n`` / ``^a-b`` exclusions, applied after all inclusions as libvirt does.
        """
        clean = text.replace("\x00", "").strip()
        if not clean:
            return cls()
        include = 0
        exclude = 0
        for raw in clean.split(","):
            item = raw.strip()
            if not item:
                raise InputError(f"{what}: empty element in {text.strip()!r}")
            negate = item.startswith("^")
            if negate:
                item = item[1:].strip()
            bits = _parse_item(item, text, what)
            if negate:
                exclude |= bits
            else:
                include |= bits
        return cls.from_bits(include & ~exclude)

    @classmethod
    def parse_mask(cls, text: str, *, what: str = "CPU mask") -> CpuSet:
        """Parse a sysfs hex mask: ``ff``, ``00000000,000000ff``, with NUL padding and newlines."""
        clean = text.replace("\x00", "").strip()
        if not clean:
            return cls()
        words = clean.split(",")
        if _MASK_FAST.fullmatch(clean):
            # Kernel form (lib/vsprintf.c bitmap_string): every word but the first is exactly 8 hex
            # digits, so the whole mask is one hex number. One int() instead of a loop over the 128
            # words of a 4096-bit mask keeps 900-CPU hosts fast.
            bits = int(clean.replace(",", ""), 16)
            if bits.bit_length() > MAX_CPU + 1:
                raise InputError(f"{what}: mask has CPUs beyond {MAX_CPU}")
            return cls.from_bits(bits)
        bits = 0
        for raw in words:
            word = raw.strip()
            if word.lower().startswith("0x"):
                word = word[2:]
            if not word or (len(word) > 8 and len(words) > 1):
                raise InputError(f"{what}: malformed mask word {word!r} in {text.strip()[:60]!r}")
            try:
                value = int(word, 16)
            except ValueError:
                raise InputError(f"{what}: not a hex mask: {text.strip()[:60]!r}") from None
            bits = (bits << (4 * len(word) if len(words) == 1 else 32)) | value
        if bits.bit_length() > MAX_CPU + 1:
            raise InputError(f"{what}: mask has CPUs beyond {MAX_CPU}")
        return cls.from_bits(bits)

    # -- formatting -----------------------------------------------------------------------------------
    def __str__(self) -> str:
        """Canonical kernel list form: sorted ranges, ``0-3,8,10-11``; empty set is ``""``."""
        parts: list[str] = []
        for first, last in self.ranges():
            parts.append(str(first) if first == last else f"{first}-{last}")
        return ",".join(parts)

    def to_mask(self, width_bits: int = 32) -> str:
        """Sysfs hex mask form, padded to ``width_bits`` (rounded up to 32-bit words)."""
        words = max(1, (max(width_bits, self._bits.bit_length()) + 31) // 32)
        return ",".join(f"{(self._bits >> (32 * i)) & 0xFFFFFFFF:08x}" for i in reversed(range(words)))

    def __repr__(self) -> str:
        return f"CpuSet({str(self)!r})"

    def ranges(self) -> Iterator[tuple[int, int]]:
        bits = self._bits
        offset = 0
        while bits:
            # skip zeros, then measure the run of ones
            zeros = (bits & -bits).bit_length() - 1
            bits >>= zeros
            offset += zeros
            ones = (~bits & (bits + 1)).bit_length() - 1
            yield offset, offset + ones - 1
            bits >>= ones
            offset += ones

    # -- set protocol ---------------------------------------------------------------------------------
    @property
    def bits(self) -> int:
        return self._bits

    def __iter__(self) -> Iterator[int]:
        for first, last in self.ranges():
            yield from range(first, last + 1)

    def __len__(self) -> int:
        return self._bits.bit_count()

    def __bool__(self) -> bool:
        return self._bits != 0

    def __contains__(self, cpu: object) -> bool:
        return isinstance(cpu, int) and cpu >= 0 and bool(self._bits >> cpu & 1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CpuSet) and other._bits == self._bits

    def __hash__(self) -> int:
        return hash(("CpuSet", self._bits))

    def __lt__(self, other: CpuSet) -> bool:
        """Order by lowest CPU id, then by size: a stable, human order for sorting groups."""
        return (self.first(), len(self), self._bits) < (other.first(), len(other), other._bits)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("CpuSet is immutable")

    def __or__(self, other: CpuSet) -> CpuSet:
        return CpuSet.from_bits(self._bits | other._bits)

    def __and__(self, other: CpuSet) -> CpuSet:
        return CpuSet.from_bits(self._bits & other._bits)

    def __sub__(self, other: CpuSet) -> CpuSet:
        return CpuSet.from_bits(self._bits & ~other._bits)

    def __xor__(self, other: CpuSet) -> CpuSet:
        return CpuSet.from_bits(self._bits ^ other._bits)

    def union(self, *others: CpuSet) -> CpuSet:
        bits = self._bits
        for other in others:
            bits |= other._bits
        return CpuSet.from_bits(bits)

    def isdisjoint(self, other: CpuSet) -> bool:
        return not self._bits & other._bits

    def issubset(self, other: CpuSet) -> bool:
        return not self._bits & ~other._bits

    def issuperset(self, other: CpuSet) -> bool:
        return other.issubset(self)

    def first(self) -> int:
        """Lowest CPU id; -1 for the empty set."""
        return (self._bits & -self._bits).bit_length() - 1

    def last(self) -> int:
        """Highest CPU id; -1 for the empty set."""
        return self._bits.bit_length() - 1

    def take(self, n: int) -> CpuSet:
        """The ``n`` lowest CPUs."""
        out = 0
        bits = self._bits
        for _ in range(min(n, len(self))):
            low = bits & -bits
            out |= low
            bits ^= low
        return CpuSet.from_bits(out)


def _parse_item(item: str, text: str, what: str) -> int:
    stride_used = stride_group = 0
    body = item
    if ":" in item:
        body, _, stride = item.partition(":")
        used, _, group = stride.partition("/")
        stride_used, stride_group = _int(used, text, what), _int(group, text, what)
        if stride_used == 0 or stride_group == 0 or stride_used > stride_group:
            raise InputError(f"{what}: bad stride {stride!r} in {text.strip()!r}")
    if "-" in body:
        lo_s, _, hi_s = body.partition("-")
        lo, hi = _int(lo_s, text, what), _int(hi_s, text, what)
        if lo > hi:
            raise InputError(f"{what}: descending range {body!r} in {text.strip()!r}")
    else:
        lo = hi = _int(body, text, what)
    if hi > MAX_CPU:
        raise InputError(f"{what}: CPU {hi} out of range 0-{MAX_CPU}")
    if not stride_group:
        return ((1 << (hi - lo + 1)) - 1) << lo
    bits = 0
    for start in range(lo, hi + 1, stride_group):
        for cpu in range(start, min(start + stride_used, hi + 1)):
            bits |= 1 << cpu
    return bits


def _int(s: str, text: str, what: str) -> int:
    s = s.strip()
    if not s.isdigit() or not s.isascii():
        raise InputError(f"{what}: not a CPU number: {s!r} in {text.strip()[:60]!r}")
    return int(s)
