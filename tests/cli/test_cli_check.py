"""`vmtune check` end to end on the committed fixtures (tests/data/check): one bad/fixed pair per rule,
the catalog meta-test (fixture + --help line for every registered code), exit codes, --select/--ignore,
JSON and SARIF 2.1.0 output, and the corpus run."""

from __future__ import annotations

import json
import re
import shutil
import time
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sysfsgen import HostSpec, write_sysfs
from testutil import GOLDEN, REPO, check_golden
from vmtune.cli.app import main
from vmtune.cli.fleet import findings_exit
from vmtune.core.audit.engine import Finding, catalog
from vmtune.core.plan import Level

CHECK = REPO / "tests" / "data" / "check"
HOST = CHECK / "hosts" / "2n4c2t"
CASES: dict[str, dict[str, Any]] = tomllib.loads((CHECK / "cases.toml").read_text())
CODES = [r.code for r in catalog()]
# what make_fixtures.py's OLD_KVM_PROBES adds: APICv off, cgroup v1 machine slice with no RT runtime
OLD_KVM_PROBES = {
    "sys/module/kvm_intel/parameters/enable_apicv": "N",
    "sys/fs/cgroup/cpu,cpuacct/machine.slice/cpu.rt_runtime_us": "0",
}


@pytest.fixture(scope="session")
def ccx_host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2n4c2t with two L3 groups per node (CCX-like): VT105 weighs only caches that split a node."""
    root = tmp_path_factory.mktemp("hosts") / "2n4c2t-ccx"
    spec = HostSpec(name="2n4c2t-ccx", sockets=2, cores_per_node=4, threads_per_core=2,
                    sibling_numbering="interleaved", l3_cores=2)  # fmt: skip
    write_sysfs(spec, root)
    return root


@pytest.fixture(scope="session")
def old_kvm_host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hosts") / "2n4c2t-oldkvm"
    shutil.copytree(HOST, root, symlinks=True)
    (root / "sys/fs/cgroup/cgroup.controllers").unlink()
    for path, text in OLD_KVM_PROBES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text + "\n")
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["check", *(str(a) for a in args)])
    out, err = capsys.readouterr()
    return code, out, err


def codes_of(out: str) -> set[str]:
    return {f["code"] for f in json.loads(out)["findings"]}


@pytest.mark.parametrize("code", CODES)
def test_rule_fires_on_its_fixture_and_not_on_the_fixed_twin(
    code: str,
    capsys: pytest.CaptureFixture[str],
    old_kvm_host: Path,
    ccx_host: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)  # cases.toml names files relative to the repo
    case = CASES.get(code, {})
    hosts = {"2n4c2t": HOST, "2n4c2t-oldkvm": old_kvm_host, "2n4c2t-ccx": ccx_host}
    for side, wanted in (("bad", True), ("fixed", False)):
        host = hosts[case.get(f"{side}_host", case.get("host", "2n4c2t"))]
        rc, out, err = run(capsys, CHECK / code / side, "--sysfs", host, "--json", *case.get("args", []))
        assert rc in (0, 5), err
        assert (code in codes_of(out)) is wanted, f"{code} {side}: {json.loads(out)['findings']}"


def test_every_code_has_fixtures_and_a_help_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Each registered rule's bad/fixed pair and its --help line (its docs page: tests/test_docs.py)."""
    assert len(set(CODES)) == len(CODES)
    assert main(["check", "--help"]) == 0
    help_text = capsys.readouterr().out
    for rule in catalog():
        assert (CHECK / rule.code / "bad").is_dir() and (CHECK / rule.code / "fixed").is_dir(), rule.code
        assert f"{rule.code}  {rule.title}" in help_text, f"{rule.code} not in check --help"
    assert {p.name for p in CHECK.iterdir() if p.name.startswith("VT")} == set(CODES)
    assert set(CASES) <= set(CODES)


