"""Language-model engines behind one async protocol (:class:`LanguageModel`)."""

from criticlab.models.base import GenerateConfig, Generation, LanguageModel, Message, TokenLogprob

__all__ = ["GenerateConfig", "Generation", "LanguageModel", "Message", "TokenLogprob"]
