import pytest

from criticlab.critics.base import Critic
from criticlab.critics.constraint_checks import CHECKERS, count_words, split_sentences
from criticlab.critics.constraints import LM_KIND, Constraint, check
from criticlab.critics.decrim import (
    ConstraintCritic,
    constraints_from_instruction,
    merge_decomposition,
    parse_check,
    parse_decomposition,
    refine_on_failures,
)
from criticlab.models.base import GenerateConfig
from criticlab.models.scripted import ScriptedModel
from criticlab.types import Critique, Problem, Solution

W, S, P = ("length_constraints:number_words", "length_constraints:number_sentences",
           "length_constraints:number_paragraphs")
ALL_OPTIONS = "'My answer is yes.', 'My answer is no.', 'My answer is maybe.'"

# (kind, params, answer, ok, explanation): a passing and a failing case for every checker.
CASES = [
    (W, {"num_words": 5, "relation": "at least"}, "One two three four five.", True,
     "5 words; required at least 5"),
    (W, {"num_words": 5, "relation": "less than"}, "One two three four five.", False,
     "5 words; required less than 5"),
    (W, {"num_words": 3, "relation": "at most"}, "Don't stop", True,  # IFEval: \w+ tokens
     "3 words; required at most 3"),
    (W, {"num_words": 2, "relation": "exactly"}, "hello, world!", True,
     "2 words; required exactly 2"),
    (W, {"num_words": 2, "relation": "more than"}, "a b", False, "2 words; required more than 2"),
    (S, {"num_sentences": 3, "relation": "exactly"},
     "Dr. Smith arrived at 3.30 p.m. today. He left! Did he return?", True,
     "3 sentences; required exactly 3"),
    (S, {"num_sentences": 2, "relation": "less than"}, "One. Two. Three", False,
     "3 sentences; required less than 2"),
    (P, {"num_paragraphs": 3}, "A\n***\nB\n***\nC", True,
     "3 paragraphs separated by ***; required exactly 3"),
    (P, {"num_paragraphs": 2, "separator": "***"}, "A\n***\n***\nB", False,
     "2 paragraphs separated by ***; required exactly 2; an empty paragraph sits between two "
     "*** separators"),
    (P, {"num_paragraphs": 2, "separator": None}, "Para one.\n\nPara two.\n \nPara three.", False,
     "3 paragraphs separated by blank lines; required exactly 2"),
    (P, {"num_paragraphs": 2, "separator": None, "relation": "at least"}, "x\n\ny", True,
     "2 paragraphs separated by blank lines; required at least 2"),
    ("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "jazz"},
     'Intro here.\n\n"Jazz, they said."', True,
     "2 paragraphs, paragraph 2 starts with 'jazz'; required 2 paragraphs and paragraph 2 "
     "starting with 'jazz'"),
    ("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "jazz"},
     "Jazz first.\n\nThen blues.", False,
     "2 paragraphs, paragraph 2 starts with 'then'; required 2 paragraphs and paragraph 2 "
     "starting with 'jazz'"),
    ("keywords:existence", {"keywords": ["lake", "old bridge"]}, "The Old  Bridge over the LAKE.",
     True, "2 of 2 required keywords present"),
    ("keywords:existence", {"keywords": ["lake", "bridge"]}, "Lakeside bridges.", False,
     "0 of 2 required keywords present; missing 'lake', 'bridge'"),
    ("keywords:forbidden_words", {"forbidden_words": ["cheap"]},
     "Cheaply made, not CHEAP at all, cheap!", False,
     "forbidden words used: 'cheap' 2x; required 0 occurrences"),
    ("keywords:forbidden_words", {"forbidden_words": ["deal", "cheap"]}, "A great bargain.", True,
     "none of 2 forbidden words used ('deal', 'cheap')"),
    ("keywords:frequency", {"keyword": "synergy", "frequency": 2, "relation": "at least"},
     "Synergy! More synergy, synergyless.", True, "2 occurrences of 'synergy'; required at least 2"),
    ("keywords:frequency", {"keyword": "very", "frequency": 2, "relation": "less than"},
     "very very good", False, "2 occurrences of 'very'; required less than 2"),
    ("keywords:letter_frequency", {"letter": "q", "let_frequency": 3, "let_relation": "at least"},
     "Quick quiet queen", True, "3 occurrences of the letter 'q'; required at least 3"),
    ("keywords:letter_frequency", {"letter": "Z", "let_frequency": 1, "let_relation": "less than"},
     "Zebra", False, "1 occurrences of the letter 'z'; required less than 1"),
    ("change_case:english_lowercase", {}, "all lowercase here, 123.", True,
     "0 uppercase letters; required 0"),
    ("change_case:english_lowercase", {}, "Mostly lowercase but One and Two", False,
     "3 uppercase letters (first 'M'); required 0"),
    ("change_case:english_lowercase", {}, "123 !!!", False,
     "the answer has no letters; required all-lowercase text"),
    ("change_case:english_capital", {}, "ALL CAPS HERE 42.", True, "0 lowercase letters; required 0"),
    ("change_case:english_capital", {}, "ALL CAPS but not here", False,
     "10 lowercase letters (first 'b'); required 0"),
    ("change_case:capital_word_frequency", {"capital_frequency": 3, "capital_relation": "at least"},
     "The USA and UK-BASED NASA team, I think.", True, "4 all-capital words; required at least 3"),
    ("change_case:capital_word_frequency",
     {"capital_frequency": 2, "capital_relation": "less than"}, "WOW that is BIG", False,
     "2 all-capital words; required less than 2"),
    ("detectable_format:json_format", {}, '```json\n{"a": [1, 2]}\n```', True, "valid JSON (dict)"),
    ("detectable_format:json_format", {}, '{"a": 1,}', False,
     "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 9; "
     "required the whole answer to be JSON"),
    ("detectable_format:number_bullet_lists", {"num_bullets": 3}, "* one\n* two\n- three", True,
     "3 bullet points; required exactly 3"),
    ("detectable_format:number_bullet_lists", {"num_bullets": 3}, "* one\n**bold** line\n* two",
     False, "2 bullet points; required exactly 3"),
    ("detectable_format:numbered_list", {"num_items": 3}, "1. a\n2) b\n3. c", True,
     "3 numbered items; required exactly 3"),
    ("detectable_format:numbered_list", {}, "No list here.", False,
     "0 numbered items; required at least 1"),
    ("detectable_format:title", {}, "<<Poem of Joy>>\nText", True, "title found: <<Poem of Joy>>"),
    ("detectable_format:title", {}, "<< >>\n<b>", False,
     "no title in <<double angular brackets>>; required one"),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2},
     "*one* and **two** and ** **", True, "2 highlighted sections; required at least 2"),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 1}, "No highlights",
     False, "0 highlighted sections; required at least 1"),
    ("detectable_format:multiple_sections", {"section_spliter": "SECTION", "num_sections": 2},
     "SECTION 1\nIntro\nSECTION 2\nBody", True, "2 'SECTION X' sections; required at least 2"),
    ("detectable_format:multiple_sections", {"section_spliter": "SECTION", "num_sections": 3},
     "SECTION 1\nIntro\nSECTION 2\nBody", False, "2 'SECTION X' sections; required at least 3"),
    ("detectable_format:constrained_response", {}, "My answer is no.", True,
     "contains the option 'My answer is no.'"),
    ("detectable_format:constrained_response", {}, "No.", False,
     f"contains none of the options {ALL_OPTIONS}"),
    ("startend:end_checker", {"end_phrase": "Any other questions?"},
     "Thanks. any other questions?  \n", True,
     "ends with 'Thanks. any other questions?'; required to end with 'Any other questions?'"),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Any other questions? Bye.",
     False, "ends with 'Any other questions? Bye.'; required to end with 'Any other questions?'"),
    ("startend:start_checker", {"starter": "Dear team"}, "  Dear team, hello.", True,
     "starts with 'Dear team, hello.'; required to start with 'Dear team'"),
    ("startend:start_checker", {"starter": "Dear team"}, "Hello, dear team.", False,
     "starts with 'Hello, dear team.'; required to start with 'Dear team'"),
    ("startend:quotation", {}, '"Hi there"\n', True,
     "opens with '\"' and closes with '\"'; required '\"' at both ends"),
    ("startend:quotation", {}, '"Hi there', False,
     "opens with '\"' and closes with 'e'; required '\"' at both ends"),
    ("punctuation:no_comma", {}, "No commas here.", True, "0 commas; required 0"),
    ("punctuation:no_comma", {}, "One, two, three", False, "2 commas; required 0"),
    ("detectable_content:number_placeholders", {"num_placeholders": 2},
     "Send it to [address] by [date].", True, "2 [placeholders]; required at least 2"),
    ("detectable_content:number_placeholders", {"num_placeholders": 1}, "Nothing.", False,
     "0 [placeholders]; required at least 1"),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Body.\n\nP.S. See you.", True,
     "postscript starting with 'P.S.' found"),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Body.\n\nPS see you", False,
     "postscript starting with 'P.S.' not found"),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Body\nP.P.S extra", True,
     "postscript starting with 'P.P.S' found"),
    ("combination:two_responses", {}, "First answer.\n******\nSecond answer.", True,
     "2 responses separated by ******; required 2 different"),
    ("combination:two_responses", {}, "Same\n******\nSame", False,
     "2 responses separated by ****** (identical); required 2 different"),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Write a poem."},
     "write a poem. Roses are red.", True, "the request is repeated word for word at the start"),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Write a poem."}, "A poem: roses.", False,
     "the request is not repeated word for word at the start"),
]


