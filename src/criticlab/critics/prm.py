"""Process reward models (PRMs): a score per step, read at the step separators.

The solution is rendered as ``prefix`` (the question) followed by the steps, each followed by
``step_tag`` (``"\\n\\n"``, or a special token such as Math-Shepherd's ``" ки"``), joined by
``joiner``. One forward pass scores every step at once, at the last token of each separator:

- a token-classification model (``AutoModelForTokenClassification``): ``softmax(logits)[1]``
  with two labels (label 1 = good step), ``sigmoid(logit)`` with one;
- a causal LM trained to put a good or bad token after each step (Math-Shepherd style):
  ``P(good) / (P(good) + P(bad))`` at the separator position.

A step is "incorrect" when its score is below ``threshold``; ``first_error`` is the first such
step and ``Critique.score`` the lowest step score. ProcessBench's protocol picks the threshold
that maximises F1 on its GSM8K subset and reuses it on the other subsets:
:func:`choose_threshold` picks it, :func:`with_threshold` re-applies it to critiques already
made (no model call). Loading goes through :mod:`criticlab.models.hf_load`, so every spec it
accepts works here (a local folder, a LoRA adapter, a hub name when online).

It does not run models that need ``trust_remote_code`` (such as Qwen2.5-Math-PRM's custom
head) and does not truncate: a solution longer than the model's context is a ``ModelError``.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from criticlab.critics.base import first_incorrect, overall_from_first_error
from criticlab.critics.template import fill
from criticlab.errors import ConfigError, ModelError
from criticlab.metrics import processbench
from criticlab.types import Critique, Example, Gold, Problem, Result, Solution, StepVerdict, Usage

TASKS = ("auto", "token-classification", "causal-lm")


class PRMCritic:
    """Step scores from a process reward model (see the module docstring).

    ``kind`` is ``"auto"`` (from the checkpoint's architecture or its adapter's task type),
    ``"token-classification"`` or ``"causal-lm"``. ``good_token``/``bad_token`` (a single-token
    string or a token id) are used by causal-LM PRMs only. ``prefix`` and ``step_format`` are
    plain templates (filled by :func:`~criticlab.critics.template.fill`, in one pass):
    ``{question}``; ``{step}`` and ``{n}`` (the 1-based step number).
    """

    def __init__(
        self,
        model_spec: str | Path,
        *,
        threshold: float = 0.5,
        step_tag: str = "\n\n",
        kind: str = "auto",
        good_token: str | int = "+",
        bad_token: str | int = "-",
        prefix: str = "{question}\n\n",
        step_format: str = "{step}",
        joiner: str = "",
        dtype: str = "float32",
        name: str | None = None,
    ) -> None:
        from criticlab.models.hf_load import load_pretrained

        if kind not in TASKS:
            raise ConfigError(f"unknown PRM kind {kind!r}; use one of: {', '.join(TASKS)}")
        self.kind = detect_task(model_spec) if kind == "auto" else kind
        self.threshold = threshold
        self.step_tag, self.prefix, self.step_format, self.joiner = (
            step_tag, prefix, step_format, joiner)
        self.name = name or f"prm:{model_spec}"
        self.model, self.tokenizer = load_pretrained(model_spec, task=self.kind, dtype=dtype)
        if not getattr(self.tokenizer, "is_fast", False):
            raise ConfigError(f"{model_spec}: the PRM needs a fast tokenizer (character offsets)")
        self._ids: tuple[int, int] | None = None
        if self.kind == "causal-lm":
            self._ids = (self._token_id(good_token), self._token_id(bad_token))
        else:
            labels = int(getattr(self.model.config, "num_labels", 2))
            if labels not in (1, 2):
                raise ConfigError(f"{model_spec}: a PRM head needs 1 or 2 labels, not {labels}")
        self._lock = threading.Lock()

    @classmethod
    def math_shepherd(cls, model_spec: str | Path, *, threshold: float = 0.5) -> PRMCritic:
        """The format of peiyi9979/math-shepherd-mistral-7b-prm: ``"{question} Step 1: ... ки
        Step 2: ... ки"``, scored as P("+") / (P("+") + P("-")) at each ``ки``."""
        return cls(model_spec, threshold=threshold, kind="causal-lm", step_tag=" ки",
                   good_token=648, bad_token=387, prefix="{question} ",
                   step_format="Step {n}: {step}", joiner="\n")

    def _token_id(self, token: str | int) -> int:
        if isinstance(token, int):
            return token
        ids = self.tokenizer.encode(token, add_special_tokens=False)
        if len(ids) != 1:
            raise ConfigError(f"PRM token {token!r} is {len(ids)} tokens, not one: pass its id")
        return int(ids[0])

    def render(self, question: str, steps: Sequence[str]) -> tuple[str, list[int]]:
        """The text the model reads and, per step, the index of its separator's last char."""
        text = fill(self.prefix, question=question)
        ends = []
        for i, step in enumerate(steps):
            piece = fill(self.step_format, n=str(i + 1), step=step)
            text += (self.joiner if i else "") + piece + self.step_tag
            ends.append(len(text) - 1)
        return text, ends

    def score_steps(self, question: str, steps: Sequence[str]) -> tuple[list[float], int]:
        """One score in [0, 1] per step (higher = more likely right) and the tokens read.
        Blocking; :meth:`critique` runs it in a worker thread."""
        import torch

        text, ends = self.render(question, steps)
        enc = self.tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True,
                             return_tensors="pt")
        positions = _positions(enc["offset_mapping"][0].tolist(),
                               enc["special_tokens_mask"][0].tolist(), ends)
        n_tokens = int(enc["input_ids"].shape[1])
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and n_tokens > limit:
            raise ModelError(f"{self.name}: {n_tokens} tokens, the model reads at most {limit}")
        inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        with self._lock, torch.inference_mode():
            logits = self.model(**inputs).logits[0, positions].float()
        if self._ids is not None:
            pair = logits[:, list(self._ids)]
            scores = torch.softmax(pair, dim=-1)[:, 0]
        elif logits.shape[-1] == 1:
            scores = torch.sigmoid(logits[:, 0])
        else:
            scores = torch.softmax(logits, dim=-1)[:, 1]
        return [float(s) for s in scores.tolist()], n_tokens

    async def critique(self, problem: Problem, solution: Solution) -> Critique:
        if not solution.steps:
            return Critique(verdict=None, critic=self.name, feedback="no steps to score")
        scores, n_tokens = await asyncio.to_thread(
            self.score_steps, problem.question, solution.steps)
        crit = critique_from_scores(scores, self.threshold, critic=self.name)
        return replace(crit, usage=Usage(prompt_tokens=n_tokens, calls=1))


