"""Build a realistic report from the shared ProcessBench data with synthetic critic
predictions, and screenshot it to docs/report.png.

    .venv/bin/python -m tests.report.make_screenshot [--html report.html] [--png docs/report.png]

Two synthetic runs over ProcessBench GSM8K (400) and MATH (1,000): one predicts the gold label
for ~70% of items, the other for ~50% (with a lean towards "no error", as weak critics have),
and a few critiques are unparsed. The predictions are made up; they only give the report a
realistic shape. Needs ../shared/data, the Debian package ``chromium`` and ``playwright``
(PyPI).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

from criticlab.report import PUBLISHED_PROCESSBENCH, write_report
from criticlab.types import Critique, Example, Gold, Problem, Result, Solution, Usage
from tests.report import write_run

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "processbench"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _other(gold: int, n_steps: int, rng: random.Random, lean_none: float) -> int:
    if gold >= 0 and rng.random() < lean_none:
        return -1
    choices = [i for i in range(-1, n_steps) if i != gold]
    if gold >= 0 and rng.random() < 0.6:  # most misses are near the real error
        near = [i for i in choices if i >= 0 and abs(i - gold) <= 2]
        choices = near or choices
    return rng.choice(choices)


def _critique(steps: list[str], pred: int | None, rng: random.Random, critic: str,
              samples: int) -> Critique:
    lines = ["Let me review the solution paragraph by paragraph."]
    upto = len(steps) if pred is None or pred < 0 else pred + 1
    for i in range(min(upto, len(steps))):
        if i == pred:
            snippet = steps[i].strip().replace("\n", " ")[:90]
            lines.append(f'Paragraph {i}: "{snippet}…" does not follow: the quantity used here '
                         "is not the one the problem gives, so the result is wrong.")
        else:
            lines.append(f"Paragraph {i}: correct; the computation checks out.")
    usage = Usage(samples * (380 + sum(len(s) for s in steps) // 4),
                  samples * rng.randint(180, 650), samples, 0)
    if pred is None:  # ran out of tokens before the box
        raw = "\n\n".join(lines[:3]) + "\n\nParagraph 2: Let me recompute this: 3 × 14 = "
        return Critique(raw=raw, parsed=False, critic=critic, usage=usage)
    feedback = (f"The earliest error is in paragraph {pred}." if pred >= 0 else
                "Every paragraph is correct; the final answer follows.")
    raw = "\n\n".join(lines) + f"\n\nThe earliest error: \\boxed{{{pred}}}"
    return Critique(
        first_error=None if pred < 0 else pred, verdict="correct" if pred < 0 else "incorrect",
        feedback=feedback, raw=raw, critic=critic, usage=usage,
    )


def synthetic_results(subsets: dict[str, list[dict]], *, accuracy: float, unparsed: float,
                      lean_none: float, seed: int, critic: str = "processbench",
                      samples: int = 1) -> list[Result]:
    rng = random.Random(seed)
    out = []
    for subset, records in subsets.items():
        for rec in records:
            steps, gold = list(rec["steps"]), int(rec["label"])
            roll = rng.random()
            pred: int | None
            if roll < unparsed:
                pred = None
            elif roll < unparsed + accuracy:
                pred = gold
            else:
                pred = _other(gold, len(steps), rng, lean_none)
            example = Example(
                Problem(rec["id"], rec["problem"],
                        metadata={"benchmark": "processbench", "subset": subset,
                                  "generator": rec.get("generator")}),
                Solution(tuple(steps), source=rec.get("generator")),
                Gold(None if gold < 0 else gold,
                     final_answer_correct=bool(rec.get("final_answer_correct"))),
            )
            out.append(Result(example, _critique(steps, pred, rng, critic, samples)))
    return out


def build(out_html: Path, work: Path, data: Path = DATA) -> Path:
    """Write the two synthetic runs under ``work`` and their report to ``out_html``."""
    subsets = {name: json.loads((data / f"{name}.json").read_text(encoding="utf-8"))
               for name in ("gsm8k", "math")}
    a = synthetic_results(subsets, accuracy=0.70, unparsed=0.02, lean_none=0.3, seed=1,
                          samples=8)
    b = synthetic_results(subsets, accuracy=0.50, unparsed=0.06, lean_none=0.6, seed=2)
    run_a = write_run(work / "run-a", a, model="openai:synthetic-critic-70", elapsed_s=1843.2,
                      config={"samples": 8})
    run_b = write_run(work / "run-b", b, model="openai:synthetic-critic-50", elapsed_s=655.0)
    return write_report([run_a, run_b], out_html, published=PUBLISHED_PROCESSBENCH)


def screenshot(html: Path, png: Path, *, width: int = 1360, items: int = 4) -> None:
    """The whole report down to the ``items``-th item of the item list, on "misses"."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": 900},
                                device_scale_factor=1)
        page.goto(html.resolve().as_uri())
        page.select_option("#per-page", "10")
        page.click("#filters button[data-filter=miss]")
        # boxes are relative to the viewport; the page's top is the header's top
        box = page.locator("#items article.item").nth(items - 1).bounding_box()
        top = page.locator("header.top").bounding_box()
        assert box is not None and top is not None
        bottom = box["y"] + box["height"] - top["y"] + 24
        page.screenshot(path=str(png), full_page=True,
                        clip={"x": 0, "y": 0, "width": width, "height": bottom})
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", type=Path, default=None, help="keep the report here")
    ap.add_argument("--png", type=Path, default=ROOT / "docs" / "report.png")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs the ProcessBench data at {DATA}")
    with tempfile.TemporaryDirectory() as tmp:
        html = build(args.html or Path(tmp) / "report.html", Path(tmp))
        args.png.parent.mkdir(parents=True, exist_ok=True)
        screenshot(html, args.png)
    print(f"wrote {args.png}" + (f" and {args.html}" if args.html else ""))


if __name__ == "__main__":
    main()
