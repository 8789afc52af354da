import pytest

from criticlab.steps import render_numbered, render_paragraphs, split_steps
from tests.deadline import seconds


def test_step_markers():
    text = "Let's solve it.\nStep 1: 2 + 2 = 4\ncarry on\nStep 2) 4 * 3 = 12\n**Step 3:** done"
    assert split_steps(text) == ("Let's solve it.", "2 + 2 = 4\ncarry on", "4 * 3 = 12", "done")


def test_markdown_headings_and_case():
    assert split_steps("## Step 1\nfirst\n## step 2:\nsecond") == ("first", "second")


def test_paragraphs():
    assert split_steps("first line\ncontinued\n\n  \nsecond\n\nthird") == (
        "first line\ncontinued", "second", "third")


def test_lines():
    assert split_steps("a = 1\r\n\nb = 2") == ("a = 1", "b = 2")
    assert split_steps("a = 1\nb = 2\n c = 3 ") == ("a = 1", "b = 2", "c = 3")


def test_blank():
    assert split_steps("  \n ") == ()


def test_word_step_inside_a_line_is_not_a_marker():
    assert split_steps("Take one step 2 times.\nThen stop.") == ("Take one step 2 times.", "Then stop.")


def test_render():
    assert render_paragraphs(["a", "b"]) == (
        "<paragraph_0>\na\n</paragraph_0>\n\n<paragraph_1>\nb\n</paragraph_1>")
    assert render_numbered(["a", "b"]) == "Step 1: a\nStep 2: b"


# Each of these backtracked exponentially in the old step-marker pattern (a run of "*" split in
# every possible way): 24 "*" took 1.3 s, each 2 more tripled it, 40 never finished. Each is
# timed in a subprocess (tests/deadline.py) so a regression fails instead of hanging the suite.
HOSTILE_SOLUTIONS = [
    '"*" * 40',
    '"*" * 1_000',
    '"*" * 100_000',
    '"#" * 15 + " " + "_" * 15',
    '("#" * 15 + " " + "_" * 15 + "\\n") * 5_000',
    '"*_ " * 30_000',
    '"## Step 1 " + "*" * 100_000',
    '"Step 1:" + " " * 100_000 + "**"',
    '"\\n".join(["*" * 1_000] * 100)',
    '"a\\n" + " " * 100_000 + "b"',
]


@pytest.mark.parametrize("solution", HOSTILE_SOLUTIONS)
def test_hostile_solutions_split_in_linear_time(solution: str) -> None:
    seconds("from criticlab.steps import split_steps", f"split_steps({solution})")


def test_runs_of_decoration_are_text_not_markers() -> None:
    # in a subprocess too: these hung the old splitter
    seconds("from criticlab.steps import split_steps", """
assert split_steps("*" * 40) == ("*" * 40,)
assert split_steps("#" * 15 + " " + "_" * 15) == ("#" * 15 + " " + "_" * 15,)
assert split_steps("*" * 30 + " Step 1: a\\n_#* step 2 __ b") == ("a", "b")
""")
