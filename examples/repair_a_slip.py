"""Critique and refine with no model: the arithmetic verifier finds a slip, the repair
refiner fixes it and every later result that depended on it, the critic then accepts."""

import asyncio

from criticlab import Problem, Solution
from criticlab.critics.arithmetic import ArithmeticCritic
from criticlab.infer.refine import refine_loop
from criticlab.infer.repair import RepairRefiner

problem = Problem("clips", "Natalia sold clips to 48 of her friends in April, and then she sold "
                  "half as many clips in May. How many clips did Natalia sell altogether?",
                  reference_answer="72")
draft = Solution(("Natalia sold 48/2 = <<48/2=26>>26 clips in May.",
                  "Natalia sold 48+26 = <<48+26=74>>74 clips altogether.",
                  "The answer is 74."), final_answer="74")

trajectory = asyncio.run(refine_loop(problem, critic=ArithmeticCritic(),
                                     refiner=RepairRefiner(), rounds=2, draft=draft))
for i, r in enumerate(trajectory.rounds):
    first = r.critique.first_error if r.critique else None
    print(f"round {i}: first error {first}; answer {r.solution.final_answer}")
    if r.critique and first is not None:
        print(f"  {r.critique.steps[first].explanation}")
print("\n".join(trajectory.rounds[-1].solution.steps))
