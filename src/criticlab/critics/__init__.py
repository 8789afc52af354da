"""Every way criticlab produces a :class:`~criticlab.types.Critique`, and the names
``--critic`` knows them by.

The built-in critic names are registered below with
:func:`~criticlab.registry.register_critic`, in the order ``--critic`` lists them; each
factory imports its critic's module only when it runs, so ``import criticlab`` stays light. A
plugin registers its own critics the same way (see ``docs/architecture.md``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from criticlab.critics.base import Critic, critique_sync
from criticlab.models.base import LanguageModel
from criticlab.registry import (
    CRITIC_KINDS,
    CriticFactory,
    CriticOptions,
    ModelFactory,
    make_critic,
    register_critic,
    unknown_critic,
    uses_model,
)

__all__ = ["Critic", "critique_sync"]

Model = Callable[[], LanguageModel]
LM_STYLES = ("processbench", "stepwise")  # prompted.STYLES, without importing it here


def _style(style: str) -> CriticFactory:
    def build(arg: str, model: Model, o: CriticOptions) -> Critic:
        from criticlab.critics.prompted import PromptedCritic

        return o.vote(PromptedCritic(model(), style, config=o.greedy(), template=o.template,
                                     structured=o.structured))

    return build


for _name in LM_STYLES:
    register_critic(_name)(_style(_name))


@register_critic("prompted", usage="prompted[:STYLE]", arg="optional")
def _prompted(arg: str, model: Model, o: CriticOptions) -> Critic:
    """``prompted`` is ``processbench``; ``prompted:NAME`` is critic NAME (a style)."""
    inner = CRITIC_KINDS.get(arg or "processbench")
    if inner is None or inner.arg is True:
        raise unknown_critic(f"prompted:{arg}")
    return make_critic(inner.name, model, samples=o.samples, template=o.template,
                       max_tokens=o.max_tokens, structured=o.structured)


def _template(module: str, cls: str, **kwargs: object) -> CriticFactory:
    def build(arg: str, model: Model, o: CriticOptions) -> Critic:
        factory = getattr(importlib.import_module(f"criticlab.critics.{module}"), cls)
        critic: Critic = factory(model(), config=o.greedy(), template=o.template,
                                 structured=o.structured, **kwargs)
        return o.vote(critic)

    return build


# LM critics with their own prompt and parser (TemplateCritic subclasses)
for _name, _module, _cls, _kwargs in (
    ("deliberate", "deliberate", "DeliberateCritic", {}),
    ("principles", "principles", "PrinciplesCritic", {}),
    ("rubric", "rubric", "RubricCritic", {}),
    ("premise", "premise", "PremiseCritic", {"hint": True}),
    ("premise-nohint", "premise", "PremiseCritic", {"hint": False}),
):
    register_critic(_name)(_template(_module, _cls, **_kwargs))


@register_critic("selfeval")
def _selfeval(arg: str, model: Model, o: CriticOptions) -> Critic:
    from criticlab.critics.selfeval import SelfEvalCritic

    return SelfEvalCritic(model(), template=o.template, structured=o.structured)


@register_critic("arithmetic", needs_model=False)
def _arithmetic(arg: str, model: Model, o: CriticOptions) -> Critic:
    from criticlab.critics.arithmetic import ArithmeticCritic

    return ArithmeticCritic()


@register_critic("symbolic", needs_model=False)
def _symbolic(arg: str, model: Model, o: CriticOptions) -> Critic:
    from criticlab.critics.symbolic import SymbolicCritic

    return SymbolicCritic()


@register_critic("verifiers", needs_model=False)
def _verifiers(arg: str, model: Model, o: CriticOptions) -> Critic:
    """The arithmetic and symbolic verifiers together: the earliest certain error wins."""
    from criticlab.critics.symbolic import VerifiersCritic

    return VerifiersCritic()


@register_critic("code", needs_model=False)
def _code(arg: str, model: Model, o: CriticOptions) -> Critic:
    from criticlab.critics.code import CodeCritic

    return CodeCritic()


@register_critic("constraints")
def _constraints(arg: str, model: Model, o: CriticOptions) -> Critic:
    from criticlab.critics.decrim import ConstraintCritic

    return ConstraintCritic(model())


# A PRM's scores come from the model spec prm:MODEL (built once and cached in the run's store,
# like --model), yet --model has always been part of its run names: needs_model stays True so
# that existing run directories keep their names.
@register_critic("prm", usage="prm:MODEL", arg=True)
def _prm(arg: str, model: ModelFactory, o: CriticOptions) -> Critic:
    from criticlab.critics.prm import PRMCritic

    return PRMCritic(model(f"prm:{arg}"))


@register_critic("hybrid", usage="hybrid[:STYLE]", arg="optional")
def _hybrid(arg: str, model: Model, o: CriticOptions) -> Critic:
    """The arithmetic and symbolic verifiers first, the LM critic STYLE (``stepwise``) for the
    rest."""
    from criticlab.critics.arithmetic import ArithmeticCritic
    from criticlab.critics.ensemble import HybridCritic
    from criticlab.critics.symbolic import SymbolicCritic

    lm = make_critic(arg or "stepwise", model, samples=o.samples, template=o.template,
                     max_tokens=o.max_tokens, structured=o.structured)
    return HybridCritic([ArithmeticCritic(), SymbolicCritic()], lm)


def _vote_needs_model(arg: str) -> bool:
    return any(uses_model(p) for p in (arg or "processbench").split(","))


@register_critic("vote", usage="vote[:A,B,...]", arg="optional", needs_model=_vote_needs_model)
def _vote(arg: str, model: Model, o: CriticOptions) -> Critic:
    """A majority vote over critics A, B, ... (``A,B`` alone means ``vote:A,B``), or over 8
    samples of one critic (``processbench`` by default)."""
    from criticlab.critics.ensemble import VoteCritic

    parts = [p for p in (arg or "processbench").split(",") if p.strip()]
    critics = [make_critic(p, model, template=o.template, max_tokens=o.max_tokens,
                           structured=o.structured) for p in parts]
    return VoteCritic(critics, max(o.samples, 1 if len(critics) > 1 else 8))
