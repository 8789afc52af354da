"""Structured critic output (``structured=True``): each style's JSON schema, the request that
carries it, the reader of a reply that follows it, and the replies that do not (a server that
ignored the schema): never "correct", always ``parsed=False`` with a one-line reason."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from criticlab.critics import prompted
from criticlab.critics.deliberate import DeliberateCritic, parse_deliberate
from criticlab.critics.parsing import (
    MARGIN_TOKENS,
    MIN_CHARS,
    char_limit,
    critique_from_index,
    parse_stepwise,
    processbench_schema,
    skeleton,
    stepwise_schema,
)
from criticlab.critics.premise import PremiseCritic, parse_premise
from criticlab.critics.principles import PrinciplesCritic, parse_principles
from criticlab.critics.prompted import PromptedCritic, Style
from criticlab.critics.rubric import ULTRAFEEDBACK, Aspect, RubricCritic, parse_rubric
from criticlab.critics.selfeval import SELFEVAL_SCHEMA, SelfEvalCritic
from criticlab.critics.template import TemplateCritic
from criticlab.errors import ConfigError
from criticlab.models.base import (
    GenerateConfig,
    Generation,
    LanguageModel,
    Message,
    TokenLogprob,
    schema_text,
)
from criticlab.models.scripted import ScriptedModel
from criticlab.registry import make_critic
from criticlab.steps import render_numbered
from criticlab.types import Critique, Problem, Solution, Usage

PROBLEM = Problem("p", "Ann buys 5 pens at 3 dollars each and a 4 dollar notebook. What does "
                       "she pay?")
SOLUTION = Solution(("5 * 3 = 15 dollars for the pens.", "15 + 4 = 20 dollars in all.",
                     "She pays 20 dollars."))


def same(a: Critique, b: Critique) -> None:
    """The fields a free-text parser and a JSON reader must agree on."""
    assert (a.parsed, a.steps, a.first_error, a.verdict, a.feedback, a.score) == (
        b.parsed, b.steps, b.first_error, b.verdict, b.feedback, b.score)


def unparsed(c: Critique, *words: str) -> None:
    assert not c.parsed and c.verdict is None and c.first_error is None and c.score is None
    assert c.feedback.startswith("unparsed: ") and "\n" not in c.feedback
    for w in words:
        assert w in c.feedback


async def critique(critic: TemplateCritic, reply: str | dict[str, Any],
                   solution: Solution = SOLUTION) -> tuple[Critique, Message, GenerateConfig]:
    text = reply if isinstance(reply, str) else json.dumps(reply)
    critic.model = ScriptedModel([text])
    c = await critic.critique(PROBLEM, solution)
    assert isinstance(critic.model, ScriptedModel)
    ((message,), config), = critic.model.requests
    return c, message, config


# -- the length rule ----------------------------------------------------------------------------
def test_char_limit():
    # what is left after the skeleton (2 characters a token) and the margin, a token a character
    assert char_limit(1024) == 1024 - MARGIN_TOKENS
    assert char_limit(320, 1, 33) == 320 - MARGIN_TOKENS - 17
    assert char_limit(1024, 3, 136) == (1024 - MARGIN_TOKENS - 68) // 3
    assert char_limit(100, 10, 200) == MIN_CHARS  # never under the floor


def test_skeleton_is_the_longest_reply_with_empty_strings():
    longest = {"steps": [{"reason": "", "verdict": "incorrect"}] * 3, "first_error": -1}
    assert skeleton(stepwise_schema(3, 1024)) == (len(schema_text(longest)), 3)
    assert skeleton(processbench_schema(3, 1024)) == (
        len(schema_text({"reasoning": "", "first_error": -1})), 1)


def schema_of(name: str, n: int, max_tokens: int) -> dict[str, Any]:
    steps = Solution(tuple(f"step {i}" for i in range(n)))
    return critic_of(name, ScriptedModel(["x"]), max_tokens).schema(PROBLEM, steps) or {}


def strings(schema: Any) -> list[int]:
    """The maxLength of every string a reply holds (an array's items counted per item)."""
    if not isinstance(schema, dict):
        return []
    if schema.get("type") == "string":
        return [schema["maxLength"]]
    if schema.get("type") == "array":
        return strings(schema["items"]) * schema["maxItems"]
    return [m for v in schema.get("properties", {}).values() for m in strings(v)]


@pytest.mark.parametrize("name", ["processbench", "stepwise", "deliberate", "principles",
                                  "rubric", "premise", "premise-nohint"])
@pytest.mark.parametrize("n", [1, 3, 8])
@pytest.mark.parametrize("max_tokens", [256, 1024, 4096])
def test_a_degenerate_reply_still_closes_its_json(name, n, max_tokens):
    # a token per character of text, two characters a token of the skeleton: within budget
    schema = schema_of(name, n, max_tokens)
    lengths = strings(schema)
    assert lengths and len(set(lengths)) == 1  # the texts share equally
    if lengths[0] > MIN_CHARS:
        chars, count = skeleton(schema)
        assert count == len(lengths)
        assert sum(lengths) + math.ceil(chars / 2) + MARGIN_TOKENS <= max_tokens


# -- processbench -------------------------------------------------------------------------------
PB_SCHEMA = {"type": "object",
             "properties": {"reasoning": {"type": "string", "maxLength": 991},
                            "first_error": {"enum": [-1, 0, 1, 2]}},
             "required": ["reasoning", "first_error"], "additionalProperties": False}


def pb() -> PromptedCritic:
    return PromptedCritic(ScriptedModel([]), "processbench", structured=True)


async def test_processbench_schema_request_and_reply():
    critic = pb()
    assert critic.schema(PROBLEM, SOLUTION) == PB_SCHEMA
    reply = {"reasoning": "Paragraph 1 adds 15 + 4 and gets 20, not 19.", "first_error": 1}
    c, message, config = await critique(critic, reply)
    assert config.json_schema == schema_text(PB_SCHEMA) and config.stop == ()
    assert message.content.endswith("\n" + schema_text(PB_SCHEMA))
    assert "\\boxed{} goes in first_error" in message.content
    want = critique_from_index(1, 3, reply["reasoning"], "processbench")
    same(c, want)
    assert c.raw == json.dumps(reply) and c.feedback == reply["reasoning"]
    assert c.usage.calls == 1


async def test_processbench_no_error():
    c, _, _ = await critique(pb(), {"reasoning": "All fine.", "first_error": -1})
    same(c, critique_from_index(-1, 3, "All fine.", "processbench"))
    assert c.verdict == "correct"


@pytest.mark.parametrize("index", [3, -2, True, "1", 1.5])
async def test_processbench_index_out_of_the_schema(index):
    assert PB_SCHEMA["properties"]["first_error"]["enum"] == [-1, 0, 1, 2]
    c, _, _ = await critique(pb(), {"reasoning": "x", "first_error": index})
    unparsed(c, "first_error")


@pytest.mark.parametrize("reply", [
    {"reasoning": "x"},                                      # missing field
    {"reasoning": "x", "first_error": 1, "verdict": "no"},   # extra field
    {"reasoning": 3, "first_error": 1},                      # wrong type
    "[1, 2]",                                                # not an object
    r"The error is in paragraph 1. \boxed{1}",               # free text
    '{"reasoning": "x", "first_error":',                     # cut off
])
async def test_processbench_structured_unparsed(reply):
    c, _, _ = await critique(pb(), reply)
    unparsed(c)


async def test_processbench_free_text_mode_reads_both():
    critic = PromptedCritic(ScriptedModel([]), "processbench")
    c, message, config = await critique(critic, r"Paragraph 1 is wrong. \boxed{1}")
    assert c.parsed and c.first_error == 1
    assert config.json_schema is None and "JSON" not in message.content
    c, _, _ = await critique(critic, {"reasoning": "Paragraph 1 is wrong.", "first_error": 1})
    assert c.parsed and c.first_error == 1 and c.verdict == "incorrect"
    c, _, _ = await critique(critic, '```json\n{"reasoning": "ok", "first_error": -1}\n```')
    assert c.parsed and c.verdict == "correct"
    c, _, _ = await critique(critic, {"reasoning": "x", "first_error": 7})
    unparsed(c, "first_error")


# -- stepwise -----------------------------------------------------------------------------------
SW_ITEM = {"type": "object",
           "properties": {"reason": {"type": "string", "maxLength": 313},
                          "verdict": {"enum": ["correct", "incorrect"]}},
           "required": ["reason", "verdict"], "additionalProperties": False}
SW_SCHEMA = {"type": "object",
             "properties": {"steps": {"type": "array", "items": SW_ITEM, "minItems": 3,
                                      "maxItems": 3},
                            "first_error": {"enum": [-1, 0, 1, 2]}},
             "required": ["steps", "first_error"], "additionalProperties": False}
SW_REPLY = {"steps": [{"reason": "5 * 3 = 15 is right.", "verdict": "correct"},
                      {"reason": "15 + 4 is 19, not 20.", "verdict": "incorrect"},
                      {"reason": "It repeats the wrong total.", "verdict": "correct"}],
            "first_error": 1}
SW_TEXT = """Step 1: correct - 5 * 3 = 15 is right.
Step 2: incorrect - 15 + 4 is 19, not 20.
Step 3: correct - It repeats the wrong total.
Overall: incorrect"""


def sw() -> PromptedCritic:
    return PromptedCritic(ScriptedModel([]), "stepwise", structured=True)


async def test_stepwise_schema_request_and_reply():
    critic = sw()
    assert critic.schema(PROBLEM, SOLUTION) == SW_SCHEMA
    c, message, config = await critique(critic, SW_REPLY)
    assert config.json_schema == schema_text(SW_SCHEMA)
    assert config.stop == ()  # free text stops at "\nStep 4:"; a grammar needs no stop
    assert PromptedCritic(ScriptedModel([]), "stepwise").stop(3) == ("\nStep 4:",)
    assert message.content.endswith("\n" + schema_text(SW_SCHEMA))
    assert "first_error is the index of the first incorrect step counted from 0" in (
        message.content)
    same(c, parse_stepwise(SW_TEXT, 3, "stepwise"))
    assert c.first_error == 1 and c.verdict == "incorrect"
    assert c.feedback == "Step 2: 15 + 4 is 19, not 20."


async def test_stepwise_all_correct():
    reply = {"steps": [{"reason": "fine", "verdict": "correct"}] * 3, "first_error": -1}
    c, _, _ = await critique(sw(), reply)
    text = "Step 1: correct - fine\nStep 2: correct - fine\nStep 3: correct - fine\nOverall: correct"
    same(c, parse_stepwise(text, 3, "stepwise"))
    assert c.verdict == "correct" and c.first_error is None


async def test_stepwise_first_error_against_the_verdicts():
    # -1 beside a step marked incorrect: the steps decide, never "correct"
    c, _, _ = await critique(sw(), {**SW_REPLY, "first_error": -1})
    assert c.parsed and c.verdict == "incorrect" and c.first_error == 1
    assert c.feedback == "Step 2: 15 + 4 is 19, not 20. (first_error was -1; the step verdicts decide)"
    # another step than the first marked incorrect (a 1-based count): the steps decide
    c, _, _ = await critique(sw(), {**SW_REPLY, "first_error": 2})
    assert c.first_error == 1 and c.verdict == "incorrect" and "was 2" in c.feedback
    # a step named while every step is marked correct: "Overall: incorrect" with no step
    reply = {"steps": [{"reason": "fine", "verdict": "correct"}] * 3, "first_error": 2}
    c, _, _ = await critique(sw(), reply)
    text = "Step 1: correct - fine\nStep 2: correct - fine\nStep 3: correct - fine\nOverall: incorrect"
    same(c, parse_stepwise(text, 3, "stepwise"))
    assert c.verdict == "incorrect" and c.first_error is None


@pytest.mark.parametrize("reply,where", [
    ({**SW_REPLY, "steps": SW_REPLY["steps"][:2]}, "steps"),                    # 2 of 3
    ({**SW_REPLY, "steps": [*SW_REPLY["steps"], SW_REPLY["steps"][0]]}, "steps"),  # 4 of 3
    ({**SW_REPLY, "steps": [{"reason": "?", "verdict": "maybe"}, *SW_REPLY["steps"][1:]]},
     "steps/0/verdict"),
    ({**SW_REPLY, "steps": [{"verdict": "correct"}, *SW_REPLY["steps"][1:]]}, "steps/0"),
    ({**SW_REPLY, "steps": [{**SW_REPLY["steps"][0], "score": 1}, *SW_REPLY["steps"][1:]]},
     "steps/0"),
    ({"steps": SW_REPLY["steps"]}, "first_error"),
    ({**SW_REPLY, "overall": "incorrect"}, "overall"),
    ({**SW_REPLY, "first_error": 3}, "first_error"),
])
async def test_stepwise_replies_outside_the_schema(reply, where):
    c, _, _ = await critique(sw(), reply)
    unparsed(c, where)


async def test_stepwise_structured_needs_json_and_free_text_mode_reads_it():
    c, _, _ = await critique(sw(), SW_TEXT)
    unparsed(c, "no JSON")
    free = PromptedCritic(ScriptedModel([]), "stepwise")
    c, _, config = await critique(free, SW_REPLY)
    same(c, parse_stepwise(SW_TEXT, 3, "stepwise"))
    assert config.stop == ("\nStep 4:",) and config.json_schema is None
    c, _, _ = await critique(free, SW_TEXT)
    same(c, parse_stepwise(SW_TEXT, 3, "stepwise"))


async def test_votes_sample_with_the_schema_too():
    critic = sw()
    critic.model = ScriptedModel([json.dumps(SW_REPLY)], cycle=True)
    crits = await critic.sample(PROBLEM, SOLUTION, 3)
    assert [c.first_error for c in crits] == [1, 1, 1]
    assert isinstance(critic.model, ScriptedModel)
    (_, config), = critic.model.requests
    assert config.n == 3 and config.json_schema == schema_text(SW_SCHEMA)


# -- deliberate ---------------------------------------------------------------------------------
DL_REPLY = {"steps": [{"checks": "Re-derive: 15. Numbers check: fine.", "judgement": "correct"},
                      {"checks": "Re-derive: 15 + 4 = 19.", "judgement": "incorrect"},
                      {"checks": "Follows step 2.", "judgement": "correct"}],
            "meta_critique": "Step 2 is wrong; step 3 only repeats it.",
            "final_verdict": "incorrect", "first_error": "Step 2"}


def dl_text(reply: dict[str, Any]) -> str:
    blocks = [f"Step {i}:\n{s['checks']}\nJudgement: {s['judgement']}"
              for i, s in enumerate(reply["steps"], start=1)]
    return "\n".join([*blocks, f"Meta-critique: {reply['meta_critique']}",
                      f"Final verdict: {reply['final_verdict']}",
                      f"First error: {reply['first_error']}"])


async def test_deliberate_schema_and_reply():
    critic = DeliberateCritic(ScriptedModel([]), structured=True)
    schema = critic.schema(PROBLEM, SOLUTION) or {}
    assert list(schema["properties"]) == ["steps", "meta_critique", "final_verdict",
                                          "first_error"]
    steps = schema["properties"]["steps"]
    assert (steps["minItems"], steps["maxItems"]) == (3, 3)
    assert list(steps["items"]["properties"]) == ["checks", "judgement"]
    assert schema["properties"]["first_error"] == {"enum": ["none", "Step 1", "Step 2",
                                                            "Step 3"]}
    c, message, config = await critique(critic, DL_REPLY)
    assert config.json_schema == schema_text(schema) and config.stop == ()
    assert message.content.endswith(schema_text(schema))
    same(c, parse_deliberate(dl_text(DL_REPLY), 3, "deliberate"))
    assert c.first_error == 1 and c.verdict == "incorrect"
    assert c.steps[1].explanation == "Re-derive: 15 + 4 = 19."


@pytest.mark.parametrize("final,first", [("correct", "none"), ("correct", "Step 3"),
                                         ("incorrect", "none"), ("incorrect", "Step 1")])
async def test_deliberate_final_lines_win_as_in_the_text(final, first):
    reply = {**DL_REPLY, "final_verdict": final, "first_error": first}
    c, _, _ = await critique(DeliberateCritic(ScriptedModel([]), structured=True), reply)
    same(c, parse_deliberate(dl_text(reply), 3, "deliberate"))


async def test_deliberate_outside_the_schema():
    critic = DeliberateCritic(ScriptedModel([]), structured=True)
    c, _, _ = await critique(critic, {**DL_REPLY, "first_error": "Step 4"})
    unparsed(c, "first_error")
    c, _, _ = await critique(critic, {**DL_REPLY, "first_error": 2})
    unparsed(c, "first_error")


# -- principles ---------------------------------------------------------------------------------
PR_REPLY = {"principles": "1. Add the prices correctly.", "critique": "The sum is wrong.",
            "first_error": "Step 2", "score": 3}


def pr_text(reply: dict[str, Any]) -> str:
    return (f"Principles:\n{reply['principles']}\nCritique: {reply['critique']}\n"
            f"First error: {reply['first_error']}\nScore: {reply['score']}")


async def test_principles_schema_and_reply():
    critic = PrinciplesCritic(ScriptedModel([]), structured=True)
    schema = critic.schema(PROBLEM, SOLUTION) or {}
    assert list(schema["properties"]) == ["principles", "critique", "first_error", "score"]
    assert schema["properties"]["score"] == {"enum": list(range(1, 11))}
    c, message, config = await critique(critic, PR_REPLY)
    assert config.json_schema == schema_text(schema) and message.content.endswith(
        schema_text(schema))
    same(c, parse_principles(pr_text(PR_REPLY), 3, "principles"))
    assert c.first_error == 1 and c.score == pytest.approx(0.3) and c.verdict == "incorrect"


@pytest.mark.parametrize("score,first", [(9, "none"), (8, "Step 2"), (5, "none")])
async def test_principles_as_the_text_reads(score, first):
    reply = {**PR_REPLY, "score": score, "first_error": first}
    c, _, _ = await critique(PrinciplesCritic(ScriptedModel([]), structured=True), reply)
    same(c, parse_principles(pr_text(reply), 3, "principles"))


@pytest.mark.parametrize("bad", [{"score": 11}, {"score": 0}, {"score": 7.5},
                                 {"first_error": "Step 0"}])
async def test_principles_outside_the_schema(bad):
    c, _, _ = await critique(PrinciplesCritic(ScriptedModel([]), structured=True),
                             {**PR_REPLY, **bad})
    unparsed(c, next(iter(bad)))


# -- rubric -------------------------------------------------------------------------------------
ASPECTS = (Aspect("accuracy", "Is it right?", 10), Aspect("tone", "Is it polite?"))


async def test_rubric_schema_and_reply():
    critic = RubricCritic(ScriptedModel([]), ASPECTS, structured=True)
    schema = critic.schema(PROBLEM, SOLUTION) or {}
    aspects = schema["properties"]["aspects"]
    assert aspects["required"] == ["accuracy", "tone"]
    assert aspects["properties"]["accuracy"]["properties"]["rating"] == {
        "enum": list(range(1, 11))}
    assert aspects["properties"]["tone"]["properties"]["rating"] == {"enum": [1, 2, 3, 4, 5]}
    reply = {"aspects": {"accuracy": {"critique": "The total is off.", "rating": 4},
                         "tone": {"critique": "Polite.", "rating": 5}}, "risks": ""}
    c, message, config = await critique(critic, reply)
    assert config.json_schema == schema_text(schema) and message.content.endswith(
        schema_text(schema))
    text = ("Aspect: accuracy\nCritique: The total is off.\nRating: 4\n"
            "Aspect: tone\nCritique: Polite.\nRating: 5")
    same(c, parse_rubric(text, ASPECTS, "rubric"))
    assert c.verdict == "incorrect" and c.first_error == 0
    c, _, _ = await critique(critic, {**reply, "risks": "none really"})
    same(c, parse_rubric(text + "\nRisks: none really", ASPECTS, "rubric"))


async def test_rubric_outside_the_schema():
    critic = RubricCritic(ScriptedModel([]), ASPECTS, structured=True)
    ok = {"critique": "x", "rating": 5}
    c, _, _ = await critique(critic, {"aspects": {"accuracy": ok, "tone": {"critique": "x",
                                                                          "rating": 6}},
                                      "risks": ""})
    unparsed(c, "aspects/tone/rating")
    c, _, _ = await critique(critic, {"aspects": {"accuracy": ok}, "risks": ""})
    unparsed(c, "tone")


def test_rubric_needs_distinct_names_to_be_structured():
    with pytest.raises(ConfigError):
        RubricCritic(ScriptedModel([]), (Aspect("a"), Aspect("a")), structured=True)
    RubricCritic(ScriptedModel([]), (Aspect("a"), Aspect("a")))
    assert RubricCritic(ScriptedModel([]), structured=True).aspects == ULTRAFEEDBACK


# -- premise ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,verdict,text", [
    ("contradiction", "incorrect", "Premise: flawed\nFlaw type: contradiction\n"
                                   "Explanation: why\nVerdict: incorrect"),
    ("missing", "correct", "Premise: flawed\nFlaw type: missing\nExplanation: why\n"
                           "Verdict: correct"),
    ("none", "incorrect", "Premise: valid\nFlaw type: none\nExplanation: why\n"
                          "Verdict: incorrect"),
    ("none", "correct", "Premise: valid\nFlaw type: none\nExplanation: why\nVerdict: correct"),
])
async def test_premise_hint(kind, verdict, text):
    critic = PremiseCritic(ScriptedModel([]), structured=True)
    schema = critic.schema(PROBLEM, SOLUTION) or {}
    assert list(schema["properties"]) == ["flaw_type", "explanation", "verdict"]
    c, message, config = await critique(critic, {"flaw_type": kind, "explanation": "why",
                                                 "verdict": verdict})
    assert config.json_schema == schema_text(schema) and message.content.endswith(
        schema_text(schema))
    same(c, PremiseCritic(ScriptedModel([])).parse(text, PROBLEM, SOLUTION))
    assert c.critic == "premise" and len(c.steps) == 3
    if kind != "none":
        assert c.verdict == "incorrect" and c.score == 0.0


