import asyncio
import os
import sqlite3

import pytest

from criticlab.cache import CachedModel
from criticlab.models.base import GenerateConfig, Message
from criticlab.models.scripted import ScriptedModel
from criticlab.store import Store, request_key

MSGS = [Message("user", "hi")]


def counter_model():
    return ScriptedModel(lambda m, c, i: f"seed={c.seed} i={i}")


async def test_repeat_is_answered_from_store(tmp_path):
    model = counter_model()
    with Store(tmp_path / "s.sqlite") as store:
        cm = CachedModel(model, store)
        first = await cm.generate(MSGS, GenerateConfig(seed=7))
        again = await cm.generate(MSGS, GenerateConfig(seed=7))
    assert [g.text for g in first] == [g.text for g in again] == ["seed=7 i=0"]
    assert len(model.requests) == 1
    assert cm.stats.calls == 1 and cm.stats.hits == 1
    assert first[0].usage.calls == 1 and again[0].usage.calls == 0 and again[0].usage.cached == 1


async def test_survives_reopen(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        await CachedModel(counter_model(), store).generate(MSGS, GenerateConfig())
    model = counter_model()
    with Store(path) as store:
        out = await CachedModel(model, store).generate(MSGS, GenerateConfig())
    assert out[0].text == "seed=0 i=0" and model.requests == []


async def test_partial_samples_reuse_stored_ones(tmp_path):
    model = counter_model()
    with Store(tmp_path / "s.sqlite") as store:
        cm = CachedModel(model, store)
        four = await cm.generate(MSGS, GenerateConfig(n=4, seed=10, temperature=1.0))
        eight = await cm.generate(MSGS, GenerateConfig(n=8, seed=10, temperature=1.0))
    assert [g.text for g in eight[:4]] == [g.text for g in four]
    # the missing samples 4..7 were asked for in one request starting at seed 10 + 4
    assert len(model.requests) == 2
    assert model.requests[1][1].n == 4 and model.requests[1][1].seed == 14
    assert [g.text for g in eight[4:]] == [f"seed=14 i={i}" for i in range(4)]


def test_key_depends_on_everything_but_n():
    base = GenerateConfig(seed=1)
    k = request_key("m", MSGS, base, 0)
    assert k == request_key("m", MSGS, GenerateConfig(seed=1, n=5), 0)
    assert k != request_key("m2", MSGS, base, 0)
    assert k != request_key("m", [Message("user", "hi!")], base, 0)
    assert k != request_key("m", MSGS, GenerateConfig(seed=2), 0)
    assert k != request_key("m", MSGS, GenerateConfig(seed=1, temperature=0.5), 0)
    assert k != request_key("m", MSGS, base, 1)


async def test_concurrent_identical_requests_share_one_call(tmp_path):
    calls = 0

    class Slow:
        name = "slow"

        async def generate(self, messages, config):
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.05)
            return await ScriptedModel(["x"]).generate(messages, config)

    with Store(tmp_path / "s.sqlite") as store:
        cm = CachedModel(Slow(), store)
        outs = await asyncio.gather(*(cm.generate(MSGS, GenerateConfig()) for _ in range(5)))
    assert calls == 1 and {o[0].text for o in outs} == {"x"}


async def test_failure_is_not_cached(tmp_path):
    class Failing:
        name = "f"

        async def generate(self, messages, config):
            raise RuntimeError("engine down")

    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(RuntimeError, match="engine down"):
            await CachedModel(Failing(), store).generate(MSGS, GenerateConfig())
        assert store.count_responses() == 0