@pytest.mark.parametrize(("kind", "params", "answer", "ok", "why"), CASES)
def test_checker(kind, params, answer, ok, why):
    assert check(Constraint(kind, params), answer) == (ok, why)


def test_every_checker_has_a_passing_and_a_failing_case():
    covered = {(k, ok) for k, _, _, ok, _ in CASES}
    assert {k for k in CHECKERS} == {k for k, _ in covered}
    assert all((k, True) in covered and (k, False) in covered for k in CHECKERS)


def test_counting_rules():
    assert count_words("It's a well-known fact.") == 6  # IFEval: \w+ tokens
    assert split_sentences('He said "Stop." Then he left. e.g. apples, i.e. fruit. Done') == [
        'He said "Stop."', "Then he left.", "e.g. apples, i.e. fruit.", "Done"]
    assert split_sentences("Version 2.5 of the U.S. plan is out.") == [
        "Version 2.5 of the U.S. plan is out."]


def test_check_rejects_lm_kinds_and_bad_params():
    with pytest.raises(ValueError, match="no deterministic checker"):
        check(Constraint(LM_KIND, {}, "Be polite"), "hi")
    with pytest.raises(ValueError, match="bad params"):
        check(Constraint(W, {"relation": "at least"}), "hi")
    with pytest.raises(ValueError, match="unknown relation"):
        check(Constraint(W, {"num_words": 3, "relation": "roughly"}), "hi")


