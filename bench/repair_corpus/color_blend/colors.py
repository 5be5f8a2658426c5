"""Linear colour blending for progress bars and heat maps."""

RGB = tuple[int, int, int]


def lerp(a: float, b: float, t: float) -> float:
    """The value a fraction `t` of the way from `a` to `b`."""
    return a + (b - a) * t


def blend(start: RGB, end: RGB, t: float) -> RGB:
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must be within [0, 1], got {t}")
    r, g, b = (round(lerp(y, x, t)) for x, y in zip(start, end, strict=True))
    return r, g, b


def gradient(start: RGB, end: RGB, steps: int) -> list[RGB]:
    if steps < 2:
        raise ValueError("a gradient needs at least two steps")
    return [blend(start, end, i / (steps - 1)) for i in range(steps)]


def to_hex(color: RGB) -> str:
    r, g, b = color
    return f"#{r:02x}{g:02x}{b:02x}"


def from_hex(text: str) -> RGB:
    value = text.removeprefix("#")
    if len(value) != 6:
        raise ValueError(f"not a #rrggbb colour: {text!r}")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
