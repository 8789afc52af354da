"""Critique a solution from Python with the arithmetic verifier (no model needed)."""

from criticlab import Problem, Solution, critique_sync, split_steps
from criticlab.critics.arithmetic import ArithmeticCritic

problem = Problem("apples", "Tom has 3 bags of 4 apples and eats 2. How many are left?")
solution = Solution(split_steps("3 * 4 = 12 apples\n12 - 2 = 11 apples left\nThe answer is 11."))
critique = critique_sync(ArithmeticCritic(), problem, solution)

for step in critique.steps:
    print(f"step {step.index + 1}: {step.verdict:9} {step.explanation}")
print("first error:", None if critique.first_error is None else critique.first_error + 1)
