"""The openai backend against a real OpenAI-compatible server: llama.cpp's server with the
embedded GGUF, started on 127.0.0.1 by the fixture."""

import json
import subprocess
import sys

import pytest

from criticlab.cache import CachedModel
from criticlab.critics.prompted import PromptedCritic
from criticlab.models.base import GenerateConfig, Message
from criticlab.models.openai import OpenAIModel
from criticlab.store import Store
from criticlab.types import Problem, Solution
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


async def test_generate_and_logprobs(llama_server):
    model = OpenAIModel("smollm2", base_url=llama_server)
    cfg = GenerateConfig(max_tokens=8, logprobs=True, top_logprobs=2)
    (g,) = await model.generate([Message("user", "Say hi.")], cfg)
    assert g.text and g.usage.calls == 1 and g.usage.prompt_tokens > 3
    assert g.logprobs and len(g.logprobs[0].top) == 2
    await model.aclose()


async def test_critique_parses_and_second_run_is_from_store(llama_server, tmp_path):
    problem = Problem("p", "Ann has 5 pens and buys 7 more. How many pens does she have?")
    solution = Solution(("5 + 7 = 12", "She has 12 pens."))
    with Store(tmp_path / "s.sqlite") as store:
        model = CachedModel(OpenAIModel("smollm2", base_url=llama_server), store)
        # stepwise: the tiny model follows its format (it cannot judge; it can answer in form)
        critic = PromptedCritic(model, "stepwise", config=GenerateConfig(max_tokens=128))
        first = await critic.critique(problem, solution)
        calls = model.stats.calls
        second = await critic.critique(problem, solution)
        await model.aclose()
    assert calls == 1 and model.stats.calls == 1 and model.stats.hits == 1
    assert first.raw and second.raw == first.raw
    assert first.parsed, first.raw
    assert len(first.steps) == 2 and first.critic == "stepwise"
    assert second.usage.cached == 1 and second.usage.calls == 0


def test_cli_against_the_server(llama_server, tmp_path):
    def run():
        return subprocess.run(
            [sys.executable, "-m", "criticlab", "critique", "examples/demo.json",
             "--critic", "hybrid", "--model", "openai:smollm2", "--base-url", llama_server,
             "--json"],
            capture_output=True, cwd=ROOT, timeout=600,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                 "CRITICLAB_STORE": str(tmp_path / "store.sqlite")},
        )

    p1, p2 = run(), run()
    assert p1.returncode == 0, p1.stderr.decode()
    (row,) = [json.loads(x) for x in p1.stdout.decode().splitlines()]
    crit = row["critique"]
    # the verifier finds the slip in step 3; the tiny LM may (wrongly) flag an earlier step
    assert crit["first_error"] is not None and crit["first_error"] <= 2
    assert crit["steps"][2]["verdict"] == "incorrect"
    assert crit["steps"][2]["explanation"].startswith('[arithmetic] "48 * 3 = 154" is wrong')
    assert "model calls: 1 (0 answered from the store)" in p1.stderr.decode()
    assert "model calls: 0 (1 answered from the store)" in p2.stderr.decode()
    (row2,) = [json.loads(x) for x in p2.stdout.decode().splitlines()]
    assert row2["critique"]["raw"] == row["critique"]["raw"]
    assert row2["critique"]["usage"]["cached"] == 1 and row2["critique"]["usage"]["calls"] == 0
