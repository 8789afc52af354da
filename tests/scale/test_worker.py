"""The worker side of the Ray executor, in-process (no Ray): it records what it generates,
answers repeated requests from the store file read-only, and never writes it."""

import asyncio
import hashlib

from criticlab.cache import CachedModel
from criticlab.errors import ModelError
from criticlab.models.base import GenerateConfig, Message
from criticlab.models.scripted import ScriptedModel
from criticlab.scale.worker import Work, Worker
from criticlab.store import Store, request_key

CFG = GenerateConfig(max_tokens=8)


def spec(store):
    model = CachedModel(ScriptedModel(lambda m, c, i: m[0].content.upper()), store)

    async def run(q):
        if q == "boom":
            await model.generate([Message("user", "before the error")], CFG)
            raise ModelError("server down")
        (gen,) = await model.generate([Message("user", q)], CFG)
        return {"answer": gen.text}

    return Work(run, [model])


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_worker_returns_its_responses_and_reads_the_store_read_only(tmp_path) -> None:
    path = tmp_path / "store.sqlite"
    with Store(path) as store:
        asyncio.run(CachedModel(ScriptedModel(["STORED"]), store).generate(
            [Message("user", "old")], CFG))
    before = sha(path)
    worker = Worker(spec, str(path))

    async def main():
        info = await worker.setup()
        out = await asyncio.gather(*(worker.run(k, k) for k in ("a", "b", "old")))
        err = await worker.run("x", "boom")
        await worker.close()
        return info, out, err

    info, (a, b, old), err = asyncio.run(main())
    assert info == {"config_error": None, "reads_store": True}
    assert a["result"] == {"answer": "A"} and b["result"] == {"answer": "B"}
    # each item carries exactly its own response, keyed as the store keys it
    ((key, model, request, gen),) = a["responses"]
    assert key == request_key("scripted", [Message("user", "a")], CFG, 0)
    assert (model, gen["text"], request["index"]) == ("scripted", "A", 0)
    assert [r[3]["text"] for r in b["responses"]] == ["B"]
    # a request stored before is answered from the store file: no engine call, nothing to send
    assert old["result"] == {"answer": "STORED"} and old["responses"] == []
    assert old["stats"] == {"engine_calls": 2, "store_hits": 1}
    # an engine error comes back as data, with the response generated before it
    assert err["result"] is None and err["error"] == "server down"
    assert [r[3]["text"] for r in err["responses"]] == ["BEFORE THE ERROR"]
    assert sha(path) == before  # the worker never wrote the store


def test_worker_without_the_store_file_still_caches_what_it_generated(tmp_path) -> None:
    worker = Worker(spec, str(tmp_path / "elsewhere.sqlite"))

    async def main():
        first = await worker.run("a", "q")
        second = await worker.run("b", "q")
        return first, second

    first, second = asyncio.run(main())
    assert not worker.store.reads_store and not (tmp_path / "elsewhere.sqlite").exists()
    assert first["result"] == second["result"] == {"answer": "Q"}
    assert second["stats"] == {"engine_calls": 1, "store_hits": 1}
    # the repeat is sent again with the second item, in case the first one's worker dies
    assert [r[:2] for r in second["responses"]] == [r[:2] for r in first["responses"]]


def test_driver_keeps_each_workers_largest_totals_when_payloads_arrive_out_of_order(
        tmp_path) -> None:
    # Two items of one worker finish in the order b, c but the driver may read c's payload
    # first: the totals that c carries (2 calls) must survive b's older snapshot (1 call).
    from criticlab.scale.ray import RayStats, _accept

    stats = RayStats()
    done: dict = {}
    errors: dict = {}
    with Store(tmp_path / "s.sqlite") as store:
        for key, calls, hits in (("c", 2, 1), ("b", 1, 0)):
            payload = {"key": key, "result": {"answer": key}, "error": None, "responses": [],
                       "stats": {"engine_calls": calls, "store_hits": hits}}
            _accept(store, "run", "w0", payload, done, errors, None, stats)
        _accept(store, "run", "w1", {"key": "d", "result": None, "error": "down",
                                      "responses": [],
                                      "stats": {"engine_calls": 0, "store_hits": 0}},
                done, errors, None, stats)
    assert stats.by_worker["w0"] == {"engine_calls": 2, "store_hits": 1}
    assert (stats.engine_calls, stats.store_hits) == (2, 1)
    assert done == {"c": {"answer": "c"}, "b": {"answer": "b"}} and errors == {"d": "down"}
