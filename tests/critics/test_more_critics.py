import math
from collections.abc import Sequence

import pytest

from criticlab.critics.deliberate import DeliberateCritic, parse_deliberate
from criticlab.critics.ensemble import SamplingCritic, VoteCritic
from criticlab.critics.premise import PremiseCritic, parse_premise, spontaneous_flaw
from criticlab.critics.principles import PrinciplesCritic, parse_meta_answer, parse_principles
from criticlab.critics.rubric import Aspect, RubricCritic, load_rubric, parse_rubric
from criticlab.critics.selfeval import SelfEvalCritic, option_of, p_true
from criticlab.errors import ConfigError, InputError
from criticlab.models.base import GenerateConfig, Generation, Message, TokenLogprob
from criticlab.models.scripted import ScriptedModel
from criticlab.types import Critique, Problem, Solution, Usage

PROBLEM = Problem("p", "Tom has 3 bags of 4 apples. How many apples?")
SOLUTION = Solution(("3 * 4 = 12", "The answer is 12."))
THREE = Solution(("a = 2", "b = a + 1 = 3", "The answer is 3."))


def unparsed(c: Critique) -> bool:
    return not c.parsed and c.verdict is None and c.first_error is None and c.score is None


# -- DeliberateCritic -------------------------------------------------------------------------
DELIBERATE = """Step 1:
Re-derive: a = 2 as given.
Problem check: the problem says a = 2.
Numbers check: fine.
Judgement: correct
**Step 2:**
Re-derive: 2 + 1 = 3.
Judgement: incorrect
Step 3: Judgement: correct
Meta-critique: I called step 2 wrong, but 2 + 1 = 3 is right.
Nothing is wrong.
Final verdict: correct
First error: none
Step 4: rambling
"""


async def test_deliberate_prompt_and_meta_critique_revises_initial_judgement():
    model = ScriptedModel([DELIBERATE])
    c = await DeliberateCritic(model).critique(PROBLEM, THREE)
    prompt = model.requests[0][0][0].content
    assert "Step 1: a = 2\nStep 2: b = a + 1 = 3\nStep 3: The answer is 3." in prompt
    assert "Meta-critique: ...\nFinal verdict: correct or incorrect\nFirst error: Step k, or none" \
        in prompt and PROBLEM.question in prompt
    assert model.requests[0][1].temperature == 0.0 and model.requests[0][1].n == 1
    assert model.requests[0][1].stop == ("\nStep 4:",)
    assert c.parsed and c.critic == "deliberate" and c.first_error is None
    assert c.verdict == "correct" and [s.verdict for s in c.steps] == ["correct"] * 3
    assert c.steps[0].explanation.startswith("Re-derive: a = 2 as given. Problem check:")
    assert c.steps[1].explanation == "Re-derive: 2 + 1 = 3. (revised by the meta-critique: " \
                                     "initially incorrect)"
    assert c.feedback == ("Meta-critique: I called step 2 wrong, but 2 + 1 = 3 is right. "
                          "Nothing is wrong.")
    assert c.usage.calls == 1


def test_deliberate_final_first_error_wins():
    text = ("Step 1:\nJudgement: correct\nStep 2:\nJudgement: incorrect\nStep 3:\n"
            "Judgement: correct\nMeta-critique: step 1 misreads a.\nFinal verdict: incorrect\n"
            "First error: Step 1")
    c = parse_deliberate(text, 3, "d")
    assert c.first_error == 0 and c.verdict == "incorrect"
    assert [s.verdict for s in c.steps] == ["incorrect", "incorrect", "correct"]
    assert c.feedback.startswith("Step 1: (revised by the meta-critique: initially correct)")
    # a first error under "Final verdict: correct" still stands, and the feedback says so
    c = parse_deliberate("Final verdict: correct\nFirst error: step 2 (the sum)", 3, "d")
    assert (c.first_error, c.verdict) == (1, "incorrect") and "error stands" in c.feedback


