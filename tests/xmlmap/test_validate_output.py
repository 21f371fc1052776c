"""The write gate: vmtune is blamed only for schema errors its output adds to the input's.

Runs against this host's installed libvirt schema (the one `apply` uses); skipped where libvirt is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testutil import CORPORA
from vmtune.cli.app import main
from vmtune.errors import ExitCode, SchemaError
from vmtune.xmlmap.validate import default_schema, validate_output

pytestmark = pytest.mark.skipif(default_schema() is None, reason="libvirt's schema is not installed")

VALID = b"""<domain type='kvm'>
  <name>g</name>
  <memory unit='KiB'>1048576</memory>
  <vcpu placement='static'>2</vcpu>
  <os><type arch='x86_64'>hvm</type></os>%s
</domain>
"""
# An element this schema does not know (what a newer libvirt's file may carry).
FOREIGN = b"\n  <frobnicator/>"
BAD_PIN = b"\n  <cputune><vcpupin vcpu='x' cpuset='0'/></cputune>"
GOOD_PIN = b"\n  <cputune><vcpupin vcpu='0' cpuset='0'/></cputune>"
HOST = CORPORA / "sysfs" / "hwloc-16em64t-4s2c2t"


def test_valid_in_valid_out_says_nothing() -> None:
    warned: list[str] = []
    assert validate_output(VALID % b"", VALID % GOOD_PIN, source="g.xml", warn=warned.append)
    assert warned == []


def test_error_vmtune_adds_is_a_bug_with_its_xpath() -> None:
    with pytest.raises(SchemaError) as err:
        validate_output(VALID % b"", VALID % BAD_PIN, source="g.xml", warn=pytest.fail)
    assert err.value.exit_code == ExitCode.UNEXPECTED
    assert "/domain/cputune" in str(err.value) and "vmtune bug" in str(err.value)


def test_error_the_input_had_is_warned_once_and_written() -> None:
    warned: list[str] = []
    assert validate_output(VALID % FOREIGN, VALID % (FOREIGN + GOOD_PIN), source="g.xml", warn=warned.append)
    assert len(warned) == 1
    assert warned[0].startswith("g.xml: the input already fails") and "frobnicator" in warned[0]


def test_new_error_beside_an_inherited_one_is_still_a_bug() -> None:
    with pytest.raises(SchemaError, match="vmtune bug"):
        validate_output(VALID % FOREIGN, VALID % (FOREIGN + BAD_PIN), source="g.xml", warn=lambda _m: None)


def test_libxml2_interleave_order_quirk_is_not_an_error() -> None:
    """<memory> before <uuid> with <bootloader> and <vcpu> fails libxml2's greedy interleave matching
    although the schema allows any order; libvirt's own order validates."""
    quirky = b"""<domain type='test'><name>x</name><memory>409600</memory>
      <uuid>12345678-1234-fddf-1234-12345678ffff</uuid><vcpu>1</vcpu><bootloader>/tmp/b</bootloader>
      <devices/></domain>"""
    assert validate_output(quirky, quirky, source="q.xml", warn=pytest.fail)


@pytest.mark.skipif(not HOST.is_dir(), reason="corpus host missing")
def test_apply_on_an_input_the_schema_rejects_writes_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "newer.xml"
    src.write_bytes(VALID % FOREIGN)
    out = tmp_path / "out.xml"
    assert main(["apply", str(src), "--sysfs", str(HOST), "--profile", "latency", "-o", str(out)]) == 0
    assert b"<vcpupin" in out.read_bytes() and b"<frobnicator/>" in out.read_bytes()
    err = capsys.readouterr().err
    assert err.count("already fails libvirt's schema") == 1 and str(src) in err
