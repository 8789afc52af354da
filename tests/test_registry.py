import pytest

from criticlab.errors import ConfigError
from criticlab.models.scripted import ScriptedModel
from criticlab.registry import check_model_spec, make_critic, uses_model


@pytest.mark.parametrize("spec,cls,name", [
    ("processbench", "PromptedCritic", "processbench"),
    ("prompted:stepwise", "PromptedCritic", "stepwise"),
    ("deliberate", "DeliberateCritic", "deliberate"),
    ("principles", "PrinciplesCritic", "principles"),
    ("rubric", "RubricCritic", "rubric"),
    ("premise", "PremiseCritic", "premise"),
    ("premise-nohint", "PremiseCritic", "premise-nohint"),
    ("selfeval", "SelfEvalCritic", "selfeval"),
    ("arithmetic", "ArithmeticCritic", "arithmetic"),
    ("code", "CodeCritic", "code"),
    ("constraints", "ConstraintCritic", "constraints"),
    ("hybrid", "HybridCritic", "hybrid(arithmetic+stepwise)"),
    ("arithmetic,stepwise", "VoteCritic", "vote(arithmetic+stepwise)"),
])
def test_every_named_critic_builds(spec, cls, name):
    c = make_critic(spec, lambda: ScriptedModel([]))
    assert type(c).__name__ == cls and c.name == name


def test_samples_wrap_lm_critics_in_a_vote():
    c = make_critic("deliberate", lambda: ScriptedModel([]), samples=4)
    assert c.name == "vote(deliberate@4)"


def test_unknown_names_and_model_need():
    with pytest.raises(ConfigError, match="unknown critic"):
        make_critic("oracle", lambda: ScriptedModel([]))
    with pytest.raises(ConfigError, match="unknown model"):
        check_model_spec("gpt9")
    assert not uses_model("arithmetic") and not uses_model("code") and uses_model("hybrid") and uses_model("selfeval")
