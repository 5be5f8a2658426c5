"""Parse `[section]` headers, `key = value` lines, and `#` or `;` comments."""

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class ParseError(ValueError):
    def __init__(self, lineno: int, line: str) -> None:
        super().__init__(f"line {lineno}: cannot parse {line!r}")
        self.lineno = lineno


def parse(text: str) -> dict[str, dict[str, str]]:
    """Sections by name; keys before the first header go in the section ''."""
    sections: dict[str, dict[str, str]] = {"": {}}
    current = sections[""]
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line and line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), {})
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ParseError(lineno, raw)
        current[key.strip().lower()] = value.strip()
    return sections


def get_bool(sections: dict[str, dict[str, str]], section: str, key: str, default: bool = False) -> bool:
    value = sections.get(section, {}).get(key)
    if value is None:
        return default
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise ValueError(f"[{section}] {key}: not a boolean: {value!r}")
