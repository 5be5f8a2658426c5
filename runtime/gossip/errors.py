"""Errors of the gossip layer, all under `ReverieError` so callers catch one base.

Every refusal is a distinct subclass so a caller can score peers by what they sent: a
`Replay` is harmless (count it), a `Fork` is proof the author equivocated, the rest are
corrupt or forged input.
"""

from __future__ import annotations

from reverie.protocol.errors import ReverieError
from reverie.runtime.keyfiles import InsecureKeyFile, KeyFileError

__all__ = [
    "BadCertificateSignature", "BadSignature", "BrokenChain", "CertificateError", "CertificateExpired",
    "CertificateRevoked", "FeedFrozen", "Fork", "Gap", "GossipError", "InsecureKeyFile", "KeyFileError",
    "Malformed", "Replay", "Undecryptable", "UnknownAuthor", "UnsignedFragment",
]


class GossipError(ReverieError):
    """Base of every gossip error."""


class CertificateError(GossipError):
    """An author's certificate does not admit it now."""


class BadCertificateSignature(CertificateError):
    """The certificate was not signed by the swarm key (forged or tampered)."""


class CertificateExpired(CertificateError):
    """The certificate is outside its validity window (expired, or not yet valid)."""


class CertificateRevoked(CertificateError):
    """The certificate's serial is on the revoked list."""


class UnknownAuthor(CertificateError):
    """No certificate is known for the author."""


class Malformed(GossipError):
    """Bytes that do not decode to a well-formed, canonically encoded value, or are too large."""


class BadSignature(GossipError):
    """A block's signature does not verify under its author's certified key."""


class UnsignedFragment(BadSignature):
    """A fragment whose hash is not the one its block signed: it was altered or swapped."""


class BrokenChain(GossipError):
    """A correctly signed block that does not continue the author's feed (wrong prev or seq)."""


class Gap(GossipError):
    """A block beyond the next expected one: blocks in between are missing; fetch them first."""


class Replay(GossipError):
    """The identical block was already admitted: nothing changed. Harmless; count it."""

    def __init__(self, author: str, index: int) -> None:
        super().__init__(f"block {index} of {author} was already admitted")
        self.author = author
        self.index = index


class Fork(GossipError):
    """The author signed two different blocks for one index; its feed is frozen from now on.

    `admitted` and `conflicting` are the digests of the two blocks: with the blocks themselves
    they are the proof of equivocation.
    """

    def __init__(self, author: str, index: int, admitted: bytes, conflicting: bytes) -> None:
        super().__init__(f"{author} forked its feed at block {index}: "
                         f"{admitted.hex()[:16]} admitted, {conflicting.hex()[:16]} offered")
        self.author = author
        self.index = index
        self.admitted = admitted
        self.conflicting = conflicting


class FeedFrozen(GossipError):
    """The author's feed was frozen by an earlier fork; nothing more from it is admitted."""


class Undecryptable(GossipError):
    """A sealed payload or key blob that does not open: unknown key id, or a failed tag."""
