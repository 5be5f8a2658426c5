"""Luhn (mod 10) check digits, as used on payment card numbers."""


def luhn_checksum(digits: str) -> int:
    total = 0
    for position, ch in enumerate(reversed(digits)):
        d = int(ch)
        if position % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total // 10


def normalize(number: str) -> str:
    return number.replace(" ", "").replace("-", "")


def is_valid(number: str) -> bool:
    digits = normalize(number)
    if not digits.isdigit() or len(digits) < 2:
        return False
    return luhn_checksum(digits) == 0


def check_digit(partial: str) -> str:
    """The digit to append to `partial` so that the result passes the Luhn check."""
    return str((10 - luhn_checksum(normalize(partial) + "0")) % 10)
