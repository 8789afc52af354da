"""Names -> objects, for the command line and config files only. Library users construct
models and critics directly."""

from __future__ import annotations

from collections.abc import Callable

from criticlab.critics.base import Critic
from criticlab.errors import ConfigError
from criticlab.models.base import GenerateConfig, LanguageModel
from criticlab.models.spec import MODEL_KINDS, ModelSpec

MODEL_SPECS = tuple(k.usage for k in MODEL_KINDS.values())
LM_STYLES = ("processbench", "stepwise")
VERIFIERS = ("arithmetic", "code")
# LM critics with their own prompt and parser: name -> (module, class, constructor kwargs)
TEMPLATE_CRITICS: dict[str, tuple[str, str, dict[str, object]]] = {
    "deliberate": ("deliberate", "DeliberateCritic", {}),
    "principles": ("principles", "PrinciplesCritic", {}),
    "rubric": ("rubric", "RubricCritic", {}),
    "premise": ("premise", "PremiseCritic", {"hint": True}),
    "premise-nohint": ("premise", "PremiseCritic", {"hint": False}),
}
CRITICS = (*LM_STYLES, "prompted[:STYLE]", *TEMPLATE_CRITICS, "selfeval", *VERIFIERS,
           "constraints", "prm:MODEL", "hybrid[:STYLE]", "vote[:A,B,...]",
           "A,B,... (a vote)")


def check_model_spec(spec: str) -> ModelSpec:
    """The parsed spec; ``ConfigError`` for a spec of no known form (nothing is loaded)."""
    return ModelSpec.parse(spec)


class _Unbuilt:
    """Stands in for a model while names are checked; never asked to generate."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def generate(self, messages: object, config: object) -> list[object]:
        raise AssertionError("a placeholder model was asked to generate")


def check_names(critic: str, model: str, *, template: str | None = None) -> None:
    """Check a critic and a model spec (and the template) before any work starts."""
    make_critic(critic, lambda: _Unbuilt(model), template=template)  # type: ignore[arg-type,return-value]
    if uses_model(critic):
        check_model_spec(model)


def make_model(spec: str | ModelSpec, *, base_url: str | None = None,
               threads: int | None = None, timeout: float = 120.0, concurrency: int = 8,
               tensor_parallel_size: int = 1) -> LanguageModel:
    """The engine a model spec names (see :data:`criticlab.models.spec.MODEL_KINDS`); the one
    place engines are built from specs. Its ``name`` is ``ModelSpec.parse(spec).name``.
    ``base_url``, ``timeout`` and ``concurrency`` are for ``openai:``, ``threads`` for the
    llama.cpp engines (``hf:`` reads ``CRITICLAB_THREADS``: torch's setting is per process),
    ``tensor_parallel_size`` for ``vllm:``."""
    parsed = ModelSpec.parse(spec)
    kind, arg = parsed.kind, parsed.arg
    model: LanguageModel
    if kind in ("embedded", "llamacpp"):
        from criticlab.models.llamacpp import LlamaCppModel

        model = LlamaCppModel(arg or None, n_threads=threads)
    elif kind == "openai":
        from criticlab.models.openai import OpenAIModel

        model = OpenAIModel(arg, base_url=base_url, timeout=timeout, concurrency=concurrency)
    elif kind == "hf":
        from criticlab.models.hf import HFModel

        model = HFModel(arg)
    elif kind == "vllm":
        from criticlab.models.vllm import VLLMModel

        model = VLLMModel(arg, tensor_parallel_size=tensor_parallel_size)
    else:  # pragma: no cover (a kind in MODEL_KINDS with no engine here)
        raise AssertionError(f"no engine for model kind {kind!r}")
    return model


def make_critic(spec: str, model: Callable[[], LanguageModel], *, samples: int = 1,
                 template: str | None = None, max_tokens: int = 1024) -> Critic:
    """Build a critic from its name; ``model`` is called only if the critic needs an LM."""
    from criticlab.critics.arithmetic import ArithmeticCritic
    from criticlab.critics.ensemble import HybridCritic, VoteCritic
    from criticlab.critics.prompted import PromptedCritic

    name, _, arg = spec.strip().partition(":")
    if "," in spec and name != "vote":
        name, arg = "vote", spec
    if name == "prompted":
        name, arg = arg or "processbench", ""
    if name in LM_STYLES and not arg:
        config = GenerateConfig(temperature=0.0, max_tokens=max_tokens)
        lm = PromptedCritic(model(), name, config=config, template=template)
        return VoteCritic([lm], samples) if samples > 1 else lm
    if name in TEMPLATE_CRITICS and not arg:
        import importlib

        module, cls, kwargs = TEMPLATE_CRITICS[name]
        factory = getattr(importlib.import_module(f"criticlab.critics.{module}"), cls)
        config = GenerateConfig(temperature=0.0, max_tokens=max_tokens)
        tc: Critic = factory(model(), config=config, template=template, **kwargs)
        return VoteCritic([tc], samples) if samples > 1 else tc
    if name == "selfeval" and not arg:
        from criticlab.critics.selfeval import SelfEvalCritic

        return SelfEvalCritic(model(), template=template)
    if name == "arithmetic" and not arg:
        return ArithmeticCritic()
    if name == "prm" and arg:
        from criticlab.critics.prm import PRMCritic

        return PRMCritic(arg)
    if name == "code" and not arg:
        from criticlab.critics.code import CodeCritic

        return CodeCritic()
    if name == "constraints" and not arg:
        from criticlab.critics.decrim import ConstraintCritic

        return ConstraintCritic(model())
    if name == "hybrid":
        style = arg or "stepwise"
        lm_critic = make_critic(style, model, samples=samples, template=template,
                                max_tokens=max_tokens)
        return HybridCritic([ArithmeticCritic()], lm_critic)
    if name == "vote":
        parts = [p for p in (arg or "processbench").split(",") if p.strip()]
        critics = [make_critic(p, model, template=template, max_tokens=max_tokens)
                   for p in parts]
        return VoteCritic(critics, max(samples, 1 if len(critics) > 1 else 8))
    raise ConfigError(f"unknown critic {spec!r}; use one of: {', '.join(CRITICS)}")


def uses_model(spec: str) -> bool:
    """Whether the critic ``spec`` names needs a language model (verifiers alone do not)."""
    name, _, arg = spec.strip().partition(":")
    parts = (arg or "processbench").split(",") if name == "vote" else spec.split(",")
    return any(p.strip().partition(":")[0] not in VERIFIERS for p in parts)