def test_constraint_round_trips_and_describes_itself():
    c = Constraint.make(W, num_words=300, relation="at least")
    assert c.text == "Answer with at least 300 words" and c.verifiable
    assert Constraint.from_dict(c.to_dict()) == c
    assert Constraint.make("keywords:existence", keywords=["a", "b"]).text == (
        "Include the keywords 'a', 'b'")
    assert not Constraint(LM_KIND, {}, "Be polite").verifiable


# -- deterministic extraction ------------------------------------------------------------------
def kp(text):
    return [(c.kind, c.params) for c in constraints_from_instruction(text)]


EXTRACTION = [
    ("Write a 300+ word summary of the wikipedia page. Do not use any commas and highlight at "
     "least 3 sections that has titles in markdown format, for example *highlighted section "
     "part 1*, *highlighted section part 2*.",
     [("detectable_format:number_highlighted_sections", {"num_highlights": 3,
                                                         "relation": "at least"}),
      (W, {"num_words": 300, "relation": "at least"}),
      ("punctuation:no_comma", {})]),
    ("Write a funny poem about a lonely robot. Your entire response should be in English, and "
     "in all lowercase letters. No capital letters are allowed.",
     [("change_case:english_lowercase", {})]),
    ("Write an essay about the history of Prospect Park with at least 400 words. Include "
     "keywords ['bridge', 'lake'] in the response.",
     [(W, {"num_words": 400, "relation": "at least"}),
      ("keywords:existence", {"keywords": ["bridge", "lake"]})]),
    ("Write a letter to a friend in all capital letters. In your response, words with all "
     "capital letters should appear at least 30 times. Finish your response with this exact "
     "phrase Is there anything else I can help with?. No other words should follow this phrase.",
     [("change_case:capital_word_frequency", {"capital_frequency": 30,
                                              "capital_relation": "at least"}),
      ("change_case:english_capital", {}),
      ("startend:end_checker", {"end_phrase": "Is there anything else I can help with?"})]),
    ("Give me a JSON description of the Eiffel Tower. Entire output should be wrapped in JSON "
     "format. You can use markdown ticks such as ```.",
     [("detectable_format:json_format", {})]),
    ("List the benefits of exercise. Your answer must contain exactly 4 bullet points. Use the "
     "markdown bullet points such as:\n* This is point 1. \n* This is point 2",
     [("detectable_format:number_bullet_lists", {"num_bullets": 4, "relation": "exactly"})]),
    ("Write a song about summer. Your answer must contain a title, wrapped in double angular "
     "brackets, such as <<poem of joy>>. At the end of your response, please explicitly add a "
     "postscript starting with P.P.S",
     [("detectable_format:title", {}),
      ("detectable_content:postscript", {"postscript_marker": "P.P.S"})]),
    ("Write a blog post about Japan. There should be 4 paragraphs. Paragraphs are separated "
     "with the markdown divider: ***",
     [(P, {"num_paragraphs": 4, "relation": "exactly", "separator": "***"})]),
    ("Write a story for kids. There should be 2 paragraphs. Paragraphs and only paragraphs are "
     "separated with each other by two new lines as if it was '\\n\\n' in python. Paragraph 2 "
     "must start with word jazz.",
     [("length_constraints:nth_paragraph_first_word",
       {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "jazz"})]),
    ("Write a product description. The response must contain at least 2 placeholders "
     "represented by square brackets, such as [address]. Do not include keywords "
     "['cheap', 'deal'] in the response.",
     [("detectable_content:number_placeholders", {"num_placeholders": 2,
                                                  "relation": "at least"}),
      ("keywords:forbidden_words", {"forbidden_words": ["cheap", "deal"]})]),
    ("Describe the moon in less than 5 sentences. In your response, the letter q should appear "
     "at least 3 times. Wrap your entire response with double quotation marks.",
     [("keywords:letter_frequency", {"letter": "q", "let_frequency": 3,
                                     "let_relation": "at least"}),
      (S, {"num_sentences": 5, "relation": "less than"}),
      ("startend:quotation", {})]),
    ("Write a riddle. Your response must have 3 sections. Mark the beginning of each section "
     "with SECTION X, such as: SECTION 1",
     [("detectable_format:multiple_sections", {"section_spliter": "SECTION", "num_sections": 3,
                                               "relation": "at least"})]),
    ("Is the earth flat? Answer with one of the following options: ('My answer is yes.', "
     "'My answer is no.', 'My answer is maybe.')",
     [("detectable_format:constrained_response", {"options": [
         "My answer is yes.", "My answer is no.", "My answer is maybe."]})]),
    ("Your ENTIRE response should be in French language, no other language is allowed. Explain "
     "photosynthesis in between 50 and 100 words.",
     [(W, {"num_words": 50, "relation": "at least"}), (W, {"num_words": 100, "relation": "at most"}),
      ("language:response_language", {"language": "French"})]),
    ("Start your answer with 'Dear team' and use the word synergy at least 2 times. Write about "
     "200 words.",
     [("keywords:frequency", {"keyword": "synergy", "frequency": 2, "relation": "at least"}),
      ("startend:start_checker", {"starter": "Dear team"})]),
    ("Summarize it in no more than 3 sentences and answer in 50 words or less. Use a numbered "
     "list of 3 items. Give two different responses separated by 6 asterisk symbols: ******.",
     [(W, {"num_words": 50, "relation": "at most"}), (S, {"num_sentences": 3, "relation": "at most"}),
      ("combination:two_responses", {}), ("detectable_format:numbered_list", {"num_items": 3})]),
    ("Include the keywords apple and banana in your answer. Answer in all lowercase.",
     [("keywords:existence", {"keywords": ["apple", "banana"]}),
      ("change_case:english_lowercase", {})]),
    ('Avoid using the words "very" and "really". Use at least 3 hashtags and do not exceed 40 '
     "words.",
     [(W, {"num_words": 40, "relation": "at most"}),
      ("keywords:forbidden_words", {"forbidden_words": ["very", "really"]})]),
    ("Respond in fewer than 100 words, using no more than two paragraphs.",
     [(P, {"num_paragraphs": 2, "relation": "at most", "separator": None}),
      (W, {"num_words": 100, "relation": "less than"})]),
]


