"""Metrics: plain functions over ``Result``s (and over plain numbers where that is the idea).

Conventions: accuracies, precision, recall and F1 are percentages (0–100, as papers print
them); AUROC, ECE, Brier and rates are fractions (0–1). A result whose critique is missing
(an engine error) or unparsed is a wrong prediction, as in ProcessBench's official protocol,
and is also counted on its own line (``parse_failure_rate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from criticlab.types import Critique, Result, Usage

ABSTAIN = ("unknown", "no-error")
"""How an undecided critique counts in ProcessBench's F1 (``--abstain``): ``unknown`` (the
official protocol: a wrong prediction) or ``no-error`` (as -1, what a verifier that found no
certain error means)."""


def prediction(r: Result, abstain: str = "unknown") -> int | None:
    """The critic's answer in ProcessBench's form: the first wrong step's index, -1 for "no
    error", or ``None`` when there is no usable answer (error, unparsed, or undecided). With
    ``abstain="no-error"`` an undecided critique (read, but neither a verdict nor an error:
    a verifier that could check nothing) is -1; an unparsed one stays ``None``."""
    pred = critique_prediction(r.critique)
    if pred is None and abstain == "no-error" and abstained(r.critique):
        return -1
    return pred


def abstained(c: Critique | None) -> bool:
    """A critique that was read but decides nothing: no verdict and no first error."""
    return c is not None and c.parsed and c.verdict is None and c.first_error is None


def coverage(results: Sequence[Result]) -> float:
    """Share of items the critic judged at all (a verdict or a first error), whatever
    ``--abstain`` says: how much of a benchmark a verifier can speak to."""
    return (sum(1 for r in results if critique_prediction(r.critique) is not None)
            / len(results)) if results else 0.0


def critique_prediction(c: Critique | None) -> int | None:
    """:func:`prediction` of a bare critique."""
    if c is None or not c.parsed:
        return None
    if c.first_error is not None:
        return c.first_error
    return -1 if c.verdict == "correct" else None


def gold_index(r: Result) -> int | None:
    """Gold in ProcessBench's form (-1 = every step correct), ``None`` without a label."""
    g = r.example.gold
    if g is None:
        return None
    if g.first_error is not None:
        return g.first_error
    if g.step_labels is not None or g.final_answer_correct is not None:
        return -1
    return None


def _f1(a: float, b: float) -> float:
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def _pct(k: int, n: int) -> float:
    return 100.0 * k / n if n else 0.0


def processbench(results: Sequence[Result], abstain: str = "unknown") -> dict[str, Any]:
    """acc_err (% of erroneous items whose prediction is exactly the label), acc_cor (% of
    correct items predicted -1) and their harmonic mean F1, over the items with a label;
    undecided critiques count as ``abstain`` says (:data:`ABSTAIN`)."""
    labelled = [(gold_index(r), prediction(r, abstain)) for r in results
                if gold_index(r) is not None]
    err = [(g, p) for g, p in labelled if g is not None and g >= 0]
    cor = [(g, p) for g, p in labelled if g == -1]
    acc_err = _pct(sum(1 for g, p in err if p == g), len(err))
    acc_cor = _pct(sum(1 for _, p in cor if p == -1), len(cor))
    return {
        "n": len(labelled), "n_err": len(err), "n_cor": len(cor),
        "acc_err": acc_err, "acc_cor": acc_cor, "f1": _f1(acc_err, acc_cor),
    }


def subset_of(r: Result) -> str:
    return str(r.example.problem.metadata.get("subset", "all"))


def processbench_table(results: Sequence[Result],
                       abstain: str = "unknown") -> dict[str, dict[str, Any]]:
    """``processbench`` per subset (in order of first appearance) plus ``average``: the plain
    mean of the subsets' F1, ProcessBench's headline number."""
    subsets: dict[str, list[Result]] = {}
    for r in results:
        subsets.setdefault(subset_of(r), []).append(r)
    table = {name: processbench(rs, abstain) for name, rs in subsets.items()}
    f1s = [row["f1"] for row in table.values() if row["n"]]
    table["average"] = {"f1": sum(f1s) / len(f1s) if f1s else 0.0}
    return table