def detect_task(spec: str | Path) -> str:
    """``"token-classification"`` when the checkpoint's architecture (or its LoRA adapter's
    task type) says so, else ``"causal-lm"``. Reads local files only (a hub name: the local
    HF cache)."""
    if str(spec) == "embedded" or str(spec).endswith(".gguf"):
        return "causal-lm"
    folder = Path(spec).expanduser()
    for name, key, token_cls in (("config.json", "architectures", None),
                                 ("adapter_config.json", "task_type", "TOKEN_CLS")):
        path = folder / name
        if not path.is_file():
            continue
        try:
            value = json.loads(path.read_text()).get(key)
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path}: cannot read: {e}") from e
        if token_cls is None:
            if any(str(a).endswith("ForTokenClassification") for a in value or ()):
                return "token-classification"
            if value:
                return "causal-lm"
        elif value:
            return "token-classification" if value == token_cls else "causal-lm"
    return _hub_task(str(spec))


def _hub_task(spec: str) -> str:
    """The task of a hub checkpoint already in the local HF cache; ``"causal-lm"`` otherwise
    (no download just to look)."""
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(spec, local_files_only=True)
    except Exception:  # not cached, not a hub name, or transformers missing: load decides
        return "causal-lm"
    archs = getattr(config, "architectures", None) or ()
    return ("token-classification" if any(a.endswith("ForTokenClassification") for a in archs)
            else "causal-lm")


