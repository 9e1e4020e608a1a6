"""The sentence splitter: where speech may start and pause, and what is read aloud."""

from __future__ import annotations

import random
import re

import pytest

from demo.voice.sentences import SentenceSplitter, speakable


def split(text: str, **options: int) -> list[str]:
    """Pieces of `text` fed in one chunk."""
    splitter = SentenceSplitter(**options)
    return splitter.feed(text) + splitter.flush()


def split_chunks(chunks: list[str], **options: int) -> list[str]:
    splitter = SentenceSplitter(**options)
    pieces: list[str] = []
    for chunk in chunks:
        pieces += splitter.feed(chunk)
    return pieces + splitter.flush()


def tokens(text: str) -> list[str]:
    """Chunks shaped like an LLM's tokens: words with their leading space, punctuation apart."""
    return re.findall(r"\s*\w+|\s*[^\w\s]|\s+", text)


def random_chunks(text: str, rng: random.Random) -> list[str]:
    chunks = []
    position = 0
    while position < len(text):
        size = rng.choice((1, 1, 2, 3, 5, 8, 13, 40, 200))
        chunks.append(text[position : position + size])
        position += size
    return chunks


REPLY = """## Getting started

Sure, here is how it works. Pi is about 3.14, and 1,000 ms is one second. Install v2.5 first!
See e.g. the docs, i.e. the manual, etc. before you start. Dr. Smith and Mrs. Jones met at
9 a.m. in the U.S. and talked… about it. Visit https://example.com/a.b?c=1 for more. Done?

1. Run `pip install demo` in a shell.
2. Start **the app** with _one_ command.
- Open the [settings page](https://example.com/settings).
* Check the *mute* toggle.

```python
print("Hello. World!")  # not read aloud
x = 3.14
```

| Provider | Speed |
|----------|------:|
| fast     | 969   |

> Quoted text, read plainly. Wait... what happened next
was a surprise — nobody knew
"""


# -- speaking early ----------------------------------------------------------------------------


def test_the_first_piece_ends_at_a_clause_once_long_enough() -> None:
    assert split("Of course you can, and here is how. Then more, and more.") == [
        "Of course you can,",
        "and here is how.",
        "Then more, and more.",
    ]


def test_a_short_first_clause_waits_for_more_text() -> None:
    assert split("Sure, this is it. Next.") == ["Sure, this is it.", "Next."]


def test_the_first_piece_can_end_at_a_dash_or_a_semicolon() -> None:
    assert split("The short answer — yes it works.") == ["The short answer", "yes it works."]
    assert split("It depends on the load; usually fine.") == [
        "It depends on the load;",
        "usually fine.",
    ]


def test_the_first_fragment_threshold_is_configurable() -> None:
    assert split("Sure, this is it.", first_fragment_chars=4) == ["Sure,", "this is it."]


def test_a_piece_is_returned_as_soon_as_its_end_is_certain() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Hello there.") == []  # could still be "there.com" or "there. and"
    assert splitter.feed(" I") == ["Hello there."]
    assert splitter.feed(" am here") == []
    assert splitter.flush() == ["I am here"]


# -- not splitting where a sentence does not end ---------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Pi is about 3.14 and e is about 2.72 in value.",
        "It costs 1,000 dollars or 2,500 euros at most today.",
        "Use version v2.5 or v3.0.1 of the library here.",
        "Bring fruit, e.g. apples, and tools, i.e. hammers, etc. for the trip.",
        "Ask Dr. Jones, Mr. Smith, Mrs. Brown or Prof. Lee about it.",
        "It was Apple vs. Microsoft in the U.S. market at 9 a.m. sharp.",
        "Well... maybe not, she said… and then she left the room.",
        "See https://example.com/docs/v1.2/index.html?q=a.b for the details.",
        "The file is called config.toml and lives in ~/.config/demo here.",
        "J. R. R. Tolkien wrote it.",
    ],
)
def test_one_sentence_stays_whole(text: str) -> None:
    assert split(text, first_fragment_chars=1000) == [text]


def test_sentence_ends_after_numbers_abbreviations_and_closers_still_split() -> None:
    assert split('It is 3.14. Then 2.72! Really? "Yes." (Fine.) **Bold.** End') == [
        "It is 3.14.",
        "Then 2.72!",
        "Really?",
        '"Yes."',
        "(Fine.)",
        "Bold.",
        "End",
    ]


