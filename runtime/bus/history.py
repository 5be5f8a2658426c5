"""The recent tasks of a swarm, read from its results stream by sequence (newest first).

The results stream keeps one message per task (`max_msgs_per_subject = 1`), so its sequence
numbers have gaps where a result was stored again. `recent_results` reads backwards in
windows of as many sequences as it still needs results: each window is read forwards with
`STREAM.MSG.GET` `next_by_subj` (one request per stored result, gaps skipped by the server),
and a window that held nothing doubles the next one.
It needs only the message-get permission the swarm's `_client` user has (no consumer).
"""

from __future__ import annotations

import nats.js.errors

from reverie.protocol import Codec, ProtocolError, Result

from .bus import Bus

__all__ = ["MAX_RECENT", "recent_results"]

MAX_RECENT = 200
"""The most results one call reads, by default."""


async def recent_results(bus: Bus, limit: int = MAX_RECENT) -> list[tuple[int, Result]]:
    """The newest `limit` stored results as (stream sequence, result), newest first. A message
    that does not decode as a Result, or names a task other than its subject's, is left out."""
    if limit <= 0:
        return []
    s = bus.subjects
    codec: Codec[Result] = Codec(Result, max_bytes=bus.max_message_bytes, max_depth=None)
    state = (await bus.js.stream_info(s.results_stream)).state
    if state.messages == 0:
        return []
    found: list[tuple[int, Result]] = []
    hi, window = state.last_seq, limit
    while hi >= state.first_seq and len(found) < limit:
        lo = max(state.first_seq, hi - window + 1)
        batch: list[tuple[int, Result]] = []
        seq = lo
        while seq <= hi:
            try:
                raw = await bus.js.get_msg(s.results_stream, seq=seq, subject=s.all_results, next=True)
            except nats.js.errors.NotFoundError:
                break  # nothing stored at or after `seq`
            if raw.seq is None or raw.seq > hi:
                break
            seq = raw.seq + 1
            try:
                result = codec.decode(raw.data or b"")
            except ProtocolError:
                continue
            if raw.subject == s.result(result.task_id):
                batch.append((raw.seq, result))
        found.extend(reversed(batch))
        # a window with nothing in it: the stream is sparse here, look further back at once
        hi, window = lo - 1, window * 2 if not batch else limit - len(found)
    return found[:limit]
