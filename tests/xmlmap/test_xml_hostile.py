"""Hostile and broken inputs: each a one-line error with exit 2, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from testutil import CORPORA, DATA
from vmtune.cli.app import main
from vmtune.errors import InputError
from vmtune.xmlmap.guest import read_guest

HOST = CORPORA / "sysfs" / "hwloc-16em64t-4s2c2t"

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<domain type='kvm'><name>&xxe;</name><vcpu>1</vcpu></domain>
"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<domain type='kvm'><name>&lol3;</name></domain>
"""
PINS = "<domain type='kvm'><name>x</name><vcpu>2</vcpu><cputune>{}</cputune></domain>"

CASES: dict[str, tuple[bytes, str]] = {
    "xxe": (XXE, "entity declarations are not allowed"),
    "billion-laughs": (LAUGHS, "entity declarations are not allowed"),
    "garbage": (bytes(range(256)) * 64, "malformed XML"),
    "wrong-root": (b"<capabilities><host/></capabilities>", "expected <domain>"),
    "duplicate-vcpupin": (
        PINS.format("<vcpupin vcpu='0' cpuset='1'/><vcpupin vcpu='0' cpuset='2'/>").encode(),
        "/domain/cputune/vcpupin[2]: duplicate vcpupin for vCPU 0",
    ),
    "vcpupin-beyond-count": (
        PINS.format("<vcpupin vcpu='5' cpuset='1'/>").encode(),
        "/domain/cputune/vcpupin/@vcpu: vCPU 5 beyond the 2 vCPUs",
    ),
    "bad-cpuset": (
        PINS.format("<vcpupin vcpu='0' cpuset='1-x'/>").encode(),
        "/domain/cputune/vcpupin/@cpuset",
    ),
    "bad-memory-unit": (
        b"<domain type='kvm'><name>x</name><memory unit='parsecs'>4</memory></domain>",
        "/domain/memory: unknown memory unit",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_reader_rejects(case: str) -> None:
    data, message = CASES[case]
    with pytest.raises(InputError, match=None) as info:
        read_guest(data, source=f"{case}.xml")
    assert message in str(info.value)
    assert str(info.value).startswith(f"{case}.xml")
    assert "root:" not in str(info.value)  # /etc/passwd never leaks into a message


@pytest.mark.parametrize("case", sorted(CASES))
def test_apply_writes_nothing(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not HOST.is_dir():
        pytest.skip("corpus host missing")
    data, message = CASES[case]
    target = tmp_path / f"{case}.xml"
    target.write_bytes(data)
    code = main(["apply", str(target), "--in-place", "--sysfs", str(HOST)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1
    assert target.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{case}.xml"]


def test_200_mb_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not HOST.is_dir():
        pytest.skip("corpus host missing")
    big = tmp_path / "big.xml"
    with big.open("wb") as fh:
        fh.write(b"<domain type='kvm'><name>big</name><description>")
        chunk = b"x" * (1 << 20)
        for _ in range(200):
            fh.write(chunk)
        fh.write(b"</description></domain>\n")
    code = main(["plan", str(big), "--sysfs", str(HOST)])
    err = capsys.readouterr().err
    assert code == 2
    assert "larger than 64 MiB" in err and str(big) in err


def test_one_bad_file_does_not_stop_the_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not HOST.is_dir():
        pytest.skip("corpus host missing")
    good = tmp_path / "good.xml"
    good.write_bytes((DATA / "domains" / "linux-server.xml").read_bytes())
    bad = tmp_path / "bad.xml"
    bad.write_bytes(CASES["duplicate-vcpupin"][0])
    code = main(["apply", str(tmp_path), "--in-place", "--sysfs", str(HOST)])
    out = capsys.readouterr()
    assert code == 2
    assert b"<vcpupin" in good.read_bytes()
    assert bad.read_bytes() == CASES["duplicate-vcpupin"][0]
    assert "1 changed, 0 unchanged, 1 failed" in out.out