@pytest.mark.parametrize("evaluation", ["The solution adds wrongly.",
                                        "The problem is contradictory: 5 pens cost 3 each."])
async def test_premise_nohint(evaluation):
    critic = PremiseCritic(ScriptedModel([]), hint=False, structured=True)
    schema = critic.schema(PROBLEM, SOLUTION) or {}
    assert list(schema["properties"]) == ["evaluation", "verdict"]
    c, _, _ = await critique(critic, {"evaluation": evaluation, "verdict": "correct"})
    text = f"Evaluation: {evaluation}\nVerdict: correct"
    same(c, PremiseCritic(ScriptedModel([]), hint=False).parse(text, PROBLEM, SOLUTION))
    assert c.critic == "premise-nohint"
    assert parse_premise(text, "x", hint=False).verdict == c.verdict


async def test_premise_outside_the_schema():
    c, _, _ = await critique(PremiseCritic(ScriptedModel([]), structured=True),
                             {"flaw_type": "odd", "explanation": "x", "verdict": "correct"})
    unparsed(c, "flaw_type")


# -- selfeval -----------------------------------------------------------------------------------
class LogprobModel:
    """An engine that answers one text with the given token logprobs."""

    name = "fake-logprobs"

    def __init__(self, text: str, logprobs: tuple[TokenLogprob, ...] | None) -> None:
        self.text, self.logprobs = text, logprobs
        self.requests: list[tuple[Sequence[Message], GenerateConfig]] = []

    async def generate(self, messages: Sequence[Message], config: GenerateConfig
                       ) -> list[Generation]:
        self.requests.append((messages, config))
        return [Generation(self.text, self.logprobs, Usage(10, 6, 1))]