@pytest.mark.parametrize(("instruction", "expected"), EXTRACTION)
def test_extraction(instruction, expected):
    assert kp(instruction) == expected


def test_extraction_leaves_vague_wording_alone():
    assert kp("Write about 300 words on a topic of your choice, and keep it friendly.") == []
    assert kp("Explain the difference between XML and JSON, such as JSON syntax.") == []
    assert kp("End your response with a question for the reader.") == []


# -- LM decomposition and checks, parsed ------------------------------------------------------
def test_parse_decomposition_formats():
    text = ('Here you go:\n- [content] The poem is about the sea.\n* [WORDS] At most 50 words.\n'
            '1. (exclude) Do not use the word "blue".\n- A plain constraint\n'
            '{"kind": "style", "text": "Use a cheerful tone"}\n'
            "Instruction: Write another poem\n- [content] ignored")
    assert parse_decomposition(text) == [
        ("content", "The poem is about the sea."), ("words", "At most 50 words."),
        ("exclude", 'Do not use the word "blue".'), ("", "A plain constraint"),
        ("style", "Use a cheerful tone")]
    assert parse_decomposition("I cannot help with that.") == []
    assert parse_decomposition("") == []


def test_merge_keeps_patterns_drops_restatements_and_adds_the_rest():
    found = constraints_from_instruction("Write a poem in at most 50 words with a title in "
                                         "double angular brackets.")
    lines = [("words", "At most 50 words."), ("title", "It has a nice title"),
             ("exclude", 'Do not use the word "blue".'), ("content", "The poem is about the sea."),
             ("content", "the poem is about the sea.")]
    merged = merge_decomposition(found, lines)
    assert [(c.kind, c.params) for c in merged] == [
        (W, {"num_words": 50, "relation": "at most"}), ("detectable_format:title", {}),
        ("keywords:forbidden_words", {"forbidden_words": ["blue"]}),
        (LM_KIND, {"tag": "content"})]
    assert merged[-1].text == "The poem is about the sea."


