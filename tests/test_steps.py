from criticlab.steps import render_numbered, render_paragraphs, split_steps


def test_step_markers():
    text = "Let's solve it.\nStep 1: 2 + 2 = 4\ncarry on\nStep 2) 4 * 3 = 12\n**Step 3:** done"
    assert split_steps(text) == ("Let's solve it.", "2 + 2 = 4\ncarry on", "4 * 3 = 12", "done")


def test_markdown_headings_and_case():
    assert split_steps("## Step 1\nfirst\n## step 2:\nsecond") == ("first", "second")


def test_paragraphs():
    assert split_steps("first line\ncontinued\n\n  \nsecond\n\nthird") == (
        "first line\ncontinued", "second", "third")


def test_lines():
    assert split_steps("a = 1\r\n\nb = 2") == ("a = 1", "b = 2")
    assert split_steps("a = 1\nb = 2\n c = 3 ") == ("a = 1", "b = 2", "c = 3")


def test_blank():
    assert split_steps("  \n ") == ()


def test_word_step_inside_a_line_is_not_a_marker():
    assert split_steps("Take one step 2 times.\nThen stop.") == ("Take one step 2 times.", "Then stop.")


def test_render():
    assert render_paragraphs(["a", "b"]) == (
        "<paragraph_0>\na\n</paragraph_0>\n\n<paragraph_1>\nb\n</paragraph_1>")
    assert render_numbered(["a", "b"]) == "Step 1: a\nStep 2: b"