def test_results_written_once(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        assert store.put_result("run", "a", {"v": 1}) is True
        assert store.put_result("run", "a", {"v": 2}) is False
        store.put_result("run", "b", {"v": 3})
        assert store.get_result("run", "a") == {"v": 1}
        assert list(store.results("run")) == [("a", {"v": 1}), ("b", {"v": 3})]
        assert store.get_result("other", "a") is None


def test_wal_mode(tmp_path):
    Store(tmp_path / "s.sqlite").close()
    mode = sqlite3.connect(tmp_path / "s.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


async def test_no_store_passes_through():
    model = counter_model()
    cm = CachedModel(model, None)
    await cm.generate(MSGS, GenerateConfig())
    await cm.generate(MSGS, GenerateConfig())
    assert len(model.requests) == 2


def test_lone_surrogates_are_stored_and_read_back(tmp_path):
    """Text that is not valid Unicode (a lone surrogate) never crashes a write: it is stored
    as a JSON escape and read back unchanged."""
    from criticlab.models.base import Generation

    odd = {"question": "p\ud800", "steps": ["\udfff", "caf\udce9", "ok \u00e9 \U0001f600"],
           "k\udbff": 1}
    with Store(tmp_path / "s.sqlite") as store:
        assert store.put_result("run", "item\ud800", odd)
        assert store.get_result("run", "item\ud800") == odd
        assert list(store.results("run")) == [("item\ud800", odd)]
        key = request_key("m", [Message("user", "hi \ud800")], GenerateConfig(), 0)
        assert key != request_key("m", [Message("user", "hi \ud801")], GenerateConfig(), 0)
        store.put_response(key, "m", {"messages": ["\ud800"]}, Generation("out \udfff"))
        assert store.get_response(key).text == "out \udfff"
    # valid text keeps its key: the cache of earlier runs still answers
    assert request_key("m", MSGS, GenerateConfig(seed=1), 0) == request_key(
        "m", [Message("user", "hi")], GenerateConfig(seed=1), 0)


async def test_cached_model_with_a_lone_surrogate_in_the_prompt(tmp_path):
    model = ScriptedModel(lambda m, c, i: "answer \ud800")
    with Store(tmp_path / "s.sqlite") as store:
        cm = CachedModel(model, store)
        first = await cm.generate([Message("user", "q \udfff")], GenerateConfig())
        again = await cm.generate([Message("user", "q \udfff")], GenerateConfig())
    assert first[0].text == again[0].text == "answer \ud800" and len(model.requests) == 1


# -- step scores (PRMs) -------------------------------------------------------------------------
class Scorer:
    """A PRM stand-in: ``scores(question, steps)`` gives its scores; it also writes text, so
    text and score requests for the same messages can be compared. ``looked_up`` counts how
    often the engine's ``score_steps`` was fetched (a lazily built engine would be built)."""

    def __init__(self, scores=None, name="prm:x", delay=0.0):
        self.name, self.delay, self.calls, self.looked_up = name, delay, 0, 0
        self.scores = scores or (lambda q, steps: [0.25 + 0.5 * (i % 2) for i in
                                                   range(len(steps))])

    def __getattr__(self, attr):
        if attr != "score_steps":
            raise AttributeError(attr)
        self.looked_up += 1
        return self._score_steps

    async def _score_steps(self, question, steps):
        from criticlab.models.base import StepScores
        from criticlab.types import Usage

        self.calls += 1
        await asyncio.sleep(self.delay)
        return StepScores(tuple(self.scores(question, steps)),
                          Usage(prompt_tokens=7 * len(steps), calls=1))

    async def generate(self, messages, config):
        return await ScriptedModel(["text"]).generate(messages, config)


STEPS = ("3 * 4 = 12", "12 + 1 = 14")


async def test_step_scores_are_answered_from_the_store(tmp_path):
    import json

    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        engine = Scorer()
        cm = CachedModel(engine, store)
        first = await cm.score_steps("q", STEPS)
        again = await cm.score_steps("q", list(STEPS))
        other = await cm.score_steps("q", STEPS[:1])
        (text, request), = store._db.execute(
            "SELECT response, request FROM responses WHERE model = 'prm:x' LIMIT 1")
    assert first.scores == again.scores == (0.25, 0.75) and other.scores == (0.25,)
    assert engine.calls == 2 and cm.stats.calls == 2 and cm.stats.hits == 1
    assert (first.usage.calls, first.usage.cached, first.usage.prompt_tokens) == (1, 0, 14)
    assert (again.usage.calls, again.usage.cached, again.usage.prompt_tokens) == (0, 1, 14)
    assert json.loads(json.loads(text)["text"]) == [0.25, 0.75]  # a generation holding JSON
    assert json.loads(request)["params"] == {"task": "score_steps"}
    # another process, another run: the store answers and the engine is not even looked up
    with Store(path) as store:
        engine = Scorer()
        cm = CachedModel(engine, store)
        assert (await cm.score_steps("q", STEPS)).scores == (0.25, 0.75)
    assert engine.looked_up == 0 and cm.stats.calls == 0 and cm.stats.hits == 1


async def test_step_score_keys_never_equal_a_text_request_key(tmp_path):
    from criticlab.cache import _SCORE_STEPS

    messages = [Message("user", "q"), *(Message("assistant", s) for s in STEPS)]
    score_key = request_key("prm:x", messages, _SCORE_STEPS, 0)
    for config in (GenerateConfig(), GenerateConfig(seed=None), GenerateConfig(max_tokens=1),
                   GenerateConfig(seed=None, temperature=1.0, n=3)):
        assert all(score_key != request_key("prm:x", messages, config, i) for i in range(3))
    with Store(tmp_path / "s.sqlite") as store:
        cm = CachedModel(Scorer(), store)
        text = await cm.generate(messages, GenerateConfig(seed=None))
        scores = await cm.score_steps("q", STEPS)
        text_again = await cm.generate(messages, GenerateConfig(seed=None))
        assert store.count_responses() == 2
    assert text[0].text == text_again[0].text == "text" and scores.scores == (0.25, 0.75)


async def test_concurrent_identical_step_scores_share_one_call(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        engine = Scorer(delay=0.05)
        cm = CachedModel(engine, store)
        outs = await asyncio.gather(*(cm.score_steps("q", STEPS) for _ in range(5)))
    assert engine.calls == 1 and {o.scores for o in outs} == {(0.25, 0.75)}
    assert sorted(o.usage.cached for o in outs) == [0, 1, 1, 1, 1]
    assert cm.stats.calls == 1 and cm.stats.hits == 4


@pytest.mark.parametrize("bad", [lambda q, s: [0.5], lambda q, s: [0.5, float("nan")],
                                 lambda q, s: [0.5, 0.5, 0.5]])
async def test_malformed_step_scores_are_never_stored(tmp_path, bad):
    from criticlab.errors import ModelError

    with Store(tmp_path / "s.sqlite") as store:
        cm = CachedModel(Scorer(bad), store)
        with pytest.raises(ModelError, match="scored 2 steps as"):
            await cm.score_steps("q", STEPS)
        assert store.count_responses() == 0
        # the next request asks the engine again
        good = CachedModel(Scorer(), store)
        assert (await good.score_steps("q", STEPS)).scores == (0.25, 0.75)
        assert good.stats.calls == 1


async def test_step_scores_without_a_store_or_a_scorer():
    from criticlab.errors import ConfigError

    engine = Scorer()
    cm = CachedModel(engine, None)
    await cm.score_steps("q", STEPS)
    await cm.score_steps("q", STEPS)
    assert engine.calls == 2 and cm.stats.calls == 2
    assert (await cm.score_steps("q", ())).scores == () and engine.calls == 2
    with pytest.raises(ConfigError, match=r"scripted.* does not score steps"):
        await CachedModel(ScriptedModel(["x"]), None).score_steps("q", STEPS)


def _damaged_store(path, n=200):
    """A store of ``n`` results of ~1 KB, then random bytes over one page in the middle."""
    import random

    with Store(path) as store:
        for i in range(n):
            store.put_result("run", f"i{i}", {"i": i, "text": "x" * 1000})
    size = path.stat().st_size // 4096
    with path.open("r+b") as f:
        f.seek(size // 2 * 4096)
        f.write(random.Random(0).randbytes(4096))


def test_a_damaged_store_is_one_line_naming_the_file_never_sqlite3s_error(tmp_path):
    from criticlab.store import StoreError

    path = tmp_path / "s.sqlite"
    _damaged_store(path)
    with pytest.raises(StoreError, match=r"s\.sqlite is damaged \(.*\): do this") as e:
        Store(path, check=True, damaged_hint="do this")
    assert e.value.damaged and "\n" not in str(e.value)
    # unchecked, it opens; reading the damaged page is the same one line
    with Store(path) as store, pytest.raises(StoreError, match="is damaged") as e:
        list(store.results("run"))
    assert e.value.damaged


def test_salvage_reads_every_row_but_the_damaged_pages(tmp_path):
    from criticlab.store import salvage

    path = tmp_path / "s.sqlite"
    _damaged_store(path)
    responses, results = salvage(path)
    items = sorted(int(r[1][1:]) for r in results)
    # a 4 KiB page holds 3 of these rows: at most a few are lost, every other one reads back
    assert responses == [] and 200 - 4 <= len(items) < 200 and len(set(items)) == len(items)
    with Store(tmp_path / "new.sqlite") as store:
        assert store.put_raw(responses, results) == len(items)
        assert store.items() == {f"i{i}" for i in items}
        assert store.get_result("run", f"i{items[0]}") == {"i": items[0], "text": "x" * 1000}
        assert store.put_results("run", [("i0", {"v": 0}), ("new", {"v": 1})]) == 1 + (
            0 not in items)


def test_a_read_only_store_is_refused_when_checked(tmp_path):
    from criticlab.store import StoreError

    if os.geteuid() == 0:
        pytest.skip("root writes read-only files (tests/test_run_damage.py mounts one)")
    path = tmp_path / "s.sqlite"
    Store(path).close()
    path.chmod(0o444)
    with pytest.raises(StoreError, match="read-only"):
        Store(path, check=True)
