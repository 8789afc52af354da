import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from criticlab.cli import main
from criticlab.errors import ConfigError, InputError
from criticlab.report import PUBLISHED_PROCESSBENCH, load_run, write_report
from criticlab.report.tables import match_published
from criticlab.types import Critique, Example, Problem, Result, Solution
from tests.report import make_result, write_run

STEPS = ("2 + 3 = 5", "5 * 4 = 20", "So the answer is 20.")
XSS = "</script><script>alert(1)</script>"

METRICS = {
    "benchmark": "processbench", "critic": "processbench", "model": "openai:Qwen2.5-7B-Instruct",
    "n": 6, "errors": 1, "parse_failure_rate": 0.2,
    "processbench": {
        "gsm8k": {"n": 4, "n_err": 2, "n_cor": 2, "acc_err": 50.0, "acc_cor": 100.0,
                  "f1": 66.66666666666667},
        "math": {"n": 2, "n_err": 1, "n_cor": 1, "acc_err": 0.0, "acc_cor": 0.0, "f1": 0.0},
        "average": {"f1": 33.333333333333336},
    },
    "judgment": {"n": 6, "accuracy": 50.0, "precision": 60.0, "recall": 75.0, "f1": 66.7,
                 "auroc": 0.8125},
    "calibration": None, "steps": None,
    "usage": {"prompt_tokens": 12345, "completion_tokens": 678, "calls": 6, "cached": 2},
    "elapsed_s": 75.0,
}


def six_results():
    return [
        make_result("g1", STEPS, -1, -1, feedback="all good"),
        make_result("g2", STEPS, -1, -1),
        make_result("g3", STEPS, 1, 1, feedback="5 * 4 is 20, but the problem says 3"),
        make_result("g4", STEPS, 0, 2),
        make_result("m1", STEPS, 2, None, subset="math", parsed=False, raw="hmm..."),
        make_result("m2", STEPS, -1, None, subset="math", error="TimeoutError: 120 s"),
    ]


