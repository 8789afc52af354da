import pytest

from criticlab.errors import ConfigError, InputError
from criticlab.label.export import write_rows
from criticlab.train.common import TrainConfig, load_rows
from tests.train.conftest import ROWS

pytest.importorskip("datasets")


def test_rows_load_from_jsonl_and_from_a_saved_dataset(tmp_path):
    path = write_rows(ROWS["rl"], tmp_path / "rl.jsonl")  # also saves tmp_path / "rl"
    for source in (path, tmp_path / "rl"):
        only = load_rows(source, ("prompt",), "rl")
        assert only.column_names == ["prompt"] and len(only) == 2
        every = load_rows(source, ("prompt",), "rl", keep_other_columns=True)
        assert every[0]["gold_first_error"] == 0 and every[1]["gold_verdict"] == "correct"


def test_a_saved_dataset_row_is_named_by_its_number(tmp_path):
    write_rows([{"prompt": "p", "x": 1}, {"x": 2}], tmp_path / "d.jsonl")
    with pytest.raises(InputError, match=r"d:2: prompt: missing"):
        load_rows(tmp_path / "d", ("prompt",), "rl")


def test_a_json_array_is_not_json_lines(tmp_path):
    (tmp_path / "a.json").write_text('[{"prompt": "p"}]\n')
    with pytest.raises(InputError, match=r"a\.json:1: expected JSON Lines"):
        load_rows(tmp_path / "a.json", ("prompt",), "rl")


@pytest.mark.parametrize("bad", [{"threads": 0}, {"batch_size": 1.5}, {"max_length": True},
                                 {"learning_rate": float("nan")}])
def test_config_checks(tmp_path, bad):
    with pytest.raises(ConfigError):
        TrainConfig(data=tmp_path, out=tmp_path, **bad)
