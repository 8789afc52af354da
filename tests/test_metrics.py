import json

import pytest

from criticlab.metrics import (
    auroc,
    brier,
    calibration,
    compute_metrics,
    ece,
    judgment,
    prediction,
    processbench,
    processbench_table,
    step_scores,
)
from criticlab.types import Critique, Example, Gold, Problem, Result, Solution, StepVerdict


def res(gold, pred, subset="s", score=None, parsed=True, steps=None, labels=None, n_steps=4):
    """gold/pred in ProcessBench form: -1 = no error; pred None = unparsed."""
    g = Gold(None if gold == -1 else gold, labels, gold == -1)
    if pred is None:
        c = Critique(parsed=False, raw="??")
    else:
        c = Critique(steps or (), None if pred == -1 else pred,
                     "correct" if pred == -1 else "incorrect", score=score)
    ex = Example(Problem(f"{subset}{gold}{pred}", "q", metadata={"subset": subset}),
                 Solution(tuple("x" for _ in range(n_steps))), g)
    return Result(ex, c)


def test_processbench_by_hand():
    # 4 erroneous: 2 exact, 1 wrong index, 1 unparsed -> acc_err 50
    # 2 correct: 1 predicted -1, 1 predicted 0 -> acc_cor 50; F1 = 50
    rs = [res(1, 1), res(2, 2), res(2, 1), res(0, None), res(-1, -1), res(-1, 0)]
    m = processbench(rs)
    assert (m["n"], m["n_err"], m["n_cor"]) == (6, 4, 2)
    assert m["acc_err"] == 50.0 and m["acc_cor"] == 50.0 and m["f1"] == 50.0


def test_f1_is_harmonic_mean_and_always_minus_one_scores_zero():
    rs = [res(1, 1), res(2, 0), res(3, 3), res(-1, -1)]
    m = processbench(rs)  # acc_err 2/3, acc_cor 1
    assert m["f1"] == pytest.approx(2 * 66.6667 * 100 / (166.6667), abs=1e-3)
    always = [res(1, -1), res(2, -1), res(-1, -1)]
    assert processbench(always)["f1"] == 0.0


def test_table_average_is_mean_of_subset_f1():
    rs = [res(1, 1, "a"), res(-1, -1, "a"), res(1, 0, "b"), res(-1, -1, "b"), res(2, 2, "b")]
    t = processbench_table(rs)
    assert t["a"]["f1"] == 100.0
    assert t["b"]["f1"] == pytest.approx(2 * 50 * 100 / 150)
    assert t["average"]["f1"] == pytest.approx((100.0 + 200 / 3) / 2)
    assert list(t) == ["a", "b", "average"]


def test_fixed_predictions_on_processbench_gsm8k_match_hand_computation(shared_data):
    recs = json.loads((shared_data / "processbench" / "gsm8k.json").read_text())
    results, preds = [], []
    for i, r in enumerate(recs):
        # a fixed, deterministic predictor: right on every third item, else step 0 or -1
        p = r["label"] if i % 3 == 0 else (0 if i % 3 == 1 else -1)
        preds.append(p)
        n = len(r["steps"])
        results.append(Result(
            Example(Problem(r["id"], r["problem"], metadata={"subset": "gsm8k"}),
                    Solution(tuple(r["steps"])),
                    Gold(None if r["label"] == -1 else r["label"], None,
                         r["final_answer_correct"])),
            Critique(tuple(StepVerdict(k, "correct") for k in range(n)),
                     None if p == -1 else p, "correct" if p == -1 else "incorrect"),
        ))
    # independent computation straight from the file
    err = [(r["label"], p) for r, p in zip(recs, preds, strict=True) if r["label"] != -1]
    cor = [p for r, p in zip(recs, preds, strict=True) if r["label"] == -1]
    a = 100 * sum(p == g for g, p in err) / len(err)
    b = 100 * sum(p == -1 for p in cor) / len(cor)
    f1 = 2 * a * b / (a + b)
    m = processbench_table(results)["gsm8k"]
    assert (m["n_err"], m["n_cor"]) == (207, 193)
    assert abs(m["f1"] - f1) < 0.01 and abs(m["acc_err"] - a) < 0.01


def test_prediction_rules():
    assert prediction(res(1, None)) is None
    undecided = Result(res(1, 1).example, Critique(verdict=None))
    assert prediction(undecided) is None
    assert prediction(Result(res(1, 1).example, None, "engine down")) is None


def test_judgment_incorrect_is_positive():
    rs = [res(1, 2), res(0, None), res(-1, -1), res(-1, 1), res(2, -1)]
    j = judgment(rs)
    # gold bad: 1 (pred bad: TP), 0 (unparsed: FN), 2 (pred ok: FN); gold ok: TN, FP
    assert (j["tp"], j["fn"], j["fp"], j["tn"]) == (1, 2, 1, 1)
    assert j["accuracy"] == 40.0 and j["precision"] == 50.0
    assert j["recall"] == pytest.approx(100 / 3) and j["f1"] == pytest.approx(40.0)


