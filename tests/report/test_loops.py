"""The report of ``criticlab refine`` and ``criticlab select`` run directories: the numbers it
prints (from metrics computed by criticlab.metrics), the checks it makes, escaping, and the
errors it gives for malformed files."""

import json
import re

import pytest

from criticlab.cli import main
from criticlab.errors import InputError
from criticlab.infer.jobs import RefineConfig, run_refine
from criticlab.report import load_run, write_report
from criticlab.report.loop_runs import RefineRun, SelectRun
from tests.report import make_result, write_run
from tests.report.loops import (
    XSS,
    global_trajectories,
    problem,
    refine_metrics,
    repair_trajectories,
    select_rows,
    trajectory,
    write_refine_run,
    write_select_run,
)
from tests.report.test_html import row, tables_of


def payload(html: str, ident: str) -> dict:
    m = re.search(rf'<script type="application/json" id="{ident}">(.*?)</script>', html, re.S)
    assert m, ident
    return json.loads(m.group(1))


@pytest.fixture
def repair(tmp_path):
    return write_refine_run(tmp_path / "repair", repair_trajectories())


@pytest.fixture
def global_run(tmp_path):
    return write_refine_run(tmp_path / "global", global_trajectories(), strategy="global")


@pytest.fixture
def select_run(tmp_path):
    return write_select_run(tmp_path / "sel", select_rows())


def test_refine_report_prints_the_closed_loop_numbers(repair, tmp_path):
    html = write_report([repair], tmp_path / "r.html").read_text()
    t = tables_of(html)
    # accuracy after each round, as closed_loop computed it: 3, 4 and 5 of 8 right
    assert t["rounds"][1:] == [["draft", "37.5", ""], ["round 1", "50.0", "+12.5"],
                               ["round 2", "62.5", "+25.0"]]
    tr = t["transitions"]
    assert tr[0] == ["draft ↓ · final →", "correct", "wrong", "n"]
    assert row(tr, "correct") == ["correct", "2 c→c", "1 c→i", "3"]
    assert row(tr, "wrong") == ["wrong", "3 i→c", "2 i→i", "5"]
    assert row(tr, "n") == ["n", "5", "3", "8"]
    cl = t["closed-loop"]
    assert row(cl, "Acc_before (draft)") == ["Acc_before (draft)", "37.5%"]
    assert row(cl, "CL = P(right after | right before)")[1] == "0.667 (2 of 3)"
    assert row(cl, "CS = P(right after | wrong before)")[1] == "0.600 (3 of 5)"
    assert row(cl, "Acc_after (final)")[1] == "62.5%"
    assert row(cl, "Acc_before·CL + (1 − Acc_before)·CS")[1] == (
        "0.375 × 0.667 + 0.625 × 0.600 = 62.5%")
    assert row(cl, "Identity")[1] == "✓ holds: 62.5% = 62.5%"
    assert 'data-holds="true"' in html
    cost = t["refine-cost"]  # 15 rounds x 150 tokens, 15 calls, over 5 solved problems
    assert row(cost, "Final accuracy (%)")[1] == "62.5"
    assert row(cost, "Solved")[1] == "5"
    assert row(cost, "Tokens per solved")[1] == "450"
    assert row(cost, "Calls per solved")[1] == "3.00"
    assert row(cost, "Mean rounds used")[1] == "0.88"  # 7 refinements / 8 problems
    assert row(cost, "Model calls")[1] == "15"
    assert "<svg" in html and "Accuracy after each round" in html
    assert "refine-comparison" not in t  # one run: nothing side by side
    assert 'id="items-section"' not in html  # no eval runs: no eval item list


def test_the_identity_check_catches_numbers_that_do_not_add_up(tmp_path):
    trajs = repair_trajectories()
    m = refine_metrics(trajs)
    m["transitions"]["acc_after"] = 70.0  # not what the counts give
    html = write_report([write_refine_run(tmp_path / "r", trajs, metrics=m)],
                        tmp_path / "r.html").read_text()
    check = row(tables_of(html)["closed-loop"], "Identity")[1]
    assert check.startswith("✗ does not hold: off by +7.5 points")
    assert 'data-holds="false"' in html


