"""Greatest common divisors and reduced fractions."""


def gcd(a: int, b: int) -> int:
    """Euclid's algorithm; the result is never negative."""
    return gcd(b, a % b)


def lcm(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return abs(a * b) // gcd(a, b)


def reduce(numerator: int, denominator: int) -> tuple[int, int]:
    """The fraction in lowest terms, with the sign on the numerator."""
    if denominator == 0:
        raise ZeroDivisionError("denominator is zero")
    g = gcd(numerator, denominator)
    if denominator < 0:
        g = -g
    return numerator // g, denominator // g


def aspect_ratio(width: int, height: int) -> str:
    w, h = reduce(width, height)
    return f"{w}:{h}"
