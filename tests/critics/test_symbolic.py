"""The symbolic verifier: a table of claims (right, wrong, undecidable), the time limit, the
critique, the ``verifiers`` combination and the registrations."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

pytest.importorskip("sympy")
pytest.importorskip("latex2sympy2_extended")

from criticlab.critics.base import critique_sync
from criticlab.critics.symbolic import (
    SymbolicCritic,
    VerifiersCritic,
    judge,
)
from criticlab.critics.symbolic_claims import extract_claims, problem_equations, undecidable
from criticlab.registry import make_critic, uses_model
from criticlab.types import Problem, Solution


def verdict(step: str, problem: str = "", before: tuple[str, ...] = ()) -> str:
    """"wrong" if a claim of ``step`` is certainly wrong, "right" if some claim held and none
    is wrong, "unknown" otherwise (judged in this process, as the worker does)."""
    earlier = problem_equations(problem)
    for b in before:
        extract_claims(b, earlier)
    oks = [None if undecidable(c) else judge(c).ok for c in extract_claims(step, earlier)]
    if any(ok is False for ok in oks):
        return "wrong"
    return "right" if any(oks) else "unknown"


TABLE = [
    # plain constants, LaTeX notation
    (r"$2 + 3 = 5$", "right"),
    (r"$2 + 3 = 6$", "wrong"),
    (r"\[ \frac{6}{8} = \frac{3}{4} \]", "right"),
    (r"\[ \frac{6}{8} = \frac{2}{3} \]", "wrong"),  # a fraction simplified wrongly
    (r"$\frac12 + \frac13 = \frac56$", "right"),  # \frac12 without braces
    (r"$\frac12 + \frac13 = \frac25$", "wrong"),
    (r"$\dfrac{3}{4} = 0.75$", "right"),
    (r"$\sqrt{25} = 5$", "right"),
    (r"$\sqrt{50} = 5\sqrt{2}$", "right"),
    (r"$\sqrt{50} = 5\sqrt{3}$", "wrong"),
    (r"$\sqrt[3]{27} = 3$", "right"),
    (r"$\sqrt[3]{27} = 9$", "wrong"),
    (r"$2^{10} = 1024$", "right"),
    (r"$2^{10} = 1000$", "wrong"),
    (r"$26^3 \times 10^3 = 17,576,000$", "right"),  # thousands separators
    (r"$26^4 \times 10^2 = 45{,}697{,}600$", "right"),
    (r"$26^4 \times 10^2 = 456{,}976{,}000$", "wrong"),
    (r"$3 \cdot 4 = 12$", "right"),
    (r"$3(12) = 36$", "right"),  # latex2sympy alone reads "3(12)" as 15
    (r"$(3)(4) = 12$", "right"),
    (r"$-2(3) = -6$", "right"),
    (r"$\binom{5}{2} = 10$", "right"),
    (r"$\binom{6}{3} = 15$", "wrong"),
    (r"$5! = 120$", "right"),
    (r"$\log_2 8 = 3$", "right"),
    (r"$\log_2 16 = 3$", "wrong"),
    (r"$|{-7}| = 7$", "right"),
    (r"$\left( \frac{1}{2} \right)^2 = \frac{1}{4}$", "right"),
    (r"$\pi \cdot 5^2 = 25\pi$", "right"),
    (r"$\pi \cdot 25 = 78.54$", "right"),  # rounded to the decimals written
    (r"$\frac{2}{3} = 0.67$", "right"),
    (r"$\frac{2}{3} = 0.66$", "right"),  # truncated: within one unit of the last digit
    (r"$\frac{2}{3} = 0.6$", "right"),
    (r"$\frac{2}{3} = 0.62$", "wrong"),
    (r"$\sqrt{2} = 1.414$", "right"),
    (r"$0.\overline{3} = \frac13$", "right"),  # repeating decimals
    (r"$0.\overline{3} = \frac{3}{10}$", "wrong"),
    (r"$0.1\overline{6} = \frac{1}{6}$", "right"),
    (r"$50\%$ of the class: $50\% \times 20 = 10$", "right"),  # percent
    (r"$\frac{1}{4} \times 100 = 25\%$", "right"),  # percent read both ways
    (r"$\frac{1}{4} \times 100 = 20\%$", "wrong"),
    (r"$5\text{ cm} + 3\text{ cm} = 8\text{ cm}$", "right"),  # units in \text{}
    (r"$5\text{ cm} + 3\text{ cm} = 9\text{ cm}$", "wrong"),
    (r"$2 \text{ dozen} = 24$", "unknown"),  # a conversion, not arithmetic
    (r"$\text{Area} = 5 \times 3 = 15$", "right"),
    (r"$\sin 30^\circ = \frac12$", "right"),  # degrees
    (r"$\sin 30^\circ = \frac{\sqrt{3}}{2}$", "wrong"),
    (r"$\cos 60^{\circ} = 0.5$", "right"),
    (r"$\sin \frac{\pi}{6} = \frac{1}{2}$", "right"),
    (r"$180^\circ - 30^\circ - 60^\circ = 90^\circ$", "right"),
    (r"$(1+i)^2 = 2i$", "right"),  # i is the imaginary unit
    (r"$\sum_{k=1}^{10} k = 55$", "right"),
    (r"$\sum_{k=1}^{10} k = 56$", "wrong"),  # a sum evaluated wrongly
    (r"$\frac{d}{dx} x^3 = 3x^2$", "right"),
    (r"$\frac{d}{dx} x^3 = 3x^3$", "wrong"),  # a wrong derivative
    # inequalities between constants
    (r"$\frac{1}{3} < 0.3$", "wrong"),
    (r"$\frac{1}{3} > 0.3$", "right"),
    (r"$\sqrt{2} < 1.5$", "right"),
    (r"$2^{10} \le 1000$", "wrong"),
    (r"$\pi \geq 3$", "right"),
    (r"$3 \neq 4$", "right"),
    # identities: later links of a chain, or a continuation "= ..."
    (r"$(x+1)^2 = (x+1)(x+1) = x^2 + 2x + 1$", "right"),
    (r"$(x+1)^2 = (x+1)(x+1) = x^2 + 1$", "wrong"),  # an expansion that is not an identity
    (r"$x^2 - 5x + 6 = 0 = (x-2)(x-4)$", "unknown"),  # sides with and without x
    (r"$y = x^2 - 5x + 6 = (x-2)(x-3)$", "right"),
    (r"$y = x^2 - 5x + 6 = (x-2)(x-4)$", "wrong"),  # a wrong factorisation
    (r"\[x^2 + 8x = x^2 + 8x + 16 - 16\] \[= (x + 4)^2 - 16\]", "right"),
    (r"\[x^2 + 8x = x^2 + 8x + 16 - 16\] \[= (x + 4)^2 - 8\]", "wrong"),
    (r"$f = 2(x+1) = 2x + 2$", "right"),  # implicit multiplication
    (r"$f = 2(x+1) = 2x + 1$", "wrong"),
    (r"$n = 19k + 9 = 19(89n_0) + 9 = 1691n_0 + 9$", "right"),  # substitution: not judged
    (r"$a = \frac{x^2-1}{x-1} = x + 1$", "right"),
    (r"$z = \frac{a}{b} \cdot \frac{b}{c} = \frac{a}{c}$", "right"),
    # equations to solve are not identities
    (r"$(x+1)^2 = x^2 + 1$", "unknown"),  # one link: an equation, it may be solved
    (r"$3x + 2 = 11$", "unknown"),
    (r"$x^2 + 8x + y^2 - 6y = 0$", "unknown"),
    (r"$(x + 4)^2 + (y - 3)^2 = 16 + 9$", "unknown"),
    (r"$a + b = b + c = 10$", "unknown"),
    # solutions of equations: implications and x = v after an earlier equation
    (r"$2x + 3 = 7 \implies x = 2$", "right"),
    (r"$2x + 3 = 7 \implies x = 3$", "wrong"),  # a wrong solution of a linear equation
    (r"$3x = 12 \Rightarrow x = 4$", "right"),
    (r"$x^2 - 5x + 6 = 0 \implies x = 3$", "right"),
    (r"$x^2 - 5x + 6 = 0 \implies x = 4$", "wrong"),  # a wrong root of a polynomial
    (r"$2x = 4 \implies x^2 = 4$", "right"),
    (r"$19k + 9 = 89m + 9 \implies 19k = 89m$", "unknown"),  # two variables
    (r"$\sqrt{x} = x - 2 \implies x = (x-2)^2$", "unknown"),  # squaring: not rational
    # problem: "Solve 2x + 3 = 7", step "So x = 3"
    ("So the solution is $x = 3$.", "wrong", "Solve $2x + 3 = 7$.", ()),
    ("So the solution is $x = 2$.", "right", "Solve $2x + 3 = 7$.", ()),
    # an equation stated in an earlier step
    ("Therefore $x = 4$.", "wrong", "", ("We get $3x - 5 = 10$.",)),
    ("Therefore $x = 5$.", "right", "", ("We get $3x - 5 = 10$.",)),
    ("If $x = 4$, the left side is 7.", "unknown", "", ("We get $3x - 5 = 10$.",)),  # a test
    ("Let $x = 4$.", "unknown", "", ("We get $3x - 5 = 10$.",)),
    # undecidable, definitions, approximations, notation it does not judge
    (r"$f(x) = x^2 + 1$", "unknown"),
    (r"Let $a = 5$.", "unknown"),
    (r"$\pi \approx 3$", "unknown"),
    (r"$\sqrt{2} \approx 1.4 = 1.5$", "wrong"),  # the "=" after "≈" is still a claim
    (r"$x \in [1, 3)$", "unknown"),  # intervals
    (r"$x = \pm 3$", "unknown"),  # \pm
    (r"$\gamma = \sqrt{9}$", "unknown"),  # a Greek letter is a name, not a constant
    (r"$\cos \gamma \geq -1$", "unknown"),  # latex2sympy reads \gamma as Euler's constant
    (r"$\gamma + \gamma = 2 \gamma = 5$", "unknown"),
    (r"$\theta = 30$", "unknown"),
    (r"$xy = 6$", "unknown"),  # a word of letters is a product of variables
    (r"$\sqrt{9} = \pm 3$", "unknown"),
    (r"$7 \equiv 1 \pmod 3$", "unknown"),
    (r"In base 5, $12 + 3 = 20$", "unknown"),
    (r"$AB = 5$ and $AB^2 + BC^2 = AC^2$", "unknown"),  # geometry names
    (r"$3:4 = 6:8$", "unknown"),
    (r"$1 + 2 + \cdots + 10 = 55$", "unknown"),
    (r"$e = 5$", "unknown"),  # e as a variable
    (r"$f(2) = 3 \cdot 2 + 1 = 7$", "right"),
    (r"$g(x) = \frac{1}{x}$", "unknown"),
    (r"$\int_0^1 x\, dx = \frac{1}{2}$", "unknown"),
    (r"The answer is $\boxed{42}$.", "unknown"),
    (r"$\boxed{6 \times 7 = 42}$", "right"),
    (r"$x (x+1) = x^2 + x$", "unknown"),
    (r"\begin{align*} a &= 2 + 3 \\ &= 5 \end{align*}", "right"),
]


def _rows() -> list[tuple[str, str, str, tuple[str, ...]]]:
    out = []
    for row in TABLE:
        if len(row) == 2:
            out.append((row[0], row[1], "", ()))
        else:
            out.append(row)  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize(("step", "expected", "problem", "before"), _rows())
def test_claim_table(step: str, expected: str, problem: str, before: tuple[str, ...]) -> None:
    assert verdict(step, problem, before) == expected


def test_table_is_large_enough() -> None:
    assert len(TABLE) >= 80
    kinds = {row[1] for row in TABLE}
    assert kinds == {"right", "wrong", "unknown"}


def test_explanations_name_the_claim_and_the_value() -> None:
    (c,) = [c for c in extract_claims(r"$y = (x+1)^2 = x^2 + 1$") if c.identity]
    assert judge(c).message == ('"(x+1)^2 = x^2 + 1" is not an identity: at x = 2 the left side '
                                "is 9, the right side 5")
    (s,) = extract_claims(r"$\sum_{k=1}^{10} k = 56$")
    assert "= 55" in judge(s).message
    imp = [c for c in extract_claims(r"$2x + 3 = 7 \implies x = 3$") if c.kind == "implies"]
    assert "x = 3" in judge(imp[0]).message and "9" in judge(imp[0]).message


# ProcessBench steps that raised false alarms during development, each checked by hand (the
# solutions are right) and its cause fixed: (id, step, expected, earlier steps)
PROCESSBENCH = [
    # latex2sympy reads "3(12)" as 3 + 12: products are made explicit before parsing
    ("gsm8k-203", r"The number of wolves is \( 3x = 3(12) = 36 \).", "right", ()),
    ("gsm8k-215", r"\[ S = 4(3) - 5 = 12 - 5 = 7 \]", "right", ()),
    # matrices and vectors ("\\" rows, "&" columns): not read
    ("math-508", r"\[ \begin{pmatrix} 2 \\ 1 \end{pmatrix} \cdot \begin{pmatrix} 2 \\ 1 "
     r"\end{pmatrix} = 2^2 + 1^2 = 4 + 1 = 5 \]", "unknown", ()),
    ("math-510", r"\(\mathbf{a} \times \mathbf{v} = \begin{pmatrix} 1 \\ 1 \\ 1 \end{pmatrix} "
     r"\times \begin{pmatrix} x \\ y \\ z \end{pmatrix} = \begin{pmatrix} (1)(z) - (1)(y) \\ "
     r"(1)(x) - (1)(z) \\ (1)(y) - (1)(x) \end{pmatrix}\)", "unknown", ()),
    ("math-595", r"\[ \text{proj}_{\mathbf{b}}\mathbf{a} = \left( \frac{6}{13} \right) "
     r"\begin{pmatrix} 2 \\ -3 \end{pmatrix} = \begin{pmatrix} \frac{12}{13} \\ -\frac{18}{13} "
     r"\end{pmatrix} \]", "unknown", ()),
    ("math-842", r"\[ \begin{cases} x^2 - y^2 = 0 \\ 2xy = 1 \end{cases} \]", "unknown", ()),
    ("math-892", r"$$\begin{pmatrix} \cos(-45^\circ) & -\sin(-45^\circ) \\ \sin(-45^\circ) & "
     r"\cos(-45^\circ) \end{pmatrix} = \begin{pmatrix} \frac{1}{\sqrt{2}} & \frac{1}{\sqrt{2}} "
     r"\\ -\frac{1}{\sqrt{2}} & \frac{1}{\sqrt{2}} \end{pmatrix}.$$", "unknown", ()),
    # a number in base 2 ("0.0011_2"): subscripted numbers are not read
    ("math-555", r"So, $3/16 = 1/8 + 1/16 = 0.0011_2$.", "unknown", ()),
    # irrational roots: equal up to evaluation noise (1e-165) is equal
    ("math-559", r"So, the two solutions for $y$ are $y = 2 + \sqrt{5}$ and $y = 2 - \sqrt{5}$.",
     "right", (r"Set $x = 0$: \[ 0 = y^2 - 4y - 1 \]",)),
    ("math-803", r"So the roots are \(x = 4 + \sqrt{3}\) and \(x = 4 - \sqrt{3}\).", "right",
     (r"We solve \(x^2 - 8x + 13 = 0\).",)),
    # degrees in the premise of an implication
    ("math-732", r"\[ \tan 30^\circ = \frac{1}{\sqrt{3}} = \frac{1}{a} \implies a = \sqrt{3}. \]",
     "right", ()),
    # integer division with a remainder (Euclid's algorithm): not equality
    ("math-788", r"\[ 2863 \div 1344 = 2 \quad \text{(quotient)} \]"
     r"\[ 2863 - 2 \times 1344 = 2863 - 2688 = 175 \quad \text{(remainder)} \]", "unknown", ()),
    # a rounded input squared: within 0.5%
    ("math-883", r"\[ x^2 = (2.8284)^2 = 8 \]", "right", ()),
    # "x = 0" solves the first of two equations; an "x = v" uses up the equations before it
    ("math-621", r"From the first equation, we get: \[x = 0.\]", "right",
     (r"\[x^3(x^2 - x - 72) = 0.\]",
      r"First, \(x^3 = 0\) and Second, \(x^2 - x - 72 = 0\).")),
    ("math-658", r"So, \( x = 3 \) is not in the domain of \( g(x) \).", "unknown",
     (r"\[ 10 - 3x = 0 \]", r"Now, let's solve for \( x \): \[ -3x = -10 \] \[ x = \frac{10}{3} "
      r"\]")),
    ("math-801", r"The solutions to the equation are \(a = 2\) and \(a = 8\).", "unknown",
     (r"\[ 5-a = 3 \] Subtract 5: \[ -a = 3-5 \] This simplifies to: \[ -a = -2 \] \[ a = 2 \]",
      r"\[ 5-a = -3 \] Subtract 5: \[ -a = -3-5 \] This simplifies to: \[ -a = -8 \] "
      r"\[ a = 8 \]")),
]


@pytest.mark.parametrize(("id_", "step", "expected", "before"), PROCESSBENCH)
def test_processbench_false_alarms_stay_fixed(id_: str, step: str, expected: str,
                                              before: tuple[str, ...]) -> None:
    assert verdict(step, "", before) == expected, id_


# -- the critic (through its worker process) ---------------------------------------------------

PROBLEM = Problem("p", "Solve $x^2 - 5x + 6 = 0$.")


@pytest.fixture(scope="module")
def critic() -> SymbolicCritic:
    c = SymbolicCritic()
    critique_sync(c, PROBLEM, Solution(("$1 + 1 = 2$",)))  # start the worker once
    return c


def test_critique_finds_the_first_error(critic: SymbolicCritic) -> None:
    sol = Solution(("We factor: $y = x^2 - 5x + 6 = (x-2)(x-3)$.",
                    r"So $x = 2$ or $x = 3$, and $2 + 3 = 6$.",
                    r"Finally $\frac{1}{2} = 0.5$."))
    c = critique_sync(critic, PROBLEM, sol)
    assert (c.first_error, c.verdict, c.critic) == (1, "incorrect", "symbolic")
    assert [s.verdict for s in c.steps] == ["correct", "incorrect", "correct"]
    assert '"2 + 3 = 6" is wrong: 2 + 3 = 5' in c.steps[1].explanation
    assert "claim(s) checked" in c.feedback and "could not be decided" in c.feedback


def test_critique_without_claims_cannot_judge(critic: SymbolicCritic) -> None:
    c = critique_sync(critic, PROBLEM, Solution(("We think about it.", "$f(x) = x$")))
    assert c.verdict is None and c.first_error is None and c.score is None
    assert "0 claim(s) checked, 1 could not be decided" in c.feedback


def test_a_pathological_claim_is_unknown_within_the_time_limit(critic: SymbolicCritic) -> None:
    sol = Solution((r"$2^{2^{2^{2^{2^{2}}}}} = 5$", r"$(x+1)^{100000} = y = x + 1$",
                    "$2 + 2 = 4$"))
    t = time.perf_counter()
    c = critique_sync(critic, PROBLEM, sol)
    assert time.perf_counter() - t < 2.0
    assert [s.verdict for s in c.steps] == ["unknown", "unknown", "correct"]
    assert "longer than 0.5 s" in c.steps[0].explanation


def test_concurrent_critiques() -> None:
    import asyncio

    critic = SymbolicCritic()
    sols = [Solution((f"${i} + 1 = {i + 2}$",)) for i in range(4)]

    async def run() -> list[int | None]:
        crits = await asyncio.gather(*(critic.critique(PROBLEM, s) for s in sols))
        return [c.first_error for c in crits]

    assert asyncio.run(run()) == [0, 0, 0, 0]


# -- the verifiers together ---------------------------------------------------------------------


def test_verifiers_earliest_error_wins_and_names_its_verifier() -> None:
    v = VerifiersCritic()
    assert v.name == "verifiers"
    sym_first = Solution((r"$\sqrt{16} = 5$", "So 2 + 3 = 6.", "Done."))
    c = critique_sync(v, PROBLEM, sym_first)
    assert (c.first_error, c.critic) == (0, "verifiers")
    assert c.steps[0].explanation.startswith("[symbolic]")
    assert "found by symbolic" in c.feedback
    arith_first = Solution(("So 2 + 3 = 6.", r"$\sqrt{16} = 5$"))
    c = critique_sync(v, PROBLEM, arith_first)
    assert c.first_error == 0 and "found by arithmetic" in c.feedback
    assert c.steps[1].explanation.startswith("[symbolic]")
    ok = critique_sync(v, PROBLEM, Solution((r"$\sqrt{16} = 4$", "So 2 + 3 = 5.")))
    assert (ok.first_error, ok.verdict) == (None, "correct")


def test_registrations() -> None:
    def no_model() -> None:
        raise AssertionError("a verifier must not build a model")

    assert make_critic("symbolic", no_model).name == "symbolic"  # type: ignore[arg-type]
    assert make_critic("verifiers", no_model).name == "verifiers"  # type: ignore[arg-type]
    assert not uses_model("symbolic") and not uses_model("verifiers")
    from criticlab.models.scripted import ScriptedModel

    hybrid = make_critic("hybrid", lambda: ScriptedModel([]))
    assert hybrid.name == "hybrid(arithmetic+symbolic+stepwise)"


def test_import_criticlab_does_not_import_sympy() -> None:
    code = ("import sys, criticlab, criticlab.critics, criticlab.critics.symbolic; "
            "print('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
