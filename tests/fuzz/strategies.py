"""Hypothesis strategies for hostile input files, shared by the fuzz tests and
``benchmarks/fuzz.py``: good records (whose results must come out exactly once) mixed with bad
records (wrong types in every field, huge and tiny numbers, deep nesting, lone surrogates,
NUL bytes) and bad lines (invalid UTF-8, broken JSON, very long lines), as JSONL (LF or CRLF,
with or without a BOM) or as a JSON array."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import strategies as st

FIELDS = ("id", "problem", "steps", "solution", "reference_answer", "label", "final_answer",
          "images", "tests")

# text a good record may hold: any Unicode but surrogates (the reader refuses those)
safe_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


def good_record(i: int) -> st.SearchStrategy[dict]:
    """A record every command accepts: arithmetic steps, a reference answer, a label."""
    return st.builds(
        lambda problem, a, b, slip: {
            "id": f"good-{i}", "problem": problem if problem.strip() else "q",
            "steps": [f"{a} + {b} = {a + b + slip}", f"The answer is {a + b + slip}."],
            "reference_answer": str(a + b), "label": 0 if slip else -1},
        safe_text, st.integers(0, 10**6), st.integers(0, 10**6), st.sampled_from([0, 0, 1]))


leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-10**400, 10**400),
    st.floats(), st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.text(max_size=20), safe_text)
hostile_value = st.one_of(
    leaf,
    st.lists(leaf, max_size=4),
    st.dictionaries(st.sampled_from(FIELDS), leaf, max_size=3),
    st.recursive(leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(
        st.text(max_size=5), c, max_size=3), max_leaves=12),
)


@st.composite
def bad_record(draw: st.DrawFn, i: int) -> dict:
    """A record with one to three fields replaced by hostile values, or dropped."""
    rec = dict(draw(good_record(i)))
    rec["id"] = f"bad-{i}"
    for field in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3)):
        if draw(st.booleans()):
            rec[field] = draw(hostile_value)
        else:
            rec.pop(field, None)
    return rec


# lines no JSON parser should take whole, or that stress one
RAW_LINES = [
    b"{broken", b"[", b"]", b"null", b"42", b'"just a string"', b"\x00", b"\xfd\xfe\xff",
    b'{"problem": "caf\xe9", "steps": ["a"]}', b'{"problem": "p\\ud800", "steps": ["1 = 1"]}',
    b'{"problem": "p\\udfff", "steps": ["1 = 1"]}', b'{"problem": "q", "steps": ["1 = 1"]}}',
    b'{"problem": "q", "steps": [' + b"1" * 5000 + b"]}",
    b"[" * 1200 + b"]" * 1200, b'{"problem": "q", "tests": ' + b"[" * 980 + b"]" * 980 + b"}",
    b'{"problem": "q", "solution": "' + b"*" * 60 + b'"}',
    b'{"problem": "q", "solution": "' + b"#" * 15 + b" " + b"_" * 15 + b'"}',
    b'{"problem": "q", "steps": ["' + b"carry " * 3000 + b'"]}',
    b'{"problem": "q", "steps": ["' + b"\\\\frac{" * 2000 + b'"]}',
    b"x" * 100_000,
]


@dataclass
class Case:
    """One hostile input file: its bytes, its suffix, and the ids of its good records."""

    data: bytes
    suffix: str
    good: list[str]

    def describe(self) -> str:
        return f"{self.suffix} file of {len(self.data)} bytes, good ids {self.good}"


@st.composite
def jsonl_case(draw: st.DrawFn, max_records: int = 12) -> Case:
    n = draw(st.integers(1, max_records))
    lines: list[bytes] = []
    good: list[str] = []
    for i in range(n):
        kind = draw(st.sampled_from(["good", "good", "bad", "raw", "blank"]))
        if kind == "good":
            lines.append(json.dumps(draw(good_record(i)), ensure_ascii=draw(st.booleans()))
                         .encode())
            good.append(f"good-{i}")
        elif kind == "bad":
            lines.append(json.dumps(draw(bad_record(i))).encode())
        elif kind == "raw":
            lines.append(draw(st.sampled_from(RAW_LINES)))
        else:
            lines.append(b"  ")
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return Case(bom + eol.join(lines) + eol, ".jsonl", good)


@st.composite
def array_case(draw: st.DrawFn, max_records: int = 12) -> Case:
    """A JSON array that is valid JSON throughout, hostile only in its values."""
    n = draw(st.integers(1, max_records))
    items, good = [], []
    for i in range(n):
        if draw(st.booleans()):
            items.append(draw(good_record(i)))
            good.append(f"good-{i}")
        else:
            items.append(draw(bad_record(i)))
    return Case(json.dumps(items, indent=draw(st.sampled_from([None, 1]))).encode(), ".json",
                good)


def input_case(max_records: int = 12) -> st.SearchStrategy[Case]:
    return st.one_of(jsonl_case(max_records), array_case(max_records))


# -- corrupt run directories (for `report`) -------------------------------------------------
RUN_FILES = ("config.json", "metrics.json", "results.jsonl", "store.sqlite")


@st.composite
def corrupt_run(draw: st.DrawFn) -> dict[str, bytes]:
    """The files of a run directory, some truncated, replaced by garbage, or missing."""
    good = {
        "config.json": json.dumps({"kind": "eval", "benchmark": "b.json", "critic": "arithmetic",
                                   "model": "embedded", "out": "r"}).encode(),
        "metrics.json": json.dumps({"n": 1, "complete": True}).encode(),
        "results.jsonl": json.dumps({"example": {"problem": {"id": "a", "question": "q"},
                                                 "solution": {"steps": ["1 = 1"]}},
                                     "critique": {"verdict": "correct"}}).encode() + b"\n",
    }
    files = {}
    for name in RUN_FILES:
        how = draw(st.sampled_from(["keep", "truncate", "garbage", "missing"]))
        body = good.get(name, b"")
        if how == "keep" and name in good:
            files[name] = body
        elif how == "truncate" and body:
            files[name] = body[: draw(st.integers(0, len(body) - 1))]
        elif how == "garbage":
            files[name] = draw(st.sampled_from(RAW_LINES[:12]))
    return files