def test_two_refine_runs_side_by_side(repair, global_run, tmp_path):
    html = write_report([repair, global_run], tmp_path / "r.html").read_text()
    comp = tables_of(html)["refine-comparison"]
    assert comp[0] == ["Metric", "repair · arithmetic repair", "global · arithmetic global"]
    assert row(comp, "Strategy")[1:] == ["repair", "global"]
    assert row(comp, "Draft accuracy (%)")[1:] == ["37.5", "37.5"]
    assert row(comp, "Final accuracy (%)")[1:] == ["62.5", "50.0"]
    assert row(comp, "Gain (points)")[1:] == ["+25.0", "+12.5"]
    assert [row(comp, k)[1:] for k in ("c→c", "c→i", "i→c", "i→i")] == [
        ["2", "3"], ["1", "0"], ["3", "1"], ["2", "4"]]
    assert row(comp, "CL")[1:] == ["0.667", "1.000"]
    assert row(comp, "CS")[1:] == ["0.600", "0.200"]
    assert row(comp, "Identity")[1:] == ["✓ holds", "✓ holds"]
    # cost next to accuracy: repair spends 2,250 tokens on 5 solved, global 6,500 on 4
    assert row(comp, "Tokens per solved")[1:] == ["450", "1,625"]
    assert row(comp, "Calls per solved")[1:] == ["3.00", "3.25"]
    assert "<td class=best>62.5</td>" in html and "<td class=best>450</td>" in html
    # the accuracy chart has both runs; global never reached round 2
    assert html.count('<rect x=') == 5 and "global · arithmetic · round 2: n/a" in html
    data = payload(html, "trajectories-data")
    assert [r["label"] for r in data["runs"]] == ["repair · arithmetic", "global · arithmetic"]
    assert len(data["problems"]) == 9  # p8 differs (its question), the rest are shared
    assert 'id="trajectories-run"' in html


def test_trajectory_list_has_rounds_transitions_and_escapes_model_text(repair, tmp_path):
    html = write_report([repair], tmp_path / "r.html").read_text()
    assert XSS not in html and "<img src=x" not in html
    assert html.count("<script") == 2  # the trajectories' JSON and the report's script
    data = payload(html, "trajectories-data")
    items = data["runs"][0]["items"]
    assert [it["t"] for it in items] == ["c->c", "c->i", "i->c", "i->c", "i->i", "i->i", "c->c",
                                         "i->c"]
    p4 = items[3]
    assert [(r["k"], r["fa"], r["ok"]) for r in p4["r"]] == [
        ("draft", "099", False), ("repair", "199", False), ("repair", "20", True)]
    assert p4["r"][0]["c"]["fe"] == 1 and p4["r"][0]["c"]["sv"] == [[1, "incorrect",
                                                                    "3 * 4 is 12"]]
    assert p4["r"][2]["c"]["fe"] is None and p4["r"][2]["c"]["v"] == "correct"
    assert p4["tok"] == 450
    evil = items[7]
    assert data["problems"][evil["x"]]["q"] == XSS
    assert evil["r"][0]["st"][0] == XSS and evil["r"][0]["c"]["f"] == XSS


def test_refine_run_without_metrics_computes_them_from_the_trajectories(repair, tmp_path):
    (repair / "metrics.json").unlink()
    html = write_report([repair], tmp_path / "r.html").read_text()
    assert "No metrics.json in this run directory" in html
    t = tables_of(html)
    assert row(t["transitions"], "wrong") == ["wrong", "3 i→c", "2 i→i", "5"]
    assert row(t["closed-loop"], "Identity")[1] == "✓ holds: 62.5% = 62.5%"


def test_metrics_that_disagree_with_the_trajectories_are_flagged(tmp_path):
    trajs = repair_trajectories()
    m = refine_metrics(trajs)
    m["transitions"].update({"c->c": 3, "c->i": 0})  # acc_before etc. stay consistent
    html = write_report([write_refine_run(tmp_path / "r", trajs, metrics=m)],
                        tmp_path / "r.html").read_text()
    assert "give c→c 2, c→i 1, i→c 3, i→i 2, which differs from metrics.json" in html


