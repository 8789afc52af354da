"""Tree search over whole answers (MCTSr; MC-NEST's uniform policy), bounded by model calls.

Nodes are complete solutions. Expanding a node critiques it and refines it into a child; a
node's rewards are its critic scores. As in MCTSr (Zhang et al., 2024), a node's own quality
is ``Q(a) = (min(R_a) + mean(R_a)) / 2`` over its rewards; after an expansion every node on
the path back to the root is updated with its best child, ``Q'(a) = (Q(a) + max_child Q'(c))
/ 2``, and its visit count grows; selection descends by UCT
``Q' + c·sqrt(ln(N_parent + 1) / (N + ε))`` into nodes that are fully expanded; the answer is
the node with the highest ``Q'``. MC-NEST's ``uniform`` policy replaces that greedy choice by
a uniformly random child (a mixed, Nash-equilibrium-like strategy), which keeps exploring
where UCT would exploit.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from criticlab.critics.base import Critic
from criticlab.errors import ConfigError
from criticlab.infer.refine import Refiner, Round, Trajectory, critique_score, get_draft
from criticlab.models.base import GenerateConfig, LanguageModel
from criticlab.types import Critique, Problem, Solution, Usage

POLICIES = ("greedy", "uniform")


@dataclass(eq=False)
class Node:
    """``rewards``: the node's own critic scores (R_a); ``value``: Q' once a child was
    backed up into it; ``visits``: N, the expansions that passed through it (1 at birth)."""

    solution: Solution
    critique: Critique
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    value: float | None = None
    visits: int = 1

    @property
    def own_q(self) -> float:
        """MCTSr's Q(a) = (min + mean) / 2 of the node's own rewards."""
        if not self.rewards:
            return 0.0
        return (min(self.rewards) + sum(self.rewards) / len(self.rewards)) / 2

    @property
    def q(self) -> float:
        """Q'(a): the own Q, updated with the best child after each backup."""
        return self.own_q if self.value is None else self.value

    def backup(self) -> None:
        """Update Q' and N of this node's ancestors after it was added (MCTSr's backprop)."""
        walk = self.parent
        while walk is not None:
            walk.visits += 1
            walk.value = (walk.own_q + max(ch.q for ch in walk.children)) / 2
            walk = walk.parent


@dataclass(frozen=True)
class SearchResult:
    """The best solution found and its critique; ``root_critique`` is the critique of the
    solution the search started from; ``usage`` covers every call, that critique's too."""

    best: Solution
    best_critique: Critique
    nodes: int
    usage: Usage
    root_critique: Critique | None = None


def uct(node: Node, c: float) -> float:
    parent = node.parent.visits if node.parent is not None else node.visits
    return node.q + c * math.sqrt(math.log(parent + 1) / (node.visits + 1e-6))


async def search(
    problem: Problem,
    root: Solution,
    *,
    critic: Critic,
    refiner: Refiner,
    budget: int,
    max_children: int = 2,
    c: float = 1.41,
    policy: str = "greedy",
    seed: int = 0,
) -> SearchResult:
    """Search from ``root`` until ``budget`` model calls are spent (engine calls counted from
    usage; the next expansion only starts if the costliest one so far still fits), and return
    the solution with the best Q (its own critic score breaking ties)."""
    if policy not in POLICIES:
        raise ConfigError(f"unknown policy {policy!r}; choose from {POLICIES}")
    if budget < 0 or max_children < 1:
        raise ConfigError("budget must be >= 0 and max_children >= 1")
    rng = random.Random(seed)
    crit = await critic.critique(problem, root)
    used = crit.usage
    top = Node(root, crit)
    top.rewards.append(critique_score(crit, len(root.steps)))
    nodes = [top]
    # an expansion costs a refinement and a critique: assume one call for the refinement
    # until one has been seen
    costliest = crit.usage.calls + 1
    while used.calls + costliest <= budget:
        node = top
        while len(node.children) >= max_children:
            node = (rng.choice(node.children) if policy == "uniform"
                    else max(node.children, key=lambda ch: uct(ch, c)))
        before = used.calls
        solution, spent = await refiner.refine(problem, node.solution, node.critique)
        child_crit = await critic.critique(problem, solution)
        used = used + spent + child_crit.usage
        costliest = max(costliest, used.calls - before)
        child = Node(solution, child_crit, parent=node,
                     rewards=[critique_score(child_crit, len(solution.steps))])
        node.children.append(child)
        nodes.append(child)
        child.backup()
        if used.calls == 0 and len(nodes) > budget:
            break  # a model-free refiner and critic: bound the search by nodes instead
    best = max(nodes, key=lambda n: (n.q, critique_score(n.critique, len(n.solution.steps))))
    return SearchResult(best.solution, best.critique, len(nodes), used, crit)


async def search_loop(
    problem: Problem,
    *,
    critic: Critic,
    refiner: Refiner,
    budget: int,
    policy: str = "greedy",
    draft: Solution | None = None,
    actor: LanguageModel | None = None,
    solve_config: GenerateConfig | None = None,
    seed: int = 0,
) -> Trajectory:
    """:func:`search` from the draft (``actor`` writes one when none is given), as a
    :class:`~criticlab.infer.refine.Trajectory` that the refine job's metrics and report
    read: the draft with its critique, then, unless the draft itself scored best, the best
    solution found (kind ``mctsr``, or ``mcnest`` for the uniform policy) carrying the
    search's cost."""
    root, drafting = await get_draft(problem, draft, actor, solve_config)
    found = await search(problem, root, critic=critic, refiner=refiner, budget=budget,
                         policy=policy, seed=seed)
    assert found.root_critique is not None
    first = Round("draft", root, found.root_critique, drafting + found.root_critique.usage)
    if found.best is root:
        return Trajectory(problem, (first,))
    rest = found.usage - found.root_critique.usage
    kind = "mcnest" if policy == "uniform" else "mctsr"
    return Trajectory(problem, (first, Round(kind, found.best, found.best_critique, rest)))