def test_an_ellipsis_before_a_new_sentence_splits() -> None:
    assert split("I wonder... Then it rained. Or?! Yes.") == [
        "I wonder...",
        "Then it rained.",
        "Or?!",
        "Yes.",
    ]


# -- Markdown ---------------------------------------------------------------------------------


def test_fenced_code_is_summarised_in_one_sentence() -> None:
    text = "Here you go:\n\n```python\nprint('a. b. c.')\nx = [1, 2]\n```\n\nThat is all."
    assert split(text) == ["Here you go:", "Here is a Python code sample.", "That is all."]


@pytest.mark.parametrize(
    ("fence", "summary"),
    [
        ("```", "Here is a code sample."),
        ("```text", "Here is a code sample."),
        ("```bash", "Here is a shell code sample."),
        ("```js", "Here is a JavaScript code sample."),
        ("```html", "Here is an HTML code sample."),
        ("```json", "Here is a JSON code sample."),
        ("```elixir", "Here is an Elixir code sample."),
        ("~~~ rust", "Here is a Rust code sample."),
        ("````python {linenos}", "Here is a Python code sample."),
    ],
)
def test_the_summary_names_the_fence_language(fence: str, summary: str) -> None:
    closing = re.match(r"[`~]+", fence).group()  # type: ignore[union-attr]
    assert split(f"{fence}\nsome code. More code!\n{closing}\n") == [summary]


def test_an_unclosed_fence_is_never_read() -> None:
    assert split("Look:\n```c\nint main() { return 0; }\n") == [
        "Look:",
        "Here is a C code sample.",
    ]


def test_a_shorter_fence_inside_code_does_not_close_it() -> None:
    text = "````md\n```python\nx = 1\n```\nstill code.\n````\nAfter."
    assert split(text) == ["Here is a Markdown code sample.", "After."]


def test_inline_code_is_read_as_its_text_without_backticks() -> None:
    assert split("Call `os.path.join(a, b)` or ``a `b` c`` now. Then `__init__` runs.") == [
        "Call os.path.join(a, b) or a `b` c now.",
        "Then __init__ runs.",
    ]


def test_a_sentence_end_inside_inline_code_is_not_an_end() -> None:
    assert split("Type `Done. Next` to finish. Bye.", first_fragment_chars=1000) == [
        "Type Done. Next to finish.",
        "Bye.",
    ]


def test_headings_emphasis_and_links_lose_their_syntax() -> None:
    text = (
        "# Title #\n### Sub *heading*\nSee **bold**, __strong__, _em_ and ~~gone~~ text in "
        "[the docs](https://x.org/a_(b)) and ![a logo](logo.png) at <https://x.org>. "
        "Keep snake_case and 2 * 3 plain."
    )
    assert split(text, first_fragment_chars=1000) == [
        "Title",
        "Sub heading",
        "See bold, strong, em and gone text in the docs and a logo at https://x.org.",
        "Keep snake_case and 2 3 plain.",
    ]


def test_each_list_item_is_its_own_piece_without_its_marker() -> None:
    text = "Options:\n- first option\n* second one\n+ third\n1. fourth\n12) fifth. Really\n"
    assert split(text) == [
        "Options:",
        "first option",
        "second one",
        "third",
        "fourth",
        "fifth.",
        "Really",
    ]


def test_things_that_look_like_markers_but_are_not_stay_text() -> None:
    text = "-5 degrees\n**Bold** start\n2023 was good\n3.5 is a number\n#hashtag here\n"
    assert split(text, first_fragment_chars=1000) == [
        "-5 degrees Bold start 2023 was good 3.5 is a number #hashtag here"
    ]


def test_a_paragraph_break_ends_a_piece_but_a_soft_line_break_does_not() -> None:
    assert split("one line\nwraps here\n\nnew paragraph\n---\nafter the rule") == [
        "one line wraps here",
        "new paragraph",
        "after the rule",
    ]


def test_tables_are_read_as_plain_cells() -> None:
    text = "| Name | Speed |\n|:-----|------:|\n| fast | 969 t/s |\n| slow | 80 |\n"
    assert split(text) == ["Name, Speed.", "fast, 969 t/s.", "slow, 80."]


def test_quotes_are_read_plainly() -> None:
    assert split("> Quoted, and\n> continued. Here") == ["Quoted, and continued.", "Here"]