@pytest.mark.parametrize(("text", "verdict", "why"), [
    ("Answer: yes\nReason: It rhymes.", "correct", "It rhymes."),
    ("**Answer:** No\n**Reason:** it is about mountains", "incorrect", "it is about mountains"),
    ("Yes, the poem is about the sea.", "correct", "the poem is about the sea"),
    ("Verdict = no", "incorrect", ""),
    ("I think it might be, hard to say.", "unknown", "unparsed LM check: I think it might be, hard "
                                                     "to say."),
    ("", "unknown", "unparsed LM check: (empty)"),
    ("The answer is yesterday's news", "unknown", "unparsed LM check: The answer is yesterday's "
                                                  "news"),
])
def test_parse_check(text, verdict, why):
    assert parse_check(text) == (verdict, why)


# -- the critic -------------------------------------------------------------------------------
INSTRUCTION = ("Write a short poem about the sea in at most 20 words. Do not use any commas. "
               "Make it sound joyful.")
DECOMPOSITION = ("- [content] The poem is about the sea.\n- [words] At most 20 words.\n"
                 "- [commas] No commas.\n- [style] The poem sounds joyful.")


def script(decomposition, checks):
    def reply(messages, config, i):
        body = messages[0].content
        if body.startswith("List every constraint"):
            return decomposition
        constraint = body.split("Constraint: ", 1)[1].split("\n", 1)[0]
        return checks[constraint]
    return reply


