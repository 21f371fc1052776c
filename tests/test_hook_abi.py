"""The hook's ``migrate begin`` / ``restore begin`` never change what the guest sees.

libvirt compares the hook's output with the source definition (``qemuDomainDefCheckABIStability``) and
refuses the migration or restore otherwise. Every guest of ``abiguests`` goes through the real hook entry
to every destination: the named test hosts and the corpus sysfs dumps, which between them give all three
binding cases (a node per cell, cells spanning nodes, cells sharing nodes). The output may only re-bind
(``abi_changes`` empty); a destination that cannot hold the guest refuses it with one line and exit 3.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest

from abiguests import GUESTS, corpus_roots, named_roots
from vmtune.adapters.hookenv import HookPaths
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.intent.model import Intent
from vmtune.core.verify.abi import abi_changes
from vmtune.errors import InfeasibleError, InputError
from vmtune.hook import run_hook
from vmtune.service import plan_document
from vmtune.xmlmap.guest import read_guest


def _hook(root: Path, tmp: Path, name: str, xml: bytes, op: str = "migrate") -> tuple[int, bytes, str]:
    status = tmp / root.name / name / "status"
    status.mkdir(parents=True)
    paths = HookPaths(status_dir=status, state_dir=status.parent / "state", sysfs_root=root, domcaps=None)
    out, err = io.BytesIO(), io.StringIO()
    rc = run_hook([name, op, "begin", "-"], io.BytesIO(xml), out, err, paths=paths)
    return rc, out.getvalue(), err.getvalue()


def _case(root: Path, xml: bytes) -> str:
    """Which binding rule the destination needed (from the plan's notes)."""
    planned = plan_document(xml, source="case", host=read_sysfs(root), tenants=(), intent=None, caps=None,
                            keep_abi=True)  # fmt: skip
    text = " ".join(n.message for n in planned.plan.notes)
    return "shared" if "shares node" in text else "spanning" if "span" in text else "own node"


def test_hook_output_never_changes_the_abi(tmp_path: Path) -> None:
    roots = named_roots() + corpus_roots()
    outcomes: Counter[str] = Counter()
    cases: Counter[str] = Counter()
    changed: list[str] = []
    for root in roots:
        for name, xml in GUESTS.items():
            rc, out, err = _hook(root, tmp_path, name, xml)
            if rc != 0:
                assert rc == 3 and err.count("\n") == 1 and not out, (root.name, name, err)
                outcomes["refused"] += 1
                continue
            outcomes["rebound" if out else "unchanged"] += 1
            diff = abi_changes(read_guest(xml, source="in"), read_guest(out or xml, source="out"))
            changed.extend(f"{root.name} {name}: {d}" for d in diff)
            if read_guest(xml, source="in").numa_cells:
                cases[_case(root, xml)] += 1
    print(
        f"\nhook ABI: {len(roots)} destinations x {len(GUESTS)} guests: {dict(outcomes)}; cases {dict(cases)}"
    )
    assert changed == []
    assert outcomes["rebound"] >= len(roots) * 3
    assert set(cases) == {"own node", "spanning", "shared"}


@pytest.mark.parametrize("op", ["migrate", "restore"])
def test_a_destination_too_small_refuses_in_one_line(tmp_path: Path, op: str) -> None:
    small = next(r for r in named_roots() if r.name == "small-2cpu")
    rc, out, err = _hook(small, tmp_path, "four-cells-smt", GUESTS["four-cells-smt"], op)
    assert (rc, out) == (3, b"")
    assert err.startswith(f"vmtune: hook {op} begin 'four-cells-smt': ") and err.count("\n") == 1
    assert "cannot hold the guest's 4 NUMA cell(s)" in err


def test_corpus_guests_tuned_on_one_host_keep_their_abi_rebound_on_another(corpora: Path) -> None:
    """The 606 real domains, tuned on a 2-socket host, then planned as the hook plans a migration or restore
    to a 4-socket, 16-node host: the guest sees the same machine, or the hook refuses (never half-moved)."""
    source = read_sysfs(corpora / "sysfs" / "hwloc-32intel64-2p8co2t+8ve")
    destination = read_sysfs(corpora / "sysfs" / "hwloc-96em64t-4no4pa3ca2co")
    rows = [line.split("\t")[0] for line in (corpora / "domains" / "INDEX.tsv").read_text().splitlines()[1:]]
    outcomes: Counter[str] = Counter()
    changed: list[str] = []
    for rel in rows:
        raw = (corpora / "domains" / rel).read_bytes()
        try:
            tuned = plan_document(raw, source=rel, host=source, tenants=(), intent=Intent(), caps=None).after
        except (InputError, InfeasibleError):
            outcomes["not tuned"] += 1
            continue
        try:
            moved = plan_document(tuned, source=rel, host=destination, tenants=(), intent=None, caps=None,
                                  keep_abi=True)  # fmt: skip
        except InfeasibleError:
            outcomes["refused"] += 1
            continue
        outcomes["rebound"] += 1
        diff = abi_changes(read_guest(tuned, source="in"), read_guest(moved.after, source="out"))
        changed.extend(f"{rel}: {d}" for d in diff)
    print(f"\ncorpus hook ABI: {dict(outcomes)}")
    assert changed == [], changed[:10]
    assert outcomes["rebound"] >= 500, outcomes
