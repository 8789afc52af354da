"""``python -m tests.serve.slowserver [criticlab serve options]``: the real server with one
more critic, ``slow``: a problem that starts ``sleep SECONDS:`` is critiqued after that many
seconds (cancellable), then judged by the arithmetic critic. For the limits that need work in
flight (429, 504, a disconnect, SIGTERM mid-batch)."""

from __future__ import annotations

import asyncio
import re

from criticlab import register_critic
from criticlab.types import Critique, Problem, Solution


class SlowCritic:
    name = "slow"

    def __init__(self) -> None:
        from criticlab.critics.arithmetic import ArithmeticCritic

        self.inner = ArithmeticCritic()

    async def critique(self, problem: Problem, solution: Solution) -> Critique:
        m = re.match(r"sleep ([0-9.]+):", problem.question)
        if m:
            await asyncio.sleep(float(m.group(1)))
        return await self.inner.critique(problem, solution)


@register_critic("slow", usage="slow", needs_model=False)
def build_slow(arg, model, options):  # type: ignore[no-untyped-def]
    return SlowCritic()


if __name__ == "__main__":
    import sys

    from criticlab.cli import main

    main(["serve", *sys.argv[1:]])
