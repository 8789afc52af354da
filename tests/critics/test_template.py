"""Every LM critic fills its prompt in one pass (a problem or a step that quotes a placeholder
reaches the model verbatim) and sends the problem's images with it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from criticlab.critics.deliberate import DeliberateCritic
from criticlab.critics.ensemble import SamplingCritic
from criticlab.critics.premise import PremiseCritic
from criticlab.critics.principles import PrinciplesCritic
from criticlab.critics.prompted import PromptedCritic
from criticlab.critics.rubric import RubricCritic
from criticlab.critics.selfeval import SelfEvalCritic
from criticlab.critics.template import fill
from criticlab.models.base import LanguageModel, Message
from criticlab.models.prm import PRMModel
from criticlab.models.scripted import ScriptedModel
from criticlab.types import Critique, Problem, Solution

# Every placeholder name any packaged prompt (or the PRM's formats) uses.
NAMES = ("problem", "steps", "answer", "others", "instruction", "aspects", "critique",
         "question", "step", "n")
HOSTILE_Q = "Find x if " + " ".join("{" + n + "}" for n in NAMES) + " holds."
HOSTILE_S = "Use {problem} and {steps} and {answer}: x = 2."
HOSTILE_O = "{problem} or {others}"
IMAGES = ("figure.png", "https://example.org/fig2.jpg")

CRITICS: dict[str, Callable[[LanguageModel], object]] = {
    "processbench": lambda m: PromptedCritic(m, "processbench"),
    "stepwise": lambda m: PromptedCritic(m, "stepwise"),
    "deliberate": DeliberateCritic,
    "principles": PrinciplesCritic,
    "rubric": RubricCritic,
    "premise": PremiseCritic,
    "premise-nohint": lambda m: PremiseCritic(m, hint=False),
    "selfeval": SelfEvalCritic,
}


def problem(question: str, other: str, images: tuple[str, ...] = ()) -> Problem:
    return Problem("p", question, metadata={"other_answers": [other]}, images=images)


def solution(step: str) -> Solution:
    return Solution((step, "The answer is 12."))


async def sent(name: str, p: Problem, s: Solution) -> tuple[Message, ...]:
    """The messages the critic ``name`` sends for one critique."""
    model = ScriptedModel(["x"], cycle=True)
    critic = CRITICS[name](model)
    c = await critic.critique(p, s)  # type: ignore[attr-defined]
    assert isinstance(c, Critique)
    (messages, _), = model.requests
    return messages


@pytest.mark.parametrize("name", CRITICS)
async def test_placeholders_in_the_inputs_reach_the_model_verbatim(name):
    # The same prompt with plain markers, then with texts that quote placeholders: the second
    # must be the first with the markers swapped for those texts, character for character.
    plain = await sent(name, problem("QMARK", "OMARK"), solution("SMARK"))
    hostile = await sent(name, problem(HOSTILE_Q, HOSTILE_O), solution(HOSTILE_S))
    assert len(plain) == len(hostile) == 1
    want = (plain[0].content.replace("QMARK", HOSTILE_Q).replace("SMARK", HOSTILE_S)
            .replace("OMARK", HOSTILE_O))
    assert hostile[0].content == want
    assert HOSTILE_Q in hostile[0].content
    assert "QMARK" in plain[0].content
    if name != "selfeval":  # selfeval shows the final answer, not the steps
        assert "SMARK" in plain[0].content and HOSTILE_S in hostile[0].content
    else:
        assert "OMARK" in plain[0].content and HOSTILE_O in hostile[0].content


async def test_the_meta_judge_gets_a_verbatim_prompt_and_the_images():
    judge = ScriptedModel(["Answer: yes"], cycle=True)
    critic = PrinciplesCritic(ScriptedModel([]), meta_judge=judge)
    critique = Critique(raw="The {steps} part is fine.\nScore: 8")
    p = problem(HOSTILE_Q, "", IMAGES)
    assert await critic.judge(p, solution(HOSTILE_S), critique) is True
    (messages, _), = judge.requests
    body = messages[0].content
    assert f"Problem:\n{HOSTILE_Q}\n\nSolution:\nStep 1: {HOSTILE_S}\nStep 2: The answer is " \
           "12.\n\nCritique:\nThe {steps} part is fine.\nScore: 8\n\nIs the critique" in body
    assert messages[0].images == IMAGES


def test_fill_is_one_pass():
    assert fill("{a}|{b}|{c}", a="{b}", b="{a}") == "{b}|{a}|{c}"
    assert fill(r"\frac{1}{2} {x}", x="{x}{x}") == r"\frac{1}{2} {x}{x}"
    assert fill("{problem}{steps}", problem="{steps}", steps="{problem}") == "{steps}{problem}"


@pytest.mark.parametrize("name", CRITICS)
async def test_images_reach_the_model(name):
    p = problem("What is the angle x in the figure?", "50", IMAGES)
    messages = await sent(name, p, solution("x = 180 - 60 - 70 = 50."))
    assert [m.images for m in messages] == [IMAGES]
    assert [m.role for m in messages] == ["user"]
    # ... and in every sample drawn for voting
    model = ScriptedModel(["x"], cycle=True)
    critic = CRITICS[name](model)
    if isinstance(critic, SamplingCritic):
        await critic.sample(p, solution("x = 50."), 3)
        (msgs, config), = model.requests
        assert config.n == 3 and [m.images for m in msgs] == [IMAGES]
    else:
        assert name == "selfeval"  # P(True) reads one greedy reply's logprobs


def _prm(**formats: str) -> PRMModel:
    """A PRM engine without weights: ``render`` needs only its formats."""
    critic = PRMModel.__new__(PRMModel)
    critic.prefix = formats.get("prefix", "{question}\n\n")
    critic.step_format = formats.get("step_format", "{step}")
    critic.joiner = formats.get("joiner", "")
    critic.step_tag = formats.get("step_tag", "\n\n")
    return critic


def test_prm_render_keeps_placeholders_in_the_inputs():
    steps = (HOSTILE_S, "{question} {step} {n}")
    text, ends = _prm().render(HOSTILE_Q, steps)
    assert text == f"{HOSTILE_Q}\n\n{HOSTILE_S}\n\n{{question}} {{step}} {{n}}\n\n"
    assert [text[e] for e in ends] == ["\n", "\n"] and ends[-1] == len(text) - 1
    shepherd = _prm(prefix="{question} ", step_format="Step {n}: {step}", joiner="\n",
                    step_tag=" ки")
    text, ends = shepherd.render(HOSTILE_Q, steps)
    assert text == (f"{HOSTILE_Q} Step 1: {HOSTILE_S} ки\n"
                    "Step 2: {question} {step} {n} ки")
    assert [text[e - 1:e + 1] for e in ends] == ["ки", "ки"]
