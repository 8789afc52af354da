"""docs/architecture.md is true: the tree it describes is the real one, and each worked
example runs as written, the critic and the model backend both registered by their decorator
in this process and installed as a plugin (entry points of a real dist-info) in a child."""

import json
import re
import shlex
import tempfile
import tomllib

import pytest

from tests.conftest import ROOT
from tests.plugins import install, own_registry, run  # noqa: F401 (a fixture)

DOC = ROOT / "docs" / "architecture.md"
SRC = ROOT / "src" / "criticlab"
_BLOCK = re.compile(r"^<!-- test: ([\w-]+) -->\n```(\w+)\n(.*?)^```$", re.M | re.S)


def blocks() -> dict[str, str]:
    """The doc's tested blocks: ``<!-- test: NAME -->`` followed by a fenced block."""
    found = _BLOCK.findall(DOC.read_text(encoding="utf-8"))
    names = [name for name, _, _ in found]
    assert len(set(names)) == len(names), names
    return {name: body for name, _, body in found}


def run_blocks(*names: str) -> dict[str, object]:
    """Execute the named blocks, in order, in one namespace (as one script would)."""
    doc = blocks()
    ns: dict[str, object] = {"__name__": f"docs_example_{names[0].replace('-', '_')}"}
    for name in names:
        exec(compile(doc[name], f"{DOC}:{name}", "exec"), ns)
    return ns


def test_the_doc_has_every_tested_block():
    assert sorted(blocks()) == ["benchmark", "cli", "critic", "critic-use", "entry-points",
                                "job", "model", "model-use"]


def test_the_job_example():
    """A new job gets the resume rule, the store and metrics.json from run_job alone."""
    run_blocks("job")


def test_the_doc_names_every_part_of_the_tree_and_only_real_files():
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("## Where each piece lives"):text.index("## Names: one registry")]
    first_column = {tok for line in table.splitlines() if line.startswith("| `")
                    for tok in re.findall(r"`([^`]+)`", line.split("|")[1])}
    tree = {p.name + ("/" if p.is_dir() else "") for p in SRC.iterdir()
            if p.name not in ("__init__.py", "__main__.py", "py.typed", "__pycache__")}
    assert first_column == tree
    # modules (x.py), folders (x/) and paths (a/b.json); not the files a run writes
    paths = {t for t in re.findall(r"`([\w./*-]+)`", text) if t.endswith(".py") or "/" in t}
    assert len(paths) > 40
    for tok in paths:  # a path, a module name in its package's row, or a glob (arith_*.py)
        hits = [p for top in ("src", "docs", "examples", "tests") for p in
                (ROOT / top).glob(f"**/{tok.rstrip('/')}") if "__pycache__" not in p.parts]
        assert hits or (ROOT / tok).exists(), tok


@pytest.mark.usefixtures("own_registry")
def test_the_critic_example_by_its_decorator():
    from criticlab.registry import CRITIC_KINDS, CRITICS, check_names

    ns = run_blocks("critic", "critic-use")
    assert ns["crit"].steps[0].verdict == "correct" and ns["crit"].steps[1].verdict == "incorrect"
    assert CRITIC_KINDS["forbid"].origin == "docs_example_critic.build_forbid"
    assert "forbid:WORD" in list(CRITICS)
    check_names("forbid:x", "gpt9")  # a verifier: the model spec is not even checked


@pytest.mark.usefixtures("own_registry")
def test_the_model_example_by_its_decorator():
    from criticlab.models.spec import MODEL_KINDS, usages

    ns = run_blocks("model", "model-use")
    assert ns["crit"].feedback == r"\boxed{1}"
    assert MODEL_KINDS["canned"].what == "replies TEXT to every request"
    assert usages().endswith("vllm:MODEL, canned:TEXT")


def test_the_benchmark_example(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ns = run_blocks("benchmark")
    run = ns["run"]
    assert [r.critique.first_error for r in run.results] == [None, 0]
    assert sorted(p.name for p in (ns["folder"] / "run").iterdir()) == [
        "config.json", "metrics.json", "results.jsonl", "store.sqlite"]


def test_the_critic_and_model_examples_as_an_installed_plugin(tmp_path):
    doc = blocks()
    eps = tomllib.loads(doc["entry-points"])["project"]["entry-points"]
    source = {"criticlab.critics": doc["critic"], "criticlab.models": doc["model"]}
    modules = {value: source[group] for group, d in eps.items() for value in d.values()}
    root = install(tmp_path / "site", "criticlab-examples", modules, eps)

    # the library: the doc's uses alone, no import of the plugin
    p = run(root, "-c", doc["critic-use"] + doc["model-use"] + "print('ok')", tmp_path=tmp_path)
    assert (p.returncode, p.stdout, p.stderr) == (0, "ok\n", "")
    # the command line, as the doc writes it
    for line in doc["cli"].splitlines():
        program, *args = shlex.split(line)
        assert program == "criticlab"
        p = run(root, "-m", "criticlab", *args, "--json", tmp_path=tmp_path)
        assert p.returncode == 0 and "Warning" not in p.stderr, p.stderr
        (row,) = [json.loads(x) for x in p.stdout.splitlines()]
        assert (row["example"]["problem"]["id"], row["critique"]["first_error"]) == ("bakery", 2)
        assert row["critique"]["critic"] in ("forbid(tuesday)", "processbench")
    p = run(root, "-m", "criticlab", "models", tmp_path=tmp_path)
    assert "canned:TEXT" in p.stdout and "replies TEXT to every request" in p.stdout
    p = run(root, "-m", "criticlab", "critique", "--help", tmp_path=tmp_path)
    assert p.returncode == 0 and "forbid:WORD" in p.stdout and "canned:TEXT" in p.stdout


def test_listing_and_parsing_every_model_kind_imports_no_engine(tmp_path):
    p = run(None, "-c", "import sys, criticlab\n"
            "from criticlab.models.spec import MODEL_KINDS, ModelSpec\n"
            "for k in MODEL_KINDS.values(): ModelSpec.parse(k.kind + (':x' if k.arg else '')).name\n"
            "print(sorted(set(sys.modules) & {'torch', 'llama_cpp', 'vllm', 'transformers'}))",
            tmp_path=tmp_path)
    assert (p.returncode, p.stdout) == (0, "[]\n"), p.stderr
