"""The Ray executor on a local Ray cluster started by the test: the same results and the
same store as one process, a killed worker loses nothing and writes nothing twice."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'criticlab[ray]'")

from criticlab.engines import EngineSpec  # noqa: E402
from criticlab.evaluate import EvalConfig, EvalRun, evaluate  # noqa: E402
from criticlab.infer.jobs import RefineConfig, SelectConfig, run_refine, run_select  # noqa: E402  # noqa: E402
from criticlab.label.mc import MCConfig, label_mc  # noqa: E402
from criticlab.scale import RayExecutor, RayStats, map_ray  # noqa: E402
from criticlab.store import Store  # noqa: E402
from criticlab.types import Example, Problem, Solution  # noqa: E402
from tests.scale import specs  # noqa: E402

MAX_TOKENS = 24


@pytest.fixture(scope="module")
def cluster() -> Any:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             namespace="criticlab-tests")
    ray.cloudpickle.register_pickle_by_value(specs)
    yield ray
    ray.shutdown()


def examples(n: int) -> list[Example]:
    return [Example(Problem(f"p{i}", f"Sam has {i + 2} boxes of 3 pens. How many pens?"),
                    Solution((f"{i + 2} * 3 = {3 * (i + 2) + i % 2}", "So that many pens.")))
            for i in range(n)]


def critiques(run: EvalRun) -> list[dict[str, Any]]:
    rows = [r.to_dict() for r in run.results]
    for r in rows:
        r["critique"].pop("usage")
    return rows


def counts(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as c:
        return (c.execute("SELECT COUNT(*) FROM results").fetchone()[0],
                c.execute("SELECT COUNT(*) FROM responses").fetchone()[0])


def test_map_ray_keeps_the_map_resumable_contract(cluster: Any, tmp_path: Path) -> None:
    calls: list[tuple[str, bool]] = []
    with Store(tmp_path / "s.sqlite") as store:
        store.put_result("run", "a", {"answer": "from before"})
        stats = RayStats()
        done, errors = asyncio.run(map_ray(
            store, "run", [(k, k) for k in ("a", "b", "c", "down")], specs.echo_spec,
            workers=2, on_result=lambda k, r, e, resumed: calls.append((k, resumed)),
            stats=stats))
        assert done == {"a": {"answer": "from before"}, "b": {"answer": "B"},
                        "c": {"answer": "C"}}
        assert errors == {"down": "server down"}
        assert sorted(calls) == [("a", True), ("b", False), ("c", False), ("down", False)]
        assert dict(store.results("run")) == done  # the engine error is not stored
        assert store.count_responses() == 2 and stats.engine_calls == 2
        assert stats.workers_read_store == 2  # same machine: the workers read the file


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory, embedded_path: Path) -> EvalRun:
    out = tmp_path_factory.mktemp("local") / "run"
    return evaluate(EvalConfig("toy", out, max_tokens=MAX_TOKENS, concurrency=2),
                    examples=examples(4))


@pytest.mark.slow
def test_eval_on_two_workers_with_one_killed_equals_one_process(
        cluster: Any, local_run: EvalRun, tmp_path: Path) -> None:
    killed: list[str] = []

    def kill_first_worker(state: Any) -> None:
        if not killed:  # after the first result, while both workers have items in flight
            name = next(n for n in ray.util.list_named_actors() if n.endswith("-w0-0"))
            ray.kill(ray.get_actor(name))
            killed.append(name)

    config = EvalConfig("toy", tmp_path / "run", max_tokens=MAX_TOKENS, concurrency=2)
    run = evaluate(config, examples=examples(4), progress=kill_first_worker,
                   executor=RayExecutor(workers=2))
    this = run.metrics["this_run"]
    assert killed and this["worker_restarts"] == 1 and this["resent_items"] >= 1
    assert run.metrics["complete"] and run.metrics["n"] == 4
    assert critiques(run) == critiques(local_run)
    # every result once, every response stored: as the one-process run's store
    assert counts(tmp_path / "run" / "store.sqlite") == (4, 4)
    assert counts(local_run.config.out / "store.sqlite") == (4, 4)
    rows = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert [json.loads(r)["example"]["problem"]["id"] for r in rows] == ["p0", "p1", "p2", "p3"]


@pytest.mark.slow
def test_workers_answer_stored_requests_from_the_store_file(
        cluster: Any, local_run: EvalRun, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(local_run.config.out / "config.json", out / "config.json")
    with Store(out / "store.sqlite") as store, Store(local_run.config.out / "store.sqlite") as s:
        for key, in s._db.execute("SELECT key FROM responses").fetchall():
            hit = s.get_response(key)
            assert hit is not None
            req = s._db.execute("SELECT model, request FROM responses WHERE key = ?",
                                (key,)).fetchone()
            store.put_response(key, req[0], json.loads(req[1]), hit)
    config = EvalConfig("toy", out, max_tokens=MAX_TOKENS, concurrency=2)
    run = evaluate(config, examples=examples(4), executor=RayExecutor(workers=2))
    assert run.metrics["this_run"]["engine_calls"] == 0
    assert run.metrics["this_run"]["store_hits"] == 4
    assert critiques(run) == critiques(local_run)
    assert counts(out / "store.sqlite") == (4, 4)


@pytest.mark.slow
def test_label_mc_through_ray_equals_one_process(cluster: Any, tmp_path: Path,
                                                 embedded_path: Path) -> None:
    q = "Natalia sold clips to 48 of her friends in April, and then she sold half as many " \
        "clips in May. How many clips did Natalia sell altogether in April and May?"
    # no prefix shared between the two: two workers running at once would each roll it out
    recs = [{"id": f"s{i}", "problem": q, "reference_answer": "72",
             "steps": [f"Natalia sold 48/2 = {24 - i} clips in May.",
                       f"Natalia sold 48+{24 - i} = {72 - i} clips altogether."]}
            for i in range(2)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))

    def config(out: str) -> MCConfig:
        return MCConfig(str(data), tmp_path / out, rollouts=2, max_tokens=16,
                        concurrency=1)

    local = label_mc(config("local"))
    remote = label_mc(config("ray"), executor=RayExecutor(workers=2))
    assert remote["complete"] and remote["n"] == 2 and remote["errors"] == 0
    assert remote["this_run"]["engine_calls"] == local["this_run"]["engine_calls"] == 4
    assert remote["first_errors"] == local["first_errors"]

    def rows(out: str) -> list[Any]:
        return [json.loads(x) for x in (tmp_path / out / "labels.jsonl").read_text().splitlines()]

    assert rows("ray") == rows("local")
    assert counts(tmp_path / "ray" / "store.sqlite") == counts(tmp_path / "local" / "store.sqlite")
    # a local run resumed on Ray reads every solution back (no worker is even started)
    again = label_mc(config("local"), executor=RayExecutor(workers=2))
    assert again["this_run"]["engine_calls"] == 0 and again["complete"]
    assert rows("local") == rows("ray")


@pytest.mark.slow
def test_select_through_ray_equals_one_process(cluster: Any, tmp_path: Path,
                                              embedded_path: Path) -> None:
    recs = [{"id": f"q{i}", "problem": f"Sam has {i + 2} boxes of 3 pens. How many pens?",
             "reference_answer": str(3 * (i + 2))} for i in range(2)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))

    def config(out: str) -> SelectConfig:
        return SelectConfig(str(data), tmp_path / out, n=2, method="filtered",
                            critic="arithmetic",
                            engines=EngineSpec(max_tokens=24, concurrency=1))

    local = run_select(config("local"))
    ticks: list[tuple[int, int]] = []
    remote = run_select(config("ray"), lambda i, n: ticks.append((i, n)), RayExecutor(workers=2))
    assert remote["complete"] and remote["n"] == 2 and remote["errors"] == 0
    assert remote["executor"] == "ray" and ticks[-1] == (2, 2)
    # one sampling call (n=2, seeded) per problem, in either executor
    assert remote["this_run"]["engine_calls"] == local["this_run"]["engine_calls"] == 2
    for key in ("accuracy", "majority_accuracy", "pass@2", "fallbacks", "usage"):
        assert remote[key] == local[key], key

    def rows(out: str) -> list[Any]:
        return [json.loads(x)
                for x in (tmp_path / out / "selections.jsonl").read_text().splitlines()]

    assert rows("ray") == rows("local") and [r["problem"]["id"] for r in rows("ray")] == ["q0", "q1"]
    assert counts(tmp_path / "ray" / "store.sqlite") == counts(tmp_path / "local" / "store.sqlite")
    again = run_select(config("ray"), executor=RayExecutor(workers=2))  # resumed: nothing recomputed
    assert again["this_run"]["engine_calls"] == 0 and rows("ray") == rows("local")


@pytest.mark.slow
def test_any_job_runs_on_ray_refine_included(cluster: Any, tmp_path: Path) -> None:
    """Every job is a Job that any executor runs: refine (which had no Ray path) on two
    workers gives the local run's trajectories and metrics, and resumes across executors."""
    recs = [{"id": f"q{i}", "problem": f"Sam has {i + 2} boxes of 3 pens. How many pens?",
             "reference_answer": str(3 * (i + 2)),
             "steps": [f"{i + 2} * 3 = {3 * (i + 2) + 1}", f"The answer is {3 * (i + 2) + 1}."]}
            for i in range(3)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))

    def config(out: str) -> RefineConfig:
        return RefineConfig(str(data), tmp_path / out, critic="arithmetic", strategy="repair",
                            rounds=1)

    local = run_refine(config("local"))
    remote = run_refine(config("ray"), executor=RayExecutor(workers=2))
    assert remote["executor"] == "ray" and local["executor"] == "local"
    assert remote["complete"] and remote["this_run"]["resumed_items"] == 0
    # the repair fixes each slip: every final answer right, none of the drafts
    assert remote["transitions"] == local["transitions"]
    assert remote["transitions"]["acc_after"] == 100.0 and remote["transitions"]["acc_before"] == 0.0

    def rows(out: str) -> list[Any]:
        return [json.loads(x)
                for x in (tmp_path / out / "trajectories.jsonl").read_text().splitlines()]

    assert rows("ray") == rows("local")
    again = run_refine(config("local"), executor=RayExecutor(workers=2))
    assert again["this_run"]["resumed_items"] == 3 and rows("local") == rows("ray")