async def test_critic_end_to_end_with_scripted_model():
    model = ScriptedModel(script(DECOMPOSITION, {
        "The poem is about the sea.": "Answer: yes\nReason: waves and tides.",
        "The poem sounds joyful.": "Answer: no\nReason: it is gloomy.",
    }))
    critic = ConstraintCritic(model)
    assert isinstance(critic, Critic) and critic.name == "constraints"
    answer = ("Grey waves roll, cold, under a heavy sky", "The tide keeps its sorrow")
    c = await critic.critique(Problem("p", INSTRUCTION), Solution(answer))
    assert [s.verdict for s in c.steps] == ["correct", "incorrect", "correct", "incorrect"]
    assert [s.index for s in c.steps] == [0, 1, 2, 3]
    assert c.steps[0].explanation == "Answer with at most 20 words: 13 words; required at most 20"
    assert c.steps[1].explanation == "Do not use any commas: 2 commas; required 0"
    assert c.steps[2].explanation == "The poem is about the sea: LM: waves and tides."
    assert c.steps[3].explanation == "The poem sounds joyful: LM: it is gloomy."
    assert c.first_error == 1 and c.verdict == "incorrect" and c.score == 0.5 and c.parsed
    assert c.feedback == ("Failed constraints:\n- Do not use any commas: 2 commas; required 0\n"
                          "- The poem sounds joyful: LM: it is gloomy.")
    assert c.usage.calls == 3 and c.critic == "constraints"
    assert "[decomposition]" in c.raw and "[check 3]" in c.raw
    decompose_prompt, check_prompt = (model.requests[0][0][0].content,
                                      model.requests[1][0][0].content)
    assert decompose_prompt.endswith(f"Instruction: {INSTRUCTION}\nConstraints:\n")
    assert "Response:\nGrey waves roll, cold, under a heavy sky\n\nThe tide keeps its sorrow\n" in (
        check_prompt)
    assert model.requests[1][1].max_tokens <= 160
    assert Critique.from_dict(c.to_dict()) == c


async def test_lines_copied_from_the_prompt_example_are_dropped():
    model = ScriptedModel(script("- [content] The response is a poem about the sea.\n"
                                 "- [style] Be poetic.", {"Be poetic.": "Answer: yes"}))
    c = await ConstraintCritic(model).critique(Problem("p", "Write a haiku. Be poetic."),
                                               Solution(("Waves",)))
    assert [s.explanation for s in c.steps] == ["Be poetic: LM: yes"]
    assert c.verdict == "correct" and c.score == 1.0