def test_deliberate_fallbacks():
    # only a final verdict: the earliest initially wrong step
    c = parse_deliberate("Step 2:\nJudgement: wrong\nFinal verdict: incorrect", 3, "d")
    assert (c.first_error, c.verdict) == (1, "incorrect")
    # truncated before the final lines: the initial judgements decide, never "correct" early
    c = parse_deliberate("Step 1: correct\nStep 2:\nJudgement: correct", 3, "d")
    assert c.parsed and c.verdict is None and c.first_error is None
    assert "initial judgements decide" in c.feedback
    c = parse_deliberate("Step 1:\nJudgement: correct\nStep 2:\nJudgement: correct\nStep 3:\n"
                         "Judgement: correct", 3, "d")
    assert c.verdict == "correct"


@pytest.mark.parametrize("text", ["", "I think it is fine.", "Final verdict: maybe",
                                  "First error: Step 9", "First error: the second one",
                                  "Step 7:\nJudgement: correct"])
def test_deliberate_garbage_is_unparsed(text):
    assert unparsed(parse_deliberate(text, 3, "d"))


async def test_deliberate_samples_and_votes():
    outputs = ["Final verdict: incorrect\nFirst error: Step 2", "gibberish",
               "First error: step 2", "First error: none"]
    model = ScriptedModel(outputs)
    critic = DeliberateCritic(model)
    assert isinstance(critic, SamplingCritic)
    cs = await critic.sample(PROBLEM, THREE, 3)
    assert (model.requests[0][1].n, model.requests[0][1].temperature) == (3, 1.0)
    assert [c.parsed for c in cs] == [True, False, True] and cs[0].first_error == 1
    vote = await VoteCritic([DeliberateCritic(ScriptedModel(outputs))], samples=4).critique(
        PROBLEM, THREE)
    assert vote.first_error == 1 and "3 of 4 answered" in vote.feedback


# -- PrinciplesCritic -------------------------------------------------------------------------
PRINCIPLES = """Principles:
1. The product must use both numbers.
2. The answer must be a count of apples.
Critique: Step 1 adds instead of multiplying.
The rest follows from it.
First error: Step 1
Score: 3
Principles: rambling
Score: 9"""


async def test_principles_prompt_and_parse():
    model = ScriptedModel([PRINCIPLES])
    c = await PrinciplesCritic(model).critique(PROBLEM, SOLUTION)
    prompt = model.requests[0][0][0].content
    assert "Principles:\n1. ...\n2. ...\nCritique: ...\nFirst error: Step k, or none\nScore: N" \
        in prompt and "Step 1: 3 * 4 = 12" in prompt
    assert c.parsed and c.critic == "principles" and c.score == pytest.approx(0.3)
    assert (c.verdict, c.first_error) == ("incorrect", 0)
    assert [s.verdict for s in c.steps] == ["incorrect", "unknown"]
    assert c.feedback == ("Step 1 is the first error. Score 3/10: Step 1 adds instead of "
                          "multiplying. The rest follows from it.")


def test_principles_score_rules():
    c = parse_principles("Critique: fine.\nFirst error: Step 2\nScore: 8/10", 2, "p")
    assert (c.verdict, c.first_error, c.score) == ("correct", None, pytest.approx(0.8))
    assert "ignored" in c.feedback and [s.verdict for s in c.steps] == ["unknown", "unknown"]
    c = parse_principles("**Score:** 5", 2, "p")
    assert (c.verdict, c.first_error) == ("incorrect", None)  # 5 <= threshold 5
    assert parse_principles("Score: 6", 2, "p", threshold=6).verdict == "incorrect"
    assert parse_principles("Score: 6.5 out of 10", 2, "p").score == pytest.approx(0.65)
    with pytest.raises(ConfigError):
        PrinciplesCritic(ScriptedModel([]), threshold=10)