class Tables(HTMLParser):
    """Every <table data-table=NAME> as rows of cell texts (later tables of a name appended)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current: list[list[str]] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.current = self.tables.setdefault(a.get("data-table") or tag, [])
        elif tag == "tr" and self.current is not None:
            self.current.append([])
        elif tag in ("td", "th") and self.current is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None and self.current is not None:
            self.current[-1].append(" ".join(" ".join(self.cell).split()))
            self.cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables_of(html: str) -> dict[str, list[list[str]]]:
    p = Tables()
    p.feed(html)
    return p.tables


def row(table: list[list[str]], first: str) -> list[str]:
    return next(r for r in table if r and r[0] == first)


def items_json(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="criticlab-items">(.*?)</script>', html,
                  re.S)
    assert m
    return json.loads(m.group(1))


@pytest.fixture
def one_run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run", six_results(), metrics=METRICS)


def test_single_file_with_the_metric_tables(one_run, tmp_path):
    out = write_report([one_run], tmp_path / "out" / "report.html")
    assert out == tmp_path / "out" / "report.html"
    html = out.read_text(encoding="utf-8")
    t = tables_of(html)
    assert row(t["processbench"], "GSM8K") == ["GSM8K", "4", "2", "2", "50.0", "100.0", "66.7"]
    assert row(t["processbench"], "MATH") == ["MATH", "2", "1", "1", "0.0", "0.0", "0.0"]
    assert row(t["processbench"], "Average")[-1] == "33.3"
    assert row(t["judgment"], "Accuracy") == ["Accuracy", "50.0"]
    assert row(t["judgment"], "F1") == ["F1", "66.7"]
    assert row(t["judgment"], "AUROC") == ["AUROC", "0.812"]
    assert row(t["run"], "Prompt tokens") == ["Prompt tokens", "12,345"]
    assert row(t["run"], "Model calls") == ["Model calls", "6"]
    assert row(t["run"], "Elapsed") == ["Elapsed", "1 min 15 s"]
    # the parse-failure rate has its own row in every metric table
    for name in ("processbench", "judgment", "run"):
        assert row(t[name], "Parse failures")[-1] == "20.0%", name
    assert "comparison" not in t  # one run: no side-by-side table
    assert "<svg" in html and 'class="heatmap"' in html


def test_heatmap_and_histogram_count_gold_against_prediction(tmp_path):
    results = [
        make_result("a", STEPS, 1, 1), make_result("b", STEPS, 1, 2),
        make_result("c", STEPS, -1, -1), make_result("d", STEPS, -1, None, parsed=False),
        make_result("e", [f"s{i}" for i in range(14)], 12, 13),
    ]
    html = write_report([write_run(tmp_path / "r", results)], tmp_path / "r.html").read_text()
    heat = tables_of(html)["table"]  # the heatmap has no data-table name
    head = heat[1]
    assert head[0] == "gold ↓" and head[1] == "-1" and head[-3:] == ["10+", "unparsed", "n"]
    cols = {c: i for i, c in enumerate(head)}
    r1, rnone, rcap = row(heat, "1"), row(heat, "-1"), row(heat, "10+")
    assert (r1[cols["1"]], r1[cols["2"]], r1[cols["n"]]) == ("1", "1", "2")
    assert (rnone[cols["-1"]], rnone[cols["unparsed"]]) == ("1", "1")
    assert rcap[cols["10+"]] == "1"  # indices 12 and 13 share the capped bin
    assert "1 items without a predicted index are left out" in html


def test_no_network_references_and_a_strict_csp(one_run, tmp_path):
    html = write_report([one_run], tmp_path / "r.html",
                        published=PUBLISHED_PROCESSBENCH).read_text()
    assert "http://" not in html and "https://" not in html
    for attr in re.findall(r'\b(?:src|href|action)\s*=\s*["\']?([^"\' >]*)', html, re.I):
        assert attr.startswith("#"), attr
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html


def test_untrusted_text_is_escaped(tmp_path):
    evil = write_run(tmp_path / "evil", [
        make_result("x<1>", [XSS, "<img src=x onerror=alert(2)>"], 0, 1, question=XSS,
                    feedback=XSS, raw="raw " + XSS, subset="<sub>", critic="<b>crit</b>"),
    ], model="<i>model</i>", critic="<b>crit</b>")
    html = write_report([evil], tmp_path / "r.html").read_text()
    assert XSS not in html and "<img src=x" not in html
    assert html.count("<script") == 3  # two JSON payloads and the report's own script
    assert "&lt;b&gt;crit&lt;/b&gt; · &lt;i&gt;model&lt;/i&gt;" in html
    data = items_json(html)
    ex = data["examples"][0]
    assert (ex["id"], ex["q"], ex["st"][0], ex["s"]) == ("x<1>", XSS, XSS, "<sub>")
    assert data["runs"][0]["items"][0]["f"] == XSS


def test_several_runs_side_by_side(tmp_path):
    a = write_run(tmp_path / "a", six_results(), metrics=METRICS)
    better = {**METRICS, "model": "openai:other-model",
              "processbench": {**METRICS["processbench"],
                               "math": {**METRICS["processbench"]["math"], "f1": 80.0}}}
    b = write_run(tmp_path / "b", six_results(), metrics=better)
    c = write_run(tmp_path / "c", six_results()[:3], model="openai:other-model")  # same label
    html = write_report([a, b, c], tmp_path / "cmp.html").read_text()
    comp = tables_of(html)["comparison"]
    assert comp[0] == ["Metric", "processbench · openai:Qwen2.5-7B-Instruct a",
                       "processbench · openai:other-model (b) b",
                       "processbench · openai:other-model (c) c"]
    assert row(comp, "GSM8K")[1:] == ["66.7", "66.7", "100.0"]
    math_f1 = next(r for r in comp if r[0] == "MATH")  # the first MATH row is F1
    assert math_f1[1:3] == ["0.0", "80.0"]
    assert '<td class=best>80.0</td>' in html
    assert row(comp, "Parse failures")[1] == "20.0%"
    assert html.count("<rect") >= 3 * 3  # F1 chart: 3 runs x (2 subsets + average)
    data = items_json(html)
    assert [len(r["items"]) for r in data["runs"]] == [6, 6, 3]
    assert len(data["examples"]) == 6  # problems shared between runs are stored once


def test_published_numbers_next_to_the_run(one_run, tmp_path):
    html = write_report([one_run], tmp_path / "r.html",
                        published=PUBLISHED_PROCESSBENCH).read_text()
    pub = tables_of(html)["published"]
    assert pub[0] == ["Model", "Decoding", "GSM8K", "MATH", "OlympiadBench", "Omni-MATH",
                      "Average"]
    assert row(pub, "GPT-4o published") == ["GPT-4o published", "greedy", "79.2", "63.6",
                                            "51.4", "53.5", "61.9"]
    mine = row(pub, "processbench · openai:Qwen2.5-7B-Instruct this run")
    assert mine[1] == "greedy"
    assert mine[2] == "66.7 +30.2 vs published"  # 66.7 - 36.5
    assert mine[4] == "—"
    assert "average over its 2 subsets only" in html


def test_published_model_matching():
    pub = PUBLISHED_PROCESSBENCH
    assert match_published("openai:Qwen2.5-72B-Instruct", pub) == "Qwen2.5-72B-Instruct"
    assert match_published("Qwen/Qwen2.5-7B-Instruct-AWQ", pub) == "Qwen2.5-7B-Instruct"
    assert match_published("openai:gpt-4o", pub) == "GPT-4o"
    assert match_published("openai:gpt-4o-mini", pub) is None
    assert match_published("embedded", pub) is None
    assert pub["Qwen2.5-72B-Instruct"]["average"] == 61.2
    assert pub["Qwen2.5-72B-Instruct"]["decoding"] == "maj@8"


def test_run_without_metrics_still_reports_its_items(tmp_path):
    run = write_run(tmp_path / "r", six_results())
    (run / "metrics.json").unlink()
    html = write_report([run], tmp_path).read_text()  # a directory: report.html inside
    assert (tmp_path / "report.html").is_file()
    assert "No metrics.json" in html
    t = tables_of(html)
    assert "processbench" not in t
    assert row(t["run"], "Items") == ["Items", "6"]
    assert row(t["run"], "Parse failures")[-1] == "20.0%"  # 1 unparsed of 5 critiques
    assert len(items_json(html)["runs"][0]["items"]) == 6


def test_load_run_reads_what_eval_writes(one_run):
    run = load_run(one_run)
    assert len(run.results) == 6 and run.results[4].critique.parsed is False
    assert run.label == "processbench · openai:Qwen2.5-7B-Instruct"
    assert run.decoding == "greedy"
    assert run.metrics["processbench"]["gsm8k"]["n"] == 4


def test_bad_run_directories_give_one_clear_line(tmp_path, one_run):
    with pytest.raises(InputError, match=r"nope: no such run directory"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: no results.jsonl here"):
        load_run(tmp_path / "empty")
    results = one_run / "results.jsonl"
    lines = results.read_text().splitlines()

    def broken(n: int, text: str) -> str:
        results.write_text("\n".join([*lines[:n - 1], text, *lines[n:]]) + "\n")
        with pytest.raises(InputError) as e:
            load_run(one_run)
        assert "\n" not in str(e.value)
        return str(e.value)

    assert broken(2, "{not json").startswith(f"{results}:2: invalid JSON")
    d = json.loads(lines[2])
    del d["example"]["problem"]["question"]
    assert broken(3, json.dumps(d)) == f"{results}:3: example.problem.question: missing"
    d = json.loads(lines[3])
    d["critique"]["first_error"] = "two"
    assert broken(4, json.dumps(d)) == (
        f"{results}:4: critique.first_error: must be an integer, not a string")
    d = json.loads(lines[0])
    d["example"]["solution"]["steps"][1] = 7
    assert broken(1, json.dumps(d)) == (
        f"{results}:1: example.solution.steps[1]: must be a string, not a number")
    assert broken(5, "[1, 2]") == f"{results}:5: a result must be a JSON object, not a list"

    results.write_text("\n".join(lines) + "\n")
    metrics = json.loads((one_run / "metrics.json").read_text())
    metrics["processbench"]["gsm8k"]["f1"] = "high"
    (one_run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(InputError, match=r"metrics.json: processbench.gsm8k.f1: must be a "
                                         r"number or null, not a string"):
        load_run(one_run)
    (one_run / "metrics.json").write_text('{"n": 1,\n "errors": }')
    with pytest.raises(InputError, match=r"metrics.json:2: invalid JSON"):
        load_run(one_run)


def test_no_run_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        write_report([], tmp_path / "r.html")


def test_cli_report_bad_dir_exits_2_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such run directory" in err


def test_cli_report_writes_the_file(one_run, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["report", str(one_run), "--out", str(tmp_path / "r.html")])
    assert e.value.code == 0
    assert 'data-table="published"' in (tmp_path / "r.html").read_text()


def test_empty_and_unlabelled_runs_still_render(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "results.jsonl").write_text("")
    unlabelled = write_run(tmp_path / "u", [
        Result(Example(Problem("q", "Is 2 + 2 = 4?"), Solution(("2 + 2 = 4",))),
               Critique(first_error=None, verdict="correct"))])
    html = write_report([empty, unlabelled], tmp_path / "r.html").read_text()
    assert "No step-level gold labels in this run." in html
    data = items_json(html)
    assert [len(r["items"]) for r in data["runs"]] == [0, 1]
    assert data["runs"][1]["items"][0]["k"] == "unlabelled"


def test_reliability_diagram_for_scored_critiques(tmp_path):
    from criticlab.report import write_report
    from criticlab.report.charts import reliability_diagram
    from criticlab.types import Critique, Example, Gold, Problem, Result, Solution
    # confidences 0.95 (right, right, wrong) and 0.15 (wrong): bins 9 and 1
    svg = reliability_diagram([0.95, 0.95, 0.95, 0.15], [True, True, False, False])
    assert svg.count('class="rel-bar"') == 2
    assert "2 of 3 right" in svg and "0 of 1 right" in svg
    results = [Result(Example(Problem(f"p{i}", "q", metadata={"subset": "gsm8k"}),
                              Solution(("a",)), Gold(None if ok else 0, None, ok)),
                      Critique(first_error=None if s > 0.5 else 0,
                               verdict="correct" if s > 0.5 else "incorrect", score=s))
               for i, (s, ok) in enumerate([(0.9, True), (0.8, False), (0.2, False)])]
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.jsonl").write_text("\n".join(json.dumps(r.to_dict()) for r in results))
    html = write_report([run], tmp_path / "r.html").read_text()
    assert "Calibration: confidence" in html and html.count('class="rel-bar"') == 3


# Markup, a closing script tag, an attribute break-out, template syntax, and line separators:
# text from a run that must reach the page as inert text.
HOSTILE = ("<img src=x onerror=alert(1)> </script><script>alert(2)</script> "
           "x\" onmouseover=\"alert(3)' A{{ 7*7 }}Z {% if 1 %}B{% endif %} {# c #} \u2028\u2029")


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs |= {name for name, _ in attrs}


def test_hostile_text_in_a_run_stays_inert(tmp_path):
    """Problem text, steps, critique feedback, the critic's and model's names, a subset and
    the config, all hostile: the page gets no new element or attribute, template syntax is not
    evaluated, and the JSON for the item list is ASCII that no text can close."""
    result = make_result("h<1>", [HOSTILE, "2 + 2 = 4"], 0, 1, question=HOSTILE,
                         feedback=HOSTILE, raw="raw " + HOSTILE, subset=HOSTILE, critic=HOSTILE)
    run = write_run(tmp_path / "evil", [result], critic=HOSTILE, model=HOSTILE,
                    config={"note": HOSTILE})
    # a lone surrogate (undecodable model bytes) in the feedback: written as a JSON escape
    lone = Result(result.example, replace(result.critique, feedback=HOSTILE + "\ud800"))
    (run / "results.jsonl").write_text(json.dumps(lone.to_dict()) + "\n", encoding="utf-8")
    html = write_report([run], tmp_path / "r.html").read_text(encoding="utf-8")

    parsed = Tags()
    parsed.feed(html)
    assert "img" not in parsed.tags and parsed.tags.count("script") == 3
    assert not {"onerror", "onmouseover"} & parsed.attrs
    assert "<img" not in html and "</script><script>alert" not in html
    assert html.count("</script>") == 3
    # shown escaped where the page writes it as text (header, run heading, subset, config)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "A{{ 7*7 }}Z" in html and "A49Z" not in html
    assert "{% if 1 %}B{% endif %}" in html and "{# c #}" in html
    scripts = re.findall(r'<script type="application/json" id="[^"]+">(.*?)</script>', html, re.S)
    assert len(scripts) == 2 and all(s.isascii() and "<" not in s for s in scripts)
    data = items_json(html)
    ex, item = data["examples"][0], data["runs"][0]["items"][0]
    assert (ex["id"], ex["q"], ex["st"][0], ex["s"]) == ("h<1>", HOSTILE, HOSTILE, HOSTILE)
    assert item["f"] == HOSTILE + "\ud800" and item["c"] == HOSTILE
