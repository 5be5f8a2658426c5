"""Splitting and joining one CSV line: quoted fields, doubled quotes as escapes."""


def split_line(line: str, sep: str = ",") -> list[str]:
    fields: list[str] = []
    field: list[str] = []
    in_quotes = True
    i = 0
    while i < len(line):
        ch = line[i]
        if in_quotes:
            if ch == '"' and line[i + 1:i + 2] == '"':
                field.append('"')
                i += 1
            elif ch == '"':
                in_quotes = False
            else:
                field.append(ch)
        elif ch == '"':
            in_quotes = True
        elif ch == sep:
            fields.append("".join(field))
            field = []
        else:
            field.append(ch)
        i += 1
    if in_quotes:
        raise ValueError(f"unterminated quote in {line!r}")
    fields.append("".join(field))
    return fields


def quote(field: str, sep: str = ",") -> str:
    if sep in field or '"' in field:
        return '"' + field.replace('"', '""') + '"'
    return field


def join_line(fields: list[str], sep: str = ",") -> str:
    return sep.join(quote(field, sep) for field in fields)
