"""Plain-text and JSON views of ``vmtune verify`` reports and ``apply --connect`` results (no decisions)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from vmtune.core.verify.compare import Report

__all__ = ["verify_json", "verify_text"]


def verify_text(reports: Sequence[Report]) -> str:
    lines: list[str] = []
    for rep in reports:
        state = "ok" if rep.ok else f"DRIFT ({len(rep.drifts)})"
        lines.append(f"{rep.guest} (qemu pid {rep.pid}): {state}")
        width = max((len(r.what) for r in rep.rows), default=4)
        exp_w = max((len(r.expected) for r in rep.rows), default=8)
        obs_w = max((len(r.observed) for r in rep.rows), default=8)
        lines.append(f"  {'what':<{width}}  {'expected':<{exp_w}}  {'observed':<{obs_w}}  status    thread")
        for row in rep.rows:
            lines.append(
                f"  {row.what:<{width}}  {row.expected:<{exp_w}}  {row.observed:<{obs_w}}  "
                f"{row.status.value:<8}  {row.thread}"
            )
        lines.extend(f"  drift: {d.message}" for d in rep.drifts)
        lines.extend(f"  note: {n}" for n in rep.notes)
    return "\n".join(lines) + ("\n" if lines else "")


def verify_json(reports: Sequence[Report]) -> str:
    body = [
        {
            "guest": rep.guest,
            "pid": rep.pid,
            "ok": rep.ok,
            "rows": [
                {
                    "what": r.what,
                    "thread": r.thread,
                    "expected": r.expected,
                    "observed": r.observed,
                    "status": r.status.value,
                }
                for r in rep.rows
            ],
            "drifts": [{"what": d.what, "message": d.message} for d in rep.drifts],
            "notes": list(rep.notes),
        }
        for rep in reports
    ]
    return json.dumps(body, indent=2) + "\n"