def pos(token: str, *top: tuple[str, float]) -> TokenLogprob:
    return TokenLogprob(token, math.log(dict(top).get(token, 0.9)),
                        tuple((t, math.log(p)) for t, p in top))


ANSWER = (pos('{"'), pos("answer"), pos('":"'), pos("True", ("True", 0.6), ("False", 0.2),
                                                   ("Tr", 0.1)), pos('"}'))


async def selfeval(text: str, logprobs: tuple[TokenLogprob, ...] | None,
                   structured: bool = True) -> tuple[Critique, GenerateConfig, str]:
    model = LogprobModel(text, logprobs)
    c = await SelfEvalCritic(model, structured=structured).critique(PROBLEM, SOLUTION)
    ((message,), config), = model.requests
    return c, config, message.content


async def test_selfeval_reads_p_true_at_the_answer():
    c, config, prompt = await selfeval('{"answer":"True"}', ANSWER)
    assert SELFEVAL_SCHEMA == {"type": "object",
                               "properties": {"answer": {"enum": ["True", "False"]}},
                               "required": ["answer"], "additionalProperties": False}
    assert config.json_schema == schema_text(SELFEVAL_SCHEMA) and config.stop == ()
    assert config.logprobs and config.max_tokens >= 16
    assert prompt.endswith(schema_text(SELFEVAL_SCHEMA)) and "True for (A)" in prompt
    assert c.parsed and c.score == pytest.approx(0.75) and c.verdict == "correct"
    assert c.feedback == "P(True) = 0.750" and c.usage.calls == 1 and len(c.steps) == 3


