"""Signed, hash-chained feed blocks: one signature admits a whole block of fragments.

As Hypercore signs tree roots rather than entries, an author signs a block header listing the
sha256 of each fragment and the digest of its previous block; a peer verifies one Ed25519
signature per block, then only hashes the fragments. Everything is checked before anything is
decrypted or stored, and a correctly signed block that contradicts an admitted one is proof of
equivocation: the author's feed is frozen.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, TypeVar

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from reverie.protocol import DEFAULT_MAX_DEPTH, nesting_exceeds

from .errors import (
    BadSignature,
    BrokenChain,
    FeedFrozen,
    Fork,
    Gap,
    Malformed,
    Replay,
    UnsignedFragment,
)
from .identity import AgentKeys, Trust
from .sealing import NONCE_BYTES, ContentKey, seal

__all__ = [
    "Block", "FeedState", "FeedVerifier", "FeedWriter", "Fragment", "VerifierState",
    "decode_block", "decode_fragment", "encode_block", "encode_fragment",
]

MAX_FRAGMENTS = 1024
MAX_BLOCK_BYTES = 64 * 1024
MAX_FRAGMENT_BYTES = 1024 * 1024
ZERO_DIGEST = bytes(32)
_BLOCK_CONTEXT = b"reverie.gossip.block.v1\0"

Digest = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Seq = Annotated[int, msgspec.Meta(ge=0)]


class Fragment(msgspec.Struct, frozen=True, array_like=True):
    """One sealed payload at position `seq` (1-based, contiguous) of `author`'s feed."""

    author: str
    seq: Annotated[int, msgspec.Meta(ge=1)]
    key_id: str
    nonce: Annotated[bytes, msgspec.Meta(min_length=NONCE_BYTES, max_length=NONCE_BYTES)]
    ciphertext: bytes

    @property
    def hash(self) -> bytes:
        """sha256 of the fragment's msgpack encoding: what its block signs."""
        return hashlib.sha256(_encode(self)).digest()


class Block(msgspec.Struct, frozen=True, array_like=True):
    """A signed header admitting `len(hashes)` fragments from `first_seq` on, chained by `prev`."""

    author: str
    index: Seq
    first_seq: Annotated[int, msgspec.Meta(ge=1)]
    hashes: Annotated[tuple[Digest, ...], msgspec.Meta(min_length=1, max_length=MAX_FRAGMENTS)]
    prev: Digest
    signature: Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]

    def header(self) -> bytes:
        """The signed bytes: a context tag and the msgpack of (author, index, first_seq, hashes, prev)."""
        return _BLOCK_CONTEXT + _encode((self.author, self.index, self.first_seq, self.hashes, self.prev))

    @property
    def digest(self) -> bytes:
        """sha256 of the signed header: the next block's `prev`."""
        return hashlib.sha256(self.header()).digest()


_encode = msgspec.msgpack.Encoder().encode
_block_decoder = msgspec.msgpack.Decoder(Block)
_fragment_decoder = msgspec.msgpack.Decoder(Fragment)


def encode_block(block: Block) -> bytes:
    return _encode(block)


def encode_fragment(fragment: Fragment) -> bytes:
    return _encode(fragment)


_T = TypeVar("_T", "Block", "Fragment")


def _decode(decoder: msgspec.msgpack.Decoder[_T], what: str, data: bytes, max_bytes: int) -> _T:
    if len(data) > max_bytes:
        raise Malformed(f"a {what} of {len(data)} bytes exceeds the limit of {max_bytes}")
    if nesting_exceeds(data, DEFAULT_MAX_DEPTH):
        raise Malformed(f"a {what} nested deeper than {DEFAULT_MAX_DEPTH} levels")
    try:
        value = decoder.decode(data)
    except (msgspec.DecodeError, ValueError) as exc:  # ValueError: msgspec's UnicodeDecodeError on bad UTF-8
        raise Malformed(f"not a {what}: {exc}") from None
    except RecursionError:
        raise Malformed(f"a {what} nested too deep to decode") from None
    if _encode(value) != data:  # one encoding per value: no malleable variants of a signed object
        raise Malformed(f"a {what} that is not canonically encoded")
    return value


