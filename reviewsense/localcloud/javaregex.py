"""AWS's string patterns, written in Java regex syntax, translated to the Python ``regex`` module.

botocore's service models carry each string member's ``pattern`` exactly as the service declares
it, and the services evaluate it with Java semantics: ``\\p{L}`` is a Unicode category, but
``\\w``, ``\\d``, ``\\s``, ``\\b`` and the POSIX classes (``\\p{Alpha}``, ``\\p{Punct}``, ...) are
ASCII-only; ``.`` stops at any line terminator (not only ``\\n``); ``$`` also matches before a
final ``\\r\\n``; ``\\z`` is the absolute end; ``\\x{...}``, ``\\Q...\\E``, octal ``\\0nn`` and
surrogate pairs written as two ``\\u`` escapes exist. Python's ``re`` differs on every one of
these, so this module rewrites a pattern token by token into an equivalent ``regex`` pattern
(``regex`` understands ``\\p{..}``, possessive quantifiers and atomic groups natively).

A construct with no faithful translation (Java's nested or intersected character classes,
inline flags, unknown property names) raises :class:`UntranslatablePatternError`: a check that
cannot be made is reported, never silently passed. The test suite translates every pattern of
the services the app calls, so such a pattern cannot reach the local cloud unnoticed.

A value satisfies a pattern when the WHOLE value matches (Java's ``Matcher.matches()``, what
AWS's request validation uses): SageMaker's name pattern ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`` has
no ``$``, yet AWS rejects ``my_model``. A few models even quantify an anchor (``...)${1,256}``),
which Java accepts as a plain ``$``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import regex

__all__ = ["UntranslatablePatternError", "compile_java", "java_matches", "translate"]

MAX_CODE_POINT = 0x10FFFF
_LINE_TERMINATORS = [(0x0A, 0x0A), (0x0D, 0x0D), (0x85, 0x85), (0x2028, 0x2029)]
# Java's default (non-MULTILINE, non-UNIX_LINES) meaning of '.', '$' and \Z.
_DOT = r"[^\n\r\x85\u2028\u2029]"
_END_BEFORE_TERMINATOR = r"(?:(?=(?:\r\n|[\n\r\x85\u2028\u2029])?\Z))"
_WORD = "[A-Za-z0-9_]"
_WORD_BOUNDARY = f"(?:(?<={_WORD})(?!{_WORD})|(?<!{_WORD})(?={_WORD}))"
_NOT_WORD_BOUNDARY = f"(?:(?<={_WORD})(?={_WORD})|(?<!{_WORD})(?!{_WORD}))"
_LINEBREAK = r"(?:\r\n|[\n\x0b\f\r\x85\u2028\u2029])"

Ranges = list[tuple[int, int]]


def _chars(text: str) -> Ranges:
    return [(ord(c), ord(c)) for c in text]


# ASCII-only predefined and POSIX classes (java.util.regex.Pattern without UNICODE_CHARACTER_CLASS).
_PUNCT = _chars("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_ALPHA: Ranges = [(0x41, 0x5A), (0x61, 0x7A)]
_DIGIT: Ranges = [(0x30, 0x39)]
_ASCII_SETS: dict[str, Ranges] = {
    "Lower": [(0x61, 0x7A)],
    "Upper": [(0x41, 0x5A)],
    "ASCII": [(0x00, 0x7F)],
    "Alpha": _ALPHA,
    "Digit": _DIGIT,
    "Alnum": _DIGIT + _ALPHA,
    "Punct": _PUNCT,
    "Graph": _DIGIT + _ALPHA + _PUNCT,
    "Print": [(0x20, 0x20), *_DIGIT, *_ALPHA, *_PUNCT],
    "Blank": _chars(" \t"),
    "Cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "XDigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
    "Space": _chars(" \t\n\x0b\f\r"),
    "all": [(0, MAX_CODE_POINT)],
}
_SHORTHAND: dict[str, Ranges] = {
    "d": _DIGIT,
    "w": [*_DIGIT, *_ALPHA, (0x5F, 0x5F)],
    "s": _chars(" \t\n\x0b\f\r"),
    "h": [
        *[(0x20, 0x20), (0x09, 0x09), (0xA0, 0xA0), (0x1680, 0x1680), (0x180E, 0x180E)],
        *[(0x2000, 0x200A), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)],
    ],
    "v": [(0x0A, 0x0D), (0x85, 0x85), (0x2028, 0x2029)],
}
_MINOR = {"L": "ultmo", "M": "nce", "N": "dlo", "P": "cdseifo", "S": "mcko", "Z": "slp", "C": "cfson"}
_CATEGORIES = {*_MINOR} | {major + minor for major, minors in _MINOR.items() for minor in minors}
_BINARY_PROPERTIES = {
    "alphabetic": "Alphabetic",
    "ideographic": "Ideographic",
    "letter": "L",
    "lowercase": "Lowercase",
    "uppercase": "Uppercase",
    "titlecase": "Lt",
    "punctuation": "P",
    "control": "Cc",
    "whitespace": "White_Space",
    "white_space": "White_Space",
    "digit": "Nd",
    "hexdigit": "Hex_Digit",
    "hex_digit": "Hex_Digit",
    "joincontrol": "Join_Control",
    "join_control": "Join_Control",
    "noncharactercodepoint": "Noncharacter_Code_Point",
    "noncharacter_code_point": "Noncharacter_Code_Point",
    "assigned": "Assigned",
}
_SIMPLE_ESCAPES = {"t": 0x09, "n": 0x0A, "r": 0x0D, "f": 0x0C, "a": 0x07, "e": 0x1B}


class UntranslatablePatternError(ValueError):
    """A Java pattern uses a construct this module cannot reproduce exactly."""

    def __init__(self, pattern: str, position: int, reason: str) -> None:
        super().__init__(f"cannot translate Java pattern {pattern!r} at {position}: {reason}")
        self.pattern = pattern
        self.position = position
        self.reason = reason


def _complement(ranges: Iterable[tuple[int, int]]) -> Ranges:
    out: Ranges = []
    nxt = 0
    for lo, hi in sorted(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = max(nxt, hi + 1)
    if nxt <= MAX_CODE_POINT:
        out.append((nxt, MAX_CODE_POINT))
    return out


def _cp(code: int) -> str:
    """One code point as an escape that means exactly that character inside or outside a set."""
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _set_body(ranges: Ranges) -> str:
    return "".join(_cp(lo) if lo == hi else f"{_cp(lo)}-{_cp(hi)}" for lo, hi in ranges)


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.out: list[str] = []
        self.dotall = False

    def fail(self, reason: str) -> UntranslatablePatternError:
        return UntranslatablePatternError(self.p, self.i, reason)

    # -- escapes --------------------------------------------------------------------------------

    def _hex(self, digits: str) -> int:
        try:
            return int(digits, 16)
        except ValueError:
            raise self.fail(f"bad hexadecimal escape {digits!r}") from None

    def _code_point_escape(self, c: str) -> int | None:  # noqa: PLR0911, PLR0912  one branch per regex construct
        """Consume the escape body after the backslash if it denotes one code point (self.i at c)."""
        p = self.p
        if c in _SIMPLE_ESCAPES:
            self.i += 1
            return _SIMPLE_ESCAPES[c]
        if c == "x":
            if p.startswith("{", self.i + 1):
                end = p.find("}", self.i + 2)
                if end < 0:
                    raise self.fail("unclosed \\x{")
                code = self._hex(p[self.i + 2 : end])
                self.i = end + 1
            else:
                code = self._hex(p[self.i + 1 : self.i + 3])
                self.i += 3
            if code > MAX_CODE_POINT:
                raise self.fail("code point out of range")
            return code
        if c == "u":
            code = self._hex(p[self.i + 1 : self.i + 5])
            self.i += 5
            # Java joins an escaped high surrogate and an escaped low surrogate into one code point.
            if 0xD800 <= code <= 0xDBFF and p.startswith("\\u", self.i):
                low = self._hex(p[self.i + 2 : self.i + 6])
                if 0xDC00 <= low <= 0xDFFF:
                    self.i += 6
                    return 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            return code
        if c == "0":
            j = self.i + 1
            digits = ""
            while j < len(p) and len(digits) < 3 and p[j] in "01234567":
                digits += p[j]
                j += 1
            if not digits or (len(digits) == 3 and digits[0] > "3"):
                digits = digits[:2]
            if not digits:
                raise self.fail("\\0 needs octal digits")
            self.i += 1 + len(digits)
            return int(digits, 8)
        if c == "c":
            if self.i + 1 >= len(p):
                raise self.fail("\\c at end of pattern")
            code = ord(p[self.i + 1]) ^ 64
            self.i += 2
            return code
        if not c.isalnum():
            self.i += 1
            return ord(c)
        return None

    def _property(self, negated: bool) -> str:  # noqa: PLR0912  one branch per property syntax
        """``\\p{..}``/``\\pX`` (self.i after the p) as the body of a regex set."""
        p = self.p
        if p.startswith("{", self.i):
            end = p.find("}", self.i)
            if end < 0:
                raise self.fail("unclosed \\p{")
            name = p[self.i + 1 : end]
            self.i = end + 1
        else:
            name = p[self.i : self.i + 1]
            self.i += 1
        letter = "P" if negated else "p"
        if name in _ASCII_SETS:
            ranges = _ASCII_SETS[name]
            return _set_body(_complement(ranges) if negated else ranges)
        key = name.removeprefix("Is") if name.startswith("Is") else name
        for prefix in ("gc=", "general_category="):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        if key in _CATEGORIES:
            return f"\\{letter}{{{key}}}"
        if key == "LD":  # Java's "letter or digit" category
            if negated:
                raise self.fail("\\P{LD} is not supported")
            return "\\p{L}\\p{Nd}"
        if key.lower() in _BINARY_PROPERTIES:
            return f"\\{letter}{{{_BINARY_PROPERTIES[key.lower()]}}}"
        if name.startswith("In") or name.lower().startswith(("blk=", "block=")):
            block = name.split("=", 1)[1] if "=" in name else name[2:]
            return f"\\{letter}{{Block={block}}}"
        if name.lower().startswith(("sc=", "script=")) or name.startswith("Is"):
            script = name.split("=", 1)[1] if "=" in name else name[2:]
            try:
                regex.compile(f"\\p{{Script={script}}}")
            except regex.error:
                raise self.fail(f"unknown property {name!r}") from None
            return f"\\{letter}{{Script={script}}}"
        raise self.fail(f"unknown property {name!r}")

    # -- character classes ----------------------------------------------------------------------

    def _class(self) -> str:
        """Translate ``[...]`` starting at self.i (on the '['); returns a regex set."""
        p = self.p
        self.i += 1
        negated = p.startswith("^", self.i)
        if negated:
            self.i += 1
        parts: list[str] = []
        first = True
        after_set = False  # a '-' right after a predefined class is a literal in Java
        while True:
            if self.i >= len(p):
                raise self.fail("unclosed character class")
            c = p[self.i]
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            if c == "[":
                raise self.fail("nested character classes (Java union) are not supported")
            if c == "&" and p.startswith("&&", self.i):
                raise self.fail("character class intersection (&&) is not supported")
            if c == "-" and after_set:
                parts.append("\\-")
                self.i += 1
                after_set = False
                continue
            after_set = False
            if c == "\\":
                part, after_set = self._class_escape()
                parts.append(part)
                continue
            if c == "-":
                nxt = p[self.i + 1 : self.i + 2]
                if not parts or nxt == "]":
                    parts.append("\\-")
                else:
                    parts.append("-")
                self.i += 1
                continue
            code = ord(c)
            # Java reads a supplementary character as one code point; so does Python's str.
            parts.append(_cp(code))
            self.i += 1
        return "[" + ("^" if negated else "") + "".join(parts) + "]"

    def _class_escape(self) -> tuple[str, bool]:
        """An escape inside ``[...]`` (self.i on the backslash): its set body, and whether it is a set."""
        p = self.p
        self.i += 1
        if self.i >= len(p):
            raise self.fail("trailing backslash")
        e = p[self.i]
        if e in "pP":
            self.i += 1
            return self._property(e == "P"), True
        if e.lower() in _SHORTHAND:
            ranges = _SHORTHAND[e.lower()]
            self.i += 1
            return _set_body(_complement(ranges) if e.isupper() else ranges), True
        if e == "Q":
            return "".join(_cp(ord(ch)) for ch in self._quoted()), False
        code = self._code_point_escape(e)
        if code is None:
            raise self.fail(f"unsupported escape \\{e} in a character class")
        return _cp(code), False

    def _quoted(self) -> str:
        """The literal text of ``\\Q...\\E`` (self.i on the Q; an unclosed one runs to the end)."""
        p = self.p
        end = p.find("\\E", self.i + 1)
        literal = p[self.i + 1 :] if end < 0 else p[self.i + 1 : end]
        self.i = len(p) if end < 0 else end + 2
        return literal

    # -- the pattern ----------------------------------------------------------------------------

    def _group_open(self) -> str:
        p = self.p
        if not p.startswith("(?", self.i):
            self.i += 1
            return "("
        rest = p[self.i + 2 :]
        for opener in (":", "=", "!", "<=", "<!", ">"):
            if rest.startswith(opener):
                self.i += 2 + len(opener)
                return "(?" + opener
        if rest.startswith("<"):
            end = p.find(">", self.i)
            if end < 0:
                raise self.fail("unclosed group name")
            name = p[self.i + 3 : end]
            self.i = end + 1
            return f"(?P<{name}>"
        if self.i == 0 and rest.startswith("s)"):
            # (?s) for the whole pattern: '.' matches any character, line terminators included.
            self.dotall = True
            self.i += 4
            return ""
        raise self.fail("inline flags other than a leading (?s) are not supported")

    def _quantifier_brace(self) -> str | None:
        m = regex.match(r"\{(\d+)(,(\d*))?\}", self.p[self.i :])
        if m is None:
            return None
        self.i += m.end()
        return str(m.group(0))

    def translate(self) -> str:
        p = self.p
        out = self.out
        while self.i < len(p):
            c = p[self.i]
            if c == "\\":
                out.append(self._escape())
            elif c == "[":
                out.append(self._class())
            elif c == ".":
                out.append(r"[\s\S]" if self.dotall else _DOT)
                self.i += 1
            elif c == "$":
                out.append(_END_BEFORE_TERMINATOR)
                self.i += 1
            elif c == "(":
                out.append(self._group_open())
            elif c == "{":
                brace = self._quantifier_brace()
                if brace is None:
                    raise self.fail("'{' is not a repetition (Java rejects this pattern)")
                out.append(brace)
            elif c in "^)|*+?":
                out.append(c)
                self.i += 1
            else:
                out.append(_cp(ord(c)) if not c.isalnum() or ord(c) > 0x7F else c)
                self.i += 1
        return "".join(out)

    def _escape(self) -> str:  # noqa: PLR0911  one return per regex construct
        p = self.p
        self.i += 1
        if self.i >= len(p):
            raise self.fail("trailing backslash")
        e = p[self.i]
        if e in "pP":
            self.i += 1
            return f"[{self._property(e == 'P')}]"
        if e.lower() in _SHORTHAND:
            ranges = _SHORTHAND[e.lower()]
            self.i += 1
            return f"[{_set_body(_complement(ranges) if e.isupper() else ranges)}]"
        simple = {
            "b": _WORD_BOUNDARY,
            "B": _NOT_WORD_BOUNDARY,
            "A": r"(?:\A)",
            "z": r"(?:\Z)",
            "Z": _END_BEFORE_TERMINATOR,
            "R": _LINEBREAK,
            "X": r"\X",
            "G": r"\G",
        }
        if e in simple:
            self.i += 1
            return simple[e]
        if e == "Q":
            return "".join(_cp(ord(ch)) for ch in self._quoted())
        if e == "k":
            end = p.find(">", self.i)
            if not p.startswith("<", self.i + 1) or end < 0:
                raise self.fail("bad named back reference")
            name = p[self.i + 2 : end]
            self.i = end + 1
            return f"(?P={name})"
        if e.isdigit() and e != "0":
            j = self.i
            while j < len(p) and p[j].isdigit():
                j += 1
            ref = p[self.i : j]
            self.i = j
            return f"(?:\\{ref})"
        code = self._code_point_escape(e)
        if code is None:
            raise self.fail(f"unsupported escape \\{e}")
        return _cp(code)


def translate(java_pattern: str) -> str:
    """The ``regex`` (V0) source that matches exactly what ``java_pattern`` matches in Java."""
    return _Translator(java_pattern).translate()


@functools.lru_cache(maxsize=4096)
def compile_java(java_pattern: str) -> regex.Pattern[str]:
    """Translate and compile once; raises :class:`UntranslatablePatternError`."""
    source = translate(java_pattern)
    try:
        return regex.compile(source, regex.V0)
    except regex.error as err:
        raise UntranslatablePatternError(java_pattern, 0, f"translation does not compile: {err}") from None


def java_matches(java_pattern: str, value: str) -> bool:
    """Whether ``value`` satisfies an AWS model ``pattern``: the whole value must match."""
    return compile_java(java_pattern).fullmatch(value) is not None
