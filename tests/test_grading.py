"""Final-answer extraction and equivalence (criticlab.grading): math-verify, never strings."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from criticlab.critics.answer import AnswerCritic
from criticlab.errors import ConfigError
from criticlab.grading import extract_answer, same_answer, solution_answer
from criticlab.types import Problem, Solution


@pytest.mark.parametrize("answer,reference", [
    ("\\frac{1}{2}", "0.5"),
    ("0.5", "\\frac{1}{2}"),
    ("\\dfrac{3}{4}", "\\frac{3}{4}"),
    ("2\\sqrt{2}", "\\sqrt{8}"),
    ("1,000", "1000.00"),
    ("$18", "18"),
    ("50\\%", "50"),
])
def test_equal_answers_are_the_same(answer, reference):
    assert same_answer(answer, reference)


@pytest.mark.parametrize("answer,reference", [
    ("\\frac{1}{3}", "0.5"),
    ("1000000000001", "1000000000000"),  # plain numbers compare exactly, not to 1e-9
    ("1,2", "12"),  # a comma that is no thousands separator is not dropped
    ("7", None),
    (None, None),
])
def test_different_answers_are_not(answer, reference):
    assert not same_answer(answer, reference)


def test_math_verify_works_outside_the_main_thread():
    """Its SIGALRM timeout only works in the main thread; elsewhere it must still compare
    (Ray actors and worker threads), not fail into "different"."""
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(same_answer("\\frac{1}{2}", "0.5")))
    t.start()
    t.join()
    assert got == [True]


def test_without_math_verify_it_raises_instead_of_comparing_strings(monkeypatch):
    monkeypatch.setitem(sys.modules, "math_verify", None)  # import math_verify -> ImportError
    for answer, reference in [("x^2", "x^2"), ("\\frac{1}{2}", "0.5"), ("3", "3")]:
        with pytest.raises(ConfigError, match=r"pip install 'math-verify"):
            same_answer(answer, reference)
    with pytest.raises(ConfigError, match="math-verify is not installed"):
        asyncio.run(AnswerCritic(oracle=True).critique(
            Problem("p", "q", reference_answer="\\frac{1}{2}"), Solution(("x = 0.5",), "0.5")))


@pytest.mark.parametrize("text,answer", [
    ("so x = 3 and \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
    ("2 + 2 = 4\n#### 4", "4"),
    ("The answer is 12.", "12"),
    ("we get 3 and then $1,200.", "1,200"),
    ("no number here", None),
])
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


def test_solution_answer_prefers_the_final_answer():
    assert solution_answer(Solution(("1 + 1 = 2",), "3")) == "3"
    assert solution_answer(Solution(("1 + 1 = 2", "The answer is 2."))) == "2"


def test_the_answer_critic_grades_with_math_verify():
    problem = Problem("p", "q", reference_answer="0.5")
    right = asyncio.run(AnswerCritic(oracle=True).critique(
        problem, Solution(("x = 1/2",), "\\frac{1}{2}")))
    wrong = asyncio.run(AnswerCritic(oracle=True).critique(
        problem, Solution(("x = 1/3",), "\\frac{1}{3}")))
    assert right.verdict == "correct" and right.score == 1.0
    assert wrong.verdict == "incorrect" and wrong.score == 0.0