async def test_selfeval_the_answer_token_may_carry_json():
    lp = (pos("{"), pos(' "answer'), pos('": '), pos('"False', ('"False', 0.8), ('"True', 0.2)),
          pos('"}'))
    c, _, _ = await selfeval('{ "answer": "False"}', lp)
    assert c.score == pytest.approx(0.2) and c.verdict == "incorrect"
    c, _, _ = await selfeval('{"answer":"Tr', ANSWER[:4])  # cut off after the answer token
    assert c.parsed and c.score == pytest.approx(0.75)


async def test_selfeval_reads_the_answer_without_logprobs():
    c, _, _ = await selfeval('{"answer": "False"}', None)
    assert c.parsed and c.score == 0.0 and c.verdict == "incorrect"
    assert "no logprobs" in c.feedback
    lp = (*ANSWER[:3], pos("T", ("T", 0.9)), pos('rue"}'))
    c, _, _ = await selfeval('{"answer":"True"}', lp)
    assert c.parsed and c.score == 1.0 and "no option in the logprobs" in c.feedback


@pytest.mark.parametrize("text", ['{"answer": "Maybe"}', '{"answer": "True", "why": "x"}',
                                  "(A) True", '{"answer":'])
async def test_selfeval_structured_unparsed(text):
    c, _, _ = await selfeval(text, None)
    assert not c.parsed and c.score is None and c.verdict is None
    assert c.feedback.startswith("unparsed: ")


