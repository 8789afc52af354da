import json

from criticlab.data.jsonl import read_examples
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
    assert out[0].problem.id == "a" and out[0].gold == Gold(None, (True,), None)
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


# -- hostile input: the reader on its own (the CLI runs are in tests/test_hostile_input.py) ---

def _located(items):
    return [(e.line, e.field, e.message) if isinstance(e, InputError) else e.problem.id
            for e in items]


def test_array_lines_are_exact_for_many_records(tmp_path):
    recs = [json.dumps({"id": f"r{i}", "problem": "q\\n" * (i % 3), "steps": ["a"]},
                       indent=1 if i % 2 else None) for i in range(300)]
    text = "[\n" + ",\n".join(recs) + "\n]\n"
    path = write(tmp_path, "r.json", text.encode())
    starts = [text[:text.index(r)].count("\n") + 1 for r in recs]
    from criticlab.data.jsonl import iter_raw
    assert [line for line, _ in iter_raw(path, text)] == starts


def test_huge_integer_names_the_field_and_the_limit(tmp_path):
    import sys
    digits = sys.get_int_max_str_digits() + 1
    data = ('{"problem": "q", "steps": ["a"], "label": ' + "7" * digits + '}\n'
            '{"id": "ok", "problem": "q", "steps": ["a"]}\n')
    out = list(read_examples(write(tmp_path, "r.jsonl", data.encode())))
    assert _located(out) == [(1, "label", f"an integer of {digits} digits, over the limit of "
                                          f"{digits - 1} digits (give it as a string)"), "ok"]


def test_huge_integer_in_a_single_object(tmp_path):
    data = '{\n "problem": "q",\n "steps": ["a"],\n "id": ' + "1" * 4301 + "\n}"
    out = list(read_examples(write(tmp_path, "r.json", data.encode())))
    assert _located(out) == [(1, "id", "an integer of 4301 digits, over the limit of 4300 "
                                       "digits (give it as a string)")]


def test_deep_nesting_is_bounded(tmp_path):
    from criticlab.data.jsonl import MAX_DEPTH
    assert MAX_DEPTH == 100
    lines = ['{"id": "a", "problem": "q", "steps": ["a"], "tests": ' + "[" * 99 + "]" * 99 + "}",
             '{"id": "b", "problem": "q", "steps": ["a"], "tests": ' + "[" * 100 + "]" * 100 + "}",
             '{"id": "c", "problem": "q", "steps": ["a"], "other_answers": '
             + '{"x":' * 3000 + "1" + "}" * 3000 + "}",
             "[" * 200_000,  # never closed, and far deeper than the decoder can go
             '{"id": "d", "problem": "q", "steps": ["a"], "tests": ["[[[[", "{{{{"]}']
    out = list(read_examples(write(tmp_path, "r.jsonl", "\n".join(lines).encode())))
    too_deep = "nested deeper than the limit of 100 levels"
    assert _located(out) == ["a", (2, "tests", too_deep), (3, "other_answers", too_deep),
                             (4, None, too_deep), "d"]


def test_a_too_deep_single_object_and_a_deep_unclosed_array(tmp_path):
    data = '{"problem": "q", "steps": ["a"],\n "tests": ' + "[" * 3000 + "]" * 3000 + "}\n"
    out = list(read_examples(write(tmp_path, "r.json", data.encode())))
    assert _located(out) == [(1, "tests", "nested deeper than the limit of 100 levels")]
    data = '[{"id": "a", "problem": "q", "steps": ["a"]},\n' + "[" * 3000
    out = list(read_examples(write(tmp_path, "r.json", data.encode())))
    assert _located(out) == ["a", (2, None, "nested deeper than the limit of 100 levels")]


def test_lone_surrogates_anywhere_are_refused(tmp_path):
    lines = [r'{"id": "a", "problem": "q\ud800", "steps": ["a"]}',
             r'{"id": "b", "problem": "q", "solution": "x\udfff"}',
             r'{"id": "c", "problem": "q", "steps": ["a"], "other_answers": [1, {"k": "\udc80"}]}',
             r'{"id": "d", "problem": "q", "steps": ["a"], "final_answer": "\ud83d\ude00"}',
             r'{"id": "e", "problem": "q", "steps": ["a"], "tests": "\\ud800"}']
    out = list(read_examples(write(tmp_path, "r.jsonl", "\n".join(lines).encode())))
    assert _located(out) == [
        (1, "problem", "contains a lone surrogate \\ud800, which is not text"),
        (2, "solution", "contains a lone surrogate \\udfff, which is not text"),
        (3, "other_answers[1].k", "contains a lone surrogate \\udc80, which is not text"),
        "d", "e"]


