from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from kurspakke.certificates.codes import (
    ALPHABET,
    CODE_LENGTH,
    CodeShape,
    check_symbol,
    classify,
    format_code,
    is_well_formed,
    new_code,
    normalise,
)

# Fixed seed for the samples the tests mutate (new_code itself uses `secrets`), so a failure is reproducible.
_RNG = random.Random(20261130)


def _sample_codes(count: int) -> list[str]:
    codes = []
    for _ in range(count):
        payload = "".join(_RNG.choice(ALPHABET) for _ in range(CODE_LENGTH - 1))
        codes.append(payload + check_symbol(payload))
    return codes


def test_alphabet_is_crockford_base32():
    assert len(ALPHABET) == len(set(ALPHABET)) == 32
    assert not set("ILOU") & set(ALPHABET)
    assert set(ALPHABET) == set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") - set("ILOU")


def test_new_codes_are_canonical_unique_and_use_the_whole_alphabet():
    codes = [new_code() for _ in range(10_000)]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{14}", code) for code in codes)
    assert all(classify(code) is CodeShape.WELL_FORMED for code in codes)
    # The 13 random positions: every symbol shows up and none is badly over- or under-represented
    # (130,000 draws, about 4,062 per symbol, standard deviation about 63; ±600 is over 9 sigma).
    counts = Counter(symbol for code in codes for symbol in code[:-1])
    assert set(counts) == set(ALPHABET)
    assert all(abs(n - 130_000 / 32) < 600 for n in counts.values()), counts
    # Each position varies on its own (a stuck position would cost entropy): all 32 symbols appear at each.
    for position in range(CODE_LENGTH - 1):
        assert {code[position] for code in codes} == set(ALPHABET)
    # The check symbol is spread over the whole alphabet too.
    assert {code[-1] for code in codes} == set(ALPHABET)


def test_format_code_groups_four_four_four_two():
    code = new_code()
    printed = format_code(code)
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{2}", printed)
    assert printed.replace("-", "") == code
    assert format_code(printed) == printed  # idempotent


@pytest.mark.parametrize("bad", ["", "ABC", "U" * 14])
def test_format_code_refuses_anything_but_a_well_formed_code(bad):
    with pytest.raises(ValueError):
        format_code(bad)
    code = new_code()
    wrong = ALPHABET[(ALPHABET.index(code[0]) + 1) % 32] + code[1:]
    with pytest.raises(ValueError):
        format_code(wrong)


def test_normalise_round_trips_printed_lowercase_spaced_and_dashed_forms():
    for code in _sample_codes(50):
        printed = format_code(code)
        assert normalise(code) == code
        assert normalise(printed) == code
        assert normalise(printed.lower()) == code
        assert normalise(" ".join(printed.split("-"))) == code
        assert normalise(printed.replace("-", "–")) == code  # en dash, as a word processor writes it
        assert normalise("  " + printed.lower().replace("-", " - ") + "\n") == code
        assert normalise(printed.replace("-", "\u00a0")) == code  # no-break space from a PDF copy
        assert classify(printed.lower()) is CodeShape.WELL_FORMED


def test_normalise_applies_crockford_reading_aliases():
    code = "0" + "1" * 12
    code += check_symbol(code)
    assert normalise("O" + "I" * 6 + "L" * 6 + code[-1]) == code
    assert normalise("o" + "i" * 6 + "l" * 6 + code[-1].lower()) == code
    assert classify("o" + "l" * 12 + code[-1]) is CodeShape.WELL_FORMED


def test_check_symbol_of_a_known_payload():
    # Worked by hand: all zeros give sum 0, so the check is 0; payload "1" (doubled: 2) needs 30 = "Y".
    assert check_symbol("0" * 13) == "0"
    assert check_symbol("0" * 12 + "1") == "Y"
    assert is_well_formed("0" * 12 + "1Y")


def test_every_single_substitution_is_mistyped():
    for code in _sample_codes(200):
        for position in range(CODE_LENGTH):
            for symbol in ALPHABET:
                if symbol == code[position]:
                    continue
                typo = code[:position] + symbol + code[position + 1 :]
                assert classify(typo) is CodeShape.MISTYPED, (code, typo)


def _swap(code: str, position: int) -> str:
    return code[:position] + code[position + 1] + code[position] + code[position + 2 :]


def test_adjacent_transpositions_are_mistyped_except_zero_and_z():
    missed: list[str] = []
    for code in _sample_codes(200):
        for position in range(CODE_LENGTH - 1):
            if code[position] == code[position + 1]:
                continue  # swapping equal symbols is no error
            swapped = _swap(code, position)
            shape = classify(swapped)
            if {code[position], code[position + 1]} == {"0", "Z"}:
                missed.append(swapped)
                assert shape is CodeShape.WELL_FORMED  # the documented blind spot
            else:
                assert shape is CodeShape.MISTYPED, (code, swapped)
    # Random codes rarely hold "0Z"; the exhaustive test below covers that pair at every position.
    assert all(classify(code) is CodeShape.WELL_FORMED for code in missed)


def test_adjacent_transpositions_every_symbol_pair_at_every_position():
    # Exhaustive over pairs: builds a code around each pair (a, b) at each position and swaps it.
    base = _sample_codes(1)[0][:-1]
    for a in ALPHABET:
        for b in ALPHABET:
            if a == b:
                continue
            for position in range(CODE_LENGTH - 1):
                payload = list(base)
                # Positions 0..11 lie in the payload; position 12 pairs the last payload symbol with the check,
                # so choose the payload so that the check symbol comes out as b.
                if position < CODE_LENGTH - 2:
                    payload[position : position + 2] = [a, b]
                    code = "".join(payload) + check_symbol("".join(payload))
                else:
                    payload[-1] = a
                    for filler in ALPHABET:
                        payload[0] = filler
                        if check_symbol("".join(payload)) == b:
                            break
                    code = "".join(payload) + check_symbol("".join(payload))
                    assert code[-1] == b  # position 0 is doubled, like 12, and doubling is a permutation
                expected = CodeShape.WELL_FORMED if {a, b} == {"0", "Z"} else CodeShape.MISTYPED
                assert classify(_swap(code, position)) is expected, (code, position)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "ABCDEFGHJKMNP",  # 13 symbols
        "ABCDEFGHJKMNPQR",  # 15 symbols
        "U",
        "UUUUUUUUUUUUUU",  # U is outside the alphabet (Crockford excludes it), not an alias
        "ABCD-EFGH-JKMN-PU",
        "✓",
        "✓" * 14,
        "ABCD.EFGH.JKMN.PQ",
        "ABCD_EFGH_JKMN_PQ",
        "ABCDEFGHJKMNP!",
        "ıııııııııııııı",  # dotless i upper-cases to I: must not be taken for an alias of 1
        "ßßßßßßß",  # upper-cases to "SS" * 7, 14 ASCII letters
        "１２３４５６７８９０１２３４",  # full-width digits
        "A" * 10_240,
        "-" * 10_240,
    ],
)
def test_malformed_inputs(text):
    assert normalise(text) is None
    assert classify(text) is CodeShape.MALFORMED
    assert not is_well_formed(text)


def test_input_length_is_capped_before_cleaning():
    code = new_code()
    # Valid after removing separators, but far beyond what anyone types: refused without looking further.
    assert classify(" " * 100 + code) is CodeShape.MALFORMED
    assert classify(" " * 10 + code) is CodeShape.WELL_FORMED
