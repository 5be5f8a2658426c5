"""Gossip crypto core: certified identities, signed hash-chained feeds, sealed payloads.

`identity` says who may write (swarm-certified agent keys), `feed` admits their blocks in
order with one signature per block, `sealing` encrypts fragment payloads under rotating swarm
content keys delivered sealed to each member.
"""

from __future__ import annotations

from .errors import (
    BadCertificateSignature,
    BadSignature,
    BrokenChain,
    CertificateError,
    CertificateExpired,
    CertificateRevoked,
    FeedFrozen,
    Fork,
    Gap,
    GossipError,
    InsecureKeyFile,
    KeyFileError,
    Malformed,
    Replay,
    Undecryptable,
    UnknownAuthor,
    UnsignedFragment,
)
from .feed import (
    Block,
    FeedState,
    FeedVerifier,
    FeedWriter,
    Fragment,
    VerifierState,
    decode_block,
    decode_fragment,
    encode_block,
    encode_fragment,
)
from .identity import AgentKeys, Certificate, SwarmKey, Trust, issue, verify
from .sealing import ContentKey, ContentKeyring, open_key, seal_key_for
from .wire import LessonShare, MemoryShare, Payload

__all__ = [
    "AgentKeys", "BadCertificateSignature", "BadSignature", "Block", "BrokenChain", "Certificate",
    "CertificateError", "CertificateExpired", "CertificateRevoked", "ContentKey", "ContentKeyring",
    "FeedFrozen", "FeedState", "FeedVerifier", "FeedWriter", "Fork", "Fragment", "Gap", "GossipError",
    "InsecureKeyFile", "KeyFileError", "LessonShare", "Malformed", "MemoryShare", "Payload", "Replay",
    "SwarmKey", "Trust", "Undecryptable",
    "UnknownAuthor", "UnsignedFragment", "VerifierState", "decode_block", "decode_fragment",
    "encode_block", "encode_fragment", "issue", "open_key", "seal_key_for", "verify",
]
