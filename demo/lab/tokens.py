"""A deterministic stand-in for a BPE tokenizer.

The lab server streams text token by token, so its pieces should be about as long as a real
tokenizer's (English averages roughly four characters per token) without shipping a vocabulary.
The split is lossless: joining the pieces gives back the text exactly, which is what lets a client
reassemble the reply and lets `output_tokens` cycle an answer without corrupting it.
"""

from __future__ import annotations

import re

MAX_PIECE = 6
"""Longest run of letters kept as one token; longer words are cut into near-equal pieces."""

_TOKEN = re.compile(
    r"(?P<word> ?[^\W\d_]+)"  # a word (letters), with the space before it
    r"| ?\d{1,3}"  # digits in groups of up to three, as GPT tokenizers do
    r"| ?(?:[^\s\w]|_)"  # one punctuation mark or symbol
    r"|\n+"  # a run of newlines
    r"|[^\S\n]+(?!\S)"  # spaces or tabs, less the last one when a token can take it
    r"|[^\S\n]"  # a lone tab or other space before a non-space
)


def split_tokens(text: str) -> list[str]:
    """Cut `text` into token-sized pieces; `"".join(split_tokens(text)) == text` always."""
    tokens: list[str] = []
    append = tokens.append
    for match in _TOKEN.finditer(text):
        piece = match.group()
        if len(piece) <= MAX_PIECE or match.lastgroup != "word":
            append(piece)
        else:
            tokens.extend(_cut_word(piece))
    return tokens


def count_tokens(text: str) -> int:
    """How many tokens `split_tokens` would make of `text`."""
    return len(split_tokens(text))


def _cut_word(word: str) -> list[str]:
    """Near-equal pieces of at most `MAX_PIECE` letters; a leading space rides on the first."""
    lead = " " if word.startswith(" ") else ""
    letters = word[len(lead) :]
    parts = -(-len(letters) // MAX_PIECE)
    size, extra = divmod(len(letters), parts)
    pieces: list[str] = []
    start = 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        pieces.append(letters[start:end])
        start = end
    pieces[0] = lead + pieces[0]
    return pieces