@pytest.mark.parametrize("text", ["", "Score: 11", "Score: 0", "Score: high",
                                  "Principles:\n1. be right\nCritique: correct"])
def test_principles_garbage_is_unparsed(text):
    assert unparsed(parse_principles(text, 2, "p"))


async def test_principles_score_sums_samples():
    model = ScriptedModel(["Score: 7", "Score: 2", "no score at all"])
    assert await PrinciplesCritic(model).score(PROBLEM, SOLUTION, 3) == 9.0
    cfg = model.requests[0][1]
    assert (cfg.n, cfg.temperature, cfg.top_p) == (3, 1.0, 0.9)


async def test_principles_meta_judge_discards_unsound_critiques():
    def meta(messages: Sequence[Message], config: GenerateConfig, i: int) -> str:
        text = messages[0].content
        return ("Answer: no\nReason: made up" if "Score: 2" in text else
                "maybe" if "Score: 4" in text else "**Answer:** Yes")
    judge = ScriptedModel(meta)
    critic = PrinciplesCritic(ScriptedModel(["Score: 7", "Score: 2", "Score: 4"]),
                              meta_judge=judge)
    assert await critic.score(PROBLEM, SOLUTION, 3) == 11.0  # 2 discarded, unreadable kept
    sent = judge.requests[0][0][0].content
    assert "Critique:\nScore: 7\n" in sent and "Step 2: The answer is 12." in sent
    assert judge.requests[0][1].max_tokens == 64
    assert parse_meta_answer("no.") is False and parse_meta_answer("Sound: yes") is True
    assert parse_meta_answer("It depends") is None


# -- RubricCritic -----------------------------------------------------------------------------
RUBRIC = """Aspect: Instruction Following
Critique: It answers the question asked.
Rating: 5
Aspect: **Truthfulness**
Critique: One claim is made up.
Rating: 2/5
Aspect: honesty
Critique: Confident where it should be.
Rating: 3
Aspect: Helpfulness
Critique: Useful.
Rating: 4
Risks: none
"""


async def test_rubric_prompt_and_parse():
    model = ScriptedModel([RUBRIC])
    problem = Problem("q", "Tell me about tea.")
    c = await RubricCritic(model).critique(problem, Solution(("Tea is a drink.", "It grows.")))
    prompt = model.requests[0][0][0].content
    assert "Instruction:\nTell me about tea.\n\nResponse:\nTea is a drink.\nIt grows.\n" in prompt
    assert "- instruction following (1-5): Does the response do what" in prompt
    assert "- helpfulness (1-5): " in prompt
    assert c.parsed and c.critic == "rubric"
    assert [s.verdict for s in c.steps] == ["correct", "incorrect", "correct", "correct"]
    assert [s.score for s in c.steps] == [1.0, 0.4, 0.6, 0.8]
    assert c.steps[1].explanation == "One claim is made up."
    assert c.score == pytest.approx(0.7) and c.verdict == "incorrect" and c.first_error == 1
    assert "truthfulness: 2/5 - One claim is made up." in c.feedback
    assert c.feedback.endswith("Risks: none")


def test_rubric_missing_aspect_and_scales():
    aspects = (Aspect("clarity", "clear?", 10), Aspect("tone", "polite?"))
    c = parse_rubric("Aspect: clarity\nCritique: ok\nRating: 6\n", aspects, "r")
    assert c.verdict is None and c.steps[1].verdict == "unknown" and c.score == pytest.approx(0.6)
    c = parse_rubric("Aspect: clarity\nRating: 5\nAspect: tone\nRating: 9\n", aspects, "r")
    assert c.steps[0].verdict == "incorrect" and c.steps[1].verdict == "unknown"  # 9 > 1-5
    c = parse_rubric("Aspect: clarity\nRating: 6\nAspect: tone\nRating: 3\n"
                     "Risks: mentions a private address", aspects, "r")
    assert c.verdict == "correct" and "Risks: mentions a private address" in c.feedback


