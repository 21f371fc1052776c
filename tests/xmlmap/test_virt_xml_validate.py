"""libvirt's own validator (`virt-xml-validate`, Debian libvirt-clients) accepts what vmtune writes.

The corpus round trip validates with lxml against the 10.7.0 schemas; this runs the real tool against the
installed libvirt's schemas, on every XML golden and on a fixed sample of real corpus files planned with a
plan that touches every owned element.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from testutil import GOLDEN
from vmtune.xmlmap.apply import apply_plan
from vmtune.xmlmap.diff import detect_style, serialize
from vmtune.xmlmap.safe import parse_xml
from xml_plans import full_plan

TOOL = shutil.which("virt-xml-validate")
pytestmark = pytest.mark.skipif(TOOL is None, reason="no virt-xml-validate (libvirt-clients)")


def _accepts(path: Path) -> bool:
    assert TOOL is not None
    done = subprocess.run([TOOL, str(path), "domain"], capture_output=True, text=True, check=False)
    return done.returncode == 0


@pytest.mark.parametrize("golden", sorted((GOLDEN / "xml").glob("*.xml")), ids=lambda p: p.stem)
def test_golden_outputs_validate(golden: Path) -> None:
    assert _accepts(golden), f"virt-xml-validate rejects {golden.name}"


def test_corpus_sample_outputs_validate_when_inputs_do(corpora: Path, tmp_path: Path) -> None:
    rows = (corpora / "domains" / "INDEX.tsv").read_text().splitlines()[1:]
    sample = [line.split("\t")[0] for line in rows][::20]  # ~30 files, every kind of source
    accepted_inputs = 0
    for rel in sample:
        src = corpora / "domains" / rel
        if not _accepts(src):
            continue  # newer-libvirt or deliberately invalid input: nothing to compare
        accepted_inputs += 1
        raw = src.read_bytes()
        doc = parse_xml(raw, source=rel, root="domain")
        vcpus_text = (doc.getroot().findtext("vcpu") or "1").strip()
        plan = full_plan(int(vcpus_text) if vcpus_text.isdigit() else 1)
        out = tmp_path / Path(rel).name
        out.write_bytes(serialize(apply_plan(doc, plan), detect_style(raw, doc)))
        assert _accepts(out), f"virt-xml-validate accepts {rel} but rejects vmtune's output"
    assert accepted_inputs >= 10
