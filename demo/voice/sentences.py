"""Cut a streaming Markdown reply into pieces a speech synthesizer can say, as early as it is safe.

Speech can only start once a piece of text is complete, so the first piece is allowed to end at a
clause boundary; later pieces end at sentence ends, where the voice pauses naturally. Markdown is
turned into what a person would read aloud: markers are dropped, links become their text, and code
blocks become one short sentence instead of being read symbol by symbol.

Every decision looks only at text that has already arrived and waits when the answer could still
change, so the pieces never depend on how the reply was chunked (one token at a time, or whole
paragraphs at once).
"""

from __future__ import annotations

import re
from enum import Enum, auto

TERMINATORS = ".!?…"
"""Characters that can end a sentence."""

CLAUSE_MARKS = ",;:"
"""Characters after which the first piece may end early."""

DASHES = "—–"
"""Dashes that, preceded by a space, mark a clause boundary."""

CLOSERS = "\"'”’»)]*_"
"""Characters that may follow a sentence end and still belong to the sentence."""

ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "inc", "ltd", "corp",
        "co", "fig", "figs", "eq", "approx", "dept", "est", "vol", "cf", "al", "ca", "resp",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    }
)  # fmt: skip
"""Words that end with a full stop without ending the sentence (compared in lower case)."""

_DOTTED_ABBREVIATION = re.compile(r"(?:[a-z]\.)+[a-z]")
"""e.g, i.e, u.s, a.m, u.s.a: letters joined by full stops (the last stop is not included)."""

_LANGUAGES: dict[str, str] = {
    "py": "Python", "python": "Python", "python3": "Python", "pycon": "Python",
    "js": "JavaScript", "javascript": "JavaScript", "jsx": "JavaScript", "mjs": "JavaScript",
    "ts": "TypeScript", "typescript": "TypeScript", "tsx": "TypeScript",
    "sh": "shell", "bash": "shell", "zsh": "shell", "shell": "shell", "console": "shell",
    "shell-session": "shell", "powershell": "PowerShell", "ps1": "PowerShell",
    "c": "C", "h": "C", "cpp": "C++", "c++": "C++", "cc": "C++", "hpp": "C++",
    "cs": "C sharp", "csharp": "C sharp", "c#": "C sharp", "fs": "F sharp", "fsharp": "F sharp",
    "go": "Go", "golang": "Go", "rs": "Rust", "rust": "Rust", "java": "Java", "kt": "Kotlin",
    "kotlin": "Kotlin", "rb": "Ruby", "ruby": "Ruby", "php": "PHP", "swift": "Swift",
    "sql": "SQL", "json": "JSON", "yaml": "YAML", "yml": "YAML", "toml": "TOML", "xml": "XML",
    "html": "HTML", "css": "CSS", "md": "Markdown", "markdown": "Markdown", "r": "R",
    "dockerfile": "Dockerfile", "makefile": "Makefile", "ini": "INI", "lua": "Lua",
}  # fmt: skip
"""Fence info strings → how the language is said."""

_PLAIN_FENCES = frozenset({"", "text", "txt", "plain", "plaintext", "output", "none"})

_AN_INITIALS = frozenset("AEFHILMNORSX")
"""Initial letters whose spoken name starts with a vowel sound ("an HTML", "an SQL")."""

# Inline Markdown, applied to one finished piece at a time.
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\((?:[^()]|\([^()]*\))*\)")
_REFERENCE_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]+)>")
_LINK_TAIL = re.compile(r"\]\([^)\s]*\)")
_LINE_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_EMPHASIS = re.compile(r"(?<![\w\\])[*_]+|[*_]+(?!\w)")
_STRIKE = re.compile(r"~~")
_RULE = re.compile(r"[=\-_*~#]{3,}")
_HEADING_CLOSE = re.compile(r"\s#+\s*$")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~<>])")
_LEADING_JUNK = re.compile(r"^(?:\s|[—–•-]+(?=\s|$))+")
_SPACES = re.compile(r"\s+")
_TABLE_SEPARATOR_CELL = re.compile(r":?-+:?")


class _Line(Enum):
    """What the current line is, once its start has been read."""

    PARAGRAPH = auto()
    """Text whose line break is a soft break: the sentence goes on over the next line."""
    ENDS_PIECE = auto()
    """A list item or heading: its line break ends the piece."""


