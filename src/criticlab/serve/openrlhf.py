"""OpenRLHF's remote reward model protocol (``--remote_rm_url http://HOST:PORT/get_reward``).

OpenRLHF posts ``{"query": [...], "prompts": [...], "labels": [...]}`` (its
``openrlhf/utils/remote_rm_utils.py``): each query is the prompt and the policy's response
decoded together (special tokens kept), each label the dataset's ``--label_key`` value (a
reference answer), and reads ``rewards`` back (newer versions also ``scores``, in [0, 1], for
dynamic filtering, and ``extra_logs``, logged per sample).

Here the response is the query after its prompt, with trailing special tokens (``<|im_end|>``,
``</s>``, padding) removed, split into steps by :func:`criticlab.steps.split_steps`; the
problem is the prompt without its special tokens; a label becomes the reference answer. An
empty response gets reward 0 without a critique.
"""

from __future__ import annotations

import re
from typing import Any

from criticlab.serve.service import Limits, RequestError
from criticlab.steps import split_steps
from criticlab.types import Example, Problem, Solution

_SPECIAL = re.compile(r"<\|[^|<>\s]{1,40}\|>|</?s>|<pad>|<eos>|<bos>")
# Trailing special tokens and whitespace, matched on the reversed text from its start: one
# attempt, linear. (Searched for at the end of the text, "(?:\s*<tok>)+\s*$" tried every start
# position and rescanned the whitespace after it: quadratic, 16 s for 100,000 spaces.)
_TRAILING_REVERSED = re.compile(r"(?:\s*+(?:>\|[^|<>\s]{1,40}\|<|>s/<|>dap<|>soe<))*+\s*+")


def split_response(query: str, prompt: str) -> str | None:
    """The response in ``query``: what follows ``prompt`` (a BOS token may come before it),
    without trailing special tokens; ``None`` when the prompt is not in the query."""
    at = query.find(prompt)
    if at < 0:
        return None
    response = query[at + len(prompt):]
    trailing = _TRAILING_REVERSED.match(response[::-1])  # always matches, maybe nothing
    end = len(response) - (trailing.end() if trailing else 0)
    return response[:end].strip()


def parse(body: Any, *, limits: Limits) -> tuple[list[Example | None], int]:
    """The examples of an OpenRLHF request (``None`` for an empty response) and their count."""
    if not isinstance(body, dict):
        raise RequestError(400, "body: must be a JSON object with 'query' and 'prompts'")
    queries, prompts, labels = body.get("query"), body.get("prompts"), body.get("labels")
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        raise RequestError(400, "query: must be a list of strings (prompt + response)")
    if not queries:
        raise RequestError(400, "query: is empty")
    limits.check_batch(len(queries), "query", "queries")
    if not isinstance(prompts, list) or len(prompts) != len(queries):
        raise RequestError(400, "prompts: must be a list with one prompt per query "
                                "(the response is the query after its prompt)")
    if labels is None:
        labels = [None] * len(queries)
    if not isinstance(labels, list) or len(labels) != len(queries):
        raise RequestError(400, "labels: must be a list with one label per query")
    out: list[Example | None] = []
    for i, (q, p, label) in enumerate(zip(queries, prompts, labels, strict=True)):
        if not isinstance(p, str):
            raise RequestError(400, f"prompts[{i}]: must be a string")
        if label is not None and not isinstance(label, str | int | float):
            raise RequestError(400, f"labels[{i}]: must be a string, a number or null")
        limits.check_chars(f"query[{i}]", len(q) + len(str(label or "")))  # q holds p
        response = split_response(q, p)
        if response is None:
            raise RequestError(400, f"query[{i}]: does not contain prompts[{i}]")
        question = _SPECIAL.sub("", p).strip() or p.strip()
        steps = split_steps(response)
        limits.check_steps(f"query[{i}]", len(steps))
        if not steps:
            out.append(None)
            continue
        ref = None if label is None or label == "" else str(label)
        out.append(Example(Problem(f"query{i}", question or "(empty prompt)", ref),
                           Solution(steps)))
    return out, len(queries)
