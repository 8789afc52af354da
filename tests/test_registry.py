import importlib.util
import sys

import pytest

from criticlab.errors import ConfigError
from criticlab.models.scripted import ScriptedModel
from criticlab.models.spec import MODEL_KINDS, ModelSpec
from criticlab.registry import check_model_spec, make_critic, make_model, uses_model


@pytest.mark.parametrize("spec,cls,name", [
    ("processbench", "PromptedCritic", "processbench"),
    ("prompted:stepwise", "PromptedCritic", "stepwise"),
    ("deliberate", "DeliberateCritic", "deliberate"),
    ("principles", "PrinciplesCritic", "principles"),
    ("rubric", "RubricCritic", "rubric"),
    ("premise", "PremiseCritic", "premise"),
    ("premise-nohint", "PremiseCritic", "premise-nohint"),
    ("selfeval", "SelfEvalCritic", "selfeval"),
    ("arithmetic", "ArithmeticCritic", "arithmetic"),
    ("code", "CodeCritic", "code"),
    ("constraints", "ConstraintCritic", "constraints"),
    ("hybrid", "HybridCritic", "hybrid(arithmetic+stepwise)"),
    ("arithmetic,stepwise", "VoteCritic", "vote(arithmetic+stepwise)"),
])
def test_every_named_critic_builds(spec, cls, name):
    c = make_critic(spec, lambda: ScriptedModel([]))
    assert type(c).__name__ == cls and c.name == name


def test_samples_wrap_lm_critics_in_a_vote():
    c = make_critic("deliberate", lambda: ScriptedModel([]), samples=4)
    assert c.name == "vote(deliberate@4)"


def test_unknown_names_and_model_need():
    with pytest.raises(ConfigError, match="unknown critic"):
        make_critic("oracle", lambda: ScriptedModel([]))
    with pytest.raises(ConfigError, match="unknown model"):
        check_model_spec("gpt9")
    assert not uses_model("arithmetic") and not uses_model("code") and uses_model("hybrid") and uses_model("selfeval")


# -- model specs -----------------------------------------------------------------------------
@pytest.mark.parametrize("spec,kind,arg,name", [
    ("embedded", "embedded", "", "embedded:SmolLM2-135M-Instruct.Q4_1.gguf"),
    ("llamacpp:/models/q.gguf", "llamacpp", "/models/q.gguf", "llamacpp:q.gguf"),
    ("openai:llama3:8b", "openai", "llama3:8b", "openai:llama3:8b"),
    ("hf:/some/dir", "hf", "/some/dir", "hf:/some/dir"),
    ("hf:embedded", "hf", "embedded", "hf:embedded"),
    ("vllm:Qwen/Qwen2.5-0.5B", "vllm", "Qwen/Qwen2.5-0.5B", "vllm:Qwen/Qwen2.5-0.5B"),
])
def test_model_specs_parse_and_know_their_engine_name(spec, kind, arg, name):
    parsed = ModelSpec.parse(spec)
    assert (parsed.kind, parsed.arg, parsed.name, str(parsed)) == (kind, arg, name, spec)
    assert ModelSpec.parse(parsed) is parsed and check_model_spec(spec) == parsed


@pytest.mark.parametrize("spec,needle", [
    ("gpt9", "unknown model 'gpt9'; use one of: embedded, llamacpp:PATH.gguf, openai:MODEL, "
             "hf:PATH|embedded|HUB_ID, vllm:MODEL"),
    ("hf:", "model 'hf:' lacks its argument; write hf:PATH|embedded|HUB_ID"),
    ("llamacpp", "model 'llamacpp' lacks its argument; write llamacpp:PATH.gguf"),
    ("embedded:big", "model 'embedded:big' takes no argument; write embedded"),
])
def test_bad_model_specs_are_one_clear_line(spec, needle):
    with pytest.raises(ConfigError) as e:
        ModelSpec.parse(spec)
    assert str(e.value) == needle


def test_the_scale_executor_knows_every_model_kind():
    """``label mc --executor ray --actor hf:DIR`` named its run from a parser that knew no hf:."""
    from criticlab.scale.jobs import gpus_for

    assert ModelSpec.parse("hf:/some/dir").name == "hf:/some/dir"
    assert [gpus_for(f"{k}:x" if k != "embedded" else k, None) for k in MODEL_KINDS] == [
        0.0, 0.0, 0.0, 0.0, 1.0]
    assert gpus_for("vllm:m", 0.5) == 0.5


def test_the_built_engine_has_the_name_its_spec_promises(monkeypatch, tmp_path, embedded_path):
    """Every kind, built by the one make_model with its engine's loading stubbed out: the
    model's ``name`` (a cache key) is the one known before loading it."""
    from types import SimpleNamespace

    from criticlab.models import llamacpp

    monkeypatch.setattr(llamacpp, "require_llama_cpp", lambda: None)
    monkeypatch.setattr(llamacpp.LlamaCppModel, "_load", lambda self, logits_all: None)
    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(LLM=lambda **kw: None,
                                                             SamplingParams=None))
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    specs = {"embedded": "embedded", "llamacpp": f"llamacpp:{gguf}",
             "openai": "openai:smollm2", "vllm": "vllm:Qwen/Qwen2.5-0.5B"}
    if importlib.util.find_spec("torch") and importlib.util.find_spec("transformers"):
        from criticlab.models import hf

        monkeypatch.setattr(hf, "load_causal_lm", lambda spec, **kw: (None, None))
        monkeypatch.setattr(hf.HFModel, "_init",
                            lambda self, model, tok, name: setattr(self, "name", name))
        specs["hf"] = "hf:/some/dir"
    for kind, spec in specs.items():
        model = make_model(spec, base_url="http://127.0.0.1:9/v1")
        assert model.name == ModelSpec.parse(spec).name, kind
    assert set(specs) <= set(MODEL_KINDS) and len(MODEL_KINDS) == 5