def test_select_report_prints_method_majority_and_pass_at_n(select_run, tmp_path):
    html = write_report([select_run], tmp_path / "r.html").read_text()
    sel = tables_of(html)["select"]
    assert sel[0] == ["Metric", "filtered · arithmetic sel"]
    assert row(sel, "Samples (N)")[1] == "4"
    assert row(sel, "Problems")[1] == "5"
    assert row(sel, "Accuracy (%)")[1] == "60.0"
    assert row(sel, "Majority vote (%)")[1] == "40.0"
    assert row(sel, "pass@4 (%)")[1] == "80.0"
    assert row(sel, "Gain over majority (points)")[1] == "+20.0"
    assert row(sel, "Fallbacks to majority")[1] == "1"
    assert row(sel, "Tokens")[1] == "6,000"  # 5 problems x 4 samples x 300
    assert XSS not in html
    data = payload(html, "selections-data")
    items = data["runs"][0]["items"]
    assert [it["ok"] for it in items] == [True, True, True, False, False]
    assert [it["mok"] for it in items] == [False, True, False, True, False]
    assert [it["d"] for it in items] == [True, False, True, True, False]
    assert [it["fb"] for it in items] == [False, True, False, False, False]
    s1 = items[0]
    assert s1["v"] == [["14", 2.0, False, False, True], ["20", 2.0, True, True, False]]
    assert [(s["fa"], s["ok"]) for s in s1["s"]] == [("14", False), ("20", True),
                                                    ("14", False), ("20", True)]
    assert items[3]["a"] == XSS and data["problems"][items[3]["x"]]["q"] == XSS


def test_select_run_without_metrics_computes_them(select_run, tmp_path):
    (select_run / "metrics.json").unlink()
    html = write_report([select_run], tmp_path / "r.html").read_text()
    sel = tables_of(html)["select"]
    assert [row(sel, k)[1] for k in ("Accuracy (%)", "Majority vote (%)", "pass@4 (%)",
                                     "Fallbacks to majority")] == ["60.0", "40.0", "80.0", "1"]
    assert "computed from selections.jsonl" in html