class SentenceSplitter:
    """Turns reply text, fed as it streams, into speakable pieces in reading order.

    Args:
        first_fragment_chars: the first piece may end at a clause boundary (``,`` ``;`` ``:``
            `` —``) once it has at least this many spoken characters, so speech starts sooner.
        max_chars: a piece with no sentence end is cut at the last word boundary within this many
            characters, so text without punctuation is still spoken.
    """

    def __init__(self, *, first_fragment_chars: int = 10, max_chars: int = 220) -> None:
        if first_fragment_chars < 1:
            raise ValueError("first_fragment_chars must be at least 1")
        if max_chars < 2:
            raise ValueError("max_chars must be at least 2")
        self.first_fragment_chars = first_fragment_chars
        self.max_chars = max_chars
        self._reset()

    def _reset(self) -> None:
        self._pending = ""
        """Raw input not yet read."""
        self._sentence = ""
        """Raw inline text of the open piece; never starts with whitespace."""
        self._line: _Line | None = None
        """Kind of the current line, or None at the start of a line (not yet classified)."""
        self._fence: tuple[str, int] | None = None
        """Inside a fenced code block: its fence character and length."""
        self._first = True

    def feed(self, text: str) -> list[str]:
        """Add reply text; return the pieces that are now complete (possibly none)."""
        self._pending += text.replace("\r", "").replace("\t", " ")
        out: list[str] = []
        self._run(out, final=False)
        return out

    def flush(self) -> list[str]:
        """End of the reply: return what is left, and start afresh for the next reply."""
        out: list[str] = []
        self._run(out, final=True)
        self._end_piece(out)
        self._reset()
        return out

    # -- block level -------------------------------------------------------------------------

    def _run(self, out: list[str], *, final: bool) -> None:
        while True:
            if self._fence is not None:
                progressed = self._skip_code_line(final=final)
            elif self._line is None:
                progressed = self._read_line_start(out, final=final)
            else:
                progressed = self._read_inline(out, final=final)
            if not progressed:
                return

    def _skip_code_line(self, *, final: bool) -> bool:
        assert self._fence is not None
        end = self._pending.find("\n")
        if end < 0:
            if final:
                self._pending = ""
            return False
        line, self._pending = self._pending[:end], self._pending[end + 1 :]
        char, length = self._fence
        stripped = line.strip()
        if len(stripped) >= length and stripped == char * len(stripped):
            self._fence = None
        return True

    def _read_line_start(self, out: list[str], *, final: bool) -> bool:
        """Classify the line that starts `_pending`, consuming its block marker.

        Returns False when more text is needed to decide (or nothing is left).
        """
        s = self._pending
        i = len(s) - len(s.lstrip(" "))
        if i == len(s):
            if final:
                self._pending = ""
            return False
        char = s[i]
        line_end = s.find("\n", i)
        whole_line = line_end >= 0 or final
        line = s[i:] if line_end < 0 else s[i:line_end]
        rest_start = len(s) if line_end < 0 else line_end + 1

        if char == "\n":
            self._end_piece(out)
            self._pending = s[i + 1 :]
            return True
        if char == ">":
            after = i + 1
            if after < len(s) and s[after] == " ":
                after += 1
            self._pending = s[after:]
            return True
        if char == "#":
            hashes = len(line) - len(line.lstrip("#"))
            if hashes == len(line) and not whole_line:
                return False
            if hashes <= 6 and (hashes == len(line) or line[hashes] == " "):
                self._end_piece(out)
                return self._start_inline(i + hashes, _Line.ENDS_PIECE)
        elif char in "-*+_":
            body = line.replace(" ", "")
            if body == char * len(body):
                # Only marker characters so far: a rule ("---"), an empty item, or not yet known.
                if not whole_line:
                    return False
                if len(body) >= 3:
                    self._end_piece(out)
                    self._pending = s[rest_start:]
                    return True
            if char != "_" and len(line) > 1 and line[1] == " ":
                self._end_piece(out)
                return self._start_inline(i + 2, _Line.ENDS_PIECE)
            if char != "_" and len(line) == 1:
                self._end_piece(out)
                return self._start_inline(i + 1, _Line.ENDS_PIECE)
        elif char.isdigit():
            digits = len(line) - len(line.lstrip("0123456789"))
            if digits == len(line) and not whole_line:
                return False
            if digits <= 9 and digits < len(line) and line[digits] in ".)":
                if digits + 1 == len(line) and not whole_line:
                    return False
                if digits + 1 == len(line) or line[digits + 1] == " ":
                    self._end_piece(out)
                    return self._start_inline(i + digits + 1, _Line.ENDS_PIECE)
        elif char in "`~":
            run = len(line) - len(line.lstrip(char))
            if run == len(line) and not whole_line:
                return False
            if run >= 3:
                if not whole_line:
                    return False
                info = line[run:].strip()
                if not (char == "`" and "`" in info):
                    self._end_piece(out)
                    self._emit(out, _code_summary(info))
                    self._fence = (char, run)
                    self._pending = s[rest_start:]
                    return True
        elif char == "|":
            if not whole_line:
                return False
            self._end_piece(out)
            self._emit(out, _table_row(line))
            self._pending = s[rest_start:]
            return True
        return self._start_inline(i, _Line.PARAGRAPH)

    def _start_inline(self, start: int, kind: _Line) -> bool:
        self._pending = self._pending[start:]
        self._line = kind
        return True

    def _read_inline(self, out: list[str], *, final: bool) -> bool:
        end = self._pending.find("\n")
        text = self._pending if end < 0 else self._pending[:end]
        self._pending = "" if end < 0 else self._pending[end + 1 :]
        self._sentence = (self._sentence + text) if self._sentence else text.lstrip()
        self._cut(out, final=False)
        if end < 0:
            return False
        if self._line is _Line.ENDS_PIECE:
            self._end_piece(out)
        elif self._sentence:
            self._sentence += " "
        self._line = None
        return True

    # -- pieces ------------------------------------------------------------------------------

    def _cut(self, out: list[str], *, final: bool) -> None:
        while self._sentence:
            cut = _find_cut(
                self._sentence,
                first=self._first,
                final=final,
                first_fragment_chars=self.first_fragment_chars,
                max_chars=self.max_chars,
            )
            if cut is None:
                return
            self._emit(out, self._sentence[:cut])
            self._sentence = self._sentence[cut:].lstrip()

    def _end_piece(self, out: list[str]) -> None:
        self._cut(out, final=True)
        self._emit(out, self._sentence)
        self._sentence = ""

    def _emit(self, out: list[str], raw: str) -> None:
        spoken = speakable(raw)
        if spoken:
            out.append(spoken)
            self._first = False


