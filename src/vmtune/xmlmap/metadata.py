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

from typing import Any

from lxml import etree

from vmtune.core.intent.knob import Knob
from vmtune.core.intent.model import KNOBS, Intent, OsFamily, intent_texts, parse_intent
from vmtune.xmlmap import tree

__all__ = ["LIBOSINFO_NS", "VMTUNE_NS", "os_family_of", "read_intent", "write_intent"]

VMTUNE_NS = "https://vmtune.dev/xmlns/1"
LIBOSINFO_NS = "http://libosinfo.org/xmlns/libvirt/domain/1.0"
_TAG = f"{{{VMTUNE_NS}}}tuning"
_XPATH = "/domain/metadata/vmtune:tuning"

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
    wanted = {k.attr: text for k, text in intent_texts(intent)}
    for key in list(found.attrib):
        if key not in wanted:
            del found.attrib[key]
    for key, value in wanted.items():
        tree.set_attr(found, key, value)


def read_intent(domain: etree._Element, source: str) -> Intent | None:
    """vmtune's stored intent, None when the domain carries none.

    Attributes vmtune does not know are ignored (a newer vmtune may have written them); a bad value
    fails naming ``SOURCE: /domain/metadata/vmtune:tuning/@ATTR``.
    """
    found = domain.find(f"metadata/{_TAG}")
    if found is None:
        return None
    raw = {k.name: str(text) for k in KNOBS if (text := found.get(k.attr)) is not None}

    def where(k: Knob[Any]) -> str:
        return f"{source}: {_XPATH}/@{k.attr}"

    return parse_intent(raw, where=where)
