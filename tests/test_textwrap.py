"""Sanitising, incremental wrapping and Markdown block splitting of streamed text."""

from __future__ import annotations

import random
import time
from itertools import pairwise

import pytest
from rich.cells import cell_len, split_graphemes

from demo.core.textwrap import (
    CODE,
    FENCE,
    HEADING,
    TEXT,
    BlockStream,
    StreamSanitizer,
    WrappedText,
    sanitize,
    wrap_line,
)

WORDS = [
    "a",
    "to",
    "the",
    "stream",
    "supercalifragilistic",
    "漢字",
    "テキスト",
    "café",
    "naïve",
    "e\u0301",
    "👍",
    "👨\u200d👩\u200d👧",
    "—",
    "x" * 31,
    "ab漢字cd",
]


def random_text(rng: random.Random, words: int) -> str:
    separators = [" ", " ", " ", "  ", ""]
    return "".join(rng.choice(WORDS) + rng.choice(separators) for _ in range(words))


def random_cuts(rng: random.Random, text: str) -> list[str]:
    """`text` in 1 to 8 pieces split at random places."""
    cuts = sorted(rng.sample(range(1, len(text)), max(0, min(len(text) - 1, rng.randint(0, 7)))))
    bounds = [0, *cuts, len(text)]
    return [text[start:end] for start, end in pairwise(bounds)]


def rows_of(wrapped: WrappedText) -> list[tuple[str, str]]:
    return [wrapped.row(index) for index in range(wrapped.height)]


# sanitize


def test_sanitize_keeps_ordinary_text_identical() -> None:
    text = "Plain text, “quotes”, 漢字, emoji 👍 and\nnewlines.\n"
    assert sanitize(text) is text


def test_sanitize_replaces_controls_with_visible_stand_ins() -> None:
    text = "a\x1b[31mred\x1b[0m\x07\x00\x7f\x9b31m\x85\u202eevil\tx\u2028y"
    clean = sanitize(text)
    assert clean == "a␛[31mred␛[0m␇␀␡\ufffd31m\ufffd\ufffdevil    x\u2424y"
    assert not any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in clean)


def test_sanitize_turns_crlf_into_lf_and_shows_a_lone_cr() -> None:
    assert sanitize("one\r\ntwo\rthree") == "one\ntwo␍three"


def test_stream_sanitizer_joins_a_crlf_split_between_pieces() -> None:
    sanitizer = StreamSanitizer()
    assert sanitizer.feed("one\r") == "one"
    assert sanitizer.feed("\ntwo\r") == "\ntwo"
    assert sanitizer.feed("x") == "␍x"
    assert sanitizer.feed("end\r") == "end"
    assert sanitizer.flush() == "␍"
    assert sanitizer.flush() == ""


# wrap_line


def texts(rows: list[tuple[int, int]], line: str) -> list[str]:
    return [line[start:end] for start, end in rows]


def test_wrap_breaks_at_spaces_greedily() -> None:
    line = "the quick brown fox jumps over the lazy dog"
    assert texts(wrap_line(line, 10), line) == [
        "the quick",
        "brown fox",
        "jumps over",
        "the lazy",
        "dog",
    ]


def test_wrap_splits_a_long_word_on_rows_of_its_own() -> None:
    line = "x abcdefghijkl yz"
    assert texts(wrap_line(line, 5), line) == ["x", "abcde", "fghij", "kl yz"]


def test_wrap_counts_cells_not_characters() -> None:
    line = "漢字テキスト漢字 ab"
    rows = texts(wrap_line(line, 5), line)
    assert rows == ["漢字", "テキ", "スト", "漢字", "ab"]
    assert all(cell_len(row) <= 5 for row in rows)


def test_wrap_never_splits_a_grapheme() -> None:
    family = "👨\u200d👩\u200d👧"
    line = "ab" + family * 3
    rows = texts(wrap_line(line, 5), line)
    assert "".join(rows) == line
    assert all(row.count("\u200d") % 2 == 0 for row in rows)