def test_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, out, _ = run(capsys, CHECK / "VT108" / "bad", "--sysfs", HOST)  # error-level finding
    assert rc == 5 and "VT108" in out
    rc, _, _ = run(capsys, CHECK / "VT102" / "bad", "--sysfs", HOST)  # warning only
    assert rc == 0
    rc, out, _ = run(capsys, CHECK / "VT108" / "bad", "--sysfs", HOST, "--ignore", "VT108")
    assert rc == 0 and "VT108" not in out
    bad = tmp_path / "broken.xml"
    bad.write_text("<domain><name>x</name")
    rc, out, err = run(capsys, CHECK / "VT102" / "bad" / "web.xml", bad, "--sysfs", HOST, "--json")
    assert rc == 2  # one unreadable file: reported, the other file still checked
    assert "broken.xml" in err and codes_of(out) == {"VT102"}


def test_select_and_ignore_take_codes_and_prefixes(capsys: pytest.CaptureFixture[str]) -> None:
    args = (CHECK / "VT104" / "bad", CHECK / "VT407" / "bad", "--sysfs", HOST, "--json")
    _, out, _ = run(capsys, *args)
    assert {"VT103", "VT104", "VT401"} <= codes_of(out)
    _, out, _ = run(capsys, *args, "--select", "VT104")
    assert codes_of(out) == {"VT104"}
    _, out, _ = run(capsys, *args, "--select", "vt1", "--ignore", "VT104")
    assert codes_of(out) == {"VT103"}
    rc, _, err = run(capsys, *args, "--select", "VT999")
    assert rc == 2 and "--select: unknown rule code 'VT999'" in err


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, CHECK / "VT101" / "bad", "--sysfs", HOST, "--json", "--sarif")
    assert rc == 2 and err.strip() == "vmtune: error: --json and --sarif: choose one"
    # no such libvirt driver: exit 4 naming the URI (2 with the install hint where libvirt-python is absent)
    rc, _, err = run(capsys, "--connect", "bogus:///x")
    assert rc in (2, 4) and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    rc, _, err = run(capsys, CHECK / "VT101" / "bad", "--sysfs", HOST, "--all")
    assert rc == 2 and "--all only applies with --connect" in err


def test_tenants_take_part_in_cross_guest_rules_only(capsys: pytest.CaptureFixture[str]) -> None:
    a = CHECK / "VT104" / "bad" / "a.xml"
    _, out, _ = run(capsys, a, "--sysfs", HOST, "--json", "--domains", CHECK / "VT104" / "bad")
    found = json.loads(out)["findings"]
    assert {f["guest"] for f in found} == {"a"}  # b is a tenant: context, not a target
    assert any(f["code"] == "VT104" and "also pinned exclusively by b" in f["message"] for f in found)


def test_table_groups_by_guest(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "140")
    _, out, _ = run(capsys, CHECK / "VT103" / "bad", "--sysfs", HOST)
    lines = out.splitlines()
    assert lines[0].startswith("a  ") and any(line.startswith("b  ") for line in lines)
    assert out.rstrip().splitlines()[-1].startswith("2 finding(s) in 2 of 2 guest(s)")


def test_fix_replans_and_rewrites_the_guests_with_findings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for xml in (CHECK / "VT104" / "bad").glob("*.xml"):
        shutil.copy(xml, tmp_path / xml.name)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.xml")}
    rc, out, err = run(capsys, tmp_path, "--sysfs", HOST, "--json", "--fix")
    assert rc == 0, err
    assert json.loads(out)["findings"] == []  # what remains after the fix
    assert "vmtune: fixed" in err
    after = {p.name: p.read_bytes() for p in tmp_path.glob("*.xml")}
    assert after != before and b"vmtune:tuning" in after["b.xml"]
    rc, out, err = run(capsys, tmp_path, "--sysfs", HOST, "--json", "--fix")
    assert rc == 0 and "fixed" not in err  # nothing left to fix: files untouched
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.xml")} == after


def test_fix_writes_nothing_when_a_guest_cannot_be_placed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shutil.copy(CHECK / "VT101" / "bad" / "db.xml", tmp_path / "a.xml")
    big = (CHECK / "VT101" / "bad" / "db.xml").read_text()
    big = big.replace("<name>db</name>", "<name>big</name>").replace(">2</vcpu>", ">64</vcpu>")
    (tmp_path / "z.xml").write_text(big)  # 64 vCPUs with balanced intent on a 16-CPU host
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.xml")}
    rc, _, err = run(capsys, tmp_path, "--sysfs", HOST, "--fix")
    assert rc == 3, err
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.xml")} == before
    # the refusal names the file it is about, not only the domain
    assert f"vmtune: error: {tmp_path / 'z.xml'}: big: " in err, err


