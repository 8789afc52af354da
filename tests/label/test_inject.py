from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from random import Random

import pytest

from criticlab.critics.arithmetic import ArithmeticCritic
from criticlab.data import load_benchmark
from criticlab.errors import ConfigError
from criticlab.label import mistakes
from criticlab.label.inject import InjectConfig, TypeStats, inject, inject_example
from criticlab.label.recompute import format_number
from criticlab.label.trace import parse_trace
from criticlab.types import Example, Gold, Problem, Solution

Q = ("A baker makes 12 muffins in each batch and bakes 4 batches a day. She gives away 6 "
     "muffins a day and sells the rest for $3 each. How much money does she make a day?")
STEPS = (
    "She bakes 12 * 4 = <<12*4=48>>48 muffins a day.",
    "She sells 48 - 6 = <<48-6=42>>42 muffins.",
    "She makes 42 * 3 = $<<42*3=126>>126 a day from the 42 muffins.",
)
TRACE = parse_trace(STEPS, "126")
GSM8K_TEST = Path(__file__).parents[2].parent / "shared/data/gsm8k/test.jsonl"


def example(pid: str = "gsm8k-test-1", question: str = Q, steps: tuple[str, ...] = STEPS,
            final: str = "126") -> Example:
    return Example(Problem(pid, question, final), Solution(steps, final, "reference"),
                   Gold(None, final_answer_correct=True))


def expr_token(value: int, step: int) -> int:
    return next(t.id for t in TRACE.toks
                if t.role == "expr" and t.value == value and t.step == step)


def test_calculation_slip_changes_the_result_and_everything_after_it() -> None:
    inj = mistakes.calculation(Q, TRACE, 1, "41")
    assert inj is not None
    assert inj.steps == (
        "She bakes 12 * 4 = <<12*4=48>>48 muffins a day.",
        "She sells 48 - 6 = <<48-6=41>>41 muffins.",
        "She makes 41 * 3 = $<<41*3=123>>123 a day from the 41 muffins.",
    )
    assert (inj.label, inj.final_answer, inj.reference_answer) == (1, "123", "126")
    assert (inj.step, inj.before, inj.after) == (1, "48-6=42", "48-6=41")


def test_calculation_slip_is_never_the_true_value_nor_a_rounding_of_it() -> None:
    assert mistakes.calculation(Q, TRACE, 1, "42") is None
    t = parse_trace(("Each gets 10/3 = <<10/3=3.33>>3.33 cups.",), "3.33")
    assert mistakes.calculation(Q, t, 0, "3.34") is None  # 3.34 is within a unit of 3.333
    assert mistakes.calculation(Q, t, 0, "3.35") is not None


def test_copied_number_uses_another_number_and_stays_arithmetically_right() -> None:
    inj = mistakes.copied_number(Q, TRACE, expr_token(4, 0), "6")
    assert inj is not None
    assert inj.steps == (
        "She bakes 12 * 6 = <<12*6=72>>72 muffins a day.",
        "She sells 72 - 6 = <<72-6=66>>66 muffins.",
        "She makes 66 * 3 = $<<66*3=198>>198 a day from the 66 muffins.",
    )
    assert (inj.label, inj.final_answer, inj.before, inj.after) == (0, "198", "12*4", "12*6")
    assert mistakes.copy_sources(Q, TRACE, 2) == ["12", "4", "6", "3", "48", "42"]


def test_wrong_operation_swaps_the_operator_in_annotation_and_text() -> None:
    inj = mistakes.wrong_operation(Q, TRACE, 1, 0)
    assert inj is not None
    assert inj.steps == (
        "She bakes 12 * 4 = <<12*4=48>>48 muffins a day.",
        "She sells 48 + 6 = <<48+6=54>>54 muffins.",
        "She makes 54 * 3 = $<<54*3=162>>162 a day from the 54 muffins.",
    )
    assert (inj.label, inj.final_answer, inj.after) == (1, "162", "48+6")
    t = parse_trace(("He has 5 * 1 = <<5*1=5>>5 bags.",), "5")
    assert mistakes.wrong_operation(Q, t, 0, 0) is None  # 5 / 1 changes nothing


def test_dropped_step_puts_its_first_number_in_place_of_its_result() -> None:
    inj = mistakes.dropped_step(Q, TRACE, 1)
    assert inj is not None
    assert inj.steps == (
        "She bakes 12 * 4 = <<12*4=48>>48 muffins a day.",
        "She makes 48 * 3 = $<<48*3=144>>144 a day from the 48 muffins.",
    )
    assert (inj.label, inj.final_answer, inj.step, inj.before) == (1, "144", 1, STEPS[1])
    first = mistakes.dropped_step(Q, TRACE, 0)
    assert first is not None and first.label == 0
    assert first.steps[0] == "She sells 12 - 6 = <<12-6=6>>6 muffins."
    assert mistakes.dropped_step(Q, TRACE, 2) is None  # nothing after it uses it


