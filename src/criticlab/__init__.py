"""criticlab: LLM critique. Judge a solution step by step, find the first wrong step and say
why; with LM critics and with verifiers that need no model.

The names below are the public API. The critics, ``load_benchmark`` and ``ModelSpec`` are
imported on first use (``criticlab.PromptedCritic``), so ``import criticlab`` stays light.
``criticlab.evaluate`` is the function, whatever the import order (it is imported here); its
module is reached with ``from criticlab.evaluate import ...``. ``docs/architecture.md`` says
how the pieces fit and how to add a critic, a model backend or a benchmark.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from criticlab.cache import CachedModel
from criticlab.critics.base import Critic, critique_sync
from criticlab.errors import ConfigError, CriticlabError, InputError, ModelError
from criticlab.evaluate import EvalConfig, EvalRun, evaluate
from criticlab.models.base import GenerateConfig, Generation, LanguageModel, Message
from criticlab.registry import (
    CriticOptions,
    ModelOptions,
    make_critic,
    make_model,
    register_critic,
    register_model,
)
from criticlab.steps import render_numbered, render_paragraphs, split_steps
from criticlab.store import Store
from criticlab.types import Critique, Example, Gold, Problem, Result, Solution, StepVerdict, Usage

if TYPE_CHECKING:
    from criticlab.critics.answer import AnswerCritic
    from criticlab.critics.arithmetic import ArithmeticCritic
    from criticlab.critics.code import CodeCritic
    from criticlab.critics.decrim import ConstraintCritic
    from criticlab.critics.deliberate import DeliberateCritic
    from criticlab.critics.ensemble import HybridCritic, VoteCritic
    from criticlab.critics.premise import PremiseCritic
    from criticlab.critics.principles import PrinciplesCritic
    from criticlab.critics.prm import PRMCritic
    from criticlab.critics.prompted import PromptedCritic
    from criticlab.critics.rubric import RubricCritic
    from criticlab.critics.selfeval import SelfEvalCritic
    from criticlab.critics.template import TemplateCritic
    from criticlab.data import load_benchmark
    from criticlab.models.spec import ModelSpec

__version__ = "0.1.0"

# name -> the module it is imported from on first use (each adds milliseconds to an import)
_LAZY = {
    "AnswerCritic": "criticlab.critics.answer",
    "ArithmeticCritic": "criticlab.critics.arithmetic",
    "CodeCritic": "criticlab.critics.code",
    "ConstraintCritic": "criticlab.critics.decrim",
    "DeliberateCritic": "criticlab.critics.deliberate",
    "HybridCritic": "criticlab.critics.ensemble",
    "ModelSpec": "criticlab.models.spec",
    "PRMCritic": "criticlab.critics.prm",
    "PremiseCritic": "criticlab.critics.premise",
    "PrinciplesCritic": "criticlab.critics.principles",
    "PromptedCritic": "criticlab.critics.prompted",
    "RubricCritic": "criticlab.critics.rubric",
    "SelfEvalCritic": "criticlab.critics.selfeval",
    "TemplateCritic": "criticlab.critics.template",
    "VoteCritic": "criticlab.critics.ensemble",
    "load_benchmark": "criticlab.data",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'criticlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AnswerCritic",
    "ArithmeticCritic",
    "CachedModel",
    "CodeCritic",
    "ConfigError",
    "ConstraintCritic",
    "Critic",
    "CriticOptions",
    "CriticlabError",
    "Critique",
    "DeliberateCritic",
    "EvalConfig",
    "EvalRun",
    "Example",
    "GenerateConfig",
    "Generation",
    "Gold",
    "HybridCritic",
    "InputError",
    "LanguageModel",
    "Message",
    "ModelError",
    "ModelOptions",
    "ModelSpec",
    "PRMCritic",
    "PremiseCritic",
    "PrinciplesCritic",
    "Problem",
    "PromptedCritic",
    "Result",
    "RubricCritic",
    "SelfEvalCritic",
    "Solution",
    "StepVerdict",
    "Store",
    "TemplateCritic",
    "Usage",
    "VoteCritic",
    "critique_sync",
    "evaluate",
    "load_benchmark",
    "make_critic",
    "make_model",
    "register_critic",
    "register_model",
    "render_numbered",
    "render_paragraphs",
    "split_steps",
]
