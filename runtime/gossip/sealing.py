"""Fragment payload encryption under swarm content keys, and distributing those keys.

Payloads are sealed with ChaCha20-Poly1305 under a content key named by `key_id`; the AAD
binds author, seq and key id, so a ciphertext copied into another author's feed or another
position fails to open even though the block signature would cover it there. Content keys
reach members sealed to their certified X25519 key (ephemeral X25519, HKDF-SHA256,
ChaCha20-Poly1305): rotating a key is installing a new one and retiring the old.
"""

from __future__ import annotations

import os
from typing import Protocol

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import Undecryptable
from .identity import AgentKeys

__all__ = ["ContentKey", "ContentKeyring", "Sealed", "open_key", "seal", "seal_key_for"]

KEY_BYTES = 32
NONCE_BYTES = 12
_PAYLOAD_CONTEXT = "reverie.gossip.payload.v1"
_KEY_CONTEXT = b"reverie.gossip.content-key.v1"
_encode = msgspec.msgpack.Encoder().encode
_ZERO_NONCE = bytes(NONCE_BYTES)  # safe: every key-wrapping key is fresh (ephemeral X25519)


class Sealed(Protocol):
    """What `ContentKeyring.open` needs of a fragment."""

    @property
    def author(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def key_id(self) -> str: ...
    @property
    def nonce(self) -> bytes: ...
    @property
    def ciphertext(self) -> bytes: ...


class ContentKey(msgspec.Struct, frozen=True):
    """A swarm content key and its id."""

    key_id: str
    key: bytes

    @classmethod
    def generate(cls, key_id: str) -> ContentKey:
        return cls(key_id, os.urandom(KEY_BYTES))


def _aad(author: str, seq: int, key_id: str) -> bytes:
    return _encode((_PAYLOAD_CONTEXT, author, seq, key_id))


def seal(content_key: ContentKey, author: str, seq: int, plaintext: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext) of `plaintext` for fragment `seq` of `author`."""
    nonce = os.urandom(NONCE_BYTES)
    aead = ChaCha20Poly1305(content_key.key)
    return nonce, aead.encrypt(nonce, plaintext, _aad(author, seq, content_key.key_id))


class ContentKeyring:
    """The content keys a member holds: the current one seals, every installed one opens."""

    __slots__ = ("_aeads", "_current", "_keys")

    def __init__(self) -> None:
        self._keys: dict[str, ContentKey] = {}
        self._aeads: dict[str, ChaCha20Poly1305] = {}
        self._current: str | None = None

    def install(self, key_id: str, key: bytes, *, current: bool = True) -> None:
        """Add a key; with `current` (the default) new payloads are sealed under it from now on."""
        if len(key) != KEY_BYTES:
            raise ValueError(f"a content key is {KEY_BYTES} bytes, got {len(key)}")
        self._keys[key_id] = ContentKey(key_id, bytes(key))
        self._aeads[key_id] = ChaCha20Poly1305(key)
        if current or self._current is None:
            self._current = key_id

    def retire(self, key_id: str) -> None:
        """Forget a key: what was sealed under it no longer opens here."""
        self._keys.pop(key_id, None)
        self._aeads.pop(key_id, None)
        if self._current == key_id:
            self._current = None

    def current(self) -> ContentKey:
        if self._current is None:
            raise Undecryptable("no current content key is installed")
        return self._keys[self._current]

    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def open(self, fragment: Sealed) -> bytes:
        """The plaintext of `fragment`, or `Undecryptable` (unknown key id, or it does not authenticate)."""
        aead = self._aeads.get(fragment.key_id)
        if aead is None:
            raise Undecryptable(f"fragment {fragment.seq} of {fragment.author} is sealed under "
                                f"content key {fragment.key_id!r}, which is not installed")
        try:
            return aead.decrypt(fragment.nonce, fragment.ciphertext,
                                _aad(fragment.author, fragment.seq, fragment.key_id))
        except (InvalidTag, ValueError):
            raise Undecryptable(f"fragment {fragment.seq} of {fragment.author} does not authenticate "
                                f"under content key {fragment.key_id!r}") from None


def _wrapping_key(shared: bytes, ephemeral_public: bytes, member_public: bytes) -> ChaCha20Poly1305:
    key = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
               info=_KEY_CONTEXT + ephemeral_public + member_public).derive(shared)
    return ChaCha20Poly1305(key)


def seal_key_for(member_box_public_key: bytes, key_id: str, key: bytes) -> bytes:
    """A blob only the holder of `member_box_public_key`'s private key can open: ephemeral public key || ciphertext."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(member_box_public_key))
    aead = _wrapping_key(shared, ephemeral_public, member_box_public_key)
    return ephemeral_public + aead.encrypt(_ZERO_NONCE, _encode((key_id, key)), _KEY_CONTEXT)


def open_key(agent_keys: AgentKeys, blob: bytes) -> tuple[str, bytes]:
    """(key_id, key) from a blob `seal_key_for` made for this agent, or `Undecryptable`."""
    ephemeral_public, ciphertext = blob[:KEY_BYTES], blob[KEY_BYTES:]
    try:
        shared = agent_keys.exchange(ephemeral_public)
        aead = _wrapping_key(shared, ephemeral_public, agent_keys.box_public)
        key_id, key = msgspec.msgpack.decode(aead.decrypt(_ZERO_NONCE, ciphertext, _KEY_CONTEXT),
                                             type=tuple[str, bytes])
    except (InvalidTag, ValueError, msgspec.DecodeError):
        raise Undecryptable("the content key blob was not sealed to this agent, or is corrupt") from None
    if len(key) != KEY_BYTES:
        raise Undecryptable(f"the content key {key_id!r} is {len(key)} bytes, expected {KEY_BYTES}")
    return key_id, key
