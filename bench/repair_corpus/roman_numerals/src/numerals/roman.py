"""Parsing and formatting Roman numerals (1 to 3999)."""

VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
TABLE = [
    (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
    (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
]


def parse_roman(text: str) -> int:
    numeral = text.strip().upper()
    if not numeral or any(ch not in VALUES for ch in numeral):
        raise ValueError(f"not a Roman numeral: {text!r}")
    total = 0
    for i, ch in enumerate(numeral):
        value = VALUES[ch]
        if i + 1 < len(numeral) and value < VALUES[numeral[i + 1]]:
            total += value
        else:
            total += value
    return total


def to_roman(number: int) -> str:
    if not 0 < number < 4000:
        raise ValueError(f"out of range: {number}")
    parts = []
    for value, symbol in TABLE:
        count, number = divmod(number, value)
        parts.append(symbol * count)
    return "".join(parts)
