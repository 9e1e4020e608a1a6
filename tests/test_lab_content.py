"""The lab's content: real answers to the suggested prompts, and a safe generic reply otherwise."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from demo.lab.content import (
    DEFAULT_PATH,
    QUOTE_LIMIT,
    ContentError,
    ContentLibrary,
    SuggestedPrompt,
    answer_for,
    default_library,
    generic_reply,
    quote,
    suggested_prompts,
)


def ask(text: str) -> str:
    return answer_for([{"role": "user", "content": text}])


def answer_of(title: str) -> str:
    [prompt] = [p.prompt for p in suggested_prompts() if p.title == title]
    return ask(prompt)


def is_generic(reply: str) -> bool:
    return "offline lab backend" in reply


def test_suggested_prompts_come_from_the_file_in_order() -> None:
    prompts = suggested_prompts()
    assert all(isinstance(p, SuggestedPrompt) for p in prompts)
    assert [p.title for p in prompts][:4] == [
        "Long explanation",
        "Code sample",
        "List",
        "Short answer",
    ]
    assert prompts[3].prompt == "What is the capital of Australia?"


def test_each_suggested_prompt_gets_its_own_answer() -> None:
    answers = [ask(p.prompt) for p in suggested_prompts()]
    assert len(set(answers)) == len(answers)
    assert not any(is_generic(a) for a in answers)


def test_the_long_explanation_is_long_markdown() -> None:
    text = answer_of("Long explanation")
    assert 700 <= len(text.split()) <= 1000
    assert re.search(r"^## ", text, re.MULTILINE)
    assert "**" in text
    assert "wafer" in text.lower()


def test_the_code_sample_holds_a_python_program_that_parses() -> None:
    text = answer_of("Code sample")
    blocks = re.findall(r"^```python\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1
    tree = ast.parse(blocks[0])
    functions = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert "measure_stream" in functions
    prose = text.replace(blocks[0], "")
    assert len(prose.split()) > 100


def test_the_list_has_ten_numbered_items() -> None:
    text = answer_of("List")
    items = re.findall(r"^(\d+)\. ", text, re.MULTILINE)
    assert [int(i) for i in items] == list(range(1, 11))


def test_the_short_answer_is_one_or_two_sentences() -> None:
    text = answer_of("Short answer")
    assert "Canberra" in text
    assert 1 <= len(re.findall(r"[.!?](?:\s|$)", text)) <= 2
    assert "\n" not in text


def test_answers_do_not_end_in_a_newline() -> None:
    # A model's reply ends with its last character; a trailing file newline would be one token more.
    for prompt in suggested_prompts():
        assert not ask(prompt.prompt).endswith("\n")


@pytest.mark.parametrize(
    "variant",
    [
        "what is the capital of australia",
        "  What   is the capital of Australia??  ",
        "WHAT IS THE CAPITAL OF AUSTRALIA.",
    ],
)
def test_a_normalised_prompt_matches_exactly(variant: str) -> None:
    assert ask(variant) == answer_of("Short answer")


@pytest.mark.parametrize(
    ("message", "title"),
    [
        ("Tell me the capital city of Australia, please", "Short answer"),
        ("how do Cerebras wafer chips work?", "Long explanation"),
        ("python code to measure ttft and tokens per second of a stream", "Code sample"),
        ("give me 10 tips to make my chat app feel snappy", "List"),
    ],
)
def test_keywords_pick_the_closest_suggested_answer(message: str, title: str) -> None:
    assert ask(message) == answer_of(title)


@pytest.mark.parametrize(
    "message",
    ["Write a haiku about autumn", "Write a Python function to sort a list", "tips for cooking"],
)
def test_unrelated_prompts_get_the_generic_reply(message: str) -> None:
    reply = ask(message)
    assert is_generic(reply)
    assert quote(message) in reply


def test_the_generic_reply_explains_itself_in_a_few_paragraphs() -> None:
    reply = generic_reply("Why is the sky blue?")
    paragraphs = reply.split("\n\n")
    assert 3 <= len(paragraphs) <= 6
    assert "“Why is the sky blue?”" in reply
    assert "speed" in reply


def test_the_quote_is_short_single_line_and_markdown_inert() -> None:
    hostile = (
        "# Heading\n\n```py\nevil()\n```\n" + "*bold* [link](http://x) <b>" * 20 + "\x00\x1b[2J"
    )
    shown = quote(hostile)
    assert "\n" not in shown
    assert len(shown) <= QUOTE_LIMIT * 2  # each escaped character doubles at most
    assert shown.endswith("…")
    assert "\x00" not in shown and "\x1b" not in shown
    for special in "#*[]<>`":
        assert re.search(rf"(?<!\\){re.escape(special)}", shown) is None, special


def test_an_empty_message_gets_a_generic_reply_without_a_quote() -> None:
    reply = ask("   ")
    assert is_generic(reply)
    assert "“" not in reply


def test_the_last_user_message_decides_in_a_multi_turn_chat() -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the capital of Australia?"},
        {"role": "assistant", "content": "Canberra."},
        {"role": "user", "content": "List ten tips for making an LLM chat app feel fast."},
        {"role": "assistant", "content": ""},
    ]
    assert answer_for(messages) == answer_of("List")


def test_content_parts_are_read_as_text() -> None:
    parts = [
        {"type": "text", "text": "What is the capital"},
        {"type": "text", "text": "of Australia?"},
    ]
    assert answer_for([{"role": "user", "content": parts}]) == answer_of("Short answer")


def test_no_user_message_gets_the_generic_reply() -> None:
    assert is_generic(answer_for([{"role": "system", "content": "hello"}]))


def test_default_library_is_loaded_once() -> None:
    assert default_library() is default_library()
    assert ContentLibrary.load(DEFAULT_PATH).suggested_prompts() == suggested_prompts()


def write_library(tmp_path: Path, entry: str, answer: str | None = "An answer.") -> Path:
    (tmp_path / "answers").mkdir()
    if answer is not None:
        (tmp_path / "answers" / "a.md").write_text(answer, encoding="utf-8")
    path = tmp_path / "prompts.toml"
    path.write_text(entry, encoding="utf-8")
    return path


GOOD_ENTRY = """
[[prompts]]
title = "T"
prompt = "Say something"
answer = "answers/a.md"
keywords = ["something"]
min_keywords = 1
"""


def test_a_custom_library_loads(tmp_path: Path) -> None:
    library = ContentLibrary.load(write_library(tmp_path, GOOD_ENTRY))
    assert library.suggested_prompts() == [SuggestedPrompt("T", "Say something")]
    assert library.answer_for([{"role": "user", "content": "anything? something!"}]) == "An answer."


@pytest.mark.parametrize(
    ("entry", "answer", "expected"),
    [
        (GOOD_ENTRY, None, "cannot read answer"),
        (GOOD_ENTRY, "  \n", "is empty"),
        (GOOD_ENTRY.replace('title = "T"', 'title = ""'), "x", "'title' must be"),
        (GOOD_ENTRY.replace('["something"]', '["Two words"]'), "x", "'keywords'"),
        (GOOD_ENTRY.replace("min_keywords = 1", "min_keywords = 0"), "x", "'min_keywords'"),
        (GOOD_ENTRY + "colour = 1\n", "x", "unknown key(s) colour"),
        ("", "x", "at least one [[prompts]]"),
    ],
)
def test_a_broken_library_is_refused_with_the_entry_named(
    tmp_path: Path, entry: str, answer: str | None, expected: str
) -> None:
    with pytest.raises(ContentError) as caught:
        ContentLibrary.load(write_library(tmp_path, entry, answer))
    assert expected in str(caught.value)