def test_auroc_by_hand():
    # positives 0.9, 0.4; negatives 0.4, 0.1: pairs (0.9>0.4, 0.9>0.1, 0.4=0.4 -> 0.5, 0.4>0.1)
    assert auroc([0.9, 0.4, 0.4, 0.1], [True, True, False, False]) == pytest.approx(3.5 / 4)
    assert auroc([0.2, 0.3], [True, True]) is None


def test_ece_and_brier_by_hand():
    conf = [0.95, 0.95, 0.15, 0.15, 1.0]
    right = [True, False, False, False, True]
    # bins: [0.9,1.0]: conf mean (0.95+0.95+1)/3, acc 2/3 -> |0.6667-0.9667| * 3/5 = 0.18
    #       [0.1,0.2): conf 0.15, acc 0 -> 0.15 * 2/5 = 0.06
    assert ece(conf, right) == pytest.approx(0.24)
    assert brier([1.0, 0.0, 0.5], [True, True, False]) == pytest.approx((0 + 1 + 0.25) / 3)
    with pytest.raises(ValueError):
        ece([1.5], [True])


def test_calibration_uses_scores_of_parsed_critiques():
    rs = [res(-1, -1, score=0.9), res(1, 1, score=0.2), res(1, None)]
    c = calibration(rs)
    assert c["n"] == 2 and c["auroc"] == 1.0
    assert c["brier"] == pytest.approx((0.01 + 0.04) / 2)


def test_step_scores():
    steps = (StepVerdict(0, "correct"), StepVerdict(1, "incorrect"), StepVerdict(2, "incorrect"))
    r = res(1, 1, steps=steps, labels=(True, False, True), n_steps=3)
    s = step_scores([r])
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 0) and s["precision"] == 50.0
    assert step_scores([res(1, 1)]) is None


def test_compute_metrics_counts_parse_failures_and_errors():
    rs = [res(1, 1), res(-1, None), Result(res(2, 2).example, None, "boom")]
    m = compute_metrics(rs)
    assert m["n"] == 3 and m["errors"] == 1 and m["parse_failure_rate"] == 0.5
    json.dumps(m)  # JSON-ready


def test_transitions_and_the_identity():
    from criticlab.metrics import transitions
    before = [True] * 6 + [False] * 4
    after = [True] * 5 + [False] + [True] * 3 + [False]
    t = transitions(before, after)
    assert (t["c->c"], t["c->i"], t["i->c"], t["i->i"]) == (5, 1, 3, 1)
    assert t["acc_before"] == 60.0 and t["acc_after"] == 80.0
    assert t["CL"] == pytest.approx(5 / 6) and t["CS"] == pytest.approx(3 / 4)
    # Acc_after = Acc_before·CL + (1 − Acc_before)·CS: 0.6·5/6 + 0.4·3/4 = 0.5 + 0.3 = 0.8
    assert abs(t["identity_gap"]) < 1e-12


def test_closed_loop_pads_early_stops_and_costs_per_solved():
    from criticlab.metrics import closed_loop
    from criticlab.types import Usage
    rounds = [[False, True], [True], [False, False, False]]
    m = closed_loop(rounds, [Usage(10, 5, 2), Usage(4, 1, 1), Usage(20, 10, 3)])
    assert m["accuracy_by_round"] == pytest.approx([100 / 3, 200 / 3, 200 / 3])
    assert m["transitions"]["i->c"] == 1 and m["mean_rounds_used"] == 1.0
    assert m["tokens_per_solved"] == 25.0 and m["calls_per_solved"] == 3.0


def test_abstain_decides_how_an_undecided_critique_counts():
    """--abstain: a verifier that checked nothing (read, no verdict, no error) is a wrong
    prediction by the official protocol and -1 with no-error; an unparsed critique stays
    wrong either way; coverage counts the items judged at all."""
    from criticlab.metrics import ABSTAIN, compute_metrics, coverage, processbench
    from criticlab.types import Critique, Example, Gold, Problem, Result, Solution

    def item(i, gold, crit):
        return Result(Example(Problem(f"p{i}", "q"), Solution(("a", "b")), gold), crit)

    right, wrong = Gold(None, None, True), Gold(1)
    undecided = Critique(verdict=None, feedback="no claim checked")
    results = [item(0, right, undecided), item(1, right, Critique(verdict="correct")),
               item(2, wrong, Critique(first_error=1, verdict="incorrect")),
               item(3, wrong, undecided), item(4, right, Critique(parsed=False, raw="?"))]
    assert ABSTAIN == ("unknown", "no-error")
    official = processbench(results)
    assert (official["acc_err"], round(official["acc_cor"], 2)) == (50.0, 33.33)
    lenient = processbench(results, "no-error")
    assert (lenient["acc_err"], round(lenient["acc_cor"], 2)) == (50.0, 66.67)
    assert coverage(results) == 2 / 5
    m = compute_metrics(results, "no-error")
    assert m["abstain"] == "no-error" and m["coverage"] == 0.4
    assert round(m["processbench"]["all"]["acc_cor"], 2) == 66.67
