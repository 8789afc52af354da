import pytest

from criticlab.critics.parsing import last_boxed, parse_boxed_index, parse_stepwise


@pytest.mark.parametrize("text,expected", [
    (r"so \boxed{2}", 2),
    (r"first \boxed{1} then on reflection \boxed{3}", 3),
    (r"\boxed{-1}", -1),
    (r"\boxed{ $-1$ }", -1),
    (r"\boxed{\text{2}}", 2),
    (r"\boxed{paragraph 2}", None),
    (r"\boxed{2.5}", None),
    ("no box, the answer is 2", None),
    (r"\boxed{2", None),
])
def test_boxed_index(text, expected):
    assert parse_boxed_index(text) == expected


def test_nested_braces():
    assert last_boxed(r"\boxed{\frac{1}{2}} end") == r"\frac{1}{2}"


STEPWISE = """Step 1: correct - 3 * 4 = 12 is right.
Step 2: incorrect - 12 + 5 is 17, not 18.
The rest follows from the error.
Step 3: correct - consistent.
Overall: incorrect"""


def test_stepwise_clean():
    c = parse_stepwise(STEPWISE, 3, "stepwise")
    assert c.parsed and c.first_error == 1 and c.verdict == "incorrect"
    assert [s.verdict for s in c.steps] == ["correct", "incorrect", "correct"]
    assert c.steps[1].explanation == "12 + 5 is 17, not 18. The rest follows from the error."
    assert c.feedback.startswith("Step 2: 12 + 5 is 17")


def test_stepwise_markdown_and_synonyms():
    text = ("Here is my review.\n**Step 1:** Right. Good.\n- Step 2 — **Wrong**: off by one\n"
            "3. valid\n\n**Overall verdict:** Incorrect")
    c = parse_stepwise(text, 3, "s")
    assert [s.verdict for s in c.steps] == ["correct", "incorrect", "correct"]
    assert c.first_error == 1 and c.verdict == "incorrect"
    assert c.steps[1].explanation == "off by one"


def test_stepwise_not_correct_and_missing_steps():
    c = parse_stepwise("Step 2: not correct, the sum is wrong", 4, "s")
    assert [s.verdict for s in c.steps] == ["unknown", "incorrect", "unknown", "unknown"]
    assert c.first_error == 1 and c.verdict == "incorrect"


def test_stepwise_all_correct_without_overall():
    c = parse_stepwise("Step 1: correct\nStep 2: correct", 2, "s")
    assert c.verdict == "correct" and c.first_error is None


def test_stepwise_partial_correct_is_undecided():
    c = parse_stepwise("Step 1: correct", 2, "s")
    assert c.parsed and c.verdict is None and c.first_error is None


def test_stepwise_overall_only():
    c = parse_stepwise("I think it is fine.\nOverall: correct", 2, "s")
    assert c.parsed and c.verdict == "correct"
    assert [s.verdict for s in c.steps] == ["unknown", "unknown"]


def test_stepwise_failure_is_never_correct():
    c = parse_stepwise("The solution looks plausible to me.", 3, "s")
    assert not c.parsed and c.verdict is None and c.first_error is None
    assert c.raw == "The solution looks plausible to me."


def test_stepwise_ignores_out_of_range_and_repeats():
    c = parse_stepwise("Step 1: correct\nStep 1: incorrect\nStep 9: incorrect", 2, "s")
    assert [s.verdict for s in c.steps] == ["correct", "unknown"]
    assert c.first_error is None
