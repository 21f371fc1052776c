"""Parse the /proc files the sysfs reader uses: ``meminfo`` (and per-node ``nodeN/meminfo``) and ``cpuinfo``.

Pure text -> values (the reader does the IO). cpuinfo differs per architecture; only the first processor
block is looked at, because vendor, model and ISA are the same on every CPU the tuner cares about.
"""

from __future__ import annotations

__all__ = ["cpuinfo_identity", "meminfo_kib"]

# /proc/cpuinfo "CPU implementer" codes (arch/arm64/include/asm/cputype.h) -> the vendor names libvirt uses.
_ARM_IMPLEMENTERS = {
    0x41: "ARM",
    0x42: "Broadcom",
    0x43: "Cavium",
    0x46: "Fujitsu",
    0x48: "HiSilicon",
    0x4E: "NVIDIA",
    0x50: "APM",
    0x51: "Qualcomm",
    0x61: "Apple",
    0x70: "Phytium",
    0xC0: "Ampere",
}
_X86_VENDORS = {
    "GenuineIntel": "Intel",
    "AuthenticAMD": "AMD",
    "HygonGenuine": "Hygon",
    "CentaurHauls": "VIA",
    "  Shanghai  ": "Zhaoxin",
}


def meminfo_kib(text: str) -> dict[str, int]:
    """``MemTotal:  123 kB`` (proc) and ``Node 0 MemTotal:  123 kB`` (node) lines -> {key: KiB}."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        name = key.split()[-1] if key.split() else ""
        parts = rest.split()
        if name in ("MemTotal", "MemFree") and parts and parts[0].isdigit():
            out[name] = int(parts[0])
    return out


def cpuinfo_identity(text: str) -> tuple[str | None, str | None, str | None]:
    """(vendor, model, arch guess) from the first processor block of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    vendor: str | None = None
    arch: str | None = None
    model = fields.get("model name") or fields.get("cpu model") or fields.get("cpu") or None
    if "vendor_id" in fields or "vendor" in fields:
        raw = fields.get("vendor_id") or fields.get("vendor") or ""
        vendor = _X86_VENDORS.get(raw, raw.split("/")[0] or None)
        flags = f" {fields.get('flags', '')} "
        if "IBM/S390" in raw:
            arch = "s390x"
        elif fields.get("arch") == "IA-64":
            arch = "ia64"
        elif raw in _X86_VENDORS:
            arch = "x86_64" if " lm " in flags else "i686"
    if "CPU implementer" in fields:
        try:
            code = int(fields["CPU implementer"], 0)
        except ValueError:
            code = -1
        vendor = _ARM_IMPLEMENTERS.get(code, vendor)
        arch = "aarch64" if fields.get("CPU architecture", "8").strip() in ("8", "AArch64") else "armv7l"
    if "isa" in fields and fields["isa"].startswith("rv64"):
        arch = "riscv64"
    if (fields.get("cpu") or "").startswith("POWER"):
        vendor, arch = "IBM", "ppc64le" if "le" in fields.get("platform", "").lower() else "ppc64"
    return vendor, model, arch