async def test_garbage_lm_output_is_unknown_never_passed():
    model = ScriptedModel(script("Sure! Here is a poem about the sea.", {}))
    critic = ConstraintCritic(model)
    problem = Problem("p", "Write a haiku about the sea. Be poetic.")
    c = await critic.critique(problem, Solution(("Waves",)))
    assert c.steps == () and not c.parsed and c.verdict is None and c.score is None
    model = ScriptedModel(script("- [style] Be poetic.", {"Be poetic.": "Hmm, hard to tell."}))
    c = await ConstraintCritic(model).critique(problem, Solution(("Waves",)))
    assert [s.verdict for s in c.steps] == ["unknown"] and c.steps[0].score is None
    assert c.verdict is None and c.first_error is None and c.score == 0.0 and c.parsed
    assert c.feedback.startswith("Constraints that could not be checked:")


async def test_without_a_model_only_the_checkers_run():
    critic = ConstraintCritic()
    problem = Problem("p", "Answer in all lowercase letters and in at least 3 words. Respond in "
                           "French.")
    c = await critic.critique(problem, Solution(("bonjour mes amis",)))
    assert [s.verdict for s in c.steps] == ["correct", "correct", "unknown"]
    assert c.steps[2].explanation == "Write the whole answer in French: needs an LM check, no model"
    assert c.verdict is None and c.usage.calls == 0 and c.raw == ""
    c = await critic.critique(Problem("p", "Use all lowercase letters."), Solution(("ok",)))
    assert c.verdict == "correct" and c.score == 1.0 and c.feedback == "All 1 constraints met."


async def test_decompose_false_skips_the_decomposition_call():
    model = ScriptedModel(script("", {}))
    c = await ConstraintCritic(model, decompose=False).critique(
        Problem("p", "No commas, please: do not use any commas."), Solution(("a, b",)))
    assert model.requests == [] and c.first_error == 0 and c.verdict == "incorrect"


async def test_refine_only_on_failures():
    critic = ConstraintCritic()
    problem = Problem("p", "Answer with at most 3 words. Do not use any commas.")
    passed = await critic.critique(problem, Solution(("Fine thanks",)))
    idle = ScriptedModel([])
    assert await refine_on_failures(idle, problem.question, "Fine thanks", passed) == "Fine thanks"
    assert idle.requests == []
    failed = await critic.critique(problem, Solution(("Well, I am fine, thanks",)))
    model = ScriptedModel(["  I am fine  \n"])
    out = await refine_on_failures(model, problem.question, "Well, I am fine, thanks", failed,
                                   config=GenerateConfig(max_tokens=64))
    assert out == "I am fine"
    prompt = model.requests[0][0][0].content
    assert ("The response fails these constraints:\n"
            "- Answer with at most 3 words: 5 words; required at most 3\n"
            "- Do not use any commas: 2 commas; required 0\n") in prompt
    assert "Response:\nWell, I am fine, thanks\n" in prompt and model.requests[0][1].max_tokens == 64
    assert await refine_on_failures(ScriptedModel([" "]), problem.question, "x", failed) == "x"


@pytest.mark.slow
async def test_real_model_end_to_end(embedded_model):
    critic = ConstraintCritic(embedded_model, config=GenerateConfig(max_tokens=48))
    problem = Problem("p", "Write a short note about tea in at most 12 words. Do not use any "
                           "commas. Respond in English.")
    c = await critic.critique(problem, Solution(("Tea, warm and kind, is a hug in a cup.",)))
    assert c.critic == "constraints" and c.parsed and c.usage.calls >= 1
    assert [s.index for s in c.steps] == list(range(len(c.steps)))
    assert all(s.verdict in ("correct", "incorrect", "unknown") for s in c.steps)
    det = {s.explanation.split(":")[0]: s.verdict for s in c.steps[:2]}
    assert det == {"Answer with at most 12 words": "correct", "Do not use any commas": "incorrect"}
    assert c.steps[2].explanation.startswith("Write the whole answer in English")  # LM-checked
    assert c.first_error == 1 and c.verdict == "incorrect"
    assert "Do not use any commas: 2 commas; required 0" in c.feedback
    assert Critique.from_dict(c.to_dict()) == c