def test_hard_wrap_keeps_every_character() -> None:
    line = "    if x:  return   call(a, b)  "
    rows = texts(wrap_line(line, 7, hard=True), line)
    assert "".join(rows) == line
    assert all(cell_len(row) == 7 for row in rows[:-1])


def test_wrap_of_an_empty_line_is_one_empty_row() -> None:
    assert wrap_line("", 10) == [(0, 0)]


@pytest.mark.parametrize("seed", range(6))
def test_wrap_rows_fit_and_lose_nothing_but_break_spaces(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        line = random_text(rng, rng.randint(1, 30))
        width = rng.randint(1, 24)
        rows = wrap_line(line, width)
        for start, end in rows:
            row = line[start:end]
            # A row overflows only when a single grapheme is wider than the row.
            assert cell_len(row) <= width or len(split_graphemes(row)[0]) == 1, (row, width)
        between = [line[end:start] for (_, end), (start, _) in pairwise(rows)]
        assert all(not gap.strip() for gap in between)
        assert rows[0][0] == 0
        assert rows[-1][1] == len(line) or not line[rows[-1][1] :].strip()


@pytest.mark.parametrize("seed", range(10))
def test_incremental_wrap_equals_wrapping_the_whole_text(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        line = random_text(rng, rng.randint(1, 40))
        width = rng.randint(1, 30)
        hard = rng.random() < 0.2
        wrapped = WrappedText(width)
        for piece in random_cuts(rng, line):
            wrapped.extend_last(piece, "t", hard=hard)
        expected = texts(wrap_line(line, width, hard=hard), line)
        assert [text for text, _ in rows_of(wrapped)] == expected, (line, width)


def test_a_megabyte_without_newline_wraps_quickly() -> None:
    line = ("lorem ipsum dolor sit amet " * 40_000)[:1_000_000]
    began = time.perf_counter()
    rows = wrap_line(line, 78)
    elapsed = time.perf_counter() - began
    assert elapsed < 0.5, f"{elapsed:.3f} s"
    assert all(end - start <= 78 for start, end in rows)
    assert " ".join(texts(rows, line)).split() == line.split()


def test_a_megabyte_of_one_word_is_split_by_cells() -> None:
    line = "x" * 1_000_000
    rows = wrap_line(line, 80)
    assert len(rows) == 12_500
    assert rows[-1] == (999_920, 1_000_000)


# WrappedText


def test_appending_to_a_long_line_rewraps_only_its_last_row() -> None:
    wrapped = WrappedText(40)
    wrapped.append(("word " * 20_000).strip())
    height = wrapped.height
    first = wrapped.append(" more words")
    assert first == height - 1
    assert wrapped.row(wrapped.height - 1)[0].endswith("more words")


def test_a_trailing_newline_shows_no_row_until_text_follows() -> None:
    wrapped = WrappedText(20)
    wrapped.append("one\n")
    assert wrapped.height == 1
    wrapped.append("\n")
    assert rows_of(wrapped) == [("one", ""), ("", "")]
    wrapped.append("two")
    assert [text for text, _ in rows_of(wrapped)] == ["one", "", "two"]


def test_set_width_gives_the_rows_of_a_fresh_wrap() -> None:
    text = "alpha beta gamma delta\nepsilon zeta eta theta iota\n\nkappa"
    wrapped = WrappedText.from_text(text, 30)
    wrapped.set_width(9)
    assert rows_of(wrapped) == rows_of(WrappedText.from_text(text, 9))


def test_split_off_moves_the_first_lines_and_rebases_the_rest() -> None:
    wrapped = WrappedText.from_text("aaa bbb\nccc\nddd eee fff", 7)
    head = wrapped.split_off(2)
    assert [text for text, _ in rows_of(head)] == ["aaa bbb", "ccc"]
    assert [text for text, _ in rows_of(wrapped)] == ["ddd eee", "fff"]
    assert wrapped.append(" ggg") == 1


# BlockStream


def feed_all(stream: BlockStream, pieces: list[str]) -> list[str]:
    sources: list[str] = []
    for piece in pieces:
        finished, _ = stream.feed(piece)
        sources.extend(block.source for block in finished)
    return sources


def blocks_of(text: str, pieces: list[str] | None = None) -> list[str]:
    stream = BlockStream(40)
    sources = feed_all(stream, pieces or [text])
    last = stream.finish()
    return [*sources, *([last.source] if last else [])]


def test_blocks_end_at_a_blank_line_before_an_unindented_line() -> None:
    text = "# Title\nintro line\n\nsecond para\n\n\n- item\n- item\n\nlast"
    assert blocks_of(text) == ["# Title\nintro line", "second para", "- item\n- item", "last"]


def test_an_indented_line_after_a_blank_line_continues_the_block() -> None:
    text = "1. step one\n\n   more about step one\n\n2. step two"
    assert blocks_of(text) == ["1. step one\n\n   more about step one", "2. step two"]


def test_a_code_fence_stays_one_block_until_it_closes() -> None:
    text = "```python\ndef f():\n\nreturn 1\n\n~~~\n````\n\nafter"
    assert blocks_of(text) == ["```python\ndef f():\n\nreturn 1\n\n~~~\n````", "after"]


def test_a_fence_is_closed_only_by_the_same_marker_at_least_as_long() -> None:
    text = "~~~~\ncode\n\n```\n\n~~~\n\nstill code\n~~~~~\n\nafter"
    assert blocks_of(text) == ["~~~~\ncode\n\n```\n\n~~~\n\nstill code\n~~~~~", "after"]


def test_an_unclosed_fence_is_the_last_block() -> None:
    assert blocks_of("text\n\n```\ncode\n\nmore") == ["text", "```\ncode\n\nmore"]


def test_leading_blank_lines_are_dropped() -> None:
    assert blocks_of("\n\n  \nHello\n") == ["Hello"]


def test_a_block_finishes_as_soon_as_the_next_line_starts() -> None:
    stream = BlockStream(40)
    assert stream.feed("para one\n\n")[0] == []
    finished, first = stream.feed("n")
    assert [block.source for block in finished] == ["para one"]
    assert first == 0
    assert rows_of(stream.open) == [("n", TEXT)]


@pytest.mark.parametrize("seed", range(6))
def test_blocks_do_not_depend_on_how_the_text_was_cut(seed: int) -> None:
    rng = random.Random(seed)
    lines = ["para", "", "- item", "  indented", "```js", "code()", "```", "# Head", "~~~", "    x"]
    for _ in range(100):
        text = "\n".join(rng.choice(lines) for _ in range(rng.randint(1, 25)))
        whole = BlockStream(12)
        expected = feed_all(whole, [text])
        cut = BlockStream(12)
        assert feed_all(cut, random_cuts(rng, text)) == expected, text
        assert rows_of(cut.open) == rows_of(whole.open), text


def test_open_block_lines_are_tagged_for_display() -> None:
    stream = BlockStream(40)
    stream.feed("# Heading\ntext\n```py\nx = 1\n```\nafter")
    assert [tag for _, tag in rows_of(stream.open)] == [HEADING, TEXT, FENCE, CODE, FENCE, TEXT]


def test_code_in_the_open_block_is_hard_wrapped_verbatim() -> None:
    stream = BlockStream(8)
    stream.feed("```\n    a = b + c  # sum\n")
    code_rows = [text for text, tag in rows_of(stream.open) if tag == CODE]
    assert "".join(code_rows) == "    a = b + c  # sum"


def test_finished_block_keeps_its_plain_rows() -> None:
    stream = BlockStream(10)
    finished, _ = stream.feed("alpha beta gamma\n\nnext")
    assert [text for text, _ in rows_of(finished[0].layout)] == ["alpha beta", "gamma"]
