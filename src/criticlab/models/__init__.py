"""Language-model engines behind one async protocol (:class:`LanguageModel`), and step scorers
(process reward models) behind another (:class:`StepScorer`)."""

from criticlab.models.base import (
    GenerateConfig,
    Generation,
    LanguageModel,
    Message,
    StepScorer,
    StepScores,
    TokenLogprob,
)

__all__ = ["GenerateConfig", "Generation", "LanguageModel", "Message", "StepScorer",
           "StepScores", "TokenLogprob"]
