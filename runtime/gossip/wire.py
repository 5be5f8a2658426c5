"""What gossip puts on the bus, and what a fragment's sealed payload holds.

Anti-entropy is push-pull over `rv.<swarm>.gossip.<agent>`: the initiator sends its heads
(`{author: last seq held}`), the peer answers with the blocks the initiator lacks and its own
heads, and the initiator pushes the blocks the peer lacks. Blocks travel as their signed
encodings (`Carried`) and are decoded, verified and decrypted only by the receiving node, so
nothing on the bus is trusted for being well-formed. Payloads are plaintext only inside a
fragment's ChaCha20-Poly1305 seal.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from reverie.protocol.messages import Error, Message
from reverie.runtime.memory import Lesson

__all__ = [
    "Carried", "LessonShare", "MemoryShare", "Payload", "Push", "PushAck", "SyncReply", "SyncRequest",
    "decode_payload", "encode_payload",
]

MAX_AUTHORS = 4096
"""Heads beyond this many authors are refused: a request cannot make a peer compare without bound."""

Heads = Annotated[dict[str, Annotated[int, msgspec.Meta(ge=0)]], msgspec.Meta(max_length=MAX_AUTHORS)]


class Carried(msgspec.Struct, frozen=True, array_like=True):
    """One block as its author signed it, with its fragments, all still encoded."""

    block: bytes
    fragments: list[bytes]


class SyncRequest(Message, frozen=True, tag="gossip.sync"):
    """"Here is what I hold; send me what I lack." `sender` is informational: what is admitted
    is decided by each block's signature, not by who carried it."""

    sender: str
    heads: Heads


class SyncReply(Message, frozen=True, tag="gossip.delta"):
    """Blocks the requester lacks (at most the responder's reply budget; `more` if it held
    back some). The responder learns from the request's heads what it lacks and pulls that in
    turn, so the reply carries no heads of its own."""

    blocks: list[Carried] = msgspec.field(default_factory=list)
    more: bool = False


class Push(Message, frozen=True, tag="gossip.push"):
    sender: str
    blocks: list[Carried]
    more: bool = False


class PushAck(Message, frozen=True, tag="gossip.ack"):
    admitted: int
    refused: int


Request = SyncRequest | Push
Reply = SyncReply | PushAck | Error


# ------------------------------------------------------------------ payloads (sealed in fragments)


class LessonShare(msgspec.Struct, frozen=True, tag="lesson"):
    """A lesson learned by the author; the receiver indexes it for recall under the author's name."""

    lesson: Lesson


class MemoryShare(msgspec.Struct, frozen=True, tag="memory"):
    """A memory the author shares (an accepted path, a summary); stored at `/peers/<author><path>`."""

    path: str
    content: bytes


Payload = LessonShare | MemoryShare

_encode = msgspec.msgpack.Encoder().encode
_payload = msgspec.msgpack.Decoder(Payload)


def encode_payload(payload: Payload) -> bytes:
    return _encode(payload)


def decode_payload(data: bytes) -> Payload:
    """Raises msgspec.DecodeError / ValueError on a payload that is not one of ours."""
    return _payload.decode(data)
