"""Where `vmtune check` findings point: ``vmtune.xmlmap.lines`` (XPath / CPU list -> line and column), the
``line``/``column`` in ``--json``, the SARIF ``region`` and the ``at FILE:LINE:COL`` line of the table."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from testutil import REPO
from vmtune.cli.app import main
from vmtune.core.audit.engine import Finding
from vmtune.core.plan import Level
from vmtune.render.check import finding_dict, sarif_log, where
from vmtune.xmlmap.lines import Position, SourceMap, xpath_steps

CHECK = REPO / "tests" / "data" / "check"
HOST = CHECK / "hosts" / "2n4c2t"

DOC = """<?xml version='1.0' encoding='UTF-8'?>
<!-- <cputune> in a comment is no element -->
<domain type='kvm'>
  <name>grüße</name>
  <vcpu placement='static' cpuset='4-5'>2</vcpu>
  <cputune><!-- <vcpupin vcpu='9' cpuset='0'/> -->
    <vcpupin vcpu='0' cpuset='1'/><vcpupin vcpu='1'
        cpuset='2'/>
    <emulatorpin
      cpuset='3'
    />
  </cputune>
  <description><![CDATA[<cpu> in CDATA is no element either]]></description>
  <devices><disk><source file='/var/lib/a]b.img'/></disk></devices>
  <metadata><vmtune:tuning xmlns:vmtune='https://vmtune.dev/xmlns/1' profile='balanced'/></metadata>
