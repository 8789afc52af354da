import json

import pytest
from typer.testing import CliRunner

from criticlab.cli.train import train_app
from criticlab.errors import ConfigError, InputError

runner = CliRunner()


def invoke(*args):
    return runner.invoke(train_app, [str(a) for a in args])


def test_missing_file_is_one_input_error(tmp_path):
    r = invoke("sft", "--data", tmp_path / "nope.jsonl", "--out", tmp_path / "o")
    assert isinstance(r.exception, InputError)
    assert str(r.exception) == f"{tmp_path / 'nope.jsonl'}: no such file"


def test_a_bad_row_names_its_line_and_field(tmp_path, rows_file):
    path = rows_file("sft")
    path.write_text(path.read_text() + "\n" + json.dumps({"text": "x"}) + "\n")
    r = invoke("sft", "--data", path, "--out", tmp_path / "o")
    assert isinstance(r.exception, InputError)
    assert str(r.exception).startswith(f"{path}:4: messages: missing")  # blank line 3


@pytest.mark.parametrize(("fmt", "cmd", "row", "message"), [
    ("sft", "sft", {"messages": [{"role": "user", "content": "q"}]}, "at least two"),
    ("preference", "dpo", {"prompt": "p", "chosen": "a", "rejected": "a"}, "the same"),
    ("stepwise", "prm", {"prompt": "p", "completions": ["a", "b"], "labels": [True]},
     "1 labels for 2 steps"),
    ("rl", "grpo", {"prompt": "p", "gold_first_error": -3}, "gold_first_error"),
])
def test_row_checks(tmp_path, fmt, cmd, row, message):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(row) + "\n")
    r = invoke(cmd, "--data", path, "--out", tmp_path / "o")
    assert isinstance(r.exception, InputError) and message in str(r.exception)
    assert str(r.exception).startswith(f"{path}:1:")


def test_not_json_is_an_input_error(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("{oops\n")
    r = invoke("prm", "--data", path, "--out", tmp_path / "o")
    assert isinstance(r.exception, InputError) and str(r.exception).startswith(f"{path}:1:")


@pytest.mark.parametrize(("args", "message"), [
    (("grpo", "--reward", "shaped,nice"), "unknown reward(s) 'nice'"),
    (("sft", "--steps", "0"), "max_steps must be"),
    (("dpo", "--lr", "3"), "learning_rate must be"),
    (("dpo", "--beta", "0"), "beta must be"),
    (("sft", "--no-lora", "--merge"), "merge only applies"),
    (("grpo", "--num-generations", "1"), "num_generations"),
])
def test_bad_settings_are_config_errors(tmp_path, rows_file, args, message):
    r = invoke(*args, "--data", rows_file("sft"), "--out", tmp_path / "o")
    assert isinstance(r.exception, ConfigError) and message in str(r.exception)


@pytest.mark.slow
def test_train_prm_from_the_command_line(base_model, rows_file, tmp_path):
    r = invoke("prm", "--data", rows_file("stepwise"), "--out", tmp_path / "o", "--steps", 1)
    assert r.exit_code == 0, r.output
    assert "prm: 1 steps" in r.output
    assert (tmp_path / "o" / "adapter_model.safetensors").is_file()
