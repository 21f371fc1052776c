"""vmtune's own plans of the 606 real domains, audited by its own rules: a plan never overbooks a node's
memory or hugepages (VT205/VT206), nor asks for what it left out on purpose (VT302's hypervclock)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.audit.engine import run_rules
from vmtune.core.intent.model import parse_intent
from vmtune.errors import InfeasibleError, InputError
from vmtune.service import plan_document
from vmtune.xmlmap.guest import read_guest

NEVER_ON_OWN_PLANS = {"VT205", "VT206", "VT302"}


@pytest.mark.parametrize("profile", ["balanced", "latency", "windows"])
def test_own_plans_of_the_corpus_pass_the_memory_and_timer_rules(corpora: Path, profile: str) -> None:
    host = read_sysfs(corpora / "sysfs" / "hwloc-32intel64-2p8co2t+8ve")
    intent = parse_intent({"profiles": profile}, where=lambda k: k.flag)
    rows = [line.split("\t")[0] for line in (corpora / "domains" / "INDEX.tsv").read_text().splitlines()[1:]]
    found: Counter[str] = Counter()
    planned = 0
    for rel in rows:
        try:
            out = plan_document((corpora / "domains" / rel).read_bytes(), source=rel, host=host, tenants=(),
                                intent=intent, caps=None).after  # fmt: skip
        except (InputError, InfeasibleError):
            continue
        planned += 1
        for f in run_rules(host, [read_guest(out, source=rel)]):
            if f.code in NEVER_ON_OWN_PLANS:
                found[f"{f.code} {rel}: {f.message}"] += 1
    assert not found, list(found)[:5]
    assert planned >= 500