</domain>
"""


def doc(text: str = DOC) -> SourceMap:
    return SourceMap.parse(text.encode(), source="t.xml", root="domain")


@pytest.mark.parametrize(
    ("location", "line", "column"),
    [
        ("/domain", 3, 1),
        ("/domain/name", 4, 3),
        ("/domain/cputune/vcpupin[@vcpu='0']", 7, 5),
        ("/domain/cputune/vcpupin[@vcpu='1']", 7, 35),  # second tag on the line, start tag ends on line 8
        ("/domain/cputune/vcpupin[2]", 7, 35),
        ("/domain/cputune/vcpupin[@vcpu='1']/@cpuset", 8, 9),  # an attribute step: at the attribute
        ("/domain/cputune/emulatorpin", 9, 5),  # libxml2's sourceline says 11 (where the start tag ends)
        ("/domain/cputune/emulatorpin/@cpuset", 10, 7),
        ("/domain/devices/disk/source[@file='/var/lib/a]b.img']", 14, 18),  # "/" and "]" in a predicate
        ("/domain/description", 13, 3),
        # missing elements: the nearest existing ancestor (where the fix goes)
        ("/domain/cputune/vcpupin[@vcpu='7']", 6, 3),
        ("/domain/numatune/memnode[@cellid='0']", 3, 1),
        ("/domain/cputune/iothreadpin/@cpuset", 6, 3),  # the attribute belonged to the missing element
        # a host CPU list: the first vCPU pin holding one of its CPUs
        ("CPUs 2-3", 7, 35),
        ("CPUs 0-1,9", 7, 5),
    ],
)
def test_locate_points_at_the_start_tag(location: str, line: int, column: int) -> None:
    assert doc().locate(location) == Position(line=line, column=column)
    text = DOC.splitlines()[line - 1]
    assert text[column - 1 :].startswith(("<", "cpuset")), text


@pytest.mark.parametrize(
    "location",
    [
        "host: /sys/module/kvm_intel/parameters",  # VT303/VT406: the host, not the file
        "CPUs 8-15",  # no pin holds these
        "CPUs nonsense",
        "/domain/cputune/vcpupin[@vcpu='1'",  # lxml rejects it: no region, no shorter guess
        "/domain/metadata/vmtune:tuning",  # unknown namespace prefix in XPath: rejected too
        "/domain/cputune/vcpupin[@vcpu=''']",
        "domain/relative",
        "",
    ],
)
def test_locate_gives_none_rather_than_a_guess(location: str) -> None:
    assert doc().locate(location) is None


def test_cpu_list_falls_back_to_vcpu_cpuset_without_pins() -> None:
    text = "<domain>\n  <name>x</name>\n  <vcpu cpuset='4-5'>2</vcpu>\n</domain>\n"
    assert doc(text).locate("CPUs 5") == Position(line=3, column=3)


def test_legacy_encoding_keeps_the_line_and_drops_the_column() -> None:
    raw = "<?xml version='1.0' encoding='ISO-8859-1'?>\n<domain><name>é</name><vcpu>1</vcpu>\n</domain>\n"
    m = SourceMap.parse(raw.encode("latin-1"), source="t.xml")
    assert m.locate("/domain/vcpu") == Position(line=2, column=None)
    assert m.locate("/domain/name") == Position(line=2, column=9)  # only ASCII before it


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_every_line_break_style_counts_once(eol: str) -> None:
    lines = ["<domain>", "  <name>x</name>", "  <cputune>", "    <emulatorpin cpuset='1'/>", "  </cputune>"]
    text = eol.join([*lines, "</domain>", ""])
    m = SourceMap.parse(text.encode(), source="t.xml")
    assert m.locate("/domain/cputune/emulatorpin") == Position(line=4, column=5)
    assert m.locate("/domain/cputune/emulatorpin/@cpuset") == Position(line=4, column=18)


def test_a_scan_that_disagrees_with_the_tree_falls_back_to_sourceline() -> None:
    # the bytes are not the tree's (stands for any input the start-tag scan misreads)
    tree = doc().tree
    other = SourceMap(tree, b"<domain><other/><x/><y/></domain>")
    assert other.locate("/domain/name") == Position(line=4, column=None)


@pytest.mark.parametrize(
    ("xpath", "steps"),
    [
        ("/domain/cputune", ["domain", "cputune"]),
        ("/domain/vcpu/@cpuset", ["domain", "vcpu", "@cpuset"]),
        ("/a/b[@f='/x/y']/c", ["a", "b[@f='/x/y']", "c"]),
        ('/a/b[@f="it\'s/]"]', ["a", 'b[@f="it\'s/]"]']),
        ("/a/b[c[@d='/']]/e", ["a", "b[c[@d='/']]", "e"]),
    ],
)
def test_xpath_steps_split_outside_predicates_and_quotes(xpath: str, steps: list[str]) -> None:
    assert xpath_steps(xpath) == steps


# -- any layout: every element's own XPath points at its "<" ---------------------------------------------
_NAMES = st.sampled_from(["cpu", "vcpu", "vcpupin", "cell", "numa", "x-y", "a.b"])
_GAP = st.sampled_from([" ", "\n", "\n    ", "\t", " \n ", "\r\n  "])
_EQ = st.sampled_from(["=", " =", "\n= "])


@st.composite
def _element(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(_NAMES)
    attrs = "".join(
        f"{draw(_GAP)}{a}{draw(_EQ)}'{draw(st.sampled_from(['1', '>', 'ü']))}'"
        for a in draw(st.lists(st.sampled_from(["id", "cpuset", "vcpu"]), unique=True, max_size=3))
    )
    kids = draw(st.lists(_element(depth + 1), max_size=3)) if depth < 3 else []
    noise = draw(st.sampled_from(["", "<!-- <cpu> -->", "<![CDATA[<vcpu>]]>", "<?pi <cell?>", "text ü"]))
    inner = draw(_GAP).join([noise, *kids]) if kids or noise else ""
    close = draw(_GAP) if draw(st.booleans()) else ""
    if not inner and draw(st.booleans()):
        return f"<{name}{attrs}{close}/>"
    return f"<{name}{attrs}{close}>{inner}</{name}>"


@given(body=st.lists(_element(), max_size=4), head=_GAP)
def test_every_element_is_located_at_its_own_start_tag(body: list[str], head: str) -> None:
    text = f"<!-- <domain> -->{head}<domain>{head.join(body)}</domain>\n"
    m = SourceMap.parse(text.encode(), source="t.xml")
    lines = text.split("\n")
    for element in m.tree.getroot().iter(etree.Element):
        pos = m.locate(m.tree.getpath(element))
        assert pos is not None and pos.column is not None
        assert lines[pos.line - 1][pos.column - 1 :].startswith(f"<{element.tag}"), (text, pos)


# -- the command: --json, SARIF, table ---------------------------------------------------------------------
def run_json(capsys: pytest.CaptureFixture[str], *args: str | Path) -> list[dict[str, object]]:
    main(["check", *(str(a) for a in args), "--json"])
    findings: list[dict[str, object]] = json.loads(capsys.readouterr().out)["findings"]
    return findings


def line_of(path: Path, needle: str) -> tuple[int, int]:
    """1-based (line, column) of the only occurrence of ``needle`` in the file, found by plain text search."""
    text = path.read_text()
    assert text.count(needle) == 1, needle
    before = text[: text.index(needle)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def test_vt1xx_findings_point_at_the_offending_element(capsys: pytest.CaptureFixture[str]) -> None:
    found = run_json(capsys, CHECK / "VT108" / "bad", "--sysfs", HOST, "--select", "VT108")
    assert [(f["code"], f["location"]) for f in found] == [("VT108", "/domain/cputune/vcpupin[@vcpu='1']")]
    assert (found[0]["line"], found[0]["column"]) == line_of(CHECK / "VT108/bad/old.xml", "<vcpupin vcpu='1'")
    found = run_json(capsys, CHECK / "VT106" / "bad", "--sysfs", HOST, "--select", "VT106")
    assert [f["location"] for f in found] == ["/domain/cputune/emulatorpin"]
    assert (found[0]["line"], found[0]["column"]) == line_of(CHECK / "VT106/bad/lat.xml", "<emulatorpin")


def test_a_missing_element_points_at_the_ancestor_that_would_hold_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    xml = CHECK / "VT101" / "bad" / "db.xml"
    assert "<cputune" not in xml.read_text()
    found = run_json(capsys, xml, "--sysfs", HOST, "--select", "VT101")
    assert [(f["location"], f["line"], f["column"]) for f in found] == [("/domain/cputune", 1, 1)]
    assert line_of(xml, "<domain") == (1, 1)


def test_a_cpu_list_points_at_the_guests_pin_on_those_cpus(capsys: pytest.CaptureFixture[str]) -> None:
    found = run_json(capsys, CHECK / "VT104" / "bad", "--sysfs", HOST, "--select", "VT104")
    a = next(f for f in found if f["guest"] == "a")
    assert a["location"] == "CPUs 9"  # a's second pin: b pins CPU 9 too
    assert (a["line"], a["column"]) == line_of(CHECK / "VT104/bad/a.xml", "<vcpupin vcpu='1' cpuset='9'")


def test_host_wide_findings_have_no_line_and_no_region(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # VT303 is about the host's kvm module: no line of the guest's file to show
    host = tmp_path / "oldkvm"
    shutil.copytree(HOST, host, symlinks=True)
    (host / "sys/module/kvm_intel/parameters").mkdir(parents=True, exist_ok=True)
    (host / "sys/module/kvm_intel/parameters/enable_apicv").write_text("N\n")
    found = run_json(capsys, CHECK / "VT303" / "bad", "--sysfs", host, "--select", "VT303")
    assert found and all(str(f["location"]).startswith("host: ") for f in found)
    assert all(f["line"] is None and f["column"] is None for f in found)
    main(["check", str(CHECK / "VT303" / "bad"), "--sysfs", str(host), "--select", "VT303", "--sarif"])
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    assert results and all("region" not in r["locations"][0]["physicalLocation"] for r in results)


def test_a_libvirt_domain_has_no_file_and_no_region() -> None:
    f = Finding(code="VT402", severity=Level.WARNING, guest="vm", source="libvirt:vm",
                location="/domain/features/pmu", message="PMU on", fix="turn it off")  # fmt: skip
    assert finding_dict(f)["line"] is None and where(f) is None
    physical = sarif_log([f], [])["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert physical == {"artifactLocation": {"uri": "libvirt:vm"}}
    located = Finding(code="VT402", severity=Level.WARNING, guest="vm", source="/a b.xml", line=3,
                      location="/domain/features/pmu", message="PMU on", fix="turn it off")  # fmt: skip
    physical = sarif_log([located], [])["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert physical == {"artifactLocation": {"uri": "file:///a%20b.xml"}, "region": {"startLine": 3}}
    assert where(located) == "/a b.xml:3"


def test_table_shows_file_line_column(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(REPO)
    main(["check", "tests/data/check/VT108/bad", "--sysfs", str(HOST), "--select", "VT108"])
    out = capsys.readouterr().out
    line, column = line_of(CHECK / "VT108/bad/old.xml", "<vcpupin vcpu='1'")
    assert re.search(rf"at tests/data/check/VT108/bad/old\.xml:{line}:{column}\b", out), out


def test_fix_locates_what_remains_in_the_rewritten_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # VT110 (cache ways oversubscribed) survives --fix: vmtune leaves <cachetune> alone unless asked for
    # --cache-share, whose size only the operator can pick; the rewritten file gains lines, so a line from
    # the tree parsed before the fix would be stale
    for xml in (CHECK / "VT110" / "bad").glob("*.xml"):
        shutil.copy(xml, tmp_path / xml.name)
    found = run_json(capsys, tmp_path, "--sysfs", HOST, "--fix")
    remaining = [f for f in found if f["code"] == "VT110" and f["source"].endswith("a.xml")]
    assert remaining, found
    assert (tmp_path / "a.xml").read_bytes() != (CHECK / "VT110" / "bad" / "a.xml").read_bytes()
    assert (remaining[0]["line"], remaining[0]["column"]) == line_of(tmp_path / "a.xml", "<cachetune")
