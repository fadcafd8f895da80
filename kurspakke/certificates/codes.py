"""Verification codes for certificates: random, easy to read aloud and type, with a check symbol.

A code is 13 random symbols (65 bits from ``secrets``) plus one check symbol, written in Crockford's base32
alphabet ``0-9 A-Z`` without ``I L O U``: no letter that reads like a digit, so a code copied from paper or read
over the phone survives. The canonical form (stored, in URLs) is the 14 upper-case symbols; the printed form is
grouped ``XXXX-XXXX-XXXX-XX``.

The check symbol is the Luhn mod N algorithm over the 32 symbols (N = 32). It lets the verification page say
"you have mistyped the code" instead of "no such certificate", which matters because the two call for different
actions by the reader. What it catches, for codes of any length:

* every single-symbol substitution (the doubling step is a permutation of 0..31, so one changed symbol always
  changes the sum mod 32);
* every transposition of two adjacent symbols, except a swap of ``0`` and ``Z`` (values 0 and 31): with
  g(x) = (2x folded) - x, a swap of a and b goes unseen exactly when g(a) ≡ g(b) (mod 32), and g is one-to-one on
  0..31 apart from g(0) = g(31) = 0. This is the mod-32 twin of Luhn mod 10 missing ``09`` ↔ ``90``.

Checking is not authentication: a well-formed code still has to be found in the database. 65 bits make guessing
one hopeless (with a billion certificates, 2^65 / 2^30 ≈ 3 * 10^10 guesses per hit).
"""

from __future__ import annotations

import enum
import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_N = len(ALPHABET)  # 32
_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}

RANDOM_SYMBOLS = 13  # 13 * 5 = 65 bits, above the 60-bit floor
CODE_LENGTH = RANDOM_SYMBOLS + 1
MAX_INPUT_LENGTH = 64  # longer input is refused before any work: the verify form is public

# Separators people type or paste: space and other whitespace (a PDF copy may give a no-break space), ASCII hyphen
# and the Unicode dashes word processors substitute for it. Removed anywhere, not only between groups, so
# "ABCD EFGH-..." and an ungrouped code both work.
_SEPARATORS = re.compile(r"[\s\-\u2010\u2011\u2012\u2013\u2014\u2212]+")
# Crockford's reading aliases: a reader who sees 0/O or 1/I/L on paper may type either.
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})


class CodeShape(enum.Enum):
    MALFORMED = "malformed"  # cannot be a code: wrong length or characters outside the alphabet
    MISTYPED = "mistyped"  # the shape of a code, but the check symbol does not match: a typing error
    WELL_FORMED = "well_formed"  # passes the check; the caller looks it up (unknown if not found)


def _fold(value: int) -> int:
    # Luhn mod N's "double and add the digits" in base N.
    doubled = 2 * value
    return doubled // _N + doubled % _N


def _weighted_sum(values: list[int], *, double_rightmost: bool) -> int:
    total = 0
    double = double_rightmost
    for value in reversed(values):
        total += _fold(value) if double else value
        double = not double
    return total


def check_symbol(payload: str) -> str:
    """The Luhn mod 32 check symbol for ``payload`` (canonical symbols, without the check symbol)."""
    values = [_VALUE[symbol] for symbol in payload]
    # The check symbol will sit at the right with weight 1, so the payload's rightmost symbol is doubled.
    return ALPHABET[(_N - _weighted_sum(values, double_rightmost=True) % _N) % _N]


def _check_passes(canonical: str) -> bool:
    values = [_VALUE[symbol] for symbol in canonical]
    return _weighted_sum(values, double_rightmost=False) % _N == 0


def new_code() -> str:
    """A fresh code in canonical form (14 upper-case symbols). Uniqueness is the database's job (unique index)."""
    number = secrets.randbits(5 * RANDOM_SYMBOLS)
    payload = "".join(ALPHABET[(number >> (5 * i)) & 0x1F] for i in range(RANDOM_SYMBOLS))
    return payload + check_symbol(payload)


def normalise(text: str) -> str | None:
    """The canonical 14-symbol form of ``text``, or None when it cannot be a code.

    Accepts lower case, spaces, hyphens and dashes, and the aliases O → 0 and I/L → 1. Does not look at the check
    symbol (see ``classify``).
    """
    if len(text) > MAX_INPUT_LENGTH:
        return None
    cleaned = _SEPARATORS.sub("", text)
    # ASCII before upper(): str.upper() maps some non-ASCII letters onto ASCII ("ı" → "I", "ß" → "SS", "ſ" → "S"),
    # which would let look-alike characters through.
    if len(cleaned) != CODE_LENGTH or not cleaned.isascii():
        return None
    canonical = cleaned.upper().translate(_ALIASES)
    if any(symbol not in _VALUE for symbol in canonical):
        return None
    return canonical


def classify(text: str) -> CodeShape:
    canonical = normalise(text)
    if canonical is None:
        return CodeShape.MALFORMED
    return CodeShape.WELL_FORMED if _check_passes(canonical) else CodeShape.MISTYPED


def is_well_formed(text: str) -> bool:
    return classify(text) is CodeShape.WELL_FORMED


def format_code(code: str) -> str:
    """The printed form ``XXXX-XXXX-XXXX-XX``. Raises ValueError unless ``code`` is a well-formed code, so a typing
    error never reaches paper."""
    canonical = normalise(code)
    if canonical is None or not _check_passes(canonical):
        raise ValueError("not a well-formed verification code")
    return "-".join(canonical[i : i + 4] for i in range(0, CODE_LENGTH, 4))


__all__ = [
    "ALPHABET",
    "CODE_LENGTH",
    "CodeShape",
    "check_symbol",
    "classify",
    "format_code",
    "is_well_formed",
    "new_code",
    "normalise",
]
