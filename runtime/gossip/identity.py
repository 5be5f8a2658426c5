"""Keys and certificates: who may write to the swarm's feeds.

The swarm key (Ed25519) certifies each agent's two public keys: an Ed25519 key that signs its
feed blocks and an X25519 key that content keys are sealed to. Private keys are raw 32-byte
files created with mode 0600 by the open(2) that creates them (O_EXCL: never truncating an
existing key, no window where another user could read it) and refused later if their mode lets
group or others in, as the memory layer treats its data key.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from ..keyfiles import create_private, fsync_dir, read_private
from .errors import (
    BadCertificateSignature,
    CertificateExpired,
    CertificateRevoked,
    UnknownAuthor,
)

__all__ = ["AgentKeys", "Certificate", "SwarmKey", "Trust", "issue", "verify"]

KEY_BYTES = 32
SWARM_KEY_FILE = "swarm.key"
SIGNING_KEY_FILE = "agent-sign.key"
BOX_KEY_FILE = "agent-box.key"
CLOCK_SKEW = 60.0  # seconds a certificate may be presented before its issued_at
_CERT_CONTEXT = b"reverie.gossip.certificate.v1\0"
_encode = msgspec.msgpack.Encoder().encode


def _raw_private(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _raw_public(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _write_key(path: Path, secret: bytes) -> None:
    create_private(path, secret)


def _read_key(path: Path) -> bytes:
    return read_private(path, KEY_BYTES)


class SwarmKey:
    """The swarm's certifying key (Ed25519); only the operator that issues certificates has it."""

    __slots__ = ("_key", "public_bytes")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_bytes: bytes = _raw_public(key)

    @classmethod
    def generate(cls) -> SwarmKey:
        return cls(Ed25519PrivateKey.generate())

    def save(self, directory: Path) -> Path:
        path = Path(directory) / SWARM_KEY_FILE
        _write_key(path, _raw_private(self._key))
        fsync_dir(Path(directory))
        return path

    @classmethod
    def load(cls, directory: Path) -> SwarmKey:
        return cls(Ed25519PrivateKey.from_private_bytes(_read_key(Path(directory) / SWARM_KEY_FILE)))

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


class AgentKeys:
    """One agent's private keys: Ed25519 to sign its feed, X25519 to receive content keys."""

    __slots__ = ("_box", "_signing", "box_public", "signing_public")

    def __init__(self, signing: Ed25519PrivateKey, box: X25519PrivateKey) -> None:
        self._signing = signing
        self._box = box
        self.signing_public: bytes = _raw_public(signing)
        self.box_public: bytes = _raw_public(box)

    @classmethod
    def generate(cls) -> AgentKeys:
        return cls(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    def save(self, directory: Path) -> tuple[Path, Path]:
        directory = Path(directory)
        paths = (directory / SIGNING_KEY_FILE, directory / BOX_KEY_FILE)
        _write_key(paths[0], _raw_private(self._signing))
        _write_key(paths[1], _raw_private(self._box))
        fsync_dir(directory)
        return paths

    @classmethod
    def load(cls, directory: Path) -> AgentKeys:
        directory = Path(directory)
        return cls(Ed25519PrivateKey.from_private_bytes(_read_key(directory / SIGNING_KEY_FILE)),
                   X25519PrivateKey.from_private_bytes(_read_key(directory / BOX_KEY_FILE)))

    def sign(self, data: bytes) -> bytes:
        return self._signing.sign(data)

    def exchange(self, peer_public: bytes) -> bytes:
        """X25519 shared secret with `peer_public` (raises ValueError on a low-order point)."""
        return self._box.exchange(X25519PublicKey.from_public_bytes(peer_public))


class Certificate(msgspec.Struct, frozen=True, kw_only=True):
    """The swarm's statement that `agent_id` owns these two public keys, in these roles, for a while."""

    agent_id: str
    signing_key: bytes
    box_key: bytes
    roles: tuple[str, ...]
    issued_at: float
    expires_at: float
    serial: int
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        """What the swarm key signs: a context tag and the msgpack of every other field, in order."""
        return _CERT_CONTEXT + _encode((self.agent_id, self.signing_key, self.box_key, self.roles,
                                        float(self.issued_at), float(self.expires_at), self.serial))


def issue(swarm_key: SwarmKey, agent_keys: AgentKeys, agent_id: str, roles: tuple[str, ...] | list[str],
          ttl_seconds: float, *, now: float | None = None) -> Certificate:
    """A certificate for `agent_keys` as `agent_id`, valid from `now` (default: the clock) for `ttl_seconds`."""
    issued = float(time.time() if now is None else now)
    unsigned = Certificate(agent_id=agent_id, signing_key=agent_keys.signing_public,
                           box_key=agent_keys.box_public, roles=tuple(roles), issued_at=issued,
                           expires_at=issued + float(ttl_seconds), serial=secrets.randbits(63))
    return msgspec.structs.replace(unsigned, signature=swarm_key.sign(unsigned.signed_bytes()))


def verify(cert: Certificate, swarm_public_key: bytes, now: float,
           revoked: frozenset[int] | set[int] = frozenset()) -> None:
    """Raise the matching `CertificateError` unless `cert` is signed by the swarm, unrevoked and current."""
    try:
        Ed25519PublicKey.from_public_bytes(swarm_public_key).verify(cert.signature, cert.signed_bytes())
    except (InvalidSignature, ValueError):
        raise BadCertificateSignature(f"the certificate of {cert.agent_id!r} (serial {cert.serial}) "
                                      "is not signed by the swarm key") from None
    if cert.serial in revoked:
        raise CertificateRevoked(f"the certificate of {cert.agent_id!r} (serial {cert.serial}) is revoked")
    _check_window(cert, now)


def _check_window(cert: Certificate, now: float) -> None:
    if now >= cert.expires_at:
        raise CertificateExpired(f"the certificate of {cert.agent_id!r} expired at {cert.expires_at}")
    if now + CLOCK_SKEW < cert.issued_at:
        raise CertificateExpired(f"the certificate of {cert.agent_id!r} is not valid until {cert.issued_at}")


class Trust:
    """The certificates a peer accepts authors by, and the revoked serials.

    Signatures are checked once, when a certificate is added; `author` then only checks the
    validity window and revocation, so admitting a block costs no extra signature check.
    """

    __slots__ = ("_certs", "_revoked", "swarm_public_key")

    def __init__(self, swarm_public_key: bytes, revoked: set[int] | frozenset[int] = frozenset()) -> None:
        self.swarm_public_key = swarm_public_key
        self._certs: dict[str, Certificate] = {}
        self._revoked: set[int] = set(revoked)

    def add(self, cert: Certificate, now: float) -> None:
        """Verify `cert` and make it the current certificate of its agent (replacing an older one)."""
        verify(cert, self.swarm_public_key, now, self._revoked)
        self._certs[cert.agent_id] = cert

    def revoke(self, serial: int) -> None:
        self._revoked.add(serial)

    @property
    def revoked(self) -> frozenset[int]:
        return frozenset(self._revoked)

    def author(self, agent_id: str, now: float) -> Certificate:
        """The valid certificate of `agent_id`, or `UnknownAuthor` / `CertificateRevoked` / `CertificateExpired`."""
        cert = self._certs.get(agent_id)
        if cert is None:
            raise UnknownAuthor(f"no certificate is known for {agent_id!r}")
        if cert.serial in self._revoked:
            raise CertificateRevoked(f"the certificate of {agent_id!r} (serial {cert.serial}) is revoked")
        _check_window(cert, now)
        return cert