async def test_selfeval_free_text_unchanged_and_reads_json():
    c, config, prompt = await selfeval(" A", (pos(" A", (" A", 0.3), (" B", 0.1)),),
                                       structured=False)
    assert c.score == pytest.approx(0.75) and config.max_tokens == 3
    assert config.json_schema is None and "JSON" not in prompt
    c, _, _ = await selfeval('{"answer":"True"}', ANSWER, structured=False)
    assert c.parsed and c.score == pytest.approx(0.75)


# -- every style --------------------------------------------------------------------------------
REPLIES: dict[str, dict[str, Any]] = {
    "processbench": {"reasoning": "fine", "first_error": -1},
    "stepwise": {"steps": [{"reason": "ok", "verdict": "correct"}] * 3, "first_error": -1},
    "deliberate": {**DL_REPLY, "final_verdict": "correct", "first_error": "none"},
    "principles": {**PR_REPLY, "score": 9, "first_error": "none"},
    "rubric": {"aspects": {a.name: {"critique": "good", "rating": 5} for a in ULTRAFEEDBACK},
               "risks": ""},
    "premise": {"flaw_type": "none", "explanation": "fine", "verdict": "correct"},
    "premise-nohint": {"evaluation": "The sums are right.", "verdict": "correct"},
}


def critic_of(name: str, model: LanguageModel, max_tokens: int = 1024,
              structured: bool = True) -> TemplateCritic:
    config = GenerateConfig(temperature=0.0, max_tokens=max_tokens)
    kw: dict[str, Any] = {"config": config, "structured": structured}
    builders: dict[str, Callable[[], TemplateCritic]] = {
        "processbench": lambda: PromptedCritic(model, "processbench", **kw),
        "stepwise": lambda: PromptedCritic(model, "stepwise", **kw),
        "deliberate": lambda: DeliberateCritic(model, **kw),
        "principles": lambda: PrinciplesCritic(model, **kw),
        "rubric": lambda: RubricCritic(model, **kw),
        "premise": lambda: PremiseCritic(model, **kw),
        "premise-nohint": lambda: PremiseCritic(model, hint=False, **kw),
    }
    return builders[name]()