def test_dropped_step_label_is_the_first_step_that_uses_the_missing_result() -> None:
    steps = ("Tom has 2 * 5 = <<2*5=10>>10 apples.",
             "Ann has 3 * 3 = <<3*3=9>>9 pears.",
             "Together they have 10 + 9 = <<10+9=19>>19 fruits.")
    inj = mistakes.dropped_step(Q, parse_trace(steps, "19"), 0)
    assert inj is not None
    assert inj.steps == (steps[1], "Together they have 2 + 9 = <<2+9=11>>11 fruits.")
    assert inj.label == 1


def test_premise_changes_the_question_and_keeps_the_solution() -> None:
    start = Q.index("4 batches")
    inj = mistakes.premise(Q, TRACE, start, start + 1, "5")
    assert inj is not None
    assert inj.question == Q.replace("4 batches", "5 batches")
    assert inj.steps == STEPS
    assert (inj.label, inj.final_answer, inj.reference_answer) == (0, "126", "162")
    assert (inj.step, inj.before, inj.after) == (None, "4", "5")
    three = Q.index("$3") + 1  # first used in the last step
    later = mistakes.premise(Q, TRACE, three, three + 1, "4")
    assert later is not None
    assert (later.label, later.reference_answer) == (2, "168")


def test_premise_skips_quantities_a_word_may_also_mean() -> None:
    q = "Sam has 2 dogs and half as many cats as 10 birds. How many pets?"
    steps = ("Cats: 10 / 2 = <<10/2=5>>5.", "Pets: 2 + 5 = <<2+5=7>>7.")
    t = parse_trace(steps, "7")
    assert [q[a:b] for a, b in mistakes.premise_numbers(q, t)] == ["10"]


def test_text_calculations_without_annotation_are_recomputed_too() -> None:
    steps = ("He buys 3 * 4 = <<3*4=12>>12 apples.",
             "He eats 2, so 12 - 2 = 10 apples are left.",
             "They cost 10 * 2 = <<10*2=20>>20 dollars.")
    inj = mistakes.calculation(Q, parse_trace(steps, "20"), 0, "13")
    assert inj is not None
    assert inj.steps == ("He buys 3 * 4 = <<3*4=13>>13 apples.",
                         "He eats 2, so 13 - 2 = 11 apples are left.",
                         "They cost 11 * 2 = <<11*2=22>>22 dollars.")


def test_thousands_separators_money_and_roundings_keep_their_style() -> None:
    steps = ("He pays $1,200 + $300 = $<<1200+300=1500>>1,500.",
             "Split in 3, each pays $1,500 / 3 = $<<1500/3=500>>500.00.",
             "Over 7 days that is 500 / 7 = <<500/7=71.43>>71.43 a day.")
    inj = mistakes.calculation(Q, parse_trace(steps, "71.43"), 0, "1600")
    assert inj is not None
    assert inj.steps == ("He pays $1,200 + $300 = $<<1200+300=1600>>1,600.",
                         "Split in 3, each pays $1,600 / 3 = $<<1600/3=533.33>>533.33.",
                         "Over 7 days that is 533.33 / 7 = <<533.33/7=76.19>>76.19 a day.")
    assert inj.final_answer == "76.19"


def test_format_number() -> None:
    assert format_number(Fraction(5)) == "5"
    assert format_number(Fraction(1, 8)) == "0.125"
    assert format_number(Fraction(25, 3)) == "8.33"
    assert format_number(Fraction(-7, 2)) == "-3.5"
    assert format_number(Fraction(1, 300)) == "0.0033"
    assert format_number(Fraction(24998, 1000) - Fraction(1, 10**7)) == "25.00"


def test_misreadings_are_wrong_same_shape_and_seeded() -> None:
    for text in ("42", "2.5", "130000", "0.25"):
        out = mistakes.misreadings(text, Random(3))
        assert out and len(set(out)) == len(out)
        assert all(Fraction(w) != Fraction(text) and Fraction(w) > 0 for w in out)
        assert all(len(w.partition(".")[2]) == len(text.partition(".")[2]) for w in out)
        assert out == mistakes.misreadings(text, Random(3))
    assert mistakes.misreadings("3/4", Random(0)) == []


def test_inject_example_writes_the_reference_and_k_errors_of_different_types() -> None:
    records, counts = inject_example(example(), mistakes.ERROR_TYPES, 3, seed=0)
    assert records[0] == {
        "id": "gsm8k-test-1/correct", "generator": "reference", "problem": Q,
        "steps": list(STEPS), "label": -1, "final_answer_correct": True,
        "error_type": None, "reference_answer": "126", "final_answer": "126",
        "source_id": "gsm8k-test-1", "injection": None,
    }
    errs = records[1:]
    assert len(errs) == 3
    assert len({r["error_type"] for r in errs}) == 3
    for r in errs:
        assert r["label"] >= 0 and r["final_answer_correct"] is False
        assert r["final_answer"] != r["reference_answer"]
        assert r["id"] == f"gsm8k-test-1/{r['error_type']}-1"
    assert sum(c.written for c in counts.values()) == 3
    again, _ = inject_example(example(), mistakes.ERROR_TYPES, 3, seed=0)
    assert again == records
    other = [inject_example(example(), mistakes.ERROR_TYPES, 3, seed=s)[0] for s in range(1, 6)]
    assert any(o != records for o in other)