def judgment(results: Sequence[Result]) -> dict[str, Any]:
    """Whole-solution judgement with "incorrect" as the positive class. An item without a
    usable verdict counts as the wrong answer (a false negative or a false positive)."""
    tp = fp = fn = tn = 0
    scores: list[float] = []
    labels: list[bool] = []
    for r in results:
        g = gold_index(r)
        if g is None:
            continue
        gold_bad = g >= 0
        c = r.critique
        verdict = None if c is None or not c.parsed else c.verdict
        if verdict is None and c is not None and c.parsed and c.first_error is not None:
            verdict = "incorrect"
        pred_bad = (verdict == "incorrect") if verdict is not None else not gold_bad
        tp += gold_bad and pred_bad
        fn += gold_bad and not pred_bad
        fp += (not gold_bad) and pred_bad
        tn += (not gold_bad) and not pred_bad
        if c is not None and c.parsed and c.score is not None:
            scores.append(1.0 - c.score)  # score = P(correct); AUROC ranks "incorrect"
            labels.append(gold_bad)
    n = tp + fp + fn + tn
    precision, recall = _pct(tp, tp + fp), _pct(tp, tp + fn)
    return {
        "n": n, "accuracy": _pct(tp + tn, n), "precision": precision, "recall": recall,
        "f1": _f1(precision, recall), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "auroc": auroc(scores, labels) if len(scores) == n and n else None,
    }


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the probability that a random positive scores above a
    random negative, ties counting one half. ``None`` when either class is absent."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    # rank-sum (Mann-Whitney U) with average ranks for ties: O(n log n)
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_pos = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    u = rank_pos - len(pos) * (len(pos) + 1) / 2
    return u / (len(pos) * len(neg))


