"""Every way criticlab produces a :class:`~criticlab.types.Critique`."""

from criticlab.critics.base import Critic, critique_sync

__all__ = ["Critic", "critique_sync"]