def decode_block(data: bytes, max_bytes: int = MAX_BLOCK_BYTES) -> Block:
    """A block from the wire, or `Malformed` (undecodable, non-canonical, out of range, too large)."""
    return _decode(_block_decoder, "block", data, max_bytes)


def decode_fragment(data: bytes, max_bytes: int = MAX_FRAGMENT_BYTES) -> Fragment:
    """A fragment from the wire, or `Malformed`."""
    return _decode(_fragment_decoder, "fragment", data, max_bytes)


class FeedWriter:
    """Appends blocks to one author's feed. Pass `after` (its last block) to resume a feed:
    a writer that restarted from block 0 would fork its own feed and freeze it everywhere."""

    __slots__ = ("_keys", "_next_index", "_next_seq", "_prev", "author")

    def __init__(self, author: str, agent_keys: AgentKeys, *, after: Block | None = None) -> None:
        self.author = author
        self._keys = agent_keys
        if after is None:
            self._next_index, self._next_seq, self._prev = 0, 1, ZERO_DIGEST
        else:
            self._next_index = after.index + 1
            self._next_seq = after.first_seq + len(after.hashes)
            self._prev = after.digest

    def append(self, plaintext_payloads: list[bytes], content_key: ContentKey) -> tuple[Block, list[Fragment]]:
        """Seal the payloads under `content_key` and sign the block that admits them."""
        if not 1 <= len(plaintext_payloads) <= MAX_FRAGMENTS:
            raise ValueError(f"a block holds 1 to {MAX_FRAGMENTS} fragments, got {len(plaintext_payloads)}")
        fragments = []
        for seq, payload in enumerate(plaintext_payloads, start=self._next_seq):
            nonce, ciphertext = seal(content_key, self.author, seq, payload)
            fragments.append(Fragment(self.author, seq, content_key.key_id, nonce, ciphertext))
        unsigned = Block(self.author, self._next_index, self._next_seq, tuple(f.hash for f in fragments),
                         self._prev, bytes(64))
        block = msgspec.structs.replace(unsigned, signature=self._keys.sign(unsigned.header()))
        self._next_index += 1
        self._next_seq += len(fragments)
        self._prev = block.digest
        return block, fragments


class FeedState(msgspec.Struct, frozen=True):
    """What a verifier knows of one author's feed: the digest of every admitted block, in index
    order (kept to tell a replay from a fork at any index), the last admitted seq, and whether a
    fork froze it."""

    author: str
    digests: tuple[bytes, ...] = ()
    last_seq: int = 0
    frozen: bool = False


class VerifierState(msgspec.Struct, frozen=True):
    """Everything a `FeedVerifier` keeps, for a caller to persist and `load_state` later."""

    feeds: tuple[FeedState, ...] = ()


class _Feed:
    __slots__ = ("digests", "frozen", "last_seq")

    def __init__(self, digests: list[bytes], last_seq: int, frozen: bool) -> None:
        self.digests = digests
        self.last_seq = last_seq
        self.frozen = frozen


