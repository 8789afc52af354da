import json

from criticlab.benchmarks.jsonl import read_examples
from criticlab.errors import InputError
from criticlab.types import Gold


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_jsonl_good_and_bad_records(tmp_path):
    lines = [
        json.dumps({"id": "a", "problem": "1+1?", "steps": ["1 + 1 = 2"], "label": -1}),
        "{not json",
        json.dumps({"steps": ["x"]}),
        json.dumps({"problem": "q", "steps": []}),
        json.dumps({"problem": "q", "solution": "Step 1: 2 * 3 = 6\nStep 2: done"}),
        json.dumps({"problem": "q", "steps": ["a"], "label": 3}),
    ]
    path = write(tmp_path, "r.jsonl", "\n".join(lines).encode())
    out = list(read_examples(path))
    assert out[0].problem.id == "a" and out[0].gold == Gold(None, None, None)
    errors = [str(e) for e in out if isinstance(e, InputError)]
    assert errors[0].startswith(f"{path}:2: invalid JSON")
    assert errors[1] == f"{path}:3: problem: missing (each record needs the problem text)"
    assert errors[2] == f"{path}:4: steps: is empty (give at least one step)"
    assert errors[3] == f"{path}:6: label: must be an integer from -1 to 0"
    assert out[4].solution.steps == ("2 * 3 = 6", "done")
    assert out[4].problem.id == "r.jsonl:5"


def test_a_bare_problem_has_no_solution_but_a_labelled_one_needs_steps(tmp_path):
    lines = [json.dumps({"id": "q", "problem": "2 * 3?", "reference_answer": 6}),
             json.dumps({"id": "r", "problem": "2 * 3?", "label": -1})]
    bare, labelled = read_examples(write(tmp_path, "p.jsonl", "\n".join(lines).encode()))
    assert bare.solution is None and bare.gold is None
    assert bare.problem.reference_answer == "6"
    assert isinstance(labelled, InputError)
    assert str(labelled).endswith(":2: steps: missing: give 'steps' (a list) or 'solution' (text)")


def test_json_array_reports_line_of_each_record(tmp_path):
    text = '[\n  {"problem": "q", "steps": ["a"]},\n  {"problem": 5, "steps": ["a"]}\n]'
    path = write(tmp_path, "r.json", text.encode())
    out = list(read_examples(path))
    assert out[0].problem.question == "q"
    assert str(out[1]) == f"{path}:3: problem: must be a non-empty string"


def test_json_array_syntax_error_keeps_earlier_records(tmp_path):
    text = '[{"problem": "q", "steps": ["a"]},\n {"problem": "q", "steps": ["a"] oops}]'
    out = list(read_examples(write(tmp_path, "r.json", text.encode())))
    assert out[0].problem.question == "q"
    assert isinstance(out[1], InputError) and out[1].line == 2


def test_single_pretty_object(tmp_path):
    text = '{\n "problem": "q",\n "solution": "a = 1\\n\\nb = 2",\n "label": 1\n}'
    (ex,) = read_examples(write(tmp_path, "r.json", text.encode()))
    assert ex.solution.steps == ("a = 1", "b = 2") and ex.gold.first_error == 1


def test_non_utf8_only_rejects_that_record(tmp_path):
    data = b'{"problem": "ok", "steps": ["a"]}\n{"problem": "caf\xe9", "steps": ["a"]}\n'
    out = list(read_examples(write(tmp_path, "r.jsonl", data)))
    assert out[0].problem.question == "ok"
    assert str(out[1]).endswith(":2: problem: contains bytes that are not valid UTF-8")


def test_missing_and_empty_file(tmp_path):
    import pytest
    with pytest.raises(InputError, match="no such file"):
        list(read_examples(str(tmp_path / "nope.json")))
    (e,) = read_examples(write(tmp_path, "e.jsonl", b"\n"))
    assert "no records" in str(e)
