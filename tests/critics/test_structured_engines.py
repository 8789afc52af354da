"""``--structured`` against real engines: the embedded model in-process (a llama.cpp grammar
from each critic's schema) and through llama.cpp's OpenAI-compatible server (the openai
backend's response_format, falling back to the server's own form once). The tiny model cannot
critique, but with its decoding constrained every critique of every LM style parses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from criticlab.cache import CachedModel
from criticlab.critics.base import critique_sync
from criticlab.models.openai import OpenAIModel
from criticlab.registry import make_critic
from criticlab.store import Store
from criticlab.types import Problem, Solution
from tests.conftest import ROOT

STYLES = ("processbench", "stepwise", "deliberate", "principles", "rubric", "premise",
          "premise-nohint", "selfeval")
PROBLEM = Problem("pens", "Ann buys 5 pens at 3 dollars each and a 4 dollar notebook. "
                          "How much does she pay?")
SOLUTION = Solution(("5 * 3 = 15 dollars for the pens.", "15 + 4 = 18 dollars in all.",
                     "She pays 18 dollars."))
MAX_TOKENS = 320


def _critique(model: Any, style: str) -> Any:
    critic = make_critic(style, lambda: model, max_tokens=MAX_TOKENS, structured=True)
    return critique_sync(critic, PROBLEM, SOLUTION)


@pytest.mark.parametrize("style", STYLES)
def test_every_style_parses_in_process(embedded_model: Any, style: str) -> None:
    crit = _critique(embedded_model, style)
    assert crit.parsed, (style, crit.feedback, crit.raw)
    assert crit.verdict in ("correct", "incorrect")
    if crit.first_error is not None:
        assert 0 <= crit.first_error < len(SOLUTION.steps)
    if style != "selfeval":  # P(True) reads one token's logprobs; the others write JSON
        assert json.loads(crit.raw, strict=False)


@pytest.mark.parametrize("style", STYLES)
def test_every_style_parses_through_the_server(llama_server: str, tmp_path: Any,
                                               style: str) -> None:
    server = OpenAIModel("smollm2", base_url=llama_server)
    with Store(tmp_path / "s.sqlite") as store:
        model = CachedModel(server, store)
        crit = _critique(model, style)
        assert crit.parsed, (style, crit.feedback, crit.raw)
        assert crit.verdict in ("correct", "incorrect")
        # llama.cpp's server reads the schema in its own response_format form, once refused
        assert server.schema_form == "json_object"
        again = _critique(model, style)  # the schema is part of the cache key: a store hit
        assert again.first_error == crit.first_error and model.stats.hits >= 1


def test_structured_eval_on_the_cli_parses_every_item(llama_server: str, tmp_path: Any) -> None:
    """``criticlab eval --structured`` through the server: no unparsed critique, the flag in
    config.json and in the run's identity (a free-text rerun in the directory is refused)."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(
        {"id": f"p{i}", "problem": PROBLEM.question, "steps": list(SOLUTION.steps),
         "label": -1}) + "\n" for i in range(2)), encoding="utf-8")
    env = {**os.environ, "COLUMNS": "200", "HOME": str(tmp_path)}
    base = [sys.executable, "-m", "criticlab", "eval", str(data), "--critic", "processbench",
            "--model", "openai:smollm2", "--base-url", llama_server, "--max-tokens", "200",
            "--out", str(tmp_path / "run")]
    p = subprocess.run([*base, "--structured"], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n"] == 2 and metrics["parse_failure_rate"] == 0.0, metrics
    assert json.loads((tmp_path / "run" / "config.json").read_text())["structured"] is True
    free = subprocess.run(base, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert free.returncode == 2 and "structured=True" in free.stderr, free.stderr


def test_refine_with_a_structured_critic_on_the_embedded_model(tmp_path: Any) -> None:
    """--structured reaches every job's critic: refine's stepwise critiques all parse, and
    the run's identity holds the switch."""
    from criticlab.engines import EngineSpec
    from criticlab.infer.jobs import RefineConfig, run_refine

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "pens", "problem": PROBLEM.question,
                                "steps": list(SOLUTION.steps), "reference_answer": "19"}) + "\n",
                    encoding="utf-8")
    config = RefineConfig(str(data), tmp_path / "run", critic="stepwise", strategy="repair",
                          rounds=1, engines=EngineSpec(max_tokens=MAX_TOKENS, structured=True,
                                                       concurrency=1))
    metrics = run_refine(config)
    assert metrics["complete"] and metrics["this_run"]["engine_calls"] >= 1
    rows = [json.loads(x) for x in (tmp_path / "run" / "trajectories.jsonl").read_text()
            .splitlines()]
    crits = [r["critique"] for t in rows for r in t["rounds"] if r["critique"]]
    assert crits and all(c["parsed"] for c in crits), crits
    assert json.loads((tmp_path / "run" / "config.json").read_text())["engines"]["structured"]