def test_same_answer_injections_are_discarded_and_counted() -> None:
    steps = ("He buys 2 * 3 = <<2*3=6>>6 apples.", "He buys 4 * 5 = <<4*5=20>>20 pears.")
    ex = example(question="He buys 2 bags of 3 apples and 4 bags of 5 pears. How many pears?",
                 steps=steps, final="20")
    records, counts = inject_example(ex, ("calculation",), 2, seed=0)
    assert [r["label"] for r in records] == [-1, 1]
    assert counts["calculation"] == TypeStats(attempted=2, written=1, same_answer=1)


def test_a_reference_with_a_wrong_calculation_is_skipped() -> None:
    bad = ("He has 2 * 3 = <<2*3=7>>7 apples.", "So 7 + 1 = <<7+1=8>>8.")
    records, counts = inject_example(example(steps=bad, final="8"), ("calculation",), 1, 0)
    assert records == [] and counts["calculation"] == TypeStats()


def write_jsonl(path: Path, problems: list[tuple[str, tuple[str, ...], str]]) -> None:
    lines = [json.dumps({"question": q, "answer": "\n".join(s) + f"\n#### {f}"})
             for q, s, f in problems]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


OTHER = ("Tom has 3 boxes of 7 pens and gives away 5 pens. How many are left?",
         ("He has 3 * 7 = <<3*7=21>>21 pens.", "He keeps 21 - 5 = <<21-5=16>>16 pens."), "16")


def test_inject_writes_processbench_records_that_load_back(tmp_path: Path) -> None:
    data = tmp_path / "tiny.jsonl"
    write_jsonl(data, [(Q, STEPS, "126"), OTHER])
    stats = inject(InjectConfig(str(data), tmp_path / "out.json", per_problem=2))
    recs = json.loads((tmp_path / "out.json").read_text())
    assert stats.problems == 2 and stats.skipped == 0 and stats.correct == 2
    assert stats.records == len(recs) == 2 + sum(s.written for s in stats.by_type.values())
    assert all(s.attempted == s.written + s.same_answer for s in stats.by_type.values())
    loaded = load_benchmark(str(tmp_path / "out.json"))
    assert [e.problem.id for e in loaded] == [r["id"] for r in recs]
    assert [e.gold.first_error if e.gold else "?" for e in loaded] == [
        None if r["label"] == -1 else r["label"] for r in recs]
    inject(InjectConfig(str(data), tmp_path / "out.jsonl", per_problem=2))
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == recs


def test_records_do_not_depend_on_the_other_problems_in_the_run(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_jsonl(tmp_path / "a/t.jsonl", [(Q, STEPS, "126"), OTHER])
    write_jsonl(tmp_path / "b/t.jsonl", [(Q, STEPS, "126")])
    inject(InjectConfig(str(tmp_path / "a/t.jsonl"), tmp_path / "a.json", seed=7))
    inject(InjectConfig(str(tmp_path / "b/t.jsonl"), tmp_path / "b.json", seed=7))
    ra = json.loads((tmp_path / "a.json").read_text())
    rb = json.loads((tmp_path / "b.json").read_text())
    assert [r for r in ra if r["source_id"] == "gsm8k-t-1"] == rb
    assert len(rb) == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"types": ("typo",)}, "unknown error type"),
    ({"per_problem": -1}, "per_problem"),
    ({"out": Path("x.csv")}, ".json or .jsonl"),
])
def test_bad_settings_are_config_errors(tmp_path: Path, kwargs: dict[str, object],
                                        message: str) -> None:
    config = InjectConfig(**{"data": "unused.jsonl", "out": tmp_path / "o.json", **kwargs})
    with pytest.raises(ConfigError, match=message):
        inject(config)


async def test_real_gsm8k_calculation_slips_are_found_where_injected() -> None:
    if not GSM8K_TEST.is_file():
        pytest.skip(f"GSM8K test data not found at {GSM8K_TEST}")
    critic = ArithmeticCritic()
    n = 0
    for ex in load_benchmark(str(GSM8K_TEST), limit=200):
        records, _ = inject_example(ex, ("calculation",), 3, seed=0)
        assert ex.solution is not None
        for r in records[1:]:
            n += 1
            assert r["steps"][: r["label"]] == list(ex.solution.steps[: r["label"]]), r["id"]
            c = await critic.critique(Problem(r["id"], r["problem"]), Solution(r["steps"]))
            assert c.first_error == r["label"], (r["id"], r["steps"], c.feedback)
    assert n > 400