def _running_minima(scores: Sequence[float]) -> list[tuple[int, float]]:
    """``(index, score)`` of each step scoring below every step before it."""
    out: list[tuple[int, float]] = []
    for j, s in enumerate(scores):
        if not out or s < out[-1][1]:
            out.append((j, float(s)))
    return out


def _positions(offsets: list[list[int]], special: list[int], ends: Sequence[int]) -> list[int]:
    """Per separator end ``c``, the last ordinary token that starts at or before ``c``: the
    token holding the separator's last character, or the step's last token when the tokenizer
    drops the separator (whitespace)."""
    ordinary = [i for i, m in enumerate(special) if not m]
    starts = [offsets[i][0] for i in ordinary]
    out = []
    for c in ends:
        k = bisect.bisect_right(starts, c) - 1
        if k < 0:
            raise ModelError(f"no token before character {c} of the PRM input")
        out.append(ordinary[k])
    return out


def critique_from_scores(
    scores: Sequence[float], threshold: float, *, critic: str = ""
) -> Critique:
    """Step verdicts from step scores: "incorrect" when ``score < threshold``; ``first_error``
    is the first such step, ``score`` the lowest step score."""
    steps = tuple(
        StepVerdict(i, "incorrect" if s < threshold else "correct", score=float(s))
        for i, s in enumerate(scores))
    first = first_incorrect(steps)
    return Critique(
        steps=steps, first_error=first,
        verdict=overall_from_first_error(first) if steps else None,
        score=min(scores) if scores else None, critic=critic,
        feedback=f"threshold {threshold:g}",
    )


def with_threshold(critique: Critique, threshold: float) -> Critique:
    """A PRM critique re-judged at another threshold (same scores, usage and name)."""
    scores = [s.score for s in critique.steps]
    if not scores or any(s is None for s in scores):
        return critique
    new = critique_from_scores([float(s) for s in scores if s is not None], threshold,
                               critic=critique.critic)
    return replace(new, usage=critique.usage, raw=critique.raw)


def choose_threshold(
    scores_by_item: Sequence[Sequence[float]], gold_first_errors: Sequence[int | None]
) -> float:
    """The threshold that maximises ProcessBench F1 (``metrics.processbench``) over the items.

    ``gold_first_errors``: the 0-based first wrong step per item, ``None`` (or -1) when all
    steps are right. Candidates are the midpoints between consecutive distinct scores; ties
    go to the smallest threshold. With fewer than two distinct scores there is nothing to
    choose and 0.5 is returned.
    """
    if len(scores_by_item) != len(gold_first_errors):
        raise ValueError("scores_by_item and gold_first_errors differ in length")
    distinct = sorted({float(s) for item in scores_by_item for s in item})
    candidates = [(a + b) / 2 for a, b in itertools.pairwise(distinct)]
    if not candidates:
        return 0.5
    examples = [
        Example(Problem(str(i), ""), gold=Gold(first_error=None, final_answer_correct=True)
                if g is None or g < 0 else Gold(first_error=g))
        for i, g in enumerate(gold_first_errors)
    ]
    # An item's prediction at t is its first step scoring below t; it changes only where t
    # passes one of the item's running minima. Sweeping t upwards through those events keeps
    # every item's result current without rescanning all scores at every candidate.
    events = sorted((v, i, j) for i, item in enumerate(scores_by_item)
                    for j, v in _running_minima(item))
    verdicts: dict[int, Critique] = {-1: Critique(verdict="correct")}
    results = [Result(ex, verdicts[-1]) for ex in examples]
    best, best_f1, f1, k = candidates[0], -1.0, 0.0, 0
    for n, t in enumerate(candidates):
        moved = n == 0
        while k < len(events) and events[k][0] < t:
            _, i, j = events[k]
            crit = verdicts.setdefault(j, Critique(first_error=j, verdict="incorrect"))
            results[i] = Result(examples[i], crit)
            k, moved = k + 1, True
        if moved:
            f1 = float(processbench(results)["f1"])
        if f1 > best_f1:
            best, best_f1 = t, f1
    return best
