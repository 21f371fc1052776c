"""Round trip over every domain XML in the shared corpus (606 real files), and `apply` over all of them."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.intent.model import parse_intent
from vmtune.core.plan import Plan
from vmtune.errors import InfeasibleError, InputError, VmtuneError
from vmtune.service import plan_document, write_document
from vmtune.xmlmap.apply import apply_plan
from vmtune.xmlmap.diff import detect_style, serialize
from vmtune.xmlmap.metadata import VMTUNE_NS
from vmtune.xmlmap.safe import parse_xml
from vmtune.xmlmap.validate import default_schema, validate_domain
from xml_plans import full_plan

pytestmark = pytest.mark.corpus

SCHEMA = "schemas/libvirt-10.7.0/domain.rng"

# Owned paths (DESIGN.md): removed from both sides before comparing the rest of the tree.
OWNED = (
    "iothreads", "cputune", "numatune", "cpu", "memoryBacking", "features/hyperv", "features/kvm",
    "features/pmu", "clock/timer", "devices/memballoon", f"metadata/{{{VMTUNE_NS}}}tuning",
)  # fmt: skip


def _rows(corpora: Path) -> list[tuple[str, bool]]:
    lines = (corpora / "domains" / "INDEX.tsv").read_text().splitlines()[1:]
    return [(cols[0], cols[7] == "yes") for cols in (line.split("\t") for line in lines)]


def _vcpus(doc: etree._ElementTree) -> int:
    text = doc.getroot().findtext("vcpu")
    return int(text.strip()) if text and text.strip().isdigit() else 1


def _unowned(doc: etree._ElementTree) -> bytes:
    root = etree.fromstring(etree.tostring(doc))
    for path in OWNED:
        for elem in root.findall(path):
            elem.getparent().remove(elem)
    vcpu = root.find("vcpu")
    if vcpu is not None:
        for key in ("placement", "cpuset"):
            vcpu.attrib.pop(key, None)
        # vmtune writes <vcpu>1</vcpu> when pinning a guest that relied on the default of one vCPU
        if not vcpu.attrib and (vcpu.text or "").strip() == "1":
            root.remove(vcpu)
    for path in ("features", "clock", "metadata", "devices"):
        elem = root.find(path)
        if elem is not None and len(elem) == 0:
            root.remove(elem)
    for node in root.iter():
        if node.text is not None and not node.text.strip():
            node.text = None
        if node.tail is not None and not node.tail.strip():
            node.tail = None
    return etree.tostring(root, method="c14n")


def test_corpus_round_trip(corpora: Path) -> None:
    rows = _rows(corpora)
    assert len(rows) == 606
    failures: list[str] = []
    validated = 0
    for rel, valid_in in rows:
        raw = (corpora / "domains" / rel).read_bytes()
        doc = parse_xml(raw, source=rel, root="domain")
        style = detect_style(raw, doc)
        base = serialize(doc, style)
        if serialize(apply_plan(doc, Plan()), style) != base:
            failures.append(f"{rel}: empty plan changed the file")
            continue
        plan = full_plan(_vcpus(doc))
        once = apply_plan(doc, plan)
        out = serialize(once, style)
        if serialize(apply_plan(once, plan), style) != out:
            failures.append(f"{rel}: not idempotent")
        if _unowned(once) != _unowned(doc):
            failures.append(f"{rel}: changed something vmtune does not own")
        reparsed = parse_xml(out, source=rel, root="domain")
        if valid_in:
            try:
                validate_domain(reparsed, corpora / SCHEMA, source=rel)
                validated += 1
            except Exception as err:
                failures.append(f"{rel}: {err}")
    assert not failures, "\n".join(failures[:20]) + f"\n... {len(failures)} failures"
    assert validated == sum(1 for _, ok in rows if ok)


def test_corpus_apply_is_never_a_vmtune_bug(
    corpora: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`apply` with this host's installed schema: every domain is written (input errors only warned
    about), infeasible on the host (3) or refused for a data error (2); none is blamed on vmtune (1)."""
    schema = default_schema()
    if schema is None:
        pytest.skip("libvirt's schema is not installed (/usr/share/libvirt/schemas)")
    host = read_sysfs(corpora / "sysfs" / "hwloc-96em64t-4no4pa3ca2co")
    intent = parse_intent({"profiles": "latency,windows"}, where=lambda k: k.flag)
    outcome: dict[str, int] = {}
    bugs: list[str] = []
    for rel, _ in _rows(corpora):
        src = corpora / "domains" / rel
        try:
            planned = plan_document(
                src.read_bytes(), source=rel, host=host, tenants=[], intent=intent, caps=None
            )
            write_document(planned, src, tmp_path / "out.xml", schema=schema)
        except (InputError, InfeasibleError) as err:
            outcome[rel] = int(err.exit_code)
        except VmtuneError as err:
            bugs.append(f"{rel}: {err}")
        else:
            outcome[rel] = 0
    assert not bugs, f"{len(bugs)} of 606 refused as a vmtune bug:\n" + "\n".join(bugs[:10])
    assert len(outcome) == 606
    assert sum(1 for code in outcome.values() if code == 0) >= 500
    # an input that already fails the schema is said once, naming the file, and still written
    warned = [
        line.split(":")[2].strip() for line in capsys.readouterr().err.splitlines() if "already fails" in line
    ]
    assert warned and len(warned) == len(set(warned))
    assert all(outcome[str(Path(path).relative_to(corpora / "domains"))] == 0 for path in warned)
