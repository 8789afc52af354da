import pytest

from criticlab.types import (
    Critique,
    Example,
    Gold,
    Problem,
    Result,
    Solution,
    StepVerdict,
    Usage,
)

CRIT = Critique(
    steps=(StepVerdict(0, "correct", "fine"), StepVerdict(1, "incorrect", "12*7=84", 0.1),
           StepVerdict(2, "unknown")),
    first_error=1, verdict="incorrect", feedback="step 2", score=0.25, raw="raw text",
    parsed=True, critic="stepwise", usage=Usage(10, 5, 1, 0),
)
EX = Example(
    Problem("p1", "What is 12*7?", "84", {"subset": "gsm8k"}),
    Solution(("12*7 = 74", "so 74"), "74", "model-x"),
    Gold(0, (False, False), False),
)


@pytest.mark.parametrize("obj", [
    CRIT, EX, Usage(1, 2, 3, 4), Problem("a", "b"), Solution(("x",)), Gold(),
    StepVerdict(3, "unknown"), Result(EX, CRIT), Result(EX, None, "boom"),
    Critique(raw="??", parsed=False),
])
def test_round_trip(obj):
    assert type(obj).from_dict(obj.to_dict()) == obj


def test_lists_become_tuples():
    assert Solution(["a", "b"]).steps == ("a", "b")  # type: ignore[arg-type]
    assert Critique(steps=[StepVerdict(0, "correct")]).steps == (StepVerdict(0, "correct"),)


def test_bad_verdict_rejected():
    with pytest.raises(ValueError, match="verdict"):
        StepVerdict.from_dict({"index": 0, "verdict": "maybe"})
    with pytest.raises(ValueError, match="verdict"):
        Critique.from_dict({"verdict": "fine"})


def test_usage_adds():
    assert Usage(1, 2, 1, 0) + Usage(3, 4, 0, 1) == Usage(4, 6, 1, 1)
    assert Usage(3, 4).total_tokens == 7