@pytest.mark.parametrize("name", REPLIES)
async def test_every_style_sends_its_schema_and_reads_a_correct_reply(name):
    critic = critic_of(name, ScriptedModel([]), 700)
    schema = critic.schema(PROBLEM, SOLUTION) or {}
    c, message, config = await critique(critic, REPLIES[name])
    assert config.json_schema == schema_text(schema) and config.stop == ()
    assert config.max_tokens == 700
    body = message.content
    assert body.endswith(f"{critic.structured_note()} Write only one JSON object that follows "
                         f"this JSON schema:\n{schema_text(schema)}")
    assert critic.structured_note() != TemplateCritic.structured_note(critic)
    assert c.parsed and c.verdict == "correct" and c.critic == name, c.feedback
    assert c.raw == json.dumps(REPLIES[name])
    # free text: the same critic sends the template alone, with its stop sequences
    free = critic_of(name, ScriptedModel([]), 700, structured=False)
    plain = free.messages(PROBLEM, SOLUTION)[0].content
    assert body.startswith(plain + "\n\n") and "JSON schema" not in plain
    c, _, config = await critique(free, REPLIES[name])  # a JSON reply is still read
    assert c.parsed and c.verdict == "correct" and config.json_schema is None
    assert config.stop == free.stop(3)