@pytest.mark.parametrize("text", ["", "Great answer! 5/5", "Rating: 5", "Aspect: honesty\n"
                                  "Critique: fine\nRating: 7", "Aspect: style\nRating: 4"])
def test_rubric_garbage_is_unparsed(text):
    assert unparsed(parse_rubric(text, (Aspect("honesty"), Aspect("helpfulness")), "r"))


def test_rubric_files(tmp_path):
    t = tmp_path / "r.txt"
    t.write_text("# mine\nclarity: Is it clear?\n\ntone: Is it polite?\n", encoding="utf-8")
    assert load_rubric(t) == (Aspect("clarity", "Is it clear?"), Aspect("tone", "Is it polite?"))
    j = tmp_path / "r.json"
    j.write_text('[{"name": "depth", "description": "Deep?", "scale": 10}, {"name": "x"}]',
                 encoding="utf-8")
    assert load_rubric(j) == (Aspect("depth", "Deep?", 10), Aspect("x", "", 5))
    assert RubricCritic(ScriptedModel([]), j).aspects[0].scale == 10
    t.write_text("clarity: ok\nno colon here\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"r\.txt:2: aspect: expected"):
        load_rubric(t)
    j.write_text('[{"name": "depth", "scale": 1}]', encoding="utf-8")
    with pytest.raises(InputError, match=r"\[0\]\.scale: must be a whole number"):
        load_rubric(j)
    j.write_text('[{"name": "a"},\n {"name": }]', encoding="utf-8")
    with pytest.raises(InputError, match=r"r\.json:2: invalid JSON"):
        load_rubric(j)
    t.write_text("a: x\nA: y\n", encoding="utf-8")
    with pytest.raises(InputError, match="appears twice"):
        load_rubric(t)


# -- PremiseCritic ----------------------------------------------------------------------------
async def test_premise_hint_prompt_and_flaw():
    out = ("Premise: flawed\nFlaw type: contradiction\nExplanation: Tom cannot have 3 bags and "
           "no bags.\nVerdict: incorrect")
    model = ScriptedModel([out])
    c = await PremiseCritic(model).critique(PROBLEM, SOLUTION)
    prompt = model.requests[0][0][0].content
    assert "check the problem itself" in prompt and "Premise: valid or flawed" in prompt
    assert c.parsed and c.critic == "premise" and c.verdict == "incorrect"
    assert c.first_error is None and c.score == 0.0
    assert c.feedback == "flaw: contradiction\nTom cannot have 3 bags and no bags."
    assert [s.verdict for s in c.steps] == ["unknown", "unknown"]


def test_premise_hint_parse():
    c = parse_premise("**Premise:** valid\nFlaw type: none\nExplanation: 3*4=12.\n"
                      "Verdict: correct", "p", hint=True)
    assert (c.verdict, c.score, c.feedback) == ("correct", 1.0, "flaw: none\n3*4=12.")
    c = parse_premise("Premise: flawed\nFlaw type: an impossible given", "p", hint=True)
    assert c.feedback == "flaw: impossible" and c.verdict == "incorrect"
    c = parse_premise("Premise: flawed", "p", hint=True)
    assert c.feedback == "flaw: unspecified"
    c = parse_premise("Flaw type: missing information\nVerdict: incorrect", "p", hint=True)
    assert c.feedback == "flaw: missing"
    c = parse_premise("Premise: valid (no false givens)\nVerdict: maybe", "p", hint=True)
    assert c.parsed and c.verdict is None and c.score == 1.0


@pytest.mark.parametrize("text", ["", "Verdict: correct", "The solution is fine.",
                                  "Premise: unsure"])
def test_premise_hint_garbage_is_unparsed(text):
    assert unparsed(parse_premise(text, "p", hint=True))


async def test_premise_without_hint_detects_spontaneous_flags():
    model = ScriptedModel(["Evaluation: The problem is impossible: a bag cannot hold -4 apples."
                           "\nVerdict: incorrect"])
    critic = PremiseCritic(model, hint=False)
    c = await critic.critique(PROBLEM, SOLUTION)
    assert "premise" not in model.requests[0][0][0].content.lower()
    assert critic.name == "premise-nohint" and c.critic == "premise-nohint"
    assert c.verdict == "incorrect" and c.score == 0.0
    assert c.feedback == "flaw: impossible\nThe problem is impossible: a bag cannot hold -4 apples."
    c = parse_premise("Evaluation: There is no contradiction in the problem and 3*4 = 12.\n"
                      "Verdict: correct", "p", hint=False)
    assert (c.verdict, c.score) == ("correct", 1.0) and c.feedback.startswith("flaw: none")
    c = parse_premise("Step 1 contradicts the problem statement.\nVerdict: incorrect", "p",
                      hint=False)
    assert (c.verdict, c.score) == ("incorrect", 1.0)  # a wrong step, not a flawed premise
    assert spontaneous_flaw("The speed is not given in the question, so it cannot be "
                            "determined.") == ("missing", "The speed is not given in the "
                                               "question, so it cannot be determined.")
    assert spontaneous_flaw("The givens contradict each other.")[0] == "contradiction"
    assert spontaneous_flaw("The problem's premise is flawed.")[0] == "unspecified"
    assert spontaneous_flaw("The question rests on a false premise.")[0] == "impossible"
    assert unparsed(parse_premise("I like apples.", "p", hint=False))


# -- SelfEvalCritic ---------------------------------------------------------------------------
class LogprobModel:
    """A fake engine that answers with chosen token logprobs."""

    name = "fake-logprobs"

    def __init__(self, logprobs: tuple[TokenLogprob, ...] | None, text: str = "(A)") -> None:
        self.logprobs, self.text = logprobs, text
        self.requests: list[tuple[Sequence[Message], GenerateConfig]] = []

    async def generate(self, messages: Sequence[Message], config: GenerateConfig
                       ) -> list[Generation]:
        self.requests.append((messages, config))
        return [Generation(self.text, self.logprobs, Usage(10, 1, 1))]


def pos(token: str, *top: tuple[str, float]) -> TokenLogprob:
    return TokenLogprob(token, math.log(dict(top).get(token, 0.5)),
                        tuple((t, math.log(p)) for t, p in top))


SELFEVAL_PROMPT = """Question: Tom has 3 bags of 4 apples. How many apples?
Here are some brainstormed answers:
- 7
- 12
Proposed answer: 12
Is the proposed answer:
 (A) True
 (B) False
The proposed answer is:
"""


async def test_selfeval_prompt_and_normalisation():
    model = LogprobModel((pos(" A", (" A", 0.5), ("A", 0.1), (" B", 0.2), ("C", 0.2)),))
    problem = Problem("p", PROBLEM.question, metadata={"other_answers": ["7", "12"]})
    c = await SelfEvalCritic(model).critique(problem, SOLUTION)
    (messages, config), = model.requests
    assert [m.content for m in messages] == [SELFEVAL_PROMPT]
    assert config.logprobs and config.top_logprobs == 10 and config.temperature == 0.0
    assert c.parsed and c.critic == "selfeval" and c.score == pytest.approx(0.75)
    assert c.verdict == "correct" and c.first_error is None and c.usage.calls == 1
    assert [s.verdict for s in c.steps] == ["unknown", "unknown"]
    assert "Here are some" not in SelfEvalCritic(model).messages(PROBLEM, SOLUTION)[0].content


def test_selfeval_token_mapping():
    assert [option_of(t) for t in (" A", "A", "(A", "A)", "**A", " True", "true", "b", " (B",
                                   "False", "Answer", "C", "")] == \
        ["A", "A", "A", "A", "A", "A", "A", "B", "B", "B", None, None, None]
    # True/False words count with the letters
    assert p_true((pos("True", ("True", 0.3), ("(", 0.4), ("False", 0.1), (" B", 0.2)),)) == \
        pytest.approx(0.3 / 0.6)
    # a content-free "(" without options is skipped; the next position decides
    assert p_true((pos("(", ("(", 0.9), ("The", 0.1)),
                   pos("B", ("B", 0.6), ("A", 0.2), ("C", 0.2)))) == pytest.approx(0.25)
    # only one option listed: it takes all the mass
    assert p_true((pos("A", ("A", 0.4), ("C", 0.1)),)) == 1.0
    # a content token without options ends the search
    assert p_true((pos("The", ("The", 0.9)), pos("A", ("A", 0.9), ("B", 0.1)))) is None


async def test_selfeval_unparsed():
    c = await SelfEvalCritic(LogprobModel((pos("The", ("The", 0.6), ("It", 0.4)),), "The")
                             ).critique(PROBLEM, SOLUTION)
    assert unparsed(c) and c.raw == "The" and "neither" in c.feedback
    c = await SelfEvalCritic(LogprobModel(None)).critique(PROBLEM, SOLUTION)
    assert unparsed(c) and "no logprobs" in c.feedback
    c = await SelfEvalCritic(LogprobModel((pos(" B", (" B", 0.9), (" A", 0.1)),))
                             ).critique(PROBLEM, SOLUTION)
    assert c.verdict == "incorrect" and c.score == pytest.approx(0.1)


# -- the embedded model, end to end -----------------------------------------------------------
def well_formed(c: Critique, name: str, n_steps: int) -> None:
    assert c.critic == name and c.usage.calls >= 1 and c.raw
    assert c.parsed or (c.verdict is None and c.first_error is None)
    assert c.verdict in (None, "correct", "incorrect")
    assert c.first_error is None or 0 <= c.first_error < n_steps
    assert c.score is None or 0.0 <= c.score <= 1.0
    assert Critique.from_dict(c.to_dict()) == c


@pytest.mark.slow
async def test_lm_critics_on_the_embedded_model(embedded_model):
    cfg = GenerateConfig(max_tokens=32)
    critics = [DeliberateCritic(embedded_model, config=cfg),
               PrinciplesCritic(embedded_model, config=cfg),
               RubricCritic(embedded_model, config=cfg),
               PremiseCritic(embedded_model, config=cfg),
               PremiseCritic(embedded_model, hint=False, config=cfg)]
    for critic in critics:
        c = await critic.critique(PROBLEM, SOLUTION)
        well_formed(c, critic.name, 2)
        if critic.name == "rubric" and c.parsed:
            assert len(c.steps) == 4


@pytest.mark.slow
async def test_principles_score_on_the_embedded_model(embedded_model):
    """The score is the sum of the kept critiques' 1-10 scores (seeded, so reproducible)."""
    critic = PrinciplesCritic(embedded_model, meta_judge=embedded_model,
                              config=GenerateConfig(max_tokens=32, seed=3))
    total = await critic.score(PROBLEM, SOLUTION, 2)
    kept = await critic.keep(PROBLEM, SOLUTION, await critic.sample(PROBLEM, SOLUTION, 2))
    assert all(c.parsed and c.score is not None for c in kept)
    assert total == sum(round(c.score * 10) for c in kept)
    assert total == int(total) and (total == 0 or len(kept) <= total <= 10 * len(kept))


@pytest.mark.slow
async def test_selfeval_on_the_embedded_model(embedded_model):
    critic = SelfEvalCritic(embedded_model)
    right = await critic.critique(PROBLEM, SOLUTION)
    wrong = await critic.critique(PROBLEM, Solution(("3 + 4 = 7", "The answer is 7.")))
    for c in (right, wrong):
        well_formed(c, "selfeval", 2)
        assert c.parsed and c.score is not None and 0.0 <= c.score <= 1.0
        assert c.verdict == ("correct" if c.score >= 0.5 else "incorrect")
