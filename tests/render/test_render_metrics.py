"""``--textfile`` metrics from fixed verify reports and findings, read back with prometheus_client's own
exposition-format parser (what node_exporter's textfile collector accepts)."""

from __future__ import annotations

import pytest

from hosts import host_named
from vmtune.core.audit.engine import Finding, catalog
from vmtune.core.guest import VcpuPin
from vmtune.core.plan import Level
from vmtune.core.verify.compare import Expectation, Observed, ObservedThread, classify_thread, compare
from vmtune.core.verify.sample import DRIFT_KINDS, DomainSample, sample
from vmtune.cpuset import CpuSet
from vmtune.render.metrics import check_metrics, escape_label, verify_metrics

parser = pytest.importorskip("prometheus_client.parser", reason="pip install 'vmtune[dev]'")

HOST = host_named("dual-ht-adjacent")  # node 0 = CPUs 0-15, node 1 = CPUs 16-31
ODD = 'we"ird\\name\nx'  # every character the label escaping must handle
NOW = 1_765_000_000.25


def thread(tid: int, name: str, cpus: str) -> ObservedThread:
    kind, index = classify_thread(name)
    return ObservedThread(tid=tid, name=name, kind=kind, index=index, affinity=CpuSet.parse(cpus),
                          policy="other")  # fmt: skip


def pinned_guest() -> tuple[Expectation, Observed]:
    """vCPU 0 where pinned, vCPU 1 spilled onto CPU 4, vCPU 2 has no thread; 80 % of memory on node 0,
    where numatune binds it strictly (20 % outside: memory drift), and where the vCPUs run."""
    exp = Expectation(
        guest="web",
        vcpus=3,
        vcpupins=tuple(VcpuPin(vcpu=v, cpus=CpuSet.parse(c)) for v, c in ((0, "2"), (1, "3"), (2, "5"))),
        emulatorpin=CpuSet.parse("0"),
        numatune_mode="strict",
        numatune_nodeset=CpuSet.parse("0"),
    )
    obs = Observed(
        guest="web",
        pid=4242,
        threads=(
            thread(10, "qemu-system-x86", "0"),
            thread(11, "CPU 0/KVM", "2"),
            thread(12, "CPU 1/KVM", "3-4"),
        ),
        memory_kib=((0, 4 * 262144), (1, 262144)),
    )
    return exp, obs


def floating_guest() -> tuple[Expectation, Observed]:
    """Nothing pinned (so no vCPU series), all memory on node 1 while its vCPU may run anywhere."""
    exp = Expectation(guest=ODD, vcpus=1)
    obs = Observed(guest=ODD, pid=4343, threads=(thread(20, "CPU 0/KVM", "0-31"),), memory_kib=((1, 131072),))
    return exp, obs


def samples() -> list[DomainSample]:
    return [sample(compare(exp, obs), obs, HOST) for exp, obs in (pinned_guest(), floating_guest())]


def families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in parser.text_string_to_metric_families(text):
        assert fam.type == "gauge" and fam.documentation, fam.name
        out[fam.name] = [(dict(s.labels), s.value) for s in fam.samples]
    return out


def test_sample_numbers_of_a_drifting_and_a_floating_guest() -> None:
    web, odd = samples()
    assert dict(web.drift) == {"vcpu": True, "emulator": False, "iothread": False, "pit": False,
                               "memory": True, "hyperv": False, "isolation": False}  # fmt: skip
    assert web.vcpu_ok == ((0, True), (1, False), (2, False))  # vCPU 2 pinned but no thread: not ok
    assert web.memory_bytes == ((0, 4 * 262144 * 1024), (1, 262144 * 1024))
    assert web.local_ratio == pytest.approx(0.8)
    assert odd.vcpu_ok == () and not any(bad for _, bad in odd.drift)
    assert odd.local_ratio == 1.0  # its vCPU may run on node 1 too


def test_verify_textfile_parses_with_every_family_and_label() -> None:
    text = verify_metrics(samples(), now=NOW)
    got = families(text)
    assert set(got) == {"vmtune_domain_drift", "vmtune_vcpu_pinned_ok", "vmtune_domain_memory_bytes",
                        "vmtune_domain_memory_local_ratio", "vmtune_last_run_timestamp_seconds"}  # fmt: skip
    drift = {(lab["domain"], lab["what"]): v for lab, v in got["vmtune_domain_drift"]}
    assert len(drift) == 2 * len(DRIFT_KINDS)
    assert drift[("web", "vcpu")] == 1 and drift[("web", "memory")] == 1 and drift[("web", "emulator")] == 0
    assert drift[(ODD, "memory")] == 0  # the odd name survives escaping and parsing unchanged
    assert [(lab["domain"], lab["vcpu"], v) for lab, v in got["vmtune_vcpu_pinned_ok"]] == [
        ("web", "0", 1), ("web", "1", 0), ("web", "2", 0)
    ]  # fmt: skip
    memory = {(lab["domain"], lab["node"]): v for lab, v in got["vmtune_domain_memory_bytes"]}
    assert memory == {("web", "0"): 2**30, ("web", "1"): 2**28, (ODD, "1"): 2**27}
    ratio = {lab["domain"]: v for lab, v in got["vmtune_domain_memory_local_ratio"]}
    assert ratio == {"web": pytest.approx(0.8), ODD: 1.0}
    assert got["vmtune_last_run_timestamp_seconds"] == [({"command": "verify"}, NOW)]
    assert "\\n" in text and "\n" not in escape_label(ODD)


def test_an_empty_host_still_declares_every_family() -> None:
    text = verify_metrics([], now=NOW)
    assert text.count("# HELP ") == text.count("# TYPE ") == 5
    assert families(text)["vmtune_last_run_timestamp_seconds"] == [({"command": "verify"}, NOW)]


def finding(code: str, severity: Level, guest: str = "db") -> Finding:
    return Finding(code=code, severity=severity, guest=guest, source=f"libvirt:{guest}", location="/domain",
                   message="m", fix="f")  # fmt: skip


def test_check_textfile_counts_findings_per_code_and_severity() -> None:
    found = [
        finding("VT101", Level.ERROR),
        finding("VT101", Level.ERROR, "web"),
        finding("VT102", Level.WARNING),
    ]
    got = families(check_metrics(found, catalog(), now=NOW))
    counts = {(lab["code"], lab["severity"]): v for lab, v in got["vmtune_findings"]}
    assert counts[("VT101", "error")] == 2 and counts[("VT102", "warning")] == 1
    assert ("VT101", "warning") not in counts  # a code that fired is not also reported at its default level
    assert counts[("VT104", "error")] == 0 and len(counts) == len(catalog())  # every code has a series
    assert got["vmtune_last_run_timestamp_seconds"] == [({"command": "check"}, NOW)]
