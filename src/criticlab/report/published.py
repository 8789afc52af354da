"""Published ProcessBench F1 (Zheng et al., 2024, "ProcessBench: Identifying Process Errors in
Mathematical Reasoning"), to show next to a run. Each model maps subset -> F1 (percent),
``average`` (the plain mean of the four subsets' F1) and ``decoding``: ``maj@8`` is majority
voting over 8 samples (temperature 1.0, top_p 0.9); PRMs score steps and use the threshold
that maximises F1 on GSM8K."""

from __future__ import annotations

from typing import Any

SUBSETS: tuple[str, ...] = ("gsm8k", "math", "olympiadbench", "omnimath")
SUBSET_NAMES: dict[str, str] = {
    "gsm8k": "GSM8K",
    "math": "MATH",
    "olympiadbench": "OlympiadBench",
    "omnimath": "Omni-MATH",
}


def _row(f1: tuple[float, float, float, float], average: float, decoding: str) -> dict[str, Any]:
    return {**dict(zip(SUBSETS, f1, strict=True)), "average": average, "decoding": decoding}


PUBLISHED_PROCESSBENCH: dict[str, dict[str, Any]] = {
    "Qwen2.5-7B-Instruct": _row((36.5, 36.6, 29.7, 27.4), 32.6, "maj@8"),
    "Qwen2.5-14B-Instruct": _row((69.3, 53.3, 45.0, 41.3), 52.2, "maj@8"),
    "Qwen2.5-72B-Instruct": _row((76.2, 61.8, 54.6, 52.2), 61.2, "maj@8"),
    "Llama-3.1-8B-Instruct": _row((10.9, 5.1, 2.8, 1.6), 5.1, "maj@8"),
    "QwQ-32B-Preview": _row((88.0, 78.7, 57.8, 61.3), 71.5, "maj@8"),
    "GPT-4o": _row((79.2, 63.6, 51.4, 53.5), 61.9, "greedy"),
    "o1-mini": _row((93.2, 88.9, 87.2, 82.4), 87.9, "maj@8"),
    "Math-Shepherd-PRM-7B": _row((47.9, 29.5, 24.8, 23.8), 31.5, "PRM, threshold tuned on GSM8K"),
    "Qwen2.5-Math-7B-PRM800K": _row(
        (68.2, 62.6, 50.7, 44.3), 56.5, "PRM, threshold tuned on GSM8K"
    ),
}
