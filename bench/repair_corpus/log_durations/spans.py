"""Job durations from a log of START/END lines, e.g. `2024-05-01T10:00:00 START backup`."""

from datetime import datetime


def parse_line(line: str) -> tuple[datetime, str, str]:
    stamp, event, job = line.split(maxsplit=2)
    if event not in ("START", "END"):
        raise ValueError(f"unknown event {event!r}")
    return datetime.fromisoformat(stamp), event, job.strip()


def durations(lines: list[str]) -> dict[str, float]:
    """Seconds each job ran; an END without a START is an error, a job still running is left out."""
    started: dict[str, datetime] = {}
    result: dict[str, float] = {}
    for line in lines:
        if not line.strip():
            continue
        stamp, event, job = parse_line(line)
        if event == "START":
            started[job] = stamp
        elif job in started:
            result[job] = (started.pop(job) - stamp).total_seconds()
        else:
            raise ValueError(f"END before START for {job!r}")
    return result


def slowest(lines: list[str]) -> str | None:
    spans = durations(lines)
    return max(spans, key=spans.__getitem__) if spans else None
