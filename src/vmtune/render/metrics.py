"""``--textfile``: verify and check results in the Prometheus text exposition format (version 0.0.4), the
format node_exporter's textfile collector reads from ``*.prom`` files. No decisions here: the numbers come
from ``vmtune.core.verify.sample`` and the audit's findings.

Every family has HELP and TYPE, even when it has no sample this run (an empty host still says what it
would report). Label values escape backslash, double quote and newline, HELP text backslash and newline,
as the format requires. ``vmtune_last_run_timestamp_seconds`` carries a ``command`` label so the verify
and check files can sit side by side in one textfile folder without clashing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from vmtune.core.audit.engine import Finding, Rule
from vmtune.core.verify.sample import DomainSample

__all__ = ["check_metrics", "escape_help", "escape_label", "verify_metrics"]

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Family:
    name: str
    help: str
    samples: tuple[tuple[Labels, float | int], ...] = ()


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float | int) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def _text(families: Sequence[_Family]) -> str:
    lines: list[str] = []
    for fam in families:
        lines.append(f"# HELP {fam.name} {escape_help(fam.help)}")
        lines.append(f"# TYPE {fam.name} gauge")
        for labels, value in fam.samples:
            inner = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels)
            lines.append(
                f"{fam.name}{{{inner}}} {_number(value)}" if inner else f"{fam.name} {_number(value)}"
            )
    return "\n".join(lines) + "\n"


def _last_run(command: str, now: float) -> _Family:
    return _Family(
        name="vmtune_last_run_timestamp_seconds",
        help="Unix time at which this vmtune command last finished and wrote this file.",
        samples=(((("command", command),), round(now, 3)),),
    )


def verify_metrics(samples: Sequence[DomainSample], *, now: float) -> str:
    """``vmtune verify --textfile``: drift, vCPU pinning and memory placement of every running guest."""
    drift = _Family(
        name="vmtune_domain_drift",
        help="1 when a running domain's threads or memory differ from its XML in this respect, else 0.",
        samples=tuple(
            ((("domain", s.domain), ("what", kind)), int(bad)) for s in samples for kind, bad in s.drift
        ),
    )
    vcpus = _Family(
        name="vmtune_vcpu_pinned_ok",
        help="1 when a pinned vCPU thread runs on its pinned CPUs with its scheduler, else 0 "
        "(unpinned vCPUs are not listed).",
        samples=tuple(
            ((("domain", s.domain), ("vcpu", str(vcpu))), int(ok)) for s in samples for vcpu, ok in s.vcpu_ok
        ),
    )
    memory = _Family(
        name="vmtune_domain_memory_bytes",
        help="Resident memory of the domain's QEMU process on each host NUMA node (from numa_maps).",
        samples=tuple(
            ((("domain", s.domain), ("node", str(node))), size)
            for s in samples
            for node, size in s.memory_bytes
        ),
    )
    local = _Family(
        name="vmtune_domain_memory_local_ratio",
        help="Share (0-1) of the domain's resident memory on NUMA nodes its vCPU threads may run on.",
        samples=tuple(((("domain", s.domain),), s.local_ratio) for s in samples if s.local_ratio is not None),
    )
    return _text([drift, vcpus, memory, local, _last_run("verify", now)])


def check_metrics(findings: Sequence[Finding], rules: Sequence[Rule], *, now: float) -> str:
    """``vmtune check --textfile``: findings per rule code and severity; a rule that found nothing is 0 at
    its default severity, so every code has a series."""
    counts = Counter((f.code, f.severity.value) for f in findings)
    fired = {code for code, _ in counts}
    for rule in rules:
        if rule.code not in fired:
            counts[(rule.code, rule.severity.value)] = 0
    family = _Family(
        name="vmtune_findings",
        help="Number of vmtune check findings of this rule code and severity on this host.",
        samples=tuple(
            ((("code", code), ("severity", severity)), n) for (code, severity), n in sorted(counts.items())
        ),
    )
    return _text([family, _last_run("check", now)])
