from criticlab.critics.prompted import PromptedCritic
from criticlab.models.scripted import ScriptedModel
from criticlab.types import Problem, Solution

PROBLEM = Problem("p", "Tom has 3 bags of 4 apples. How many apples?")
SOLUTION = Solution(("3 * 4 = 12", "The answer is 12."))

PB_PROMPT = r"""Below is a math problem and a proposed solution. The solution is divided into paragraphs, each wrapped in tags and numbered from 0.

[Problem]
Tom has 3 bags of 4 apples. How many apples?

[Solution]
<paragraph_0>
3 * 4 = 12
</paragraph_0>

<paragraph_1>
The answer is 12.
</paragraph_1>

Go through the solution one paragraph at a time and check each for mistakes in calculation, logic or use of the problem's facts. Find the earliest paragraph that contains an error and give its index. If no paragraph contains an error, give -1.

End your answer with the index inside \boxed{}, for example \boxed{2} or \boxed{-1}.
"""


async def test_processbench_golden_prompt_and_parse():
    model = ScriptedModel([r"Paragraph 0 is fine. \boxed{1}"])
    critic = PromptedCritic(model, "processbench")
    c = await critic.critique(PROBLEM, SOLUTION)
    (messages, config), = model.requests
    assert [m.role for m in messages] == ["user"]
    assert messages[0].content == PB_PROMPT
    assert config.temperature == 0.0 and config.n == 1
    assert c.first_error == 1 and c.verdict == "incorrect" and c.critic == "processbench"
    assert [s.verdict for s in c.steps] == ["correct", "incorrect"]
    assert c.usage.calls == 1 and c.usage.completion_tokens == 5


async def test_processbench_out_of_range_is_unparsed():
    c = await PromptedCritic(ScriptedModel([r"\boxed{5}"])).critique(PROBLEM, SOLUTION)
    assert not c.parsed and c.first_error is None and c.verdict is None


async def test_stepwise_prompt_numbers_from_one():
    model = ScriptedModel(["Step 1: correct - ok\nStep 2: correct - ok\nOverall: correct"])
    c = await PromptedCritic(model, "stepwise").critique(PROBLEM, SOLUTION)
    text = model.requests[0][0][0].content
    assert "Step 1: 3 * 4 = 12\nStep 2: The answer is 12." in text
    assert c.verdict == "correct"


async def test_sampling_uses_processbench_decoding():
    model = ScriptedModel([r"\boxed{-1}", r"\boxed{0}", "none"])
    cs = await PromptedCritic(model).sample(PROBLEM, SOLUTION, 3)
    cfg = model.requests[0][1]
    assert (cfg.n, cfg.temperature, cfg.top_p) == (3, 1.0, 0.9)
    assert [c.first_error for c in cs] == [None, 0, None] and [c.parsed for c in cs] == [
        True, True, False]


async def test_user_template(tmp_path):
    t = tmp_path / "t.txt"
    t.write_text(r"Q: {problem} S: {steps} \boxed{}", encoding="utf-8")
    model = ScriptedModel([r"\boxed{-1}"])
    await PromptedCritic(model, template=str(t)).critique(PROBLEM, SOLUTION)
    assert model.requests[0][0][0].content.startswith("Q: Tom has 3 bags")
    assert r"\boxed{}" in model.requests[0][0][0].content


def test_template_without_placeholders(tmp_path):
    import pytest

    from criticlab.errors import ConfigError
    t = tmp_path / "t.txt"
    t.write_text("just {problem}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"lacks \{steps\}"):
        PromptedCritic(ScriptedModel([]), template=str(t))