@pytest.mark.parametrize("name", [*REPLIES, "selfeval"])
def test_the_registry_builds_every_style_structured(name):
    critic = make_critic(name, lambda: ScriptedModel([]), structured=True)
    assert getattr(critic, "structured", None) is True


# -- refusals -----------------------------------------------------------------------------------
class NoSchema(TemplateCritic):
    name = "noschema"
    default_template = "stepwise.txt"


def test_a_critic_without_a_schema_refuses_structured():
    with pytest.raises(ConfigError, match="noschema"):
        NoSchema(ScriptedModel([]), structured=True)
    assert NoSchema(ScriptedModel([])).schema(PROBLEM, SOLUTION) is None


def test_a_style_without_a_schema_refuses_structured(monkeypatch):
    plain = Style("stepwise.txt", render_numbered, prompted.STYLES["stepwise"].parse)
    monkeypatch.setitem(prompted.STYLES, "plain", plain)
    with pytest.raises(ConfigError, match="plain"):
        PromptedCritic(ScriptedModel([]), "plain", structured=True)
    critic = PromptedCritic(ScriptedModel([]), "plain")
    assert critic.schema(PROBLEM, SOLUTION) is None
    c = critic.parse_reply(json.dumps(SW_REPLY), PROBLEM, SOLUTION)
    assert not c.parsed  # free text only: a JSON reply is text its parser cannot read
