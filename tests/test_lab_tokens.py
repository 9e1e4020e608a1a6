"""The token splitter: lossless, deterministic and about as fine-grained as a BPE tokenizer."""

from __future__ import annotations

import random

import pytest

from demo.lab.content import default_library
from demo.lab.tokens import MAX_PIECE, count_tokens, split_tokens

ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "     \n\n\t\r.,;:!?'\"()[]{}<>*_#`~-+=/\\|@$%^&"
    "éüßøÅñçЖжΩπ東京都市日本語한국어עבריתالعربية…—–“”‘’•€£¥→"
    "\u0301\u200b\u00a0\u2028\U0001f389\U0001f600\U0001d11e"
)


def random_text(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(length))


def test_join_gives_back_the_text_for_varied_random_strings() -> None:
    rng = random.Random(20241120)
    for _ in range(2000):
        text = random_text(rng, rng.randint(0, 120))
        tokens = split_tokens(text)
        assert "".join(tokens) == text
        assert all(tokens), f"empty token in {tokens!r}"


def test_join_gives_back_words_of_every_length() -> None:
    rng = random.Random(7)
    for length in range(1, 60):
        word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzäöü") for _ in range(length))
        for text in (word, " " + word, "  " + word + ".", word + "\n" + word):
            assert "".join(split_tokens(text)) == text


@pytest.mark.parametrize(
    "text",
    ["", " ", "\n", "\n\n\n", "\t", "   ", "a", "\r\n", "  \n  ", "\u00a0x", "x\u0301"],
)
def test_edge_cases_are_lossless(text: str) -> None:
    assert "".join(split_tokens(text)) == text


def test_a_word_takes_its_leading_space() -> None:
    assert split_tokens("The quick brown fox") == ["The", " quick", " brown", " fox"]


def test_punctuation_and_newlines_are_separate_tokens() -> None:
    assert split_tokens("Hi, there!\n\nBye.") == ["Hi", ",", " there", "!", "\n\n", "Bye", "."]


def test_long_words_are_cut_into_short_near_equal_pieces() -> None:
    tokens = split_tokens(" extraordinarily")
    assert "".join(tokens) == " extraordinarily"
    assert tokens[0].startswith(" ")
    assert all(len(t.strip()) <= MAX_PIECE for t in tokens)
    assert len(tokens) == 3


def test_digits_come_in_groups_of_three() -> None:
    assert split_tokens("1234567") == ["123", "456", "7"]


def test_indentation_leaves_one_space_for_the_next_word() -> None:
    assert split_tokens("    return x") == ["   ", " return", " x"]


def test_the_split_is_deterministic() -> None:
    text = default_library().answer_for([{"role": "user", "content": "wafer-scale chip"}])
    assert split_tokens(text) == split_tokens(text)


def test_english_prose_averages_about_four_characters_a_token() -> None:
    # BPE tokenizers average roughly four characters a token on English text.
    text = default_library().answer_for(
        [{"role": "user", "content": "Explain how a wafer-scale chip makes LLM inference fast."}]
    )
    chars_per_token = len(text) / count_tokens(text)
    assert 3.0 <= chars_per_token <= 6.0
