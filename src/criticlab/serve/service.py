"""What the server (and the in-process TRL reward function) does, without HTTP: records in,
critiques and rewards out.

A :class:`Service` holds one critic built through :class:`~criticlab.engines.Engines` over one
:class:`~criticlab.store.Store`. Each critique it makes is stored as a result (table
``results``, run key ``serve@`` + a hash of the critic and engine settings, item key a hash of
the record's content), so a repeated record is answered from the store without asking the
critic again, and a critique finished before a shutdown is kept. Model responses are cached
by the store as in every job.

Rewards (``REWARDS``):

- ``verdict``: 1 when the critic finds no wrong step, else 0 (an unreadable critique is 0).
- ``first_error``: the share of steps before the first wrong one (1 when none is wrong).
- ``score``: the critique's own score when it gives one (a PRM), else ``verdict``.
- ``gold:shaped``, ``gold:format``, ``gold:verdict``, ``gold:first_error``,
  ``gold:first_error_partial``: how well the critique matches the record's gold ``label``,
  scored by :mod:`criticlab.train.rewards` (the rewards ``criticlab train grpo`` trains a
  critic with).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from criticlab.critics.base import Critic
from criticlab.data.jsonl import to_example
from criticlab.engines import Engines
from criticlab.errors import ConfigError, InputError, ModelError
from criticlab.metrics import critique_prediction, gold_index
from criticlab.models.base import is_image_url
from criticlab.train import rewards
from criticlab.types import Critique, Example, Result

POLICY_REWARDS = ("verdict", "first_error", "score")
GOLD_REWARDS = tuple(f"gold:{n}" for n in rewards.GOLD_REWARDS)
REWARDS = POLICY_REWARDS + GOLD_REWARDS


class RequestError(Exception):
    """A request the server refuses: ``status`` and one line naming the field."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def field_error(where: str, e: InputError) -> RequestError:
    """``records[2].steps: must be a list of strings`` from criticlab's located error."""
    return RequestError(400, f"{where}.{e.field}: {e.message}" if e.field
                        else f"{where}: {e.message}")


@dataclass(frozen=True)
class Limits:
    """What one client may ask of the server."""

    max_batch: int = 64
    """Records (or OpenRLHF queries) per request."""
    max_body: int = 8 * 1024 * 1024
    """Bytes per request body."""
    max_inflight: int = 256
    """Items being critiqued over all requests; more is a 429."""
    request_timeout: float = 600.0
    """Seconds per request; more is a 504."""
    max_record: int = 200_000
    """Characters of text per record (problem, solution or steps, reference answer)."""
    max_record_steps: int = 2_000
    """Steps per record (after splitting a free-text solution)."""

    def check(self) -> None:
        for name, value in asdict(self).items():
            if value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive")

    def check_batch(self, n: int, field: str, what: str = "records") -> None:
        if n > self.max_batch:
            raise RequestError(413, f"{field}: {n} {what}, over the limit of {self.max_batch} "
                                    "per request")

    def check_chars(self, where: str, chars: int) -> None:
        """413 naming the record ``where`` when its text is over the limit."""
        if chars > self.max_record:
            raise RequestError(413, f"{where}: {chars} characters, over the limit of "
                                    f"{self.max_record} per record (--max-record)")

    def check_steps(self, where: str, steps: int) -> None:
        """413 naming the record ``where`` when it has more steps than the limit."""
        if steps > self.max_record_steps:
            raise RequestError(413, f"{where}: {steps} steps, over the limit of "
                                    f"{self.max_record_steps} per record (--max-record-steps)")