class FeedVerifier:
    """Admits blocks of certified authors in order, refusing everything else with a typed error."""

    __slots__ = ("_feeds", "_keys", "trust")

    def __init__(self, trust: Trust, state: VerifierState | None = None) -> None:
        self.trust = trust
        self._feeds: dict[str, _Feed] = {}
        self._keys: dict[bytes, Ed25519PublicKey] = {}
        if state is not None:
            self.load_state(state)

    def state(self) -> VerifierState:
        return VerifierState(tuple(FeedState(a, tuple(f.digests), f.last_seq, f.frozen)
                                   for a, f in sorted(self._feeds.items())))

    def load_state(self, state: VerifierState) -> None:
        self._feeds = {f.author: _Feed(list(f.digests), f.last_seq, f.frozen) for f in state.feeds}

    def admit(self, block: Block, fragments: list[Fragment], now: float) -> list[Fragment]:
        """`check` the block and `record` it at once (for callers with nothing to do in between)."""
        digest = self.check(block, fragments, now)
        self.record(block, digest)
        return list(fragments)

    def heads(self) -> dict[str, int]:
        """author -> last admitted seq, for every feed with at least one admitted block."""
        return {a: f.last_seq for a, f in self._feeds.items() if f.digests}

    def blocks_held(self, author: str) -> int:
        feed = self._feeds.get(author)
        return len(feed.digests) if feed is not None else 0

    def frozen(self, author: str) -> bool:
        feed = self._feeds.get(author)
        return feed is not None and feed.frozen

    def record(self, block: Block, digest: bytes) -> None:
        """Record a block `check` passed (and the caller stored): it is the author's next one.

        Raises `BrokenChain` if another block was recorded for that index in between."""
        feed = self._feeds.get(block.author)
        if feed is None:
            feed = self._feeds[block.author] = _Feed([], 0, False)
        if len(feed.digests) != block.index:
            raise BrokenChain(f"block {block.index} of {block.author} is no longer the next one")
        feed.digests.append(digest)
        feed.last_seq = block.first_seq + len(block.hashes) - 1

    def check(self, block: Block, fragments: list[Fragment], now: float) -> bytes:
        """Check `block` and its fragments; return the block's digest for `record`.

        In order, before anything changes: the author's certificate (valid now), its feed not
        frozen, the block signature, the chain (index and prev), seq contiguity, and each
        fragment against the hash the block signed. Only a proven fork changes state on refusal.
        A block is checked against the blocks recorded so far: check the blocks of one feed
        in order, recording each before checking the next.
        """
        author = block.author
        cert = self.trust.author(author, now)
        feed = self._feeds.get(author)
        if feed is not None and feed.frozen:
            raise FeedFrozen(f"the feed of {author} is frozen after a fork; block {block.index} refused")
        header = block.header()
        key = self._keys.get(cert.signing_key)
        if key is None:
            key = self._keys[cert.signing_key] = Ed25519PublicKey.from_public_bytes(cert.signing_key)
        try:
            key.verify(block.signature, header)
        except (InvalidSignature, ValueError):
            raise BadSignature(f"block {block.index} of {author} is not signed by its certified key") from None
        digest = hashlib.sha256(header).digest()
        digests = feed.digests if feed is not None else []
        expected = len(digests)
        if block.index < expected:
            if digests[block.index] == digest:
                raise Replay(author, block.index)
            if feed is None:  # pragma: no cover - index < 0 is refused by the type
                raise BrokenChain(f"block {block.index} of {author} has a negative index")
            feed.frozen = True
            raise Fork(author, block.index, digests[block.index], digest)
        if block.index > expected:
            raise Gap(f"block {block.index} of {author} arrived, block {expected} is next")
        if block.prev != (digests[-1] if digests else ZERO_DIGEST):
            raise BrokenChain(f"block {block.index} of {author} does not chain to block {expected - 1}")
        next_seq = (feed.last_seq if feed is not None else 0) + 1
        if block.first_seq != next_seq:
            kind = Gap if block.first_seq > next_seq else BrokenChain
            raise kind(f"block {block.index} of {author} starts at seq {block.first_seq}, {next_seq} is next")
        if len(fragments) != len(block.hashes):
            raise Malformed(f"block {block.index} of {author} signs {len(block.hashes)} fragments, "
                            f"{len(fragments)} came with it")
        for seq, (fragment, signed) in enumerate(zip(fragments, block.hashes, strict=True), start=block.first_seq):
            if fragment.author != author or fragment.seq != seq:
                raise Malformed(f"fragment {fragment.author}#{fragment.seq} is not {author}#{seq}, "
                                f"the position block {block.index} gives it")
            if fragment.hash != signed:
                raise UnsignedFragment(f"fragment {seq} of {author} is not the one block {block.index} signed")
        return digest
