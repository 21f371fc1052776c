"""Fleet mode: `vmtune check|host --connect URI --connect URI ...` over libvirt's test driver (no daemon).

Every ``test:///default`` connection is a private mock host (2 sockets, 2 nodes, 16 CPUs, one running
guest ``test``), so several of them make a fleet; ``bogus:///nowhere`` names no libvirt driver at all.
"""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from rich.cells import cell_len

from vmtune.adapters.fleet import host_timeout, over_hosts
from vmtune.cli.app import main
from vmtune.cli.fleet import worst_exit
from vmtune.errors import InputError, LibvirtError
from vmtune.render.fleet import host_label, host_labels

pytest.importorskip("libvirt", reason="fleet mode reads hosts through libvirt-python")

TEST = "test:///default"
BAD = "bogus:///nowhere"
# a remote-looking URI that fails at once (no driver named bogus, no CA certificate): never touches a network
FAR = "bogus://root@hv17-rack3.frankfurt.example.com:2222/system?no_verify=1"


def test_check_fleet_table_with_a_bad_uri(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "-c", TEST, "--connect", TEST, "-c", TEST, "-c", BAD])
    out, err = capsys.readouterr()
    assert code == 4
    assert f"vmtune: error: connect to {BAD}: " in err  # the failing URI named once, on stderr
    rows = [line.split() for line in out.splitlines() if line.startswith(("test:", "bogus:"))]
    assert [r[:2] for r in rows] == [[TEST, "yes"]] * 3 + [[BAD, "no"]]
    assert all(r[2:6] == ["1", "0/0/0", "2s/2n/16c/16t", "0"] for r in rows[:3])
    assert rows[3][-2] == "4"
    assert "4 host(s): 3 reachable, 1 unreachable; exit 4" in out


def test_check_fleet_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-c", TEST, "-c", BAD, "-c", TEST, "--json"]) == 4
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit"] == 4
    assert [(h["uri"], h["reachable"], h["exit"]) for h in doc["hosts"]] == [
        (TEST, True, 0),
        (BAD, False, 4),
        (TEST, True, 0),
    ]
    assert BAD in doc["hosts"][1]["error"]
    good = doc["hosts"][0]
    assert good["summary"]["guests"] == 1 and good["findings"] == []
    assert good["topology"] == {"sockets": 2, "numa_nodes": 2, "cores": 16, "threads": 16,
                                "threads_per_core": 1, "l2_groups": 0, "l3_groups": 0}  # fmt: skip


def test_check_fleet_all_good_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-c", TEST, "-c", TEST]) == 0
    assert "2 host(s): 2 reachable, 0 unreachable; exit 0" in capsys.readouterr().out