@pytest.mark.parametrize("fmt", ["txt", "json", "sarif"])
def test_output_goldens(
    fmt: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, regen: bool
) -> None:
    monkeypatch.chdir(REPO)  # relative sources keep the goldens machine-independent
    monkeypatch.setenv("COLUMNS", "110")
    monkeypatch.setenv("NO_COLOR", "1")
    flags = {"txt": [], "json": ["--json"], "sarif": ["--sarif"]}[fmt]
    rc, out, _ = run(capsys, "tests/data/check/VT104/bad", "tests/data/check/VT407/bad", "--sysfs",
                     "tests/data/check/hosts/2n4c2t", *flags)  # fmt: skip
    assert rc == 5
    check_golden(GOLDEN / "check" / f"vt104-vt407--2n4c2t.{fmt}", out, regen)


# -- SARIF -----------------------------------------------------------------------------------------------
# No installed package ships the OASIS SARIF 2.1.0 schema, so this is the part of it vmtune's output uses,
# transcribed by hand from the spec (sarif-schema-2.1.0.json): the same required properties, enums and
# closed objects (additionalProperties: false) for sarifLog, run, tool, toolComponent, reportingDescriptor,
# result, message, location, physicalLocation, artifactLocation, region and logicalLocation.
_MSG = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}, "id": {"type": "string"}},
    "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
}
_MULTI = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}},
    "required": ["text"],
}
_LEVEL = {"enum": ["none", "note", "warning", "error"]}
_BAG = {"type": "object"}
SARIF_SUBSET: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"enum": ["2.1.0"]},
        "runs": {"type": "array", "items": {"$ref": "#/definitions/run"}},
    },
    "definitions": {
        "run": {
            "type": "object",
            "additionalProperties": False,
            "required": ["tool"],
            "properties": {
                "tool": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["driver"],
                    "properties": {"driver": {"$ref": "#/definitions/toolComponent"}},
                },
                "results": {"type": "array", "items": {"$ref": "#/definitions/result"}},
                "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
            },
        },
        "toolComponent": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "semanticVersion": {"type": "string"},
                "rules": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": {"$ref": "#/definitions/reportingDescriptor"},
                },
            },
        },
        "reportingDescriptor": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "shortDescription": _MULTI,
                "fullDescription": _MULTI,
                "help": _MULTI,
                "defaultConfiguration": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"level": _LEVEL, "enabled": {"type": "boolean"}},
                },
                "properties": _BAG,
            },
        },
        "result": {
            "type": "object",
            "additionalProperties": False,
            "required": ["message"],
            "properties": {
                "ruleId": {"type": "string"},
                "ruleIndex": {"type": "integer", "minimum": -1},
                "level": _LEVEL,
                "message": _MSG,
                "locations": {"type": "array", "items": {"$ref": "#/definitions/location"}},
                "properties": _BAG,
            },
        },
        "location": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "physicalLocation": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "artifactLocation": {"$ref": "#/definitions/artifactLocation"},
                        "region": {"$ref": "#/definitions/region"},
                    },
                    "anyOf": [{"required": ["address"]}, {"required": ["artifactLocation"]}],
                },
                "logicalLocations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "fullyQualifiedName": {"type": "string"},
                            "kind": {"type": "string"},
                        },
                    },
                },
            },
        },
        "region": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "startLine": {"type": "integer", "minimum": 1},
                "startColumn": {"type": "integer", "minimum": 1},
                "endLine": {"type": "integer", "minimum": 1},
                "endColumn": {"type": "integer", "minimum": 1},
            },
        },
        "artifactLocation": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "uri": {"type": "string", "format": "uri-reference"},
                "uriBaseId": {"type": "string"},
            },
        },
    },
}


