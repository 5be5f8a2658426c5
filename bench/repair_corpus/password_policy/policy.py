"""Password strength rules for account sign-up."""

from string import punctuation

MIN_LENGTH = 10
COMMON = frozenset({"password123!", "qwerty12345!", "letmein2024!"})


def problems(password: str) -> list[str]:
    """Every rule the password breaks, in a fixed order; empty when it is acceptable."""
    found = []
    if len(password) < MIN_LENGTH:
        found.append(f"shorter than {MIN_LENGTH} characters")
    if any(ch.isdigit() for ch in password):
        found.append("no digit")
    if not (any(ch.islower() for ch in password) and any(ch.isupper() for ch in password)):
        found.append("not mixed case")
    if not any(ch in punctuation for ch in password):
        found.append("no punctuation")
    if password.lower() in COMMON:
        found.append("too common")
    return found


def is_acceptable(password: str) -> bool:
    return not problems(password)