def test_host_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["host", "-c", TEST, "-c", BAD, "-c", TEST, "--json"]) == 4
    doc = json.loads(capsys.readouterr().out)
    assert [h["reachable"] for h in doc["hosts"]] == [True, False, True]
    good = doc["hosts"][0]
    assert good["guests"] == {"defined": 1, "running": 1}
    assert good["host"]["summary"]["threads"] == 16 and good["host"]["summary"]["numa_nodes"] == 2
    assert main(["host", "-c", TEST, "-c", TEST]) == 0
    out = capsys.readouterr().out
    assert out.count("2s/2n/16c/16t") == 2 and "1/1" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "x.xml", "-c", TEST, "-c", TEST], "FILE... and several --connect"),
        (["check", "-c", TEST, "-c", TEST, "--fix"], "--fix: not with several --connect"),
        (["check", "-c", TEST, "-c", TEST, "--sarif"], "--sarif: not with several --connect"),
        (["check", "-c", TEST, "-c", TEST, "--domcapabilities", "d.xml"], "--domcapabilities: not with"),
    ],
)
def test_fleet_refuses_single_host_flags(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_single_connect_keeps_the_one_host_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-c", TEST]) == 0
    out = capsys.readouterr().out
    assert "1 guest(s) checked: no findings" in out and "host(s)" not in out


@pytest.mark.parametrize("command", ["check", "host"])
def test_fleet_table_fits_80_columns(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    far = "bogus://root@hv1.example.com/system"
    assert main([command, "-c", TEST, "-c", far, "-c", FAR, "-c", TEST]) == 4
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), out
    assert re.search(r"^hv1\.example\.com +no +", out, re.M), out  # the host part, whole, on its row
    assert re.search(r"^test:///default +yes +", out, re.M), out  # no host part: the URI as it is
    # a host name too long for its column folds inside the cell, in pieces of at least 12 characters
    pieces = [line.split()[0] for line in lines if line[:1] not in ("", " ") and line.split()[0] in FAR]
    assert "".join(pieces) == "hv17-rack3.frankfurt.example.com:2222" and min(map(len, pieces[:-1])) >= 12
    assert f"connect to {FAR}" in err  # stderr and --json keep the full URI
    assert main([command, "-c", far, "-c", TEST, "--json"]) == 4
    assert [h["uri"] for h in json.loads(capsys.readouterr().out)["hosts"]] == [far, TEST]


@pytest.mark.parametrize(
    ("uri", "label"),
    [
        ("qemu+ssh://root@hv1.example.com/system", "hv1.example.com"),
        ("qemu+tls://HV2.example.com:16514/system", "hv2.example.com:16514"),
        ("qemu+ssh://root@[fe80::1]:2222/system", "[fe80::1]:2222"),
        ("qemu:///system", "qemu:///system"),
        ("test:///default", "test:///default"),
        ("qemu+ssh://h:notaport/system", "qemu+ssh://h:notaport/system"),
    ],
)
def test_host_label(uri: str, label: str) -> None:
    assert host_label(uri) == label


def test_host_labels_keep_different_uris_of_one_host_apart() -> None:
    uris = [
        "qemu+ssh://hv1/system",
        "qemu+ssh://hv1/session",
        "qemu+ssh://hv2/system",
        "qemu+ssh://hv2/system",
    ]
    assert host_labels(uris) == ["qemu+ssh://hv1/system", "qemu+ssh://hv1/session", "hv2", "hv2"]


def test_check_fleet_fail_on(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["check", "-c", TEST, "-c", TEST, "--fail-on", "info"]) == 0
    )  # the test driver's guest is clean
    capsys.readouterr()
    assert main(["check", "-c", TEST, "-c", TEST, "--textfile", "x.prom"]) == 2
    assert "--textfile: not with several --connect" in capsys.readouterr().err


# -- the pieces ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "worst"),
    [([], 0), ([0, 0], 0), ([0, 5], 5), ([5, 4, 0], 4), ([3, 5], 3), ([2, 4], 4), ([4, 1], 1)],
)
def test_worst_exit_ranks_failures_above_findings(codes: list[int], worst: int) -> None:
    assert worst_exit(codes) == worst


def test_over_hosts_runs_in_parallel_keeps_order_and_isolates_failures() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def job(uri: str) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        if uri == "bad":
            raise LibvirtError("connect to bad: no route")
        if uri == "h4":
            raise InputError("weird input")
        return uri.upper()

    start = time.monotonic()
    outcomes = over_hosts(["a", "bad", "b", "h4", "c"], job)
    elapsed = time.monotonic() - start
    assert [o.value for o in outcomes] == ["A", None, "B", None, "C"]
    assert [o.exit_code for o in outcomes] == [0, 4, 0, 2, 0]
    assert outcomes[1].error == "connect to bad: no route"
    assert outcomes[3].error == "h4: weird input"  # the URI is added when the error doesn't name it
    assert peak == 5 and elapsed < 0.8  # five 0.2 s jobs at once, not one after another (1.0 s)


def test_a_hung_host_times_out_and_the_others_still_report(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def job(uri: str) -> str:
        if uri == "hung":
            release.wait(10)  # a libvirt call stuck on a dead host
        return uri.upper()

    start = time.monotonic()
    outcomes = over_hosts(["a", "hung", "b", "c"], job, parallel=2, timeout=0.3)
    elapsed = time.monotonic() - start
    release.set()
    assert [o.value for o in outcomes] == ["A", None, "B", "C"]
    assert outcomes[1].exit_code == 4 and "hung: no answer within 0.3 s" in (outcomes[1].error or "")
    assert elapsed < 2  # not the 10 s the hung call takes, and b/c were not stuck behind it
    monkeypatch.setenv("VMTUNE_HOST_TIMEOUT", "0")
    assert host_timeout() == float("inf")
    monkeypatch.setenv("VMTUNE_HOST_TIMEOUT", "soon")
    with pytest.raises(InputError, match="VMTUNE_HOST_TIMEOUT='soon'"):
        host_timeout()
