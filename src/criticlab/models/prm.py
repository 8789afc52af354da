"""Process reward models (PRMs) as an engine: a score per step, read at the step separators.

The solution is rendered as ``prefix`` (the question) followed by the steps, each followed by
``step_tag`` (``"\\n\\n"``, or a special token such as Math-Shepherd's ``" ки"``), joined by
``joiner``. One forward pass scores every step at once, at the last token of each separator:

- a token-classification model (``AutoModelForTokenClassification``): ``softmax(logits)[1]``
  with two labels (label 1 = good step), ``sigmoid(logit)`` with one;
- a causal LM trained to put a good or bad token after each step (Math-Shepherd style, and
  :mod:`criticlab.train.prm`): ``P(good) / (P(good) + P(bad))`` at the separator position.

:class:`PRMModel` is the engine of model specs ``prm:DIR`` (registered in
:mod:`criticlab.models.spec`): it has a ``name`` and ``async score_steps(question, steps)``
(:class:`~criticlab.models.base.StepScorer`), so the store's
:class:`~criticlab.cache.CachedModel` caches its scores like any other response, and it writes
no text. :func:`score_positions` is the one tensor computation behind it and behind
:func:`criticlab.train.prm.step_scores`. Thresholds (turning scores into verdicts) are the
critic's business: :mod:`criticlab.critics.prm`.

Loading goes through :mod:`criticlab.models.hf_load`, so every spec it accepts works here (a
local folder, a LoRA adapter, a hub name when online). It does not run models that need
``trust_remote_code`` (such as Qwen2.5-Math-PRM's custom head) and does not truncate: a
solution longer than the model's context is a ``ModelError``.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from criticlab.errors import ConfigError, ModelError
from criticlab.models.base import GenerateConfig, Generation, Message, StepScores
from criticlab.types import Usage

__all__ = ["TASKS", "PRMModel", "detect_task", "score_positions", "trained_format"]

TASKS = ("auto", "token-classification", "causal-lm")


def trained_format(spec: str | Path) -> dict[str, Any]:
    """The input format of a checkpoint trained by ``criticlab train prm`` (recorded in its
    ``criticlab_train.json``: the question and a newline, each step followed by the step
    separator, P(good token) vs P(bad token) at its last token), so that ``prm:DIR`` reads
    solutions as the model learned them; ``{}`` for any other checkpoint."""
    from criticlab.train.common import TRAIN_NOTE

    path = Path(spec).expanduser() / TRAIN_NOTE
    if not path.is_file():
        return {}
    try:
        note = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read the training note: {e}") from e
    if not isinstance(note, dict) or note.get("method") != "prm":
        return {}
    return {"kind": "causal-lm", "prefix": "{question}\n",
            "step_tag": str(note.get("step_separator", "\n")),
            "good_token": str(note.get("good_token", "+")),
            "bad_token": str(note.get("bad_token", "-"))}


class PRMModel:
    """A process reward model behind the :class:`~criticlab.models.base.StepScorer` protocol
    (see the module docstring).

    ``kind`` is ``"auto"`` (from the checkpoint's architecture or its adapter's task type),
    ``"token-classification"`` or ``"causal-lm"``. ``good_token``/``bad_token`` (a single-token
    string or a token id) are used by causal-LM PRMs only. ``prefix`` and ``step_format`` are
    plain templates (filled by :func:`~criticlab.critics.template.fill`, in one pass):
    ``{question}``; ``{step}`` and ``{n}`` (the 1-based step number).

    ``name`` (part of every cache key) defaults to ``prm:SPEC``, the name of the model spec
    ``prm:SPEC``; with any other input format or dtype a hash of them is appended, so scores
    read in another format never share a cache entry. Requests run one at a time in a worker
    thread under a lock, so one loaded model is shared safely by concurrent callers.
    """

    def __init__(
        self,
        model_spec: str | Path,
        *,
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
        task = detect_task(model_spec) if kind == "auto" else kind
        model, tokenizer = load_pretrained(model_spec, task=task, dtype=dtype)
        fmt = {"step_tag": step_tag, "kind": kind, "good_token": good_token,
               "bad_token": bad_token, "prefix": prefix, "step_format": step_format,
               "joiner": joiner, "dtype": dtype}
        self._init(model, tokenizer, task, name or default_name(model_spec, fmt),
                   where=str(model_spec), step_tag=step_tag, good_token=good_token,
                   bad_token=bad_token, prefix=prefix, step_format=step_format, joiner=joiner)

    @classmethod
    def from_loaded(
        cls, model: Any, tokenizer: Any, name: str, *, kind: str = "causal-lm",
        step_tag: str = "\n\n", good_token: str | int = "+", bad_token: str | int = "-",
        prefix: str = "{question}\n\n", step_format: str = "{step}", joiner: str = "",
    ) -> PRMModel:
        """Wrap a model and tokenizer already in memory (e.g. one just trained); ``kind`` is
        ``"causal-lm"`` or ``"token-classification"``, ``name`` must tell its weights and
        format apart from every other model's (it is a cache key)."""
        if kind not in TASKS[1:]:
            raise ConfigError(f"PRM kind {kind!r}: give one of: {', '.join(TASKS[1:])}")
        self = cls.__new__(cls)
        self._init(model, tokenizer, kind, name, where=name, step_tag=step_tag,
                   good_token=good_token, bad_token=bad_token, prefix=prefix,
                   step_format=step_format, joiner=joiner)
        return self

    @classmethod
    def math_shepherd(cls, model_spec: str | Path, *, name: str | None = None) -> PRMModel:
        """The format of peiyi9979/math-shepherd-mistral-7b-prm: ``"{question} Step 1: ... ки
        Step 2: ... ки"``, scored as P("+") / (P("+") + P("-")) at each ``ки``. Named
        ``math-shepherd:SPEC``."""
        return cls(model_spec, kind="causal-lm", step_tag=" ки", good_token=648,
                   bad_token=387, prefix="{question} ", step_format="Step {n}: {step}",
                   joiner="\n", name=name or f"math-shepherd:{model_spec}")

    def _init(self, model: Any, tokenizer: Any, kind: str, name: str, *, where: str,
              step_tag: str, good_token: str | int, bad_token: str | int, prefix: str,
              step_format: str, joiner: str) -> None:
        self.model, self.tokenizer, self.kind, self.name = model, tokenizer, kind, name
        self.step_tag, self.prefix, self.step_format, self.joiner = (
            step_tag, prefix, step_format, joiner)
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError(f"{where}: the PRM needs a fast tokenizer (character offsets)")
        self.label_ids: tuple[int, int] | None = None
        if kind == "causal-lm":
            self.label_ids = (self._token_id(good_token), self._token_id(bad_token))
        else:
            labels = int(getattr(model.config, "num_labels", 2))
            if labels not in (1, 2):
                raise ConfigError(f"{where}: a PRM head needs 1 or 2 labels, not {labels}")
        self._lock = threading.Lock()

    def _token_id(self, token: str | int) -> int:
        if isinstance(token, int):
            return token
        ids = self.tokenizer.encode(token, add_special_tokens=False)
        if len(ids) != 1:
            raise ConfigError(f"PRM token {token!r} is {len(ids)} tokens, not one: pass its id")
        return int(ids[0])

    def render(self, question: str, steps: Sequence[str]) -> tuple[str, list[int]]:
        """The text the model reads and, per step, the index of its separator's last char."""
        from criticlab.critics.template import fill

        text = fill(self.prefix, question=question)
        ends = []
        for i, step in enumerate(steps):
            piece = fill(self.step_format, n=str(i + 1), step=step)
            text += (self.joiner if i else "") + piece + self.step_tag
            ends.append(len(text) - 1)
        return text, ends

    def encode(self, question: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        """The token ids the model reads and, per step, the position its score is read at."""
        text, ends = self.render(question, steps)
        enc = self.tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
        positions = _positions(list(enc["offset_mapping"]), list(enc["special_tokens_mask"]),
                               ends)
        return list(enc["input_ids"]), positions

    def score(self, question: str, steps: Sequence[str]) -> tuple[list[float], int]:
        """One score in [0, 1] per step (higher = more likely right) and the tokens read.
        Blocking; :meth:`score_steps` runs it in a worker thread."""
        if not steps:
            return [], 0
        with self._lock:
            ids, positions = self.encode(question, steps)
            return score_positions(self.model, ids, positions, label_ids=self.label_ids,
                                   name=self.name), len(ids)

    async def score_steps(self, question: str, steps: Sequence[str]) -> StepScores:
        """The steps' scores (:meth:`score`), with the prompt tokens read and one call."""
        if not steps:
            return StepScores(())
        scores, n_tokens = await asyncio.to_thread(self.score, question, tuple(steps))
        return StepScores(tuple(scores), Usage(prompt_tokens=n_tokens, calls=1))

    async def generate(
        self, messages: Sequence[Message], config: GenerateConfig
    ) -> list[Generation]:
        raise ConfigError(f"{self.name} is a process reward model: it scores steps (--critic "
                          f"prm:...) and does not write text")


def score_positions(
    model: Any, input_ids: Any, positions: Sequence[int], *,
    label_ids: tuple[int, int] | None = None, name: str = "the PRM",
) -> list[float]:
    """One forward pass of ``model`` over ``input_ids`` (one sequence: a list of ids or a
    tensor), and a score in [0, 1] read at each of ``positions``: with ``label_ids`` (a
    causal LM's good and bad token ids) ``P(good) / (P(good) + P(bad))``, else from a
    token-classification head, ``softmax(logits)[1]`` (two labels) or ``sigmoid`` (one).

    The one scoring computation of criticlab: :class:`PRMModel` and
    :func:`criticlab.train.prm.step_scores` both call it. A sequence longer than the model's
    ``max_position_embeddings`` is a ``ModelError`` (naming ``name``); nothing is truncated.
    """
    import torch

    ids = torch.as_tensor(input_ids)
    if ids.dim() == 1:
        ids = ids.unsqueeze(0)
    n_tokens = int(ids.shape[1])
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if limit and n_tokens > limit:
        raise ModelError(f"{name}: {n_tokens} tokens, the model reads at most {limit}")
    if not positions:
        return []
    device = getattr(model, "device", None)
    if device is not None:
        ids = ids.to(device)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, list(positions)].float()
    if label_ids is not None:
        scores = torch.softmax(logits[:, list(label_ids)], dim=-1)[:, 0]
    elif logits.shape[-1] == 1:
        scores = torch.sigmoid(logits[:, 0])
    else:
        scores = torch.softmax(logits, dim=-1)[:, 1]
    return [float(s) for s in scores.tolist()]


def default_name(model_spec: str | Path, fmt: dict[str, Any]) -> str:
    """``prm:SPEC`` for the default input format (the engine of the spec ``prm:SPEC``), else
    ``prm:SPEC#HASH``, HASH a digest of the format: another format is another cache key."""
    defaults = {"step_tag": "\n\n", "kind": "auto", "good_token": "+", "bad_token": "-",
                "prefix": "{question}\n\n", "step_format": "{step}", "joiner": "",
                "dtype": "float32"}
    if fmt == defaults:
        return f"prm:{model_spec}"
    blob = json.dumps(fmt, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return f"prm:{model_spec}#{hashlib.sha256(blob).hexdigest()[:12]}"


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


def _positions(offsets: Sequence[Sequence[int]], special: Sequence[int],
               ends: Sequence[int]) -> list[int]:
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
