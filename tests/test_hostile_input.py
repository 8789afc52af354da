"""Hostile input files, as a user runs them: each bad record is one located ``error:`` line
(exit code 2), every good record is still critiqued exactly once, and no traceback."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

GOOD = [json.dumps({"id": f"g{i}", "problem": "q", "steps": ["1 + 1 = 2"]}).encode()
        for i in range(4)]


def run(*args, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "200",
           "CRITICLAB_STORE": str(tmp_path / "store.sqlite")}
    return subprocess.run([sys.executable, "-m", "criticlab", *args], capture_output=True,
                          cwd=ROOT, env=env, timeout=600)


def critique(tmp_path, name: str, data: bytes):
    """(exit code, the ``error:`` lines, the ids on stdout) of ``critique --json``."""
    f = tmp_path / name
    f.write_bytes(data)
    p = run("critique", str(f), "--critic", "arithmetic", "--json", tmp_path=tmp_path)
    err = p.stderr.decode("utf-8", "backslashreplace")
    assert "Traceback" not in err, err
    # records are split on \n only: a U+2028 inside a record is not a line break
    rows = [json.loads(line) for line in p.stdout.decode().split("\n") if line]
    ids = [r["example"]["problem"]["id"] for r in rows]
    return p.returncode, [e for e in err.splitlines() if e.startswith("error:")], ids, str(f)


def jsonl(*records: bytes) -> bytes:
    return b"\n".join(records) + b"\n"


# -- 1. integers longer than Python's conversion limit -------------------------------------

def test_huge_integer_is_one_located_error(tmp_path):
    bad = b'{"id": "b", "problem": "q", "steps": ["a"], "reference_answer": ' + b"9" * 5000 + b"}"
    rc, errors, ids, f = critique(tmp_path, "r.jsonl", jsonl(GOOD[0], bad, GOOD[1]))
    assert rc == 2
    assert errors == [f"error: {f}:2: reference_answer: an integer of 5000 digits, over the "
                      "limit of 4300 digits (give it as a string)"]
    assert ids == ["g0", "g1"]


def test_huge_integer_in_an_array_keeps_the_rest_of_the_array(tmp_path):
    bad = b'{"id": "b", "problem": "q", "steps": ["a"], "tests": [1, -' + b"1" * 4400 + b"]}"
    data = b"[\n" + b",\n".join([GOOD[0], bad, GOOD[1]]) + b"\n]\n"
    rc, errors, ids, f = critique(tmp_path, "r.json", data)
    assert rc == 2
    assert errors == [f"error: {f}:3: tests[1]: an integer of 4400 digits, over the limit of "
                      "4300 digits (give it as a string)"]
    assert ids == ["g0", "g1"]


# -- 2. deep nesting --------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [101, 970, 1000, 100_000])
def test_deep_nesting_is_one_located_error(tmp_path, depth):
    bad = (b'{"id": "d", "problem": "q", "steps": ["1 + 1 = 2"], "tests": '
           + b"[" * depth + b"]" * depth + b"}")
    rc, errors, ids, f = critique(tmp_path, "r.jsonl", jsonl(GOOD[0], bad, GOOD[1]))
    assert rc == 2
    assert errors == [f"error: {f}:2: tests: nested deeper than the limit of 100 levels"]
    assert ids == ["g0", "g1"]


def test_deep_nesting_in_an_array_keeps_the_rest_of_the_array(tmp_path):
    bad = b'{"id": "d", "problem": "q", "steps": ["a"], "tests": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    data = b"[" + b",\n".join([GOOD[0], bad, GOOD[1]]) + b"]"
    rc, errors, ids, f = critique(tmp_path, "r.json", data)
    assert rc == 2
    assert errors == [f"error: {f}:2: tests: nested deeper than the limit of 100 levels"]
    assert ids == ["g0", "g1"]


def test_nesting_up_to_the_limit_is_read_and_written(tmp_path):
    # the record is level 1, "tests" opens level 2: 99 lists reach level 100
    ok = (b'{"id": "n", "problem": "q", "steps": ["1 + 1 = 2"], "tests": '
          + b"[" * 99 + b"]" * 99 + b"}")
    rc, errors, ids, _ = critique(tmp_path, "r.jsonl", jsonl(ok))
    assert (rc, errors, ids) == (0, [], ["n"])


# -- 3. lone surrogates -----------------------------------------------------------------------

@pytest.mark.parametrize("record,field,char", [
    (b'{"id": "s", "problem": "p\\ud800", "steps": ["1 + 1 = 2"]}', "problem", "ud800"),
    (b'{"id": "s", "problem": "q", "steps": ["ok", "x\\udfff"]}', "steps[1]", "udfff"),
    (b'{"id": "s", "problem": "q", "steps": ["a"], "tests": {"c": ["\\udbff"]}}', "tests.c[0]",
     "udbff"),
    (b'{"id": "s\\udc80", "problem": "q", "steps": ["a"]}', "id", "udc80"),
    (b'{"id": "s", "problem": "q", "steps": ["a"], "source": {"k\\ud800": 1}}', "source",
     "ud800"),
])
def test_lone_surrogate_is_one_located_error(tmp_path, record, field, char):
    rc, errors, ids, f = critique(tmp_path, "r.jsonl", jsonl(GOOD[0], record, GOOD[1]))
    assert rc == 2
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {f}:2: {field}: ")
    assert errors[0].endswith(f"contains a lone surrogate \\{char}, which is not text")
    assert ids == ["g0", "g1"]


def test_surrogate_pair_is_text(tmp_path):
    rec = b'{"id": "e", "problem": "smile \\ud83d\\ude00", "steps": ["1 + 1 = 2"]}'
    rc, errors, ids, _ = critique(tmp_path, "r.jsonl", jsonl(rec))
    assert (rc, errors, ids) == (0, [], ["e"])


def test_eval_refuses_a_lone_surrogate_in_one_line_and_reruns_the_same(tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_bytes(jsonl(GOOD[0], b'{"id": "s", "problem": "p\\ud800", "steps": ["a"]}'))
    for _ in range(2):
        p = run("eval", str(f), "--critic", "arithmetic", "--out", str(tmp_path / "run"),
                tmp_path=tmp_path)
        err = p.stderr.decode("utf-8", "backslashreplace")
        assert p.returncode == 2 and "Traceback" not in err, err
        assert [e for e in err.splitlines() if e.startswith("error:")] == [
            f"error: {f}:2: problem: contains a lone surrogate \\ud800, which is not text"]


# -- 4. Unicode line separators inside strings ------------------------------------------------

def test_unicode_line_separators_inside_a_string_are_text(tmp_path):
    text = "a\u2028b\u2029c\x85d"
    recs = [GOOD[0], json.dumps({"id": "u", "problem": text, "steps": ["1 + 1 = 2"]},
                                ensure_ascii=False).encode(), GOOD[1]]
    rc, errors, ids, f = critique(tmp_path, "r.jsonl", jsonl(*recs))
    assert (rc, errors, ids) == (0, [], ["g0", "u", "g1"])
    p = run("critique", f, "--critic", "arithmetic", "--json", tmp_path=tmp_path)
    lines = p.stdout.decode().splitlines()  # even a reader that splits on U+2028 is safe
    assert json.loads(lines[1])["example"]["problem"]["question"] == text


# -- 5. content after a JSON array ------------------------------------------------------------

@pytest.mark.parametrize("after,line", [
    (b"\n" + GOOD[2], 4),                 # a JSONL record on the next line
    (b"\n\n[" + GOOD[2] + b"]", 5),       # a second array
    (b" garbage", 3),                     # garbage after the bracket
    (b"]", 3),                            # one bracket too many
])
def test_content_after_the_array_is_an_error(tmp_path, after, line):
    data = b"[" + GOOD[0] + b",\n" + GOOD[1] + b",\n" + GOOD[3] + b"]" + after
    rc, errors, ids, f = critique(tmp_path, "r.json", data)
    assert rc == 2
    assert errors == [f"error: {f}:{line}: unexpected content after the JSON array's closing "
                      "']': a file holds one JSON array, one JSON object, or JSONL; the rest "
                      "of the file is not read"]
    assert ids == ["g0", "g1", "g3"]  # the array's records are still critiqued


# -- 7. encodings, line endings, odd bytes, empty and non-JSON files --------------------------

def test_bom_and_crlf_are_read(tmp_path):
    rc, errors, ids, _ = critique(tmp_path, "r.jsonl", b"\xef\xbb\xbf" + b"\r\n".join(GOOD))
    assert (rc, errors, ids) == (0, [], ["g0", "g1", "g2", "g3"])
    arr = b"\xef\xbb\xbf[\r\n" + b",\r\n".join(GOOD[:2]) + b"\r\n]\r\n"
    rc, errors, ids, _ = critique(tmp_path, "a.json", arr)
    assert (rc, errors, ids) == (0, [], ["g0", "g1"])


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files_are_one_error(tmp_path, encoding):
    data = b"\n".join(GOOD).decode().encode(encoding)
    rc, errors, ids, f = critique(tmp_path, "r.jsonl", data)
    assert rc == 2 and ids == []
    name = {"utf-16": "UTF-16", "utf-16-le": "UTF-16LE", "utf-16-be": "UTF-16BE",
            "utf-32": "UTF-32"}[encoding]
    assert errors == [f"error: {f}:1: the file is {name} text, not UTF-8: save it as UTF-8 "
                      f"(e.g. iconv -f {name} -t UTF-8)"]


def test_a_binary_file_is_one_error(tmp_path):
    data = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(256)) * 4
    rc, errors, ids, f = critique(tmp_path, "r.json", data)
    assert rc == 2 and ids == []
    assert errors == [f"error: {f}:1: not UTF-8 text (byte 0x8b, column 2, cannot be decoded): "
                      "criticlab reads a JSON array, one JSON object, or JSONL, in UTF-8"]


def test_a_latin1_record_is_one_error_and_the_rest_is_read(tmp_path):
    data = jsonl(GOOD[0], b'{"id": "l", "problem": "caf\xe9", "steps": ["a"]}', GOOD[1])
    rc, errors, ids, f = critique(tmp_path, "r.jsonl", data)
    assert rc == 2
    assert errors == [f"error: {f}:2: problem: contains bytes that are not valid UTF-8"]
    assert ids == ["g0", "g1"]


@pytest.mark.parametrize("name,data", [
    ("r.yaml", b"problem: 1 + 1?\nsteps:\n  - 1 + 1 = 2\n"),
    ("r.csv", b"id,problem,steps\n1,q,1 + 1 = 2\n"),
    ("r.json", b"<!doctype html>\n<html><body>Not Found</body></html>\n"),
])
def test_a_file_that_is_not_json_is_one_error(tmp_path, name, data):
    rc, errors, ids, f = critique(tmp_path, name, data)
    assert rc == 2 and ids == []
    assert errors == [f"error: {f}:1: invalid JSON: Expecting value (column 1); no line of the "
                      "file is JSON (criticlab reads a JSON array, one JSON object, or JSONL)"]


def test_nul_bytes_are_one_error_per_record(tmp_path):
    data = jsonl(GOOD[0], b'{"id": "z", "problem": "q\x00", "steps": ["a"]}', b"\x00", GOOD[1])
    rc, errors, ids, f = critique(tmp_path, "r.jsonl", data)
    assert rc == 2
    assert errors == [f"error: {f}:2: invalid JSON: Invalid control character at (column 26)",
                      f"error: {f}:3: invalid JSON: Expecting value (column 1)"]
    assert ids == ["g0", "g1"]


@pytest.mark.parametrize("data,why", [
    (b"", "the file is empty"),
    (b"\xef\xbb\xbf \r\n\n", "the file is empty"),
    (b"[\n]\n", "the array is empty"),
])
def test_a_file_without_records_is_one_error(tmp_path, data, why):
    rc, errors, ids, f = critique(tmp_path, "r.json", data)
    assert (rc, ids) == (2, [])
    assert errors == [f"error: {f}: no records ({why})"]


def test_a_bare_problem_is_one_located_error(tmp_path):
    """It crashed critique with an AssertionError traceback."""
    f = tmp_path / "r.jsonl"
    f.write_bytes(jsonl(GOOD[0], b'{"id": "b", "problem": "q"}', GOOD[1]))
    p = run("critique", str(f), "--critic", "arithmetic", "--json", tmp_path=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr.decode(), p.stderr.decode()
    assert (f"error: {f}:2: steps: no solution to critique (give 'steps' or 'solution')"
            in p.stderr.decode())
    rows = {r["example"]["problem"]["id"]: r for r in map(json.loads, p.stdout.splitlines())}
    assert list(rows) == ["g0", "g1"]


# -- writing never raises on text that is not valid Unicode -----------------------------------

def _odd_result():
    from criticlab.types import Critique, Example, Problem, Result, Solution, StepVerdict

    ex = Example(Problem("x\ud800", "q\udfff \u2028 caf\u00e9", metadata={"k\udbff": ["\udc80"]}),
                 Solution(("1 + 1 = 2 \ud800",)))
    return Result(ex, Critique(steps=(StepVerdict(0, "correct", "fine \udfff"),),
                               verdict="correct", critic="arithmetic", raw="\ud800"))


@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
def test_json_output_never_raises(monkeypatch, encoding):
    import io

    from criticlab.cli.common import out
    from criticlab.cli.critique import _emit

    buf = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(buf, encoding=encoding))
    r = _odd_result()
    _emit(r, True, out)
    _emit(type(r)(r.example, None, "engine said \ud800"), True, out)
    lines = buf.getvalue().decode(encoding).split("\n")
    assert lines[2] == ""
    first = json.loads(lines[0])
    assert first["example"]["problem"]["question"] == "q\udfff \u2028 caf\u00e9"
    assert first["example"]["problem"]["metadata"] == {"k\udbff": ["\udc80"]}
    assert json.loads(lines[1])["error"] == "engine said \ud800"


def test_text_output_never_raises():
    import io

    from rich.console import Console

    from criticlab.cli.critique import _emit

    buf = io.BytesIO()
    console = Console(file=io.TextIOWrapper(buf, encoding="utf-8", write_through=True),
                      width=120)
    _emit(_odd_result(), False, console)
    text = buf.getvalue().decode("utf-8")
    assert "x\\ud800" in text and "fine \\udfff" in text
