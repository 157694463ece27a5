"""The regular expressions both stores run alike: a common subset of RE2 and PostgreSQL's.

ClickHouse's ``match`` is RE2, PostgreSQL's ``~`` is its own ARE dialect; they agree on a core
and differ around it (``\\b`` is a word boundary in RE2 and a backspace in PostgreSQL, ``\\d``
and ``\\w`` follow the database's locale in PostgreSQL, a lone ``{`` is a literal in RE2 and an
error in PostgreSQL, repetition bounds are 1000 and 255…). A pattern is checked against the
subset and rewritten into one canonical form that every store, and Python's ``re`` for the
reference implementation, reads the same way:

* literals, ``.``, ``^``, ``$``, ``|``, groups ``( )`` and ``(?: )``;
* quantifiers ``* + ?`` and ``{m}``, ``{m,}``, ``{m,n}`` (bounds up to 255) after an atom;
* bracket classes ``[abc]``, ``[^a-z]`` (no POSIX ``[:alpha:]`` classes);
* ``\\d \\D \\s \\S \\w \\W`` (ASCII, rewritten as explicit classes) and ``\\`` before an ASCII
  punctuation character.

``.`` matches any character, newlines included, and ``^``/``$`` anchor the whole value, in every
store.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

__all__ = ["MAX_PATTERN", "Pattern", "PatternError", "compile_pattern", "wildcard_pattern"]

MAX_PATTERN = 1000
MAX_REPEAT = 255
_PUNCT = frozenset(string.punctuation)
_CLASSES = {"d": "0-9", "w": "0-9A-Za-z_", "s": " \\t\\n\\r\\f\\v"}
_SPECIAL = frozenset("\\^$.|?*+()[]{}")


class PatternError(ValueError):
    """A pattern outside the common subset; the message says what and where."""


@dataclass(frozen=True)
class Pattern:
    """A checked pattern: ``sql`` for both stores, ``python`` for ``re`` (compiled DOTALL)."""

    sql: str
    python: str

    def search(self, value: str) -> bool:
        """Whether the pattern matches anywhere in ``value`` (as the stores do)."""
        return _compiled(self.python).search(value) is not None


_cache: dict[str, re.Pattern[str]] = {}


def _compiled(python: str) -> re.Pattern[str]:
    found = _cache.get(python)
    if found is None:
        found = _cache[python] = re.compile(python, re.DOTALL)
    return found


def _escape_char(ch: str) -> str:
    return "\\" + ch if ch in _PUNCT else ch


def compile_pattern(source: str) -> Pattern:
    """Check ``source`` against the common subset; raises PatternError naming the problem."""
    if len(source) > MAX_PATTERN:
        raise PatternError(f"longer than {MAX_PATTERN} characters")
    sql: list[str] = []
    py: list[str] = []
    i, n = 0, len(source)
    depth = 0
    can_repeat = False  # whether the previous token is an atom a quantifier may follow

    def emit(text: str, python: str | None = None, *, atom: bool) -> None:
        nonlocal can_repeat
        sql.append(text)
        py.append(text if python is None else python)
        can_repeat = atom

    while i < n:
        ch = source[i]
        if ch == "\\":
            if i + 1 >= n:
                raise PatternError(f"a trailing backslash at {i}")
            nxt = source[i + 1]
            if nxt in _CLASSES:
                emit(f"[{_CLASSES[nxt]}]", atom=True)
            elif nxt.lower() in _CLASSES:
                emit(f"[^{_CLASSES[nxt.lower()]}]", atom=True)
            elif nxt in _PUNCT:
                emit("\\" + nxt, atom=True)
            else:
                raise PatternError(f"unsupported escape \\{nxt} at {i}")
            i += 2
        elif ch == "[":
            end, body = _bracket(source, i)
            emit(body, atom=True)
            i = end
        elif ch == "(":
            if source.startswith("(?", i):
                if not source.startswith("(?:", i):
                    raise PatternError(f"unsupported group syntax {source[i : i + 3]!r} at {i}")
                emit("(?:", atom=False)
                i += 3
            else:
                emit("(", atom=False)
                i += 1
            depth += 1
        elif ch == ")":
            if depth == 0:
                raise PatternError(f"unbalanced ) at {i}")
            depth -= 1
            emit(")", atom=True)
            i += 1
        elif ch in "*+?":
            if not can_repeat:
                raise PatternError(f"nothing to repeat before {ch} at {i}")
            emit(ch, atom=False)
            i += 1
        elif ch == "{":
            match = re.compile(r"\{(\d{1,3})(,(\d{0,3}))?\}").match(source, i)
            if match is None:
                raise PatternError(f"a {{ that is not a repetition {{m}}, {{m,}} or {{m,n}} at {i}")
            if not can_repeat:
                raise PatternError(f"nothing to repeat before {{ at {i}")
            low = int(match[1])
            high = int(match[3]) if match[3] else low if match[2] is None else None
            if low > MAX_REPEAT or (high is not None and (high > MAX_REPEAT or high < low)):
                raise PatternError(f"repetition bounds must be 0 ≤ m ≤ n ≤ {MAX_REPEAT} at {i}")
            emit(match[0], atom=False)
            i = match.end()
        elif ch == "}":
            raise PatternError(f"an unescaped }} at {i}")
        elif ch == "$":
            emit("$", r"\Z", atom=False)  # Python's $ also matches before a final newline
            i += 1
        elif ch in "^|":
            emit(ch, atom=False)
            i += 1
        elif ch == ".":
            emit(".", atom=True)
            i += 1
        elif ch == "]":
            emit("\\]", atom=True)
            i += 1
        else:
            emit(ch, atom=True)
            i += 1
    if depth:
        raise PatternError("unbalanced (")
    return Pattern("".join(sql), "".join(py))


def _bracket(source: str, start: int) -> tuple[int, str]:
    """The end of the bracket class opening at ``start`` and its canonical text."""
    i = start + 1
    out = ["["]
    if source.startswith("^", i):
        out.append("^")
        i += 1

    def element(at: int) -> tuple[int, str, bool]:
        # (next index, text, is a single literal character); an escaped literal is returned bare.
        if at >= len(source):
            raise PatternError(f"unterminated [ at {start}")
        ch = source[at]
        if ch == "[" and source[at + 1 : at + 2] in (":", "=", "."):
            raise PatternError(f"POSIX classes like [:alpha:] are not supported (at {at})")
        if ch != "\\":
            return at + 1, ch, True
        nxt = source[at + 1 : at + 2]
        if nxt in _CLASSES:
            return at + 2, _CLASSES[nxt], False
        if nxt and nxt in _PUNCT:
            return at + 2, nxt, True
        raise PatternError(f"unsupported escape \\{nxt} in a class at {at}")

    def literal(ch: str) -> str:
        return "\\" + ch if ch in "\\]^-[" else ch

    first = True
    while True:
        if i >= len(source):
            raise PatternError(f"unterminated [ at {start}")
        if source[i] == "]" and not first:
            out.append("]")
            return i + 1, "".join(out)
        i, text, is_literal = element(i)
        first = False
        if is_literal and source[i : i + 1] == "-" and source[i + 1 : i + 2] not in ("]", ""):
            i, high, high_literal = element(i + 1)
            if not high_literal or high < text:
                raise PatternError(f"an invalid range {text}-{high} in a class at {i}")
            out.append(f"{literal(text)}-{literal(high)}")
        else:
            out.append(literal(text) if is_literal else text)


def wildcard_pattern(path: str) -> Pattern:
    """A page path with wildcards as Plausible reads goals: ``**`` any characters, ``*`` any
    characters but ``/``; the rest literal, the whole path matched."""
    parts = re.split(r"(\*\*|\*)", path)
    body = "".join(
        ".*" if p == "**" else "[^/]*" if p == "*" else "".join(_escape_char(c) for c in p)
        for p in parts
    )
    return Pattern(f"^{body}$", rf"^{body}\Z")
