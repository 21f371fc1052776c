"""vmtune's own ``<metadata>`` entry (the stored Intent) and the libosinfo OS id.

Stored as one element with one attribute per knob that was set, so a later ``vmtune hook`` run re-plans
with the same wishes::

    <metadata>
      <vmtune:tuning xmlns:vmtune="https://vmtune.dev/xmlns/1" profile="latency,windows" emulator="isolate"/>
    </metadata>

Other namespaces in ``<metadata>`` (libosinfo, oVirt, KubeVirt, ...) are never touched; libvirt allows one
element per namespace, so vmtune rewrites its element in place.
"""

from __future__ import annotations

from typing import TypeVar

from lxml import etree

from vmtune.core.intent.model import (
    CoreKind,
    CpuPolicy,
    EmulatorPolicy,
    HypervMode,
    Intent,
    MemoryMode,
    OsFamily,
    Profile,
    ThreadPolicy,
)
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError, VmtuneError
from vmtune.xmlmap import tree

__all__ = ["LIBOSINFO_NS", "VMTUNE_NS", "os_family_of", "read_intent", "write_intent"]

VMTUNE_NS = "https://vmtune.dev/xmlns/1"
LIBOSINFO_NS = "http://libosinfo.org/xmlns/libvirt/domain/1.0"
_TAG = f"{{{VMTUNE_NS}}}tuning"
E = TypeVar("E")

# libosinfo ids are URLs per vendor (``http://microsoft.com/win/11``, ``http://ubuntu.com/ubuntu/22.04``).
_LINUX_HINTS = (
    "linux", "fedoraproject", "redhat.com/rhel", "centos", "ubuntu", "debian", "suse", "archlinux",
    "alpinelinux", "gentoo", "almalinux", "rockylinux", "oracle.com/ol", "mageia", "slackware", "mandriva",
    "novell", "clearlinux", "nixos", "voidlinux", "endlessos", "elementary", "cirros", "coreos",
    "openeuler", "anolis", "kylin", "uos", "deepin", "silverblue", "manjaro", "popos", "mint",
)  # fmt: skip
_OTHER_HINTS = (
    "bsd",
    "solaris",
    "illumos",
    "openindiana",
    "haiku",
    "freedos",
    "msdos",
    "apple.com",
    "omnios",
)


def os_family_of(os_id: str) -> OsFamily:
    low = os_id.lower()
    if "microsoft.com/win" in low:
        return OsFamily.WINDOWS
    if any(h in low for h in _OTHER_HINTS):
        return OsFamily.OTHER
    if any(h in low for h in _LINUX_HINTS):
        return OsFamily.LINUX
    return OsFamily.UNKNOWN


def _intent_attrs(intent: Intent) -> dict[str, str]:
    """The knobs that are set, as attributes in the order vmtune writes them."""
    raw: dict[str, str | None] = {
        "profile": ",".join(p.value for p in intent.profiles),
        "cpu-policy": intent.cpu_policy,
        "thread-policy": intent.thread_policy,
        "emulator": intent.emulator,
        "iothreads": None if intent.iothreads is None else str(intent.iothreads),
        "numa": intent.numa,
        "memory-mode": intent.memory_mode,
        "hugepages": intent.hugepages,
        "realtime-mask": intent.realtime_mask,
        "hyperv": intent.hyperv,
        "reserve": None if intent.reserve is None else str(intent.reserve),
        "os": intent.os,
        "core-kind": intent.core_kind,
        "force": "yes" if intent.force else None,
    }
    return {k: str(v) for k, v in raw.items() if v is not None}


def write_intent(domain: etree._Element, intent: Intent) -> None:
    """Make ``<metadata><vmtune:tuning>`` say exactly ``intent`` (creating ``<metadata>`` if needed)."""
    metadata = tree.ensure(domain, "metadata")
    found = metadata.find(_TAG)
    if found is None:
        found = etree.Element(_TAG, nsmap={"vmtune": VMTUNE_NS})
        # insert through the indentation-aware helper by adding a placeholder, then swapping it
        placeholder = tree.add(metadata, "vmtune-placeholder")
        found.tail = placeholder.tail
        metadata.replace(placeholder, found)
    wanted = _intent_attrs(intent)
    for key in list(found.attrib):
        if key not in wanted:
            del found.attrib[key]
    for key, value in wanted.items():
        tree.set_attr(found, key, value)


def _enum(cls: type[E], value: str | None, where: str) -> E | None:
    if value is None:
        return None
    try:
        return cls(value)  # type: ignore[call-arg]
    except ValueError:
        raise InputError(f"{where}: unknown value {value!r}") from None


def read_intent(domain: etree._Element, source: str) -> Intent | None:
    """vmtune's stored intent, None when the domain carries none."""
    found = domain.find(f"metadata/{_TAG}")
    if found is None:
        return None
    where = f"{source}: /domain/metadata/vmtune:tuning"
    get = found.get
    try:
        profiles = tuple(
            Profile(p.strip()) for p in str(get("profile") or "balanced").split(",") if p.strip()
        )
        iothreads = get("iothreads")
        reserve = get("reserve")
        return Intent(
            profiles=profiles or (Profile.BALANCED,),
            cpu_policy=_enum(CpuPolicy, get("cpu-policy"), where),
            thread_policy=_enum(ThreadPolicy, get("thread-policy"), where),
            emulator=_enum(EmulatorPolicy, get("emulator"), where),
            iothreads=None if iothreads is None else int(iothreads),
            numa=str(get("numa") or "auto"),
            memory_mode=_enum(MemoryMode, get("memory-mode"), where),
            hugepages=None if get("hugepages") is None else str(get("hugepages")),
            realtime_mask=None if get("realtime-mask") is None else str(get("realtime-mask")),
            hyperv=_enum(HypervMode, get("hyperv"), where) or HypervMode.AUTO,
            reserve=None if reserve is None else CpuSet.parse(str(reserve), what=f"{where}/@reserve"),
            os=_enum(OsFamily, get("os"), where),
            core_kind=_enum(CoreKind, get("core-kind"), where),
            force=get("force") == "yes",
        )
    except VmtuneError:
        raise
    except ValueError as err:
        raise InputError(f"{where}: {err}") from None
