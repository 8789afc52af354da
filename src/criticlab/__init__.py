"""criticlab: LLM critique. Judge a solution step by step, find the first wrong step and say
why; with LM critics and with verifiers that need no model."""

from criticlab.critics.base import Critic, critique_sync
from criticlab.errors import ConfigError, CriticlabError, InputError, ModelError
from criticlab.models.base import GenerateConfig, Generation, LanguageModel, Message
from criticlab.steps import render_numbered, render_paragraphs, split_steps
from criticlab.store import CachedModel, Store
from criticlab.types import Critique, Example, Gold, Problem, Result, Solution, StepVerdict, Usage

__version__ = "0.1.0"

__all__ = [
    "CachedModel",
    "ConfigError",
    "Critic",
    "CriticlabError",
    "Critique",
    "Example",
    "GenerateConfig",
    "Generation",
    "Gold",
    "InputError",
    "LanguageModel",
    "Message",
    "ModelError",
    "Problem",
    "Result",
    "Solution",
    "StepVerdict",
    "Store",
    "Usage",
    "critique_sync",
    "render_numbered",
    "render_paragraphs",
    "split_steps",
]
