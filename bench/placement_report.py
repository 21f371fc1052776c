"""The placement benchmark's verdict (the issue's pass criteria), its markdown table and its plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from placement_metrics import FILLS, Score
from placement_runs import ALGOS
from placement_timing import TARGET_MS

__all__ = ["Criterion", "Results", "criteria", "markdown", "plot"]

AUDITED = ("VT103", "VT105", "VT109")
OWN = "vmtune --cache-fit own"


@dataclass(frozen=True, slots=True, kw_only=True)
class Results:
    hosts: Sequence[str]
    seeds: Sequence[int]
    scores: Mapping[tuple[str, int, str], Score]
    """(host, seed, algo) -> score."""
    audits: Mapping[tuple[str, int], Mapping[str, Sequence[str]]]
    """(host, seed) -> {"half"/"final": codes vmtune check reported on vmtune's guests}."""
    spread: Mapping[tuple[str, int], tuple[float | None, ...]]
    """(host, seed) -> balance of vmtune --numa-fit spread (empty without the knob)."""
    forced: Mapping[tuple[str, int], tuple[int, int]]
    """(host, seed) -> ``placement_metrics.forced_nodes``."""
    own: Mapping[tuple[str, int], Score]
    """(host, seed) -> vmtune --cache-fit own (empty without that value): the strict fit VT105 judges."""
    knobs: Mapping[str, tuple[str, ...]]
    timing: tuple[float, float, int]
    """(median ms, min ms, rounds)."""
    what: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Criterion:
    name: str
    passed: bool
    detail: str
    failures: tuple[str, ...] = ()


def _best(x: Mapping[str, Score], attr: str) -> int:
    """The better kubelet variant's figure."""
    return min(getattr(x[a], attr) for a in ALGOS[1:])


def _split_note(x: Mapping[str, Score]) -> str:
    """Says when the kubelet variants split physical cores in the run, or gave a CPU to two guests (which
    vmtune never does): their layout was reached by packing that whole cores do not allow."""
    split = min(x[a].cores_shared for a in ALGOS[1:])
    twice = min(x[a].cpus_twice for a in ALGOS[1:])
    both = f" and gave {twice} CPU(s) to two guests" if twice else ""
    return f"; kubelet split {split} core(s){both} in this run" if split else ""


def _runs(r: Results) -> list[tuple[str, int, dict[str, Score]]]:
    return [(h, s, {a: r.scores[h, s, a] for a in ALGOS}) for h in r.hosts for s in r.seeds]


def criteria(r: Results) -> list[Criterion]:
    runs = _runs(r)
    fewer = [
        f"{h}/{s} ({x['vmtune'].placed} vs {max(x[a].placed_whole for a in ALGOS[1:])})"
        for h, s, x in runs
        if x["vmtune"].placed < max(x[a].placed_whole for a in ALGOS[1:])
    ]
    shared = [f"{h}/{s} ({x['vmtune'].cores_shared} cores)" for h, s, x in runs if x["vmtune"].cores_shared]
    worse = {
        attr: [
            f"{h}/{s} ({getattr(x['vmtune'], attr)} vs {_best(x, attr)}{_split_note(x)})"
            for h, s, x in runs
            if getattr(x["vmtune"], attr) > _best(x, attr)
        ]
        for attr in ("nodes_over", "groups_over")
    }
    worse_nodes, worse_groups = worse["nodes_over"], worse["groups_over"]
    sums = {
        a: (sum(x[a].nodes_over for _, _, x in runs), sum(x[a].groups_over for _, _, x in runs))
        for a in ALGOS
    }
    (vn, vg), (un, ug) = sums["vmtune"], sums["kubelet-uncore"]
    audits = sum(len(found) for found in r.audits.values())
    audited = [
        f"{h}/{s} {when}: {','.join(sorted(set(codes) & set(AUDITED)))}"
        for (h, s), found in r.audits.items()
        for when, codes in found.items()
        if set(codes) & set(AUDITED)
    ]
    median, least, rounds = r.timing
    n = len(runs)
    return [
        Criterion(name="vmtune never places fewer guests than a kubelet variant (its guests that split "
                  "a core not counted)", passed=not fewer,
                  detail=f"{n - len(fewer)} of {n} runs", failures=tuple(fewer)),
        Criterion(name="vmtune never shares a physical core", passed=not shared,
                  detail=f"{n - len(shared)} of {n} runs", failures=tuple(shared)),
        Criterion(name="vmtune nodes over min <= the better kubelet's, every run", passed=not worse_nodes,
                  detail=f"{n - len(worse_nodes)} of {n} runs", failures=tuple(worse_nodes)),
        Criterion(name="vmtune cache groups over min <= the better kubelet's, every run",
                  passed=not worse_groups, detail=f"{n - len(worse_groups)} of {n} runs",
                  failures=tuple(worse_groups)),
        Criterion(name="summed nodes over min <= 1/3 of kubelet-uncore's", passed=3 * vn <= un,
                  detail=f"vmtune {vn}, kubelet-uncore {un}, kubelet {sums['kubelet'][0]}"),
        Criterion(name="summed cache groups over min <= 1/3 of kubelet-uncore's", passed=3 * vg <= ug,
                  detail=f"vmtune {vg}, kubelet-uncore {ug}, kubelet {sums['kubelet'][1]}"),
        Criterion(name="vmtune check: no VT103/VT105/VT109 on vmtune's guests (half full and at the end; "
                  "pack, and own where the checkout has it)",
                  passed=not audited, detail=f"{audits - len(audited)} of {audits} audits clean",
                  failures=tuple(audited)),
        Criterion(name=f"plan one guest on huge-960 with 100 tenants < {TARGET_MS:.0f} ms",
                  passed=median < TARGET_MS,
                  detail=f"median {median:.1f} ms, min {least:.1f} ms over {rounds} rounds (process time)"),
    ]  # fmt: skip


def verdict_lines(found: Sequence[Criterion]) -> list[str]:
    lines = ["| criterion | verdict | figures |", "|---|---|---|"]
    for c in found:
        lines.append(f"| {c.name} | **{'PASS' if c.passed else 'FAIL'}** | {c.detail} |")
    for c in found:
        if c.failures:
            shown = ", ".join(c.failures[:25]) + (
                f", ... ({len(c.failures)} in all)" if len(c.failures) > 25 else ""
            )
            lines.append(f"\nFAIL {c.name}: {shown}")
    return lines


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _mean(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if got else None


def markdown(r: Results, found: Sequence[Criterion]) -> str:
    seeds = f"seeds {r.seeds[0]}-{r.seeds[-1]}" if len(r.seeds) > 1 else f"seed {r.seeds[0]}"
    lines = [
        f"Summed over {seeds} per host; over min = above the topology minimum "
        "(see bench/placement_metrics.py).",
        "",
        "| host | algo | placed | refused | nodes over min | groups over min | cores shared | groups shared "
        "| runs worse than better kubelet (nodes / groups) | ms/guest |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for h in r.hosts:
        per = {a: [r.scores[h, s, a] for s in r.seeds] for a in ALGOS}
        best = [
            (_best(row, "nodes_over"), _best(row, "groups_over"))
            for row in ({a: r.scores[h, s, a] for a in ALGOS} for s in r.seeds)
        ]
        for a in ALGOS:
            xs = per[a]
            worse = "-"
            if a == "vmtune":
                wn = sum(x.nodes_over > b[0] for x, b in zip(xs, best, strict=True))
                wg = sum(x.groups_over > b[1] for x, b in zip(xs, best, strict=True))
                worse = f"{wn} / {wg}"
            lines.append(_row(h, a, xs, worse))
        if r.own:
            lines.append(_row(h, OWN, [r.own[h, s] for s in r.seeds]))
    totals = {a: [r.scores[h, s, a] for h in r.hosts for s in r.seeds] for a in ALGOS}
    if r.own:
        totals[OWN] = [r.own[h, s] for h in r.hosts for s in r.seeds]
    for a, xs in totals.items():
        lines.append(_row("**all**", a, xs, worse="", ms=False))
    over = sum(o for o, _ in r.forced.values())
    same = sum(s for _, s in r.forced.values())
    lines += [
        "",
        f"Of vmtune's {over} nodes over min, {same} came at a guest for which a kubelet variant had the same "
        "free CPUs on every node (sorted): no node held the guest under either placer, so no choice made at "
        "that point could have avoided the span; both best-fit packers reached that state from the stream.",
    ]
    fills = " / ".join(f"{int(f * 100)} %" for f in FILLS)
    spread = (
        "vmtune --numa-fit spread"
        if "numa_fit" in r.knobs
        else "vmtune --numa-fit spread (n/a: no such knob)"
    )
    lines += ["", f"Load balance: busiest node / mean node at {fills} of the pool used (mean over seeds; "
              "1.00 = even):", "", f"| host | vmtune (pack) | {spread} | kubelet | kubelet-uncore |",
              "|---|---|---|---|---|"]  # fmt: skip
    for h in r.hosts:
        if r.scores[h, r.seeds[0], "vmtune"].balance == (None,) * len(FILLS) or _single_node(r, h):
            continue
        cells = []
        for a in ("vmtune", "spread", "kubelet", "kubelet-uncore"):
            if a == "spread":
                if not r.spread:
                    cells.append("n/a")
                    continue
                rows = [r.spread[h, s] for s in r.seeds]
            else:
                rows = [r.scores[h, s, a].balance for s in r.seeds]
            cells.append(" / ".join(_ratio(_mean([row[i] for row in rows])) for i in range(len(FILLS))))
        lines.append(f"| {h} | " + " | ".join(cells) + " |")
    median, least, rounds = r.timing
    lines += [
        "",
        f"huge-960 (960 CPUs, 16 nodes) with 100 tenants: plan one 8-vCPU guest in {median:.1f} ms median, "
        f"{least:.1f} ms min, {rounds} rounds, process time (target < {TARGET_MS:.0f} ms)",
        "",
    ]
    lines += verdict_lines(found)
    lines += ["", "Hosts:", ""] + [f"- {h}: {r.what[h]}" for h in r.hosts]
    return "\n".join(lines) + "\n"


def _row(host: str, algo: str, xs: Sequence[Score], worse: str = "-", *, ms: bool = True) -> str:
    per_guest = f"{sum(x.ms_per_guest for x in xs) / len(xs):.2f}" if ms else ""
    return (
        f"| {host} | {algo} | {sum(x.placed for x in xs)} | {sum(x.refused for x in xs)} | "
        f"{sum(x.nodes_over for x in xs)} | {sum(x.groups_over for x in xs)} | "
        f"{sum(x.cores_shared for x in xs)} | {sum(x.groups_shared for x in xs)} | {worse} | {per_guest} |"
    )


def _single_node(r: Results, host: str) -> bool:
    return all(b in (None, 1.0) for s in r.seeds for b in r.scores[host, s, "vmtune"].balance)


def plot(r: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("NUMA nodes over the topology minimum (summed over seeds)", lambda x: x.nodes_over),
        ("cache groups over the topology minimum (summed over seeds)", lambda x: x.groups_over),
        ("guests placed (summed over seeds)", lambda x: x.placed),
    )
    fig, axes = plt.subplots(len(panels) + 1, 1, figsize=(12, 14), constrained_layout=True)
    width = 0.8 / len(ALGOS)
    xs = range(len(r.hosts))
    for ax, (title, get) in zip(axes, panels, strict=False):
        for j, a in enumerate(ALGOS):
            heights = [sum(get(r.scores[h, s, a]) for s in r.seeds) for h in r.hosts]
            ax.bar([i + j * width for i in xs], heights, width, label=a)
        ax.set_title(title)
        ax.set_xticks([i + width for i in xs], list(r.hosts), rotation=15, fontsize=8)
    axes[0].legend()
    ax = axes[-1]
    multi = [h for h in r.hosts if not _single_node(r, h)]
    series = [("vmtune (pack)", "vmtune"), ("vmtune spread", "spread"), ("kubelet", "kubelet")]
    w = 0.8 / len(series)
    for j, (label, a) in enumerate(series):
        if a == "spread" and not r.spread:
            continue
        rows = {
            h: [r.spread[h, s] if a == "spread" else r.scores[h, s, a].balance for s in r.seeds]
            for h in multi
        }
        heights = [_mean([row[0] for row in rows[h]]) or 0 for h in multi]
        ax.bar([i + j * w for i in range(len(multi))], heights, w, label=label)
    ax.set_title("busiest node / mean node load at 25 % of the pool used (1.0 = even)")
    ax.set_xticks([i + w for i in range(len(multi))], multi, rotation=15, fontsize=8)
    ax.legend()
    fig.savefig(path, dpi=100)
