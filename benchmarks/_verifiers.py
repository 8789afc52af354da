"""What the verifier benchmarks share: a verifier's first errors counted against ProcessBench's
labels (exact, before, after the gold step; false alarms on correct records)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from criticlab.types import Critique


@dataclass
class Tally:
    n_err: int = 0
    n_cor: int = 0
    flagged: int = 0
    exact: int = 0
    early: int = 0
    late: int = 0
    false_alarms: int = 0


def tally(records: Sequence[dict[str, Any]], critiques: Sequence[Critique], *, tag: str = "",
          show_flags: bool = False, show_false_alarms: bool = False) -> Tally:
    """Count each critique's first error against its record's label (-1: no error); print
    the flags and false alarms asked for."""
    t = Tally()
    for r, c in zip(records, critiques, strict=True):
        label = int(str(r["label"]))
        if label >= 0:
            t.n_err += 1
            if c.first_error is not None:
                t.flagged += 1
                t.exact += c.first_error == label
                t.early += c.first_error < label
                t.late += c.first_error > label
                if show_flags:
                    show(r, c, f"{tag} flag".strip())
        else:
            t.n_cor += 1
            if c.first_error is not None:
                t.false_alarms += 1
                if show_false_alarms:
                    show(r, c, f"{tag} FALSE ALARM".strip())
    return t


def show(record: dict[str, Any], c: Critique, tag: str) -> None:
    assert c.first_error is not None
    steps = record["steps"]
    print(f"--- {tag}: {record.get('id')} step {c.first_error} (gold {record['label']})")
    print("    step:", str(steps[c.first_error]).replace("\n", "\n          ")[:1500])
    print("    why: ", c.steps[c.first_error].explanation)