def test_nothing_speakable_gives_no_pieces() -> None:
    assert split("---\n\n***\n\n| --- |\n\n```\ncode\n```") == ["Here is a code sample."]
    assert split("") == []
    assert split("  \n\n ** ") == []


def test_speakable_is_pure_and_keeps_words() -> None:
    assert speakable("**Hello**, [world](http://w.org)!") == "Hello, world!"
    assert speakable("— and then") == "and then"
    assert speakable("-5 is negative") == "-5 is negative"
    assert speakable("***") == ""


# -- no punctuation at all --------------------------------------------------------------------


def test_text_without_punctuation_is_cut_on_word_boundaries() -> None:
    words = [f"word{i}" for i in range(200)]
    pieces = split(" ".join(words), max_chars=50)
    assert all(len(piece) <= 50 for piece in pieces)
    assert len(pieces) > 10
    assert " ".join(pieces).split() == words  # no word lost or broken


def test_a_word_longer_than_a_piece_is_not_broken() -> None:
    long_word = "x" * 80
    assert split(f"short {long_word} tail words here", max_chars=30) == [
        "short",
        long_word,
        "tail words here",
    ]


def test_pieces_are_produced_while_unpunctuated_text_streams() -> None:
    splitter = SentenceSplitter(max_chars=40)
    produced = []
    for chunk in tokens("and so on " * 30):
        produced += splitter.feed(chunk)
    assert len(produced) >= 5  # speech did not wait for the end of the reply


# -- chunking -------------------------------------------------------------------------------


def test_one_token_chunks_give_the_same_pieces_as_one_whole_chunk() -> None:
    whole = split(REPLY)
    assert split_chunks(tokens(REPLY)) == whole
    assert split_chunks(list(REPLY)) == whole


def test_the_whole_reply_reads_as_expected() -> None:
    assert split(REPLY) == [
        "Getting started",
        "Sure, here is how it works.",
        "Pi is about 3.14, and 1,000 ms is one second.",
        "Install v2.5 first!",
        "See e.g. the docs, i.e. the manual, etc. before you start.",
        "Dr. Smith and Mrs. Jones met at 9 a.m. in the U.S. and talked… about it.",
        "Visit https://example.com/a.b?c=1 for more.",
        "Done?",
        "Run pip install demo in a shell.",
        "Start the app with one command.",
        "Open the settings page.",
        "Check the mute toggle.",
        "Here is a Python code sample.",
        "Provider, Speed.",
        "fast, 969.",
        "Quoted text, read plainly.",
        "Wait... what happened next was a surprise — nobody knew",
    ]


SAMPLES = [
    REPLY,
    "no punctuation at all just words flowing on " * 12,
    "A. B. C. 1.2.3. e.g., i.e.; etc.: vs. — ok… ?! `a. b` [x. y](z) **q.** _r._",
    "```\nunclosed fence, with code. in it",
    "Line\r\nwith windows\r\nbreaks.\r\n\r\n- item\r\n",
    "\n\n\n#\n##\n- \n1.\n>\n|\n`\n``\n```",
]


@pytest.mark.parametrize("sample", SAMPLES, ids=range(len(SAMPLES)))
def test_pieces_do_not_depend_on_how_the_text_was_chunked(sample: str) -> None:
    whole = split(sample, first_fragment_chars=10, max_chars=60)
    rng = random.Random(sample)
    for _ in range(300):
        chunks = random_chunks(sample, rng)
        assert split_chunks(chunks, first_fragment_chars=10, max_chars=60) == whole, chunks


def test_random_text_is_chunking_invariant_too() -> None:
    alphabet = list("ab cd E. , ; : ! ? … - * _ ` # | > 1 2 . ( ) [ ] \n \n\n e.g. Dr. — ~~~ ```")
    rng = random.Random(3)
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120)))
        whole = split(text, max_chars=30)
        chunks = random_chunks(text, rng)
        assert split_chunks(chunks, max_chars=30) == whole, (text, chunks)


def test_a_splitter_is_fresh_after_flush() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("```python\nunfinished") == ["Here is a Python code sample."]
    assert splitter.flush() == []
    assert splitter.feed("Back to normal, and early. Yes") == ["Back to normal,", "and early."]


def test_nonsense_options_are_refused() -> None:
    with pytest.raises(ValueError):
        SentenceSplitter(first_fragment_chars=0)
    with pytest.raises(ValueError):
        SentenceSplitter(max_chars=1)