def test_to_example_refuses_a_lone_surrogate_from_any_source():
    import pytest

    from criticlab.data.jsonl import to_example
    with pytest.raises(InputError, match=r"^steps\[0\]: contains a lone surrogate \\ud801, "):
        to_example({"problem": "q", "steps": ["\ud801"]}, default_id="x")
    with pytest.raises(InputError, match=r"^problem: contains bytes that are not valid UTF-8"):
        to_example({"problem": "q\udce9", "steps": ["a"]}, default_id="x")


def test_jsonl_lines_split_on_newline_only(tmp_path):
    text = ('{"id": "a", "problem": "x\u2028y\u2029z\x85", "steps": ["a"]}\r\n'
            '\u2028\n'
            '{"id": "b", "problem": "q", "steps": ["a"]}\r\n')
    out = list(read_examples(write(tmp_path, "r.jsonl", text.encode())))
    assert out[0].problem.question == "x\u2028y\u2029z\x85"
    assert _located(out[1:]) == [(2, None, "invalid JSON: Expecting value (column 1)"), "b"]


def test_content_after_an_array(tmp_path):
    data = '[{"id": "a", "problem": "q", "steps": ["a"]}]\n\n  {"id": "b"}\n'
    out = list(read_examples(write(tmp_path, "r.json", data.encode())))
    assert _located(out) == ["a", (3, None, "unexpected content after the JSON array's closing "
                                           "']': a file holds one JSON array, one JSON object, "
                                           "or JSONL; the rest of the file is not read")]
    data = '[{"id": "a", "problem": "q", "steps": ["a"]}]\r\n \t\r\n'
    assert _located(read_examples(write(tmp_path, "r.json", data.encode()))) == ["a"]


def test_file_level_problems(tmp_path):
    import pytest
    with pytest.raises(InputError, match=r":1: the file is UTF-16 text, not UTF-8"):
        list(read_examples(write(tmp_path, "a.json", '[{"problem": "q"}]'.encode("utf-16"))))
    with pytest.raises(InputError, match=r":1: the file is UTF-32BE text, not UTF-8"):
        list(read_examples(write(tmp_path, "b.json", '{"a": 1}'.encode("utf-32-be"))))
    (e,) = read_examples(write(tmp_path, "c.jsonl", b"a: 1\n\xff\xfe: 2\n"))
    assert (e.line, e.message) == (2, "not UTF-8 text (byte 0xff, column 1, cannot be "
                                      "decoded): criticlab reads a JSON array, one JSON "
                                      "object, or JSONL, in UTF-8")
    (e,) = read_examples(write(tmp_path, "d.txt", b"\n\nhello\nworld\n"))
    assert (e.line, e.message) == (3, "invalid JSON: Expecting value (column 1); no line of "
                                      "the file is JSON (criticlab reads a JSON array, one "
                                      "JSON object, or JSONL)")
    (e,) = read_examples(write(tmp_path, "e.json", b"[]"))
    assert str(e).endswith("e.json: no records (the array is empty)")


def test_label_minus_one_alone_is_a_label_every_step_correct(tmp_path):
    """It was read as no label at all, so eval left such records out of acc_cor."""
    from criticlab.metrics import gold_index
    from criticlab.types import Result

    f = tmp_path / "r.jsonl"
    f.write_text(json.dumps({"id": "a", "problem": "q", "steps": ["1 + 1 = 2", "so 2"],
                             "label": -1}) + "\n"
                 + json.dumps({"id": "b", "problem": "q", "steps": ["1 + 1 = 3", "so 3"],
                               "label": 0}) + "\n")
    a, b = list(read_examples(str(f)))
    assert a.gold is not None and a.gold.step_labels == (True, True)
    assert gold_index(Result(a, None)) == -1 and gold_index(Result(b, None)) == 0


def test_a_jsonl_file_whose_first_line_is_an_array_is_still_json_lines(tmp_path):
    """It was read as one JSON array: every record after the first line was lost."""
    f = tmp_path / "r.jsonl"
    f.write_text('[1, 2]\n{"id": "a", "problem": "q", "steps": ["1 + 1 = 2"]}\n[\n'
                 '{"id": "b", "problem": "q", "steps": ["2 + 2 = 4"]}\n')
    out = list(read_examples(str(f)))
    assert [x.problem.id for x in out if not isinstance(x, InputError)] == ["a", "b"]
    errors = [str(e) for e in out if isinstance(e, InputError)]
    assert errors == [f"{f}:1: a record must be a JSON object, not list",
                      f"{f}:3: invalid JSON: Expecting value (column 2)"]