def test_sarif_validates_and_reads_back_with_sarif_tools(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rc, out, _ = run(capsys, CHECK / "VT104" / "bad", CHECK / "VT407" / "bad", "--sysfs", HOST, "--sarif")
    assert rc == 5
    log = json.loads(out)
    jsonschema.Draft7Validator.check_schema(SARIF_SUBSET)
    jsonschema.validate(log, SARIF_SUBSET, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    driver = log["runs"][0]["tool"]["driver"]
    assert [r["id"] for r in driver["rules"]] == CODES
    results = log["runs"][0]["results"]
    for res in results:
        assert driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
    assert {r["level"] for r in results} <= {"error", "warning", "note"}

    from sarif import loader

    path = tmp_path / "check.sarif"
    path.write_text(out)
    sarif = loader.load_sarif_file(str(path))
    assert sarif.get_distinct_tool_names() == ["vmtune"]
    assert sarif.get_result_count() == len(results) > 0
    records = sarif.get_records()
    assert {r["Code"].split()[0] for r in records} == {r["ruleId"] for r in results}
    assert any(r["Location"].endswith("a.xml") for r in records)
    assert "error" in sarif.get_severities()
    # every finding of these fixtures has a line (XPaths, and CPU lists on the guest's pins): sarif-tools
    # reads the same lines back, result by result
    regions = [res["locations"][0]["physicalLocation"].get("region") for res in results]
    assert all(regions), results
    assert [r["Line"] for r in records] == [region["startLine"] for region in regions]


# -- the real corpus -------------------------------------------------------------------------------------
CORPUS_HOSTS = ["hwloc-16em64t-4s2c2t", "hwloc-64amd64-4s2n4ca2co", "hwloc-128arm-2pa2n8cluster4co"]


@pytest.mark.corpus
@pytest.mark.parametrize("machine", CORPUS_HOSTS)
def test_corpus_domains_never_crash(machine: str, corpora: Path, capsys: pytest.CaptureFixture[str]) -> None:
    domains = corpora / "domains"
    start = time.perf_counter()
    rc, out, err = run(capsys, domains, "--sysfs", corpora / "sysfs" / machine, "--json")
    elapsed = time.perf_counter() - start
    # a few corpus files are templates or test inputs libvirt itself rejects: exit 2, one line each
    unreadable = [line for line in err.splitlines() if line.startswith("vmtune: error: ")]
    assert rc == (2 if unreadable else 5), err
    assert "Traceback" not in err and len(unreadable) <= 10
    summary = json.loads(out)["summary"]
    assert summary["guests"] + len(unreadable) == 606
    # every finding in a file names an element or a pinned CPU: each one gets a line, and its column is
    # where that line really holds a start tag (or the attribute an @-step names)
    for f in json.loads(out)["findings"]:
        if f["location"].startswith("host: "):
            continue
        assert f["line"] is not None and f["column"] is not None, f
        text = Path(f["source"]).read_text(errors="replace").split("\n")[f["line"] - 1]
        assert re.match(r"<\w|[\w-]+\s*=", text[f["column"] - 1 :]), (f, text)
    print(f"\n{machine}: {summary['findings']} findings in {elapsed:.2f}s: {summary['codes']}")


def test_a_libvirt_config_folder_checks_each_guest_once_and_skips_other_documents(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Laid out like /etc/libvirt/qemu: guests, networks/default.xml, autostart/ symlinks to the guests."""
    qemu = tmp_path / "qemu"
    (qemu / "networks" / "autostart").mkdir(parents=True)
    (qemu / "autostart").mkdir()
    shutil.copy(CHECK / "VT104" / "fixed" / "a.xml", qemu / "a.xml")
    shutil.copy(CHECK / "VT104" / "fixed" / "b.xml", qemu / "b.xml")
    (qemu / "autostart" / "a.xml").symlink_to("../a.xml")
    network = "<network><name>default</name><forward mode='nat'/><bridge name='virbr0'/></network>\n"
    (qemu / "networks" / "default.xml").write_text(network)
    (qemu / "networks" / "autostart" / "default.xml").symlink_to("../default.xml")
    code, out, err = run(capsys, qemu, "--sysfs", HOST, "--json")
    assert code == 0, err
    assert codes_of(out) == set()  # no VT104 of a.xml against itself
    assert err.count("<network> document, not a domain: skipped") == 1
    assert f"{qemu / 'autostart' / 'a.xml'}: the same file as {qemu / 'a.xml'}, counted once" in err
    # apply reads the same folder the same way: one guest each, the network left alone
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert main(["apply", str(qemu), "--sysfs", str(HOST), "-o", str(out_dir)]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.xml", "b.xml"]


def test_fail_on_sets_the_exit_5_threshold(capsys: pytest.CaptureFixture[str]) -> None:
    warning_only = (CHECK / "VT102" / "bad", "--sysfs", HOST)
    assert run(capsys, *warning_only)[0] == 0  # default: error
    assert run(capsys, *warning_only, "--fail-on", "error")[0] == 0
    assert run(capsys, *warning_only, "--fail-on", "warning")[0] == 5
    assert run(capsys, *warning_only, "--fail-on", "INFO")[0] == 5  # info is the lowest threshold
    assert run(capsys, CHECK / "VT108" / "bad", "--sysfs", HOST, "--fail-on", "warning")[0] == 5
    assert run(capsys, CHECK / "VT102" / "fixed", "--sysfs", HOST, "--fail-on", "info")[0] == 0
    rc, _, err = run(capsys, *warning_only, "--fail-on", "notice")
    assert rc == 2 and "--fail-on" in err


@pytest.mark.parametrize(
    ("severities", "fail_on", "code"),
    [
        ((), "info", 0),
        (("info",), "info", 5),
        (("info",), "warning", 0),
        (("info", "warning"), "warning", 5),
        (("warning",), "error", 0),
        (("error",), "error", 5),
    ],
)
def test_findings_exit_levels(severities: tuple[str, ...], fail_on: str, code: int) -> None:
    found = [Finding(code="VT101", severity=Level(s), guest="g", source="g.xml", location="/domain",
                     message="m", fix="f") for s in severities]  # fmt: skip
    assert findings_exit(found, Level(fail_on)) == code


def test_textfile_holds_the_findings_and_replaces_the_file_atomically(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    parser = pytest.importorskip("prometheus_client.parser", reason="pip install 'vmtune[dev]'")
    prom = tmp_path / "vmtune-check.prom"
    prom.write_text("old\n")
    prom.chmod(0o600)
    rc, out, _ = run(capsys, CHECK / "VT104" / "bad", "--sysfs", HOST, "--json", "--textfile", prom)
    assert rc == 5
    found = json.loads(out)["findings"]
    fams = {f.name: f for f in parser.text_string_to_metric_families(prom.read_text())}
    counts = {(s.labels["code"], s.labels["severity"]): s.value for s in fams["vmtune_findings"].samples}
    for f in found:
        assert counts[(f["code"], f["severity"])] == sum(
            1 for g in found if (g["code"], g["severity"]) == (f["code"], f["severity"])
        )
    assert sum(counts.values()) == len(found) and len(counts) >= len(CODES)
    assert fams["vmtune_last_run_timestamp_seconds"].samples[0].value == pytest.approx(time.time(), abs=60)
    assert prom.stat().st_mode & 0o777 == 0o644  # node_exporter runs as its own user
    assert [p.name for p in tmp_path.iterdir()] == [prom.name]  # no temp file left next to it
    rc, _, err = run(
        capsys, CHECK / "VT104" / "bad", "--sysfs", HOST, "--textfile", tmp_path / "no" / "x.prom"
    )
    assert rc == 2 and "x.prom" in err


def test_fix_plans_a_vt105_guest_to_keep_its_cache_group_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, ccx_host: Path
) -> None:
    """The VT105 fixture's guests were never planned, so the rule judged them as keeping their groups
    alone; ``--fix`` plans them that way (``--cache-fit own``, as the finding's fix says), so the share
    goes away rather than the rule's reason to look at them."""
    for xml in (CHECK / "VT105" / "bad").glob("*.xml"):
        shutil.copy(xml, tmp_path / xml.name)
    rc, out, err = run(capsys, tmp_path, "--sysfs", ccx_host, "--json")
    assert "VT105" in codes_of(out), out
    rc, out, err = run(capsys, tmp_path, "--sysfs", ccx_host, "--json", "--fix")
    assert rc in (0, 5), err
    assert "VT105" not in codes_of(out), out
    fixed = [p for p in tmp_path.glob("*.xml") if b"vmtune:tuning" in p.read_bytes()]
    assert fixed and all(b"cache-fit='own'" in p.read_bytes() for p in fixed), [p.name for p in fixed]


_PLACEHOLDERS = {"--domains": "DIR", "--domcapabilities": "FILE", "--cache-share": "N%"}


def _printed_apply(fix: str) -> list[str] | None:
    """The ``vmtune apply ...`` command a fix prints, less the flags only an operator can fill in."""
    found = re.search(r"vmtune apply (\S+ .*?--in-place)", fix)
    if not found:
        return None
    words = found.group(1).split()
    out: list[str] = []
    for word in words:
        if out and out[-1] in _PLACEHOLDERS and word == _PLACEHOLDERS[out[-1]]:
            out.pop()
        else:
            out.append(word)
    return ["apply", *out]


def _tuning(path: Path) -> dict[str, str] | None:
    from lxml import etree

    found = etree.parse(str(path)).getroot().find(".//{*}tuning")
    return None if found is None else dict(found.attrib)


def _fix_against_printed(code: str, host: str, args: list[str], capsys: pytest.CaptureFixture[str],
                         tmp_path: Path) -> int:  # fmt: skip
    """Runs one rule's bad fixture both ways; returns how many guests were compared."""
    fixed, printed = tmp_path / code / "fixed", tmp_path / code / "printed"
    for side in (fixed, printed):
        shutil.copytree(CHECK / code / "bad", side)
    _, out, _ = run(capsys, printed, "--sysfs", host, "--json", *args)
    commands: dict[str, set[tuple[str, ...]]] = {}
    for f in json.loads(out)["findings"]:
        command = _printed_apply(f["fix"])
        if command is not None and f["source"].startswith(str(printed)):
            commands.setdefault(f["source"], set()).add(tuple(command))
    # a guest with several findings gets one fix planned with all their settings: no one command to run
    single = {src: next(iter(cmds)) for src, cmds in commands.items() if len(cmds) == 1}
    if not single:
        return 0
    fix_rc, _, fix_err = run(capsys, fixed, "--sysfs", host, "--json", "--fix", *args)
    for source, command in single.items():
        rc = main([*command, "--sysfs", host])
        _, err = capsys.readouterr()
        name = Path(source).name
        if fix_rc == 3:
            assert rc == 3, f"{code} {name}: --fix refused ({fix_err}) but {' '.join(command)} gave {rc}"
            continue
        assert rc == 0, f"{code} {name}: {' '.join(command)}: {err}"
        assert _tuning(fixed / name) == _tuning(printed / name), f"{code} {name}: {' '.join(command)}"
    return len(single)


def test_fix_plans_each_guest_as_its_printed_fix_says(
    capsys: pytest.CaptureFixture[str], old_kvm_host: Path, ccx_host: Path, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    """For every rule's bad fixture, ``check --fix`` and the ``vmtune apply`` command a finding prints store
    the same intent in the guest (the placement may differ: ``--fix`` plans the guests next to each other),
    or both refuse alike."""
    monkeypatch.chdir(REPO)
    hosts = {"2n4c2t": HOST, "2n4c2t-oldkvm": old_kvm_host, "2n4c2t-ccx": ccx_host}
    compared = {}
    for code in CODES:
        case = CASES.get(code, {})
        host = str(hosts[case.get("bad_host", case.get("host", "2n4c2t"))])
        compared[code] = _fix_against_printed(code, host, case.get("args", []), capsys, tmp_path)
    # the rules whose fixes set knobs (VT103 thread policy, VT105 cache fit, VT106/VT407 emulator, VT107
    # reserve, the realtime and Windows profiles) are all among those compared
    assert {"VT103", "VT105", "VT106", "VT107", "VT401", "VT407", "VT301"} <= {
        c for c, n in compared.items() if n
    }
