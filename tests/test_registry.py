import importlib.util
import json
import sys

import pytest

from criticlab.errors import ConfigError
from criticlab.models.scripted import ScriptedModel
from criticlab.models.spec import MODEL_KINDS, ModelSpec
from criticlab.registry import check_model_spec, make_critic, make_model, uses_model
from tests.plugins import install, own_registry, run  # noqa: F401 (a fixture)


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
    ("hybrid", "HybridCritic", "hybrid(arithmetic+symbolic+stepwise)"),
    ("symbolic", "SymbolicCritic", "symbolic"),
    ("verifiers", "VerifiersCritic", "verifiers"),
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
             "hf:PATH|embedded|HUB_ID, prm:PATH|HUB_ID, vllm:MODEL"),
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
    from criticlab.scale.executor import gpus_for

    assert ModelSpec.parse("hf:/some/dir").name == "hf:/some/dir"
    assert [gpus_for([f"{k}:x" if k != "embedded" else k], None) for k in MODEL_KINDS] == [
        0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert gpus_for(["vllm:m"], 0.5) == 0.5
    # the most any engine of the job asks for; a spec no engine is built from asks for none
    assert gpus_for(["none", "vllm:m", None], None) == 1.0


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
        from criticlab.models import hf_load, prm

        monkeypatch.setattr(hf_load, "load_pretrained", lambda spec, **kw: (None, None))
        monkeypatch.setattr(prm.PRMModel, "__init__",
                            lambda self, spec, **kw: setattr(self, "name", f"prm:{spec}"))
        specs["prm"] = "prm:/some/dir"
    for kind, spec in specs.items():
        model = make_model(spec, base_url="http://127.0.0.1:9/v1")
        assert model.name == ModelSpec.parse(spec).name, kind
    assert set(specs) <= set(MODEL_KINDS) and len(MODEL_KINDS) == 6


# -- the registry: decorators, listings, plugins ------------------------------------------------
def _verifier(arg, model, options):
    from criticlab.critics.arithmetic import ArithmeticCritic

    return ArithmeticCritic()


@pytest.mark.usefixtures("own_registry")
def test_registered_names_join_every_listing_and_lookup():
    from criticlab.models.base import Generation
    from criticlab.registry import (
        CRITICS,
        MODEL_SPECS,
        CriticOptions,
        check_names,
        register_critic,
        register_model,
    )

    seen = []

    @register_critic("twice", usage="twice[:N]", arg="optional",
                     needs_model=lambda arg: arg != "0")
    def twice(arg, model, options):
        seen.append((arg, options))
        return make_critic("stepwise", model, samples=options.samples)

    class Echo:
        def __init__(self, name):
            self.name = name

        async def generate(self, messages, config):
            return [Generation(messages[-1].content)]

    @register_model("echo", what="says the prompt back", arg=True, name=lambda s: f"echo@{s.arg}")
    def echo(spec, options):
        return Echo(f"echo@{spec.arg}")

    assert list(CRITICS)[-3:] == ["vote[:A,B,...]", "twice[:N]", "A,B,... (a vote)"]
    assert list(MODEL_SPECS)[-2:] == ["vllm:MODEL", "echo:ARG"]
    c = make_critic("twice:3", lambda: ScriptedModel([]), samples=2, max_tokens=9)
    assert c.name == "vote(stepwise@2)" and seen == [("3", CriticOptions(2, None, 9))]
    assert make_critic("twice", lambda: ScriptedModel([])).name == "stepwise"
    assert uses_model("twice:1") and not uses_model("twice:0")
    assert not uses_model("twice:0,arithmetic") and uses_model("twice:0,stepwise")
    spec = check_model_spec("echo:hi")
    assert (spec.name, spec.gpus, make_model(spec).name) == ("echo@hi", 0.0, "echo@hi")
    check_names("twice:0", "not a spec")  # no model needed: the spec is not read
    with pytest.raises(ConfigError, match=r"unknown model 'nope'; use one of: embedded, .*vllm:MODEL, echo:ARG$"):
        check_names("twice", "nope")
    with pytest.raises(ConfigError, match=r"unknown critic 'deliberate:x'; .*twice\[:N\], A,B"):
        make_critic("deliberate:x", lambda: ScriptedModel([]))


@pytest.mark.usefixtures("own_registry")
def test_a_name_registered_twice_is_refused_and_a_rerun_replaces_its_own():
    from criticlab.registry import CRITIC_KINDS, register_critic, register_model

    with pytest.raises(ConfigError) as e:
        register_critic("arithmetic", needs_model=False)(_verifier)
    assert str(e.value) == (
        "the critic 'arithmetic' is registered twice: by criticlab.critics._arithmetic and by "
        "tests.test_registry._verifier; rename one of them")
    with pytest.raises(ConfigError, match=r"^the model 'openai' is registered twice: by "
                                          r"criticlab\.models\.spec\._openai and by "):
        register_model("openai", what="mine", arg=True)(lambda spec, options: None)
    # the same function registered again (a re-run notebook cell, a reloaded module): replaced
    register_critic("mine", needs_model=False)(_verifier)
    register_critic("mine", usage="mine (again)", needs_model=False)(_verifier)
    assert CRITIC_KINDS["mine"].usage == "mine (again)"
    assert make_critic("arithmetic", lambda: ScriptedModel([])).name == "arithmetic"


@pytest.mark.parametrize("name", ["", "a:b", "a,b", "a b", " a", "a\n"])
@pytest.mark.usefixtures("own_registry")
def test_names_that_the_spec_syntax_cannot_write_are_refused(name):
    from criticlab.registry import register_critic

    with pytest.raises(ConfigError, match=r"cannot name a critic: a name is not empty and has "
                                          r"no white space and none of :, ,$"):
        register_critic(name)(_verifier)


PLUGIN = '''
from criticlab.registry import register_critic, register_model


@register_critic({name!r}, needs_model=False)
def build(arg, model, options):
    from criticlab.critics.arithmetic import ArithmeticCritic

    return ArithmeticCritic()
'''


def test_installed_plugins_load_lazily_and_failures_stay_with_their_names(tmp_path):
    site_a = install(tmp_path / "a", "good-plugins", {
        "good_mod": PLUGIN.format(name="good"),
        "taken_mod": PLUGIN.format(name="arithmetic"),
        "empty_mod": PLUGIN.format(name="other"),
        "broken_mod": "import no_such_library_anywhere\n",
        "twin_a": PLUGIN.format(name="twin"),
    }, {"criticlab.critics": {"good": "good_mod", "arithmetic": "taken_mod",
                              "empty": "empty_mod", "broken": "broken_mod", "twin": "twin_a"},
        "criticlab.models": {"gpt": "broken_mod"}})
    site_b = install(tmp_path / "b", "twin-b", {"twin_b": PLUGIN.format(name="twin")},
                     {"criticlab.critics": {"twin": "twin_b"}})
    script = '''
import json, logging, sys
import criticlab
from criticlab.models.scripted import ScriptedModel
from criticlab.registry import CRITICS, CRITIC_KINDS, make_critic
from criticlab.models.spec import ModelSpec

class Keep(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []
    def emit(self, record):
        self.records.append(record)

keep = Keep()
logging.getLogger("criticlab.registry").addHandler(keep)
out = {"imported_at_import": "good_mod" in sys.modules}
out["critics"] = list(CRITICS)
ModelSpec.parse("openai:x")
out["warnings"] = [(r.levelname, r.getMessage()) for r in keep.records]
out["imported_after"] = "good_mod" in sys.modules
out["good"] = make_critic("good", lambda: ScriptedModel([])).name
out["arithmetic_origin"] = CRITIC_KINDS["arithmetic"].origin
out["twin_origin"] = CRITIC_KINDS["twin"].origin
out["errors"] = {}
for spec in ("broken", "empty", "other", "gpt:4"):
    try:
        ModelSpec.parse(spec) if ":" in spec else make_critic(spec, lambda: ScriptedModel([]))
    except criticlab.ConfigError as e:
        out["errors"][spec] = str(e)
print(json.dumps(out))
'''
    p = run(None, "-c", script, tmp_path=tmp_path, pythonpath=[site_a, site_b])
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    a = "criticlab.critics entry point of good-plugins"
    broken = f"the plugin broken = broken_mod ({a}) did not load: No module named 'no_such_library_anywhere'"
    taken = (f"the plugin arithmetic = taken_mod ({a}) did not load: the critic 'arithmetic' is "
             "registered already, by criticlab.critics._arithmetic")
    empty = f"the plugin empty = empty_mod ({a}) did not load: loading it registered no critic named 'empty'"
    twin = ("the plugin twin = twin_b (criticlab.critics entry point of twin-b) did not load: the "
            "critic 'twin' is registered twice: by twin_a.build and by twin_b.build; rename one of them")
    gpt = ("the plugin gpt = broken_mod (criticlab.models entry point of good-plugins) did not "
           "load: No module named 'no_such_library_anywhere'")
    assert not out["imported_at_import"] and out["imported_after"]
    assert sorted(out["warnings"]) == sorted(["WARNING", m] for m in (broken, taken, empty, twin, gpt))
    assert out["critics"][-3:] == ["good", "twin", "A,B,... (a vote)"]
    assert out["good"] == "arithmetic"
    assert (out["arithmetic_origin"], out["twin_origin"]) == ("criticlab.critics._arithmetic",
                                                             "twin_a.build")
    assert out["errors"]["broken"] == broken and out["errors"]["empty"] == empty
    assert out["errors"]["gpt:4"] == gpt
    # 'other' was registered by a plugin that failed: rolled back, so it is simply unknown
    assert out["errors"]["other"].startswith("unknown critic 'other'; use one of: processbench")
    # the command line: the built-in name still works; the broken plugin's name says why
    p = run(None, "-m", "criticlab", "critique", "examples/demo.json", "--critic", "broken",
            tmp_path=tmp_path, pythonpath=[site_a, site_b])
    assert p.returncode == 2 and "Traceback" not in p.stderr
    # each failure once, in the order of the entry points, then the one-line error
    assert p.stderr.splitlines() == [taken, empty, broken, twin, gpt, f"error: {broken}"]
    p = run(None, "-m", "criticlab", "critique", "examples/demo.json", "--critic", "arithmetic",
            "--json", tmp_path=tmp_path, pythonpath=[site_a, site_b])
    assert p.returncode == 0 and json.loads(p.stdout)["critique"]["first_error"] == 2
    assert p.stderr.splitlines()[:5] == [taken, empty, broken, twin, gpt]