def test_load_run_tells_the_kinds_apart(repair, select_run, tmp_path):
    assert isinstance(load_run(repair), RefineRun)
    run = load_run(select_run)
    assert isinstance(run, SelectRun) and run.samples == 4 and run.pass_key == "pass@4"
    r = load_run(repair)
    assert r.label == "repair · arithmetic" and len(r.trajectories) == 8
    assert r.right[3] == (False, False, True)
    (repair / "results.jsonl").write_text("")
    with pytest.raises(InputError, match=r"holds both results\.jsonl and trajectories\.jsonl"):
        load_run(repair)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: no results.jsonl here \(nor trajectories"):
        load_run(tmp_path / "empty")


def _broken(path, n, edit):
    lines = path.read_text().splitlines()
    d = json.loads(lines[n - 1])
    edit(d)
    path.write_text("\n".join([*lines[:n - 1], json.dumps(d), *lines[n:]]) + "\n")
    with pytest.raises(InputError) as e:
        load_run(path.parent)
    path.write_text("\n".join(lines) + "\n")
    assert "\n" not in str(e.value)
    return str(e.value)


def test_malformed_refine_and_select_lines_name_file_line_and_field(repair, select_run):
    f = repair / "trajectories.jsonl"
    assert _broken(f, 2, lambda d: d["rounds"][1]["solution"].pop("steps")) == (
        f"{f}:2: rounds[1].solution.steps: missing")
    assert _broken(f, 3, lambda d: d["rounds"][0]["critique"].update(first_error="two")) == (
        f"{f}:3: rounds[0].critique.first_error: must be an integer, not a string")
    assert _broken(f, 1, lambda d: d.update(rounds=[])) == (
        f"{f}:1: rounds: must hold at least the draft")
    assert _broken(f, 4, lambda d: d["problem"].update(reference_answer=20)) == (
        f"{f}:4: problem.reference_answer: must be a string, not a number")
    assert _broken(f, 5, lambda d: d["rounds"][0].pop("usage")) == (
        f"{f}:5: rounds[0].usage: missing")
    f.write_text(f.read_text() + "{oops\n")
    with pytest.raises(InputError, match=rf"{re.escape(str(f))}:9: invalid JSON"):
        load_run(repair)
    g = select_run / "selections.jsonl"
    assert _broken(g, 2, lambda d: d["votes"].update({"20": "two"})) == (
        f"{g}:2: votes.20: must be a number, not a string")
    assert _broken(g, 3, lambda d: d.update(fallback="no")) == (
        f"{g}:3: fallback: must be true or false, not a string")
    assert _broken(g, 1, lambda d: d["solutions"][1]["steps"].append(7)) == (
        f"{g}:1: solutions[1].steps[1]: must be a string, not a number")


def test_malformed_refine_and_select_metrics(repair, select_run):
    m = json.loads((repair / "metrics.json").read_text())
    m["transitions"]["CL"] = "high"
    (repair / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(InputError, match=r"metrics.json: transitions.CL: must be a number or "
                                         r"null, not a string"):
        load_run(repair)
    m["transitions"]["CL"] = None
    m["accuracy_by_round"] = [37.5, "50"]
    (repair / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(InputError, match=r"accuracy_by_round\[1\]: must be a number"):
        load_run(repair)
    s = json.loads((select_run / "metrics.json").read_text())
    s["pass@4"] = [80]
    (select_run / "metrics.json").write_text(json.dumps(s))
    with pytest.raises(InputError, match=r"metrics.json: pass@4: must be a number or null"):
        load_run(select_run)


def test_eval_refine_and_select_in_one_report(repair, select_run, tmp_path):
    ev = write_run(tmp_path / "eval", [make_result("g1", ("a = 1",), -1, -1)])
    html = write_report([ev, repair, select_run], tmp_path / "r.html").read_text()
    for ident in ("items-section", "refine", "trajectories", "select", "selections"):
        assert f'<section id="{ident}"' in html, ident
    nav = re.search(r"<nav>(.*?)</nav>", html, re.S).group(1)
    assert re.findall(r'href="#([^"]+)"', nav) == [
        "f1", "run-1", "items-section", "refine", "trajectories", "select", "selections"]
    assert html.count("<script") == 6  # 2 eval + 1 refine + 1 select payloads, 2 scripts
    assert "http://" not in html and "https://" not in html
    assert "3 runs · processbench · openai:Qwen2.5-7B-Instruct · repair · arithmetic · " in html


def test_report_of_a_real_refine_job(tmp_path):
    """What ``criticlab refine`` (repair, no model) writes, read back by the report."""
    data = tmp_path / "d.json"
    data.write_text(json.dumps([
        {"id": "a", "problem": "48 in April and half as many in May. How many in all?",
         "reference_answer": "72", "steps": ["48/2 = <<48/2=24>>24 in May.",
                                             "48+24 = <<48+24=70>>70 altogether."],
         "final_answer": "70"},
        {"id": "b", "problem": "Weng earns $0.2 a minute for 50 minutes. How much?",
         "reference_answer": "10", "steps": ["0.2 x 50 = $<<0.2*50=10>>10."],
         "final_answer": "10"}]))
    m = run_refine(RefineConfig(data=str(data), out=tmp_path / "run", critic="arithmetic",
                                strategy="repair", rounds=2))
    html = write_report([tmp_path / "run"], tmp_path / "r.html").read_text()
    t = tables_of(html)
    assert m["transitions"]["i->c"] == 1 and m["transitions"]["c->c"] == 1
    assert row(t["transitions"], "correct") == ["correct", "1 c→c", "0 c→i", "1"]
    assert row(t["transitions"], "wrong") == ["wrong", "1 i→c", "0 i→i", "1"]
    assert t["rounds"][1:] == [["draft", "50.0", ""], ["round 1", "100.0", "+50.0"]]
    assert row(t["closed-loop"], "Identity")[1] == "✓ holds: 100.0% = 100.0%"
    items = payload(html, "trajectories-data")["runs"][0]["items"]
    assert [it["t"] for it in items] == ["i->c", "c->c"]
    assert items[0]["r"][1]["fa"] == "72" and items[0]["r"][0]["c"]["fe"] == 1


def test_cli_report_on_a_refine_run(repair, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["report", str(repair), "--out", str(tmp_path / "r.html")])
    assert e.value.code == 0
    assert 'data-table="transitions"' in (tmp_path / "r.html").read_text()


def test_a_single_round_run_and_undefined_cl(tmp_path):
    """Every draft wrong: CL is undefined and its term weighs 0."""
    trajs = [trajectory(problem("a"), [False, True]), trajectory(problem("b"), [False])]
    html = write_report([write_refine_run(tmp_path / "r", trajs)], tmp_path / "r.html")
    cl = tables_of(html.read_text())["closed-loop"]
    assert row(cl, "CL = P(right after | right before)")[1] == "— (0 of 0)"
    assert row(cl, "Acc_before·CL + (1 − Acc_before)·CS")[1] == (
        "0.000 × — + 1.000 × 0.500 = 50.0%")
    assert row(cl, "Identity")[1] == "✓ holds: 50.0% = 50.0%"
