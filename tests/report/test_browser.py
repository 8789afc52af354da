"""The report in a real headless Chromium, opened from file://: no console errors, no
network requests, the item list renders, its filters count right, untrusted text stays text.

Needs the Debian package ``chromium`` (``apt-get install -y chromium``; another binary can be
named in ``$CRITICLAB_CHROMIUM``) and ``playwright`` from PyPI, which drives that binary (no
``playwright install``). Skips with the reason when either is missing.
"""

import os
import shutil
from pathlib import Path

import pytest

from criticlab.report import write_report
from tests.report import make_result, write_run
from tests.report.loops import (
    global_trajectories,
    repair_trajectories,
    select_rows,
    write_refine_run,
    write_select_run,
)
from tests.report.make_screenshot import build

XSS = "</script><script>alert(1)</script>"
STEPS = ("2 + 3 = 5", "5 * 4 = 20", "So the answer is 20.")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    for name in (os.environ.get("CRITICLAB_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (found := shutil.which(name)):
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        pytest.skip("no Chromium binary: apt-get install -y chromium (Debian) and "
                    "pip install playwright, or set CRITICLAB_CHROMIUM")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs playwright (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=ARGS)
        yield b
        b.close()


class Page:
    """A page on a report, recording console errors, uncaught exceptions, dialogs and any
    request that is not the report file itself."""

    def __init__(self, browser, html: Path) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.url = html.resolve().as_uri()
        self.page.goto(self.url)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def cards(self) -> int:
        return self.page.locator("#items article.item").count()

    def total(self) -> int:
        return int(self.page.get_attribute("#item-count", "data-count"))

    def filter(self, name: str) -> None:
        self.page.click(f"#filters button[data-filter={name}]")

    def clean(self) -> None:
        assert self.errors == []
        assert self.dialogs == []
        assert self.requests == [self.url]


def twelve_results():
    hits = [make_result(f"h{i}", STEPS, g, g) for i, g in enumerate((-1, -1, 0, 1))]
    hits.append(make_result("h4", STEPS, 2, 2, subset="math", feedback="step 2 is wrong"))
    misses = [make_result(f"m{i}", STEPS, g, p) for i, (g, p) in enumerate(
        ((-1, 0), (1, -1), (0, 2)))]
    misses.append(make_result("evil", [XSS, "<img src=x onerror=alert(2)>"], 0, 1,
                              question=XSS, feedback=XSS, raw="raw " + XSS, subset="math"))
    unparsed = [make_result("u0", STEPS, 1, None, parsed=False, raw="Paragraph 0: fine..."),
                make_result("u1", STEPS, -1, None, parsed=False, subset="math"),
                make_result("e0", STEPS, 0, None, error="TimeoutError: 120 s")]
    return hits + misses + unparsed  # 12 items; 4 + 3 = 7 misses; 3 unparsed or failed


def test_report_renders_and_filters_in_chromium(browser, tmp_path):
    run = write_run(tmp_path / "run", twelve_results())
    html = write_report([run], tmp_path / "report.html")
    p = Page(browser, html)
    assert p.cards() == 12 and p.total() == 12
    p.filter("miss")
    assert p.cards() == 7 and p.total() == 7
    assert p.page.inner_text("#filters button[data-filter=miss] .n") == "7"
    p.filter("unparsed")
    assert p.cards() == 3
    p.page.select_option("#subset-select", "math")
    assert p.cards() == 1  # u1
    p.filter("all")
    assert p.cards() == 3  # h4, evil, u1
    p.page.fill("#item-search", "evil")
    p.page.locator("#item-count[data-count='1']").wait_for()  # the search is debounced

    card = p.page.locator("#items article.item").first
    text = card.inner_text()
    assert text.count(XSS) >= 3  # question, first step, feedback: shown as text
    assert "<img src=x onerror=alert(2)>" in text
    assert p.page.locator("#items img").count() == 0
    steps = card.locator("ol.steps li")
    assert steps.nth(0).get_attribute("class") == "gold"
    assert steps.nth(1).get_attribute("class") == "pred"
    p.page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    p.clean()


def test_both_marks_when_the_critic_is_right(browser, tmp_path):
    run = write_run(tmp_path / "run", [make_result("hit", STEPS, 1, 1)])
    p = Page(browser, write_report([run], tmp_path / "r.html"))
    li = p.page.locator("#items ol.steps li").nth(1)
    assert set(li.get_attribute("class").split()) == {"gold", "pred"}
    assert li.locator(".chip.gold").count() == 1 and li.locator(".chip.pred").count() == 1
    p.clean()


def test_run_switch_and_four_thousand_items(browser, tmp_path):
    n = 4000
    big = [make_result(f"i{i}", STEPS, i % 3 - 1, (i % 3 - 1) if i % 5 else 2,
                       subset="gsm8k" if i % 2 else "math") for i in range(n)]
    misses = sum(1 for i in range(n) if i % 5 == 0 and i % 3 - 1 != 2)
    a = write_run(tmp_path / "a", big)
    b = write_run(tmp_path / "b", twelve_results(), model="openai:other")
    p = Page(browser, write_report([a, b], tmp_path / "r.html"))
    assert p.total() == n and p.cards() == 25  # paginated: only one page is in the DOM
    p.filter("miss")
    assert p.total() == misses and p.cards() == 25
    p.page.click("#next")
    assert p.page.inner_text("#page-info") == f"page 2 / {-(-misses // 25)}"
    p.page.select_option("#run-select", "1")
    assert p.total() == 7 and p.cards() == 7
    p.clean()


def test_realistic_report_from_processbench(browser, shared_data, tmp_path):
    html = build(tmp_path / "report.html", tmp_path, data=shared_data / "processbench")
    p = Page(browser, html)
    assert p.total() == 1400 and p.cards() == 25
    p.filter("miss")
    assert 300 < p.total() < 600  # ~30% of 1,400 (synthetic, seeded)
    p.page.select_option("#run-select", "1")
    assert 550 < p.total() < 900  # ~50%
    p.clean()


def _list(p: Page, ident: str):
    return p.page.locator(f"#{ident}-items article.item")


def test_refine_report_in_chromium_filters_fixed_trajectories(browser, tmp_path):
    a = write_refine_run(tmp_path / "repair", repair_trajectories())
    b = write_refine_run(tmp_path / "global", global_trajectories(), strategy="global")
    p = Page(browser, write_report([a, b], tmp_path / "r.html"))
    cards = _list(p, "trajectories")
    assert cards.count() == 8
    p.page.click("#trajectories-filters button[data-filter='i->c']")
    assert cards.count() == 3
    assert p.page.get_attribute("#trajectories-count", "data-count") == "3"
    assert p.page.inner_text("#trajectories-filters button[data-filter='i->c'] .n") == "3"
    assert [cards.nth(i).locator("header .id").inner_text() for i in range(3)] == [
        "p3", "p4", "p8"]
    assert {cards.nth(i).get_attribute("data-t") for i in range(3)} == {"i->c"}
    p3 = cards.nth(0)
    assert "fixed (i→c)" in p3.locator("header").inner_text()
    draft, final = p3.locator("details.round[data-round='0']"), p3.locator(
        "details.round[data-round='1']")
    wrong_step = draft.locator("ol.steps li").nth(1)
    assert wrong_step.get_attribute("class") == "pred"  # the critic's first error, marked
    assert "critic's first error" in wrong_step.inner_text()
    assert "Step 1 is wrong." in draft.locator(".crit .fb").inner_text()
    assert "✗ wrong" in draft.locator("summary").inner_text()
    assert "✓ right" in final.locator("summary").inner_text()
    assert final.locator("ol.steps li.pred").count() == 0  # accepted: nothing marked
    evil = cards.nth(2).inner_text()
    assert evil.count(XSS) >= 3 and "<img src=x onerror=alert(2)>" in evil  # text, not HTML
    assert p.page.locator("#trajectories-items img").count() == 0
    p.page.click("#trajectories-filters button[data-filter='c->i']")
    assert cards.count() == 1 and cards.first.locator("header .id").inner_text() == "p2"
    p.page.click("#trajectories-filters button[data-filter='i->i']")
    assert cards.count() == 2
    p.page.select_option("#trajectories-run", "1")  # global: 4 still wrong, 1 fixed
    assert cards.count() == 4
    p.page.click("#trajectories-filters button[data-filter='i->c']")
    assert cards.count() == 1 and cards.first.locator("header .id").inner_text() == "p4"
    p.page.screenshot(path=str(tmp_path / "refine.png"), full_page=True)
    p.clean()


def test_select_report_in_chromium(browser, tmp_path):
    run = write_select_run(tmp_path / "sel", select_rows())
    p = Page(browser, write_report([run], tmp_path / "r.html"))
    cards = _list(p, "selections")
    assert cards.count() == 5
    p.page.click("#selections-filters button[data-filter=wrong]")
    assert cards.count() == 2
    p.page.click("#selections-filters button[data-filter=differs]")
    assert cards.count() == 3
    s1 = cards.first
    assert s1.locator("table.votes tr.chosen").inner_text().split("\t")[0] == "20"
    assert s1.locator("ol.samples > li").count() == 4
    p.page.fill("#selections-search", "s4")
    p.page.locator("#selections-count[data-count='1']").wait_for()
    assert XSS in cards.first.inner_text()
    p.clean()


def test_hostile_text_is_shown_as_text(browser, tmp_path):
    from tests.report.test_html import HOSTILE
    run = write_run(tmp_path / "run", [make_result(
        "h", [HOSTILE, "2 + 2 = 4"], 0, 0, question=HOSTILE, feedback=HOSTILE, subset=HOSTILE,
        critic=HOSTILE)], critic=HOSTILE, model=HOSTILE, config={"note": HOSTILE})
    p = Page(browser, write_report([run], tmp_path / "r.html"))
    card = p.page.locator("#items article.item").first.inner_text()
    head = p.page.inner_text("header.top") + p.page.inner_text("#runs .runhead")
    for text in (card, head):
        assert "<img src=x onerror=alert(1)>" in text and "A{{ 7*7 }}Z" in text
    assert p.page.locator("img").count() == 0 and p.page.locator("script").count() == 3
    p.clean()