def _find_cut(
    s: str, *, first: bool, final: bool, first_fragment_chars: int, max_chars: int
) -> int | None:
    """Where the first piece of `s` ends, or None if it does not end yet (or cannot be known yet).

    Without `final`, a cut is returned only when no further text could change it.
    """
    n = len(s)
    code = 0  # length of the backtick run that opened the current code span, 0 outside one
    i = 0
    while i < n and i < max_chars:
        char = s[i]
        if char == "`":
            j = i
            while j < n and s[j] == "`":
                j += 1
            if j == n and not final:
                return None
            run = j - i
            code = run if code == 0 else (0 if code == run else code)
            i = j
            continue
        if code:
            i += 1
        elif char in TERMINATORS:
            decision, j = _sentence_end(s, i, final=final)
            if decision is None:
                return None
            if decision and j <= max_chars:
                return j
            i = j
        elif first and char in CLAUSE_MARKS:
            decision, j = _clause_end(s, i, final=final)
            if decision is None:
                return None
            if decision and j <= max_chars and len(speakable(s[:j])) >= first_fragment_chars:
                return j
            i = j
        elif first and char in DASHES and i > 0 and s[i - 1] == " ":
            if len(speakable(s[: i - 1])) >= first_fragment_chars:
                return i - 1
            i += 1
        else:
            i += 1
    if n > max_chars:
        return _word_cut(s, max_chars=max_chars)
    return None


