"""Split a free-text solution into steps, and render steps for prompts.

Splitting, in order of preference:
1. numbered step markers at the start of a line ("Step 1:", "**Step 2.**", "Step 3)");
2. paragraphs separated by blank lines;
3. one step per non-empty line.
The markers themselves are removed; rendering adds the numbering a prompt needs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Every pattern here is linear in the text: no quantifier is nested in another or followed by
# one that can match the same characters, and runs whose end can't help a match are possessive
# ("*+"). The decoration before a marker used to be "[ \t]*(?:[#*_]+[ \t]*)*", which tries
# every way of cutting a run of "*" into pieces: 40 "*" on a line never finished. "[#*_ \t]*+"
# matches the same strings ("step" starts with none of those characters) in one pass. After
# the number every part is optional, so the first (greedy) attempt always succeeds.
_STEP_MARKER = re.compile(
    r"^[#*_ \t]*+step[ \t]*+(\d++)[ \t]*+(?:[*_]++[ \t]*+)?[:.)\-–—]?"
    r"(?:[ \t]*+[*_]++)?[ \t]*+",
    re.IGNORECASE | re.MULTILINE,
)
_BLANK_LINE = re.compile(r"\n[ \t]*+\n")


def split_steps(text: str) -> tuple[str, ...]:
    """Split ``text`` into stripped, non-empty steps (see the module docstring for the rules).

    Text before the first "Step k" marker is kept as a step of its own when it is not empty.
    Returns ``()`` for blank text.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return ()
    markers = list(_STEP_MARKER.finditer(text))
    if markers:
        pieces = []
        head = text[: markers[0].start()].strip()
        if head:
            pieces.append(head)
        for m, nxt in zip(markers, [*markers[1:], None], strict=True):
            end = nxt.start() if nxt is not None else len(text)
            pieces.append(text[m.end() : end].strip())
        return tuple(p for p in pieces if p)
    if _BLANK_LINE.search(text):
        return tuple(p.strip() for p in _BLANK_LINE.split(text) if p.strip())
    return tuple(line.strip() for line in text.split("\n") if line.strip())


def render_paragraphs(steps: Sequence[str]) -> str:
    """ProcessBench's format: ``<paragraph_0>…</paragraph_0>``, numbered from 0."""
    return "\n\n".join(
        f"<paragraph_{i}>\n{step}\n</paragraph_{i}>" for i, step in enumerate(steps)
    )


def render_numbered(steps: Sequence[str]) -> str:
    """``Step 1: …`` lines, numbered from 1 as people read them."""
    return "\n".join(f"Step {i}: {step}" for i, step in enumerate(steps, start=1))