def ece(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error with ``bins`` equal-width bins over [0, 1] (a confidence of
    exactly 1 falls in the last bin): sum over bins of |accuracy - mean confidence| weighted
    by the bin's share of items."""
    n = len(confidences)
    if n == 0:
        return 0.0
    groups: list[list[int]] = [[] for _ in range(bins)]
    for i, c in enumerate(confidences):
        if not 0.0 <= c <= 1.0:
            raise ValueError(f"confidence {c} is outside [0, 1]")
        groups[min(int(c * bins), bins - 1)].append(i)
    total = 0.0
    for g in groups:
        if g:
            acc = sum(correct[i] for i in g) / len(g)
            conf = sum(confidences[i] for i in g) / len(g)
            total += len(g) / n * abs(acc - conf)
    return total


def brier(confidences: Sequence[float], correct: Sequence[bool]) -> float:
    """Mean squared difference between the confidence and the 0/1 outcome."""
    if not confidences:
        return 0.0
    return sum((c - float(y)) ** 2 for c, y in zip(confidences, correct, strict=True)) / len(
        confidences
    )


def calibration(results: Sequence[Result]) -> dict[str, Any] | None:
    """ECE, Brier and AUROC of the critics' confidence that the solution is correct
    (``Critique.score``) against the gold; ``None`` when no critique carries a score."""
    conf: list[float] = []
    right: list[bool] = []
    for r in results:
        g = gold_index(r)
        c = r.critique
        if g is None or c is None or not c.parsed or c.score is None:
            continue
        conf.append(c.score)
        right.append(g == -1)
    if not conf:
        return None
    return {"n": len(conf), "ece": ece(conf, right), "brier": brier(conf, right),
            "auroc": auroc(conf, right)}


def step_scores(results: Sequence[Result]) -> dict[str, Any] | None:
    """Step-level precision/recall/F1 of "incorrect" verdicts against per-step gold labels,
    over the steps of items that have them; ``None`` when none do. A step without a verdict
    ("unknown" or an unparsed critique) is not a prediction of "incorrect"."""
    tp = fp = fn = 0
    any_labels = False
    for r in results:
        g = r.example.gold
        if g is None or g.step_labels is None:
            continue
        any_labels = True
        c = r.critique
        predicted = {s.index for s in c.steps if s.verdict == "incorrect"} if (
            c is not None and c.parsed) else set()
        for i, ok in enumerate(g.step_labels):
            tp += (not ok) and i in predicted
            fn += (not ok) and i not in predicted
            fp += ok and i in predicted
    if not any_labels:
        return None
    p, rec = _pct(tp, tp + fp), _pct(tp, tp + fn)
    return {"precision": p, "recall": rec, "f1": _f1(p, rec), "tp": tp, "fp": fp, "fn": fn}


def parse_failure_rate(results: Sequence[Result]) -> float:
    """Share of items whose critique came back but could not be read."""
    crits = [r.critique for r in results if r.critique is not None]
    return sum(1 for c in crits if not c.parsed) / len(crits) if crits else 0.0


def compute_metrics(results: Sequence[Result], abstain: str = "unknown") -> dict[str, Any]:
    """Every metric that applies to these results, as a JSON-ready dict (``metrics.json``);
    ``abstain`` decides how undecided critiques count in ProcessBench's F1."""
    usage = sum((r.critique.usage for r in results if r.critique is not None), Usage())
    has_gold = any(gold_index(r) is not None for r in results)
    return {
        "n": len(results),
        "errors": sum(1 for r in results if r.error is not None),
        "parse_failure_rate": parse_failure_rate(results),
        "coverage": coverage(results),
        "abstain": abstain,
        "processbench": processbench_table(results, abstain) if has_gold else None,
        "judgment": judgment(results) if has_gold else None,
        "calibration": calibration(results),
        "steps": step_scores(results),
        "usage": usage.to_dict(),
    }


# -- closed loop: did critique help? ----------------------------------------------------------
def transitions(before: Sequence[bool], after: Sequence[bool]) -> dict[str, Any]:
    """The 2×2 table of correctness before and after one correction step (c→c, c→i, i→c,
    i→i), with CL = P(correct after | correct before) (confidence: keeps right answers) and
    CS = P(correct after | wrong before) (critique: fixes wrong ones). The identity
    ``acc_after = acc_before·CL + (1 − acc_before)·CS`` holds on the counts; ``identity_gap``
    is its left side minus its right side (0 up to float rounding). Accuracies in percent."""
    pairs = list(zip(before, after, strict=True))
    cc = sum(1 for b, a in pairs if b and a)
    ci = sum(1 for b, a in pairs if b and not a)
    ic = sum(1 for b, a in pairs if not b and a)
    ii = sum(1 for b, a in pairs if not b and not a)
    n = len(pairs)
    acc_b = (cc + ci) / n if n else 0.0
    acc_a = (cc + ic) / n if n else 0.0
    cl = cc / (cc + ci) if cc + ci else None
    cs = ic / (ic + ii) if ic + ii else None
    rhs = acc_b * (cl or 0.0) + (1 - acc_b) * (cs or 0.0)
    return {
        "n": n, "c->c": cc, "c->i": ci, "i->c": ic, "i->i": ii,
        "acc_before": 100 * acc_b, "acc_after": 100 * acc_a,
        "CL": cl, "CS": cs, "identity_gap": acc_a - rhs,
    }


def closed_loop(
    correct_by_round: Sequence[Sequence[bool]], usage: Sequence[Usage]
) -> dict[str, Any]:
    """Accuracy after each round, the draft→final transitions, and cost per solved problem.

    ``correct_by_round[i][r]`` says whether problem i's solution after round r is right
    (round 0 is the draft; a trajectory that stopped early keeps its last solution).
    ``usage[i]`` is what problem i cost in all.
    """
    n = len(correct_by_round)
    depth = max((len(c) for c in correct_by_round), default=0)
    padded = [list(c) + [c[-1]] * (depth - len(c)) for c in correct_by_round if c]
    accuracy = [100 * sum(p[r] for p in padded) / n if n else 0.0 for r in range(depth)]
    firsts = [p[0] for p in padded]
    lasts = [p[-1] for p in padded]
    solved = sum(lasts)
    total = sum(usage, Usage())
    return {
        "n": n,
        "accuracy_by_round": accuracy,
        "transitions": transitions(firsts, lasts),
        "mean_rounds_used": sum(len(c) - 1 for c in correct_by_round) / n if n else 0.0,
        "tokens_per_solved": total.total_tokens / solved if solved else None,
        "calls_per_solved": total.calls / solved if solved else None,
        "usage": total.to_dict(),
    }
