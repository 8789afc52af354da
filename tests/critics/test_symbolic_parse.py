"""The symbolic verifier's fast LaTeX parser returns what math-verify's latex2sympy returns, and
its worker survives a claim's time limit with its caches."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("sympy")
pytest.importorskip("latex2sympy2_extended")

from latex2sympy2_extended import latex2sympy

from criticlab.critics import symbolic
from criticlab.critics.base import critique_sync
from criticlab.critics.symbolic_claims import extract_claims, problem_equations
from criticlab.critics.symbolic_parse import _config, latex_to_sympy
from criticlab.types import Problem, Solution

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "processbench"

# inputs that SLL alone parses differently or not at all (a letter with a superscript or a
# subscript), that fail to parse, or that take another branch of latex2sympy
TRICKY = [
    "x^2", "x^2 - 2x - 3", "d_1 + 6", "x_1^2 + x_2^2", "a^{n-k}b^k", r"e^{i\theta}",
    r"f(m^2)", r"\frac{f(m^2)}{f(m)^2}", r"\sqrt[3]{27}", r"\frac12", "50\\%", r"3 \cdot 10^5",
    "1,000", "0.\\overline{3}", r"\binom{10}{3}", r"\sum_{k=1}^{10} k^2", "2^{-1}", "(",
    r"\frac{", "x ==", r"\text{apples}", r"\sin^2 x + \cos^2 x", r"\log_2 8", "|x - 3|",
    r"\lfloor 2.5 \rfloor", "5!", r"\pi r^2", "007", "3x", "a_3 \\cdot 3^3 + a_0",
]


def _both(text: str) -> tuple[str, str]:
    def rep(f):  # type: ignore[no-untyped-def]
        try:
            return repr(f(text))
        except Exception as e:
            return f"error {type(e).__name__}"

    return rep(lambda t: latex2sympy(t, conversion_config=_config())), rep(latex_to_sympy)


@pytest.mark.parametrize("text", TRICKY)
def test_same_expression_as_latex2sympy(text: str) -> None:
    library, fast = _both(text)
    assert fast == library


def test_same_expressions_on_processbench_claims() -> None:
    """Every side of every claim of the first 100 solutions of each ProcessBench file (the
    benchmark compared all 9,227 distinct sides of both files: no difference)."""
    if not DATA.is_dir():
        pytest.skip(f"{DATA} not found")
    sides: set[str] = set()
    for name in ("gsm8k.json", "math.json"):
        for r in json.loads((DATA / name).read_text(encoding="utf-8"))[:100]:
            earlier = problem_equations(r["problem"])
            for step in r["steps"]:
                for c in extract_claims(step, earlier):
                    if c.kind == "link" and len(c.left + c.right) < 400:
                        sides |= {c.left, c.right}
    assert len(sides) > 500
    diffs = [(s, *_both(s)) for s in sorted(sides)]
    diffs = [d for d in diffs if d[1] != d[2]]
    assert diffs == []


PROBLEM = Problem(id="p", question="")


def test_a_claim_over_its_time_limit_leaves_the_worker_alive() -> None:
    """The CPU-time limit stops the claim inside the worker, which keeps running (and keeps
    its caches): no new process is started for the next claim."""
    critic = symbolic.SymbolicCritic()
    slow = Solution((r"$2^{2^{2^{2^{2^{2}}}}} = 5$", "$2 + 2 = 5$"))
    c = critique_sync(critic, PROBLEM, Solution(("$1 + 1 = 2$",)))
    pool = symbolic._pool(symbolic.WORKERS)
    pids = {w.proc.pid for w in pool.all if w.proc is not None}
    assert len(pids) == 1
    c = critique_sync(critic, PROBLEM, slow)
    assert [s.verdict for s in c.steps] == ["unknown", "incorrect"]
    assert "longer than 0.5 s" in c.steps[0].explanation
    assert {w.proc.pid for w in pool.all if w.proc is not None} == pids


def test_a_script_without_a_main_guard_gets_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "check.py"
    script.write_text(textwrap.dedent("""
        from criticlab.critics.base import critique_sync
        from criticlab.critics.symbolic import SymbolicCritic
        from criticlab.types import Problem, Solution
        critique_sync(SymbolicCritic(), Problem(id="p", question=""), Solution(("$1+1=2$",)))
    """), encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode != 0
    assert 'must start under `if __name__ == "__main__":`' in out.stderr
