"""libvirt as the referee over the 606 real domain XMLs: whatever this libvirtd defines, it still defines
once vmtune has planned it.

Each corpus domain is made definable here the same way before and after planning (a throw-away name, no
UUID, this machine's QEMU as ``<emulator>``, the session's domain type), then defined and undefined at once.
A domain libvirt refuses as it stands (another architecture, a device or a security model this host lacks)
says nothing about vmtune and is counted, not judged. A domain vmtune refuses (bad input, exit 2; too big
for the named host, exit 3) is counted too; ``tests/xmlmap/test_xml_corpus.py`` judges those.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from e2ehelp import Libvirt, record
from lxml import etree

from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.intent.model import Intent, parse_intent
from vmtune.errors import InfeasibleError, InputError
from vmtune.service import plan_document

pytestmark = pytest.mark.e2e

# x86 hosts, like the QEMU installed here: a 2-socket Skylake with SMT, and 4 sockets of 4 nodes x 3 cores
# sharing an L3 (more nodes than most guests have cells, so reshapes really change the shape)
HOSTS = ("hwloc-32intel64-2p8co2t+8ve", "hwloc-96em64t-4no4pa3ca2co")
INTENTS = {
    "default": Intent(),
    "latency,windows": parse_intent({"profiles": "latency,windows"}, where=lambda k: k.flag),
    "realtime --force": parse_intent({"profiles": "realtime", "force": "yes"}, where=lambda k: k.flag),
    "shared --iothreads 2": parse_intent({"cpu_policy": "shared", "iothreads": "2"}, where=lambda k: k.flag),
    "--reshape --numa 2": parse_intent({"reshape": "yes", "numa": "2"}, where=lambda k: k.flag),
    "--numa off": parse_intent({"numa": "off"}, where=lambda k: k.flag),
    "mixed --dedicated-mask ^0": parse_intent(
        {"cpu_policy": "mixed", "dedicated_mask": "^0", "emulator": "isolate"}, where=lambda k: k.flag
    ),
}


def _definable(xml: bytes, *, name: str, emulator: str, domain_type: str) -> str:
    root = etree.fromstring(xml, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    root.set("type", domain_type)
    named = root.find("name")
    if named is None:
        named = etree.SubElement(root, "name")
    named.text = name
    for old in root.findall("uuid"):
        root.remove(old)
    for found in root.iterfind("devices/emulator"):
        found.text = emulator
    return etree.tostring(root, encoding="unicode")


def _defines(lv: Libvirt, xml: str, name: str) -> str | None:
    """None when libvirt defines ``xml`` (undefined again at once), else libvirt's error."""
    try:
        dom = lv.conn.defineXML(xml)
    except lv.lv.libvirtError as err:
        return str(err)
    try:
        dom.undefineFlags(lv.lv.VIR_DOMAIN_UNDEFINE_NVRAM)
    except lv.lv.libvirtError:
        dom.undefine()
    return None


@pytest.mark.parametrize("host_name", HOSTS)
@pytest.mark.parametrize("intent", list(INTENTS))
def test_what_libvirt_defines_it_still_defines_once_planned(
    libvirt_session: Libvirt, corpora: Path, intent: str, host_name: str
) -> None:
    emulator = shutil.which("qemu-system-x86_64")
    if emulator is None:
        pytest.fail("qemu-system-x86_64 is not installed (qemu-system-x86)")
    host = read_sysfs(corpora / "sysfs" / host_name)
    rows = [line.split("\t")[0] for line in (corpora / "domains" / "INDEX.tsv").read_text().splitlines()[1:]]
    counts = {"defined before and after": 0, "libvirt refuses the input": 0, "vmtune refuses": 0}
    broken: list[str] = []
    for rel in rows:
        raw = (corpora / "domains" / rel).read_bytes()
        try:
            planned = plan_document(raw, source=rel, host=host, tenants=[], intent=INTENTS[intent], caps=None)
        except (InputError, InfeasibleError):
            counts["vmtune refuses"] += 1
            continue
        name = f"vmtune-e2e-corpus-{uuid.uuid4().hex[:8]}"
        shape = {"name": name, "emulator": emulator, "domain_type": libvirt_session.domain_type}
        if _defines(libvirt_session, _definable(raw, **shape), name) is not None:
            counts["libvirt refuses the input"] += 1
            continue
        error = _defines(libvirt_session, _definable(planned.after, **shape), name)
        if error is not None:
            broken.append(f"{rel}: {error}")
        else:
            counts["defined before and after"] += 1
    record(
        f"corpus define on {host_name}, {intent} intent: " + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
    assert not broken, f"{len(broken)} domain(s) libvirt defined and refused once planned:\n" + "\n".join(
        broken[:10]
    )
    # most of the corpus is x86 QEMU/KVM this libvirtd defines (fewer under realtime and mixed, which need
    # hugepages or more CPUs than many guests have): a referee that judged few would see little
    assert counts["defined before and after"] >= 100, counts
