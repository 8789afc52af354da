"""Making critique data: error injection into solutions whose steps are known to be right
(:mod:`criticlab.label.inject`)."""

from criticlab.label.inject import ERROR_TYPES, InjectConfig, InjectStats, TypeStats, inject

__all__ = ["ERROR_TYPES", "InjectConfig", "InjectStats", "TypeStats", "inject"]
