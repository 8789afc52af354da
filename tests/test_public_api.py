"""What a user imports from ``criticlab`` itself: every public name resolves, the heavier
ones only on first use, and the critics a user builds work from there."""

import json

import pytest

import criticlab
from criticlab.models.scripted import ScriptedModel
from tests.plugins import run

LAZY = ("criticlab.data", "criticlab.critics.arithmetic", "criticlab.critics.prompted",
        "criticlab.critics.ensemble", "criticlab.critics.code", "criticlab.critics.prm",
        "criticlab.critics.selfeval", "criticlab.critics.template", "criticlab.models.spec")


def test_every_public_name_resolves_and_is_listed():
    assert len(criticlab.__all__) == len(set(criticlab.__all__)) == 48
    for name in criticlab.__all__:
        assert getattr(criticlab, name) is not None, name
    assert set(criticlab.__all__) <= set(dir(criticlab))
    assert criticlab.PromptedCritic.__module__ == "criticlab.critics.prompted"
    assert criticlab.load_benchmark.__module__ == "criticlab.data"
    with pytest.raises(AttributeError, match=r"^module 'criticlab' has no attribute 'Nope'$"):
        criticlab.Nope  # noqa: B018


def test_import_criticlab_leaves_the_critics_and_loaders_unimported(tmp_path):
    p = run(None, "-c", "import json, sys, criticlab\n"
            f"print(json.dumps([m for m in {list(LAZY)!r} if m in sys.modules]))\n"
            "criticlab.ArithmeticCritic, criticlab.load_benchmark\n"
            f"print(json.dumps([m for m in {list(LAZY)!r} if m in sys.modules]))",
            tmp_path=tmp_path)
    before, after = (json.loads(line) for line in p.stdout.splitlines())
    assert before == [], p.stderr
    assert {"criticlab.data", "criticlab.critics.arithmetic"} <= set(after)


def test_evaluate_is_the_function_whatever_the_import_order(tmp_path):
    p = run(None, "-c", "from criticlab.evaluate import EvalConfig\n"
            "import criticlab.evaluate\nimport criticlab\n"
            "from criticlab import evaluate\n"
            "print(criticlab.evaluate is evaluate, callable(evaluate), evaluate.__module__, "
            "criticlab.EvalConfig is EvalConfig)", tmp_path=tmp_path)
    assert p.stdout == "True True criticlab.evaluate True\n", p.stderr


def test_the_critics_a_user_builds_from_the_top_level(tmp_path):
    from criticlab import (
        ArithmeticCritic,
        EvalConfig,
        Example,
        Gold,
        HybridCritic,
        Problem,
        PromptedCritic,
        Solution,
        VoteCritic,
        critique_sync,
        evaluate,
    )

    problem, slip = Problem("p", "What is 3 * 4 + 1?"), Solution(("3 * 4 = 13", "13 + 1 = 14"))
    lm = PromptedCritic(ScriptedModel([r"\boxed{-1}"], cycle=True), "processbench")
    hybrid = critique_sync(HybridCritic([ArithmeticCritic()], lm), problem, slip)
    assert (hybrid.critic, hybrid.first_error) == ("hybrid(arithmetic+processbench)", 0)
    assert hybrid.steps[0].explanation.startswith("[arithmetic]")
    vote = critique_sync(VoteCritic([lm], 3), problem, slip)
    assert (vote.critic, vote.verdict, vote.score) == ("vote(processbench@3)", "correct", 1.0)
    run = evaluate(EvalConfig(benchmark="mine", out=tmp_path / "run", critic="arithmetic"),
                   examples=[Example(problem, slip, Gold(first_error=0))])
    assert run.metrics["processbench"]["all"]["acc_err"] == 100.0