def _text_size(value: Any) -> int:
    """Characters of the strings in a record's fields (lists and objects counted through)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        return sum(len(str(k)) + _text_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_text_size(v) for v in value)
    return 0


def to_examples(records: Any, *, limits: Limits | None, field: str = "records"
                ) -> list[Example]:
    """The request's records (criticlab's record format) as examples with a solution; the
    first bad one is a 400 naming its field, a batch or a record over ``limits`` a 413.

    ``limits`` set: the records come from a client of the server, which is not trusted: an
    image must be an http(s) or ``data:image/`` URL (a path would make the server read its own
    files), and each record is checked against the per-record limits before it is split into
    steps. ``None``: a caller in this process (the in-process TRL reward), whose records may
    name local image files, as in the CLI."""
    if not isinstance(records, list):
        raise RequestError(400, f"{field}: must be a list of records")
    if not records:
        raise RequestError(400, f"{field}: is empty (give at least one record)")
    if limits is not None:
        limits.check_batch(len(records), field)
    out = []
    for i, rec in enumerate(records):
        where = f"{field}[{i}]"
        if limits is not None and isinstance(rec, Mapping):
            limits.check_chars(where, _text_size(rec))
        try:
            ex = to_example(rec, default_id=str(i))
        except InputError as e:
            raise field_error(where, e) from None
        if ex.solution is None:
            raise RequestError(400, f"{where}.steps: no solution to critique "
                                    "(give 'steps' or 'solution')")
        if limits is not None:
            limits.check_steps(where, len(ex.solution.steps))
            for j, image in enumerate(ex.problem.images):
                if not is_image_url(image):
                    raise RequestError(400, f"{where}.images[{j}]: must be an http(s) URL or "
                                            "a data:image/ URL (the server reads no paths)")
        out.append(ex)
    return out


def check_reward(name: Any, examples: Sequence[Example], field: str = "records") -> str:
    if not isinstance(name, str) or name not in REWARDS:
        raise RequestError(400, f"reward: must be one of {', '.join(REWARDS)}")
    if name in GOLD_REWARDS:
        for i, ex in enumerate(examples):
            if ex.gold is None:
                raise RequestError(400, f"{field}[{i}].label: missing (the reward {name} "
                                        "compares the critique with the gold label)")
    return name


def reward_of(name: str, result: Result) -> float:
    """The reward ``name`` of one critiqued example."""
    crit = result.critique
    if crit is None:
        raise ModelError(result.error or "no critique")
    pred = critique_prediction(crit)
    if name == "verdict":
        return 1.0 if pred == -1 else 0.0
    if name == "first_error":
        if pred is None:
            return 0.0
        n = len(result.example.solution.steps) if result.example.solution else 0
        return 1.0 if pred == -1 or n == 0 else min(max(pred / n, 0.0), 1.0)
    if name == "score":
        if crit.parsed and crit.score is not None and math.isfinite(crit.score):
            return float(crit.score)
        return 1.0 if pred == -1 else 0.0
    return rewards.critique_reward(name.removeprefix("gold:"), crit,
                                   gold_index(Result(result.example)))


def item_key(ex: Example) -> str:
    """What decides a critique: the record's content (not its id)."""
    p, s = ex.problem, ex.solution
    content = {"q": p.question, "ref": p.reference_answer, "meta": dict(p.metadata),
               "images": list(p.images), "steps": list(s.steps) if s else None,
               "final": s.final_answer if s else None}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str,
                                     ensure_ascii=True).encode()).hexdigest()[:32]


class Service:
    """One critic over one store, shared by every request; bounded work in flight."""

    def __init__(self, critic: Critic, engines: Engines, *, identity: Mapping[str, Any],
                 concurrency: int = 4, max_inflight: int = 64) -> None:
        self.critic = critic
        self.engines = engines
        self.store = engines.store
        digest = hashlib.sha256(json.dumps(dict(identity), sort_keys=True,
                                           default=str).encode()).hexdigest()[:16]
        self.run = f"serve@{digest}"
        self.max_inflight = max_inflight
        self._sem = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency
        self.inflight = 0
        self.counts: Counter[str] = Counter()
        self._seconds = 0.0

    @contextmanager
    def admit(self, n: int) -> Iterator[None]:
        """Hold ``n`` items of the in-flight budget, or refuse with 429 and Retry-After (a
        request larger than the whole budget runs alone)."""
        if self.inflight and self.inflight + n > self.max_inflight:
            self.counts["refused_busy"] += 1
            raise RequestError(429, f"busy: {self.inflight} items in flight, the limit is "
                                    f"{self.max_inflight}; retry later",
                               {"Retry-After": str(self.retry_after())})
        self.inflight += n
        try:
            yield
        finally:
            self.inflight -= n

    def retry_after(self) -> int:
        done = self.counts["items_critiqued"]
        per_item = self._seconds / done if done else 1.0
        return int(min(60, max(1, math.ceil(per_item * self.inflight / self.concurrency))))

    async def critique(self, ex: Example) -> Result:
        # the store's reads and writes (hashing, JSON, SQLite) run in worker threads: for a
        # batch of long records they add up to far too long for the event loop
        key, hit = await asyncio.to_thread(self._stored, ex)
        if hit is not None:
            self.counts["items_from_store"] += 1
            return Result(ex, hit)
        assert ex.solution is not None
        async with self._sem:
            started = time.monotonic()
            try:
                crit = await self.critic.critique(ex.problem, ex.solution)
            except ModelError as e:
                self.counts["items_failed"] += 1
                return Result(ex, None, str(e))
            finally:
                self._seconds += time.monotonic() - started
        self.counts["items_critiqued"] += 1
        if self.store is not None:
            store = self.store
            await asyncio.to_thread(lambda: store.put_result(self.run, key, crit.to_dict()))
        return Result(ex, crit)

    def _stored(self, ex: Example) -> tuple[str, Critique | None]:
        """The example's item key, and its critique when the store has one."""
        key = item_key(ex)
        hit = self.store.get_result(self.run, key) if self.store is not None else None
        return key, None if hit is None else Critique.from_dict(hit)

    async def critique_all(self, examples: Sequence[Example]) -> list[Result]:
        tasks = [asyncio.ensure_future(self.critique(ex)) for ex in examples]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for t in tasks:
                t.cancel()

    async def rewards(self, examples: Sequence[Example], name: str,
                      field: str = "records") -> tuple[list[float], list[Result]]:
        """The reward ``name`` of each example; a critique the engine failed is a 502."""
        results = await self.critique_all(examples)
        for i, r in enumerate(results):
            if r.critique is None:
                raise RequestError(502, f"{field}[{i}]: {r.error}")
        return [reward_of(name, r) for r in results], results

    def stats(self) -> dict[str, Any]:
        return {**{k: self.counts[k] for k in ("items_critiqued", "items_from_store",
                                               "items_failed", "refused_busy")},
                **self.engines.stats(), "inflight_items": self.inflight}