def _sentence_end(s: str, i: int, *, final: bool) -> tuple[bool | None, int]:
    """Whether the terminator run at `i` ends a sentence: (True/False/None if unknown, end)."""
    n = len(s)
    j = i
    while j < n and s[j] in TERMINATORS:
        j += 1
    run_end = j
    while j < n and s[j] in CLOSERS:
        j += 1
    if j == n:
        return (True if final else None), j
    if not s[j].isspace():
        # 3.14, v2.5, example.com, "?q=": not followed by a space, so not an end.
        return False, run_end
    k = j
    while k < n and s[k].isspace():
        k += 1
    if k == n:
        return (True if final else None), j
    if s[k].islower():
        # "Wait... what", "approx. five": a sentence does not go on in lower case.
        return False, run_end
    if s[i:run_end] == "." and _is_abbreviation(s, i):
        return False, run_end
    return True, j


def _clause_end(s: str, i: int, *, final: bool) -> tuple[bool | None, int]:
    """Whether the clause mark at `i` is a usable boundary: (True/False/None if unknown, end)."""
    n = len(s)
    j = i + 1
    while j < n and s[j] in CLOSERS:
        j += 1
    if j == n:
        return (True if final else None), j
    if not s[j].isspace():
        # 1,000 and 12:30 and https:// are not clause boundaries.
        return False, i + 1
    if i > 0 and s[i - 1] == "." and _is_abbreviation(s, i - 1):
        return False, i + 1
    return True, j


def _is_abbreviation(s: str, dot: int) -> bool:
    """Whether the word ending at the full stop `dot` is an abbreviation or an initial."""
    start = dot
    while start > 0 and not s[start - 1].isspace():
        start -= 1
    word = s[start:dot].lstrip("([{\"'“‘*_")
    if not word:
        return False
    lower = word.lower()
    if lower in ABBREVIATIONS or _DOTTED_ABBREVIATION.fullmatch(lower):
        return True
    return len(word) == 1 and word.isupper()


def _word_cut(s: str, *, max_chars: int) -> int | None:
    """A cut for text with no sentence end: the last space within `max_chars` characters."""
    space = max((s.rfind(c, 1, max_chars + 1) for c in " \n"), default=-1)
    if space > 0:
        return space
    # One word longer than a whole piece (a long URL, say): cut after it, or hard if it never ends.
    for j in range(max_chars, len(s)):
        if s[j].isspace():
            return j
    if len(s) > 4 * max_chars:
        return max_chars
    return None


def _code_summary(info: str) -> str:
    """One spoken sentence standing in for a fenced code block."""
    words = info.split()
    word = words[0].strip("{}.").lower() if words else ""
    if word in _PLAIN_FENCES:
        return "Here is a code sample."
    language = _LANGUAGES.get(word) or word[:1].upper() + word[1:]
    if language.split()[0].isupper():
        vowel_sound = language[0] in _AN_INITIALS
    else:
        vowel_sound = language[0] in "AEIOU"
    return f"Here is {'an' if vowel_sound else 'a'} {language} code sample."


def _table_row(line: str) -> str:
    """A table row read plainly: its cells separated by commas; separator rows say nothing."""
    cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
    if all(not cell or _TABLE_SEPARATOR_CELL.fullmatch(cell) for cell in cells):
        return ""
    return ", ".join(cell for cell in cells if cell) + "."


def speakable(raw: str) -> str:
    """The words of one Markdown piece as they should be said, or "" if nothing is worth saying.

    Inline code keeps its text verbatim (only the backticks go); everything else loses its
    Markdown syntax.
    """
    parts: list[str] = []
    position = 0
    for match in _CODE_SPAN.finditer(raw):
        parts.append(_plain(raw[position : match.start()]))
        parts.append(match.group(2).strip())
        position = match.end()
    parts.append(_plain(raw[position:]))
    text = _SPACES.sub(" ", "".join(parts)).strip()
    text = _LEADING_JUNK.sub("", text)
    if not any(char.isalnum() for char in text):
        return ""
    return text


def _plain(text: str) -> str:
    """Markdown syntax removed from text that holds no code span."""
    text = text.replace("`", "")
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _REFERENCE_LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _LINK_TAIL.sub("", text)
    text = _LINE_BREAK_TAG.sub(" ", text)
    text = _RULE.sub(" ", text)
    text = _EMPHASIS.sub("", text)
    text = _STRIKE.sub("", text)
    text = _HEADING_CLOSE.sub("", text)
    text = text.replace("[", "").replace("]", "")
    return _ESCAPE.sub(r"\1", text)
