"""A swarm's keys on disk: what `reverie keys` manages.

    <data_dir>/keys/swarm/swarm.key           the swarm's certifying key (0600; the operator's)
    <data_dir>/keys/swarm.pub                 its public half
    <data_dir>/keys/agents/<name>/            each agent's signing.key and box.key (0600)
    <data_dir>/keys/certs/<name>.cert         certificates, signed by the swarm key (public)
    <data_dir>/keys/revoked.list              revoked serials, signed by the swarm key
    <data_dir>/keys/content/<key id>/<name>.sealed   a content key sealed to one member
    <data_dir>/keys/content/current           the id of the content key fragments are sealed under

Revoking an agent also rotates the content key: the new key is sealed to every member but the
revoked one, so it can read nothing written from then on. Rotation installs the new key
before anyone uses it and never deletes old ones (`install, use, retire`), so no fragment
becomes unreadable while agents run.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from reverie.protocol import new_id

from ..keyfiles import write_atomic
from .errors import GossipError
from .identity import BOX_KEY_FILE, AgentKeys, Certificate, SwarmKey, Trust, issue
from .sealing import ContentKey, ContentKeyring, open_key, seal_key_for

__all__ = ["YEAR", "KeyStore", "KeyStoreError", "MemberInfo", "Revocations"]

YEAR = 365 * 24 * 3600.0
_RL_CONTEXT = b"reverie.gossip.revocations.v1\0"


class KeyStoreError(GossipError):
    """The key store is missing, already initialised, or asked for something it cannot do."""


class Revocations(msgspec.Struct, frozen=True):
    serials: tuple[int, ...]
    issued_at: float
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        return _RL_CONTEXT + msgspec.msgpack.encode((sorted(self.serials), float(self.issued_at)))


class MemberInfo(msgspec.Struct, frozen=True):
    name: str
    roles: tuple[str, ...]
    serial: int
    expires_at: float
    revoked: bool
    content_keys: tuple[str, ...]


class KeyStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ paths

    def _dir(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    @property
    def initialised(self) -> bool:
        return (self.root / "swarm" / "swarm.key").exists()

    def _swarm(self) -> SwarmKey:
        if not self.initialised:
            raise KeyStoreError(f"no swarm key under {self.root}: run `reverie keys init CONFIG` first")
        return SwarmKey.load(self.root / "swarm")

    def swarm_public(self) -> bytes:
        return (self.root / "swarm.pub").read_bytes()

    # ------------------------------------------------------------------ operations

    def init(self, members: dict[str, tuple[str, ...]], *, ttl: float = YEAR) -> None:
        """Create the swarm key, every member's keys and certificate, and a first content key."""
        if self.initialised:
            raise KeyStoreError(f"{self.root} already holds a swarm key; use `keys add` or `keys rotate`")
        swarm = SwarmKey.generate()
        swarm.save(self._dir("swarm"))
        (self.root / "swarm.pub").write_bytes(swarm.public_bytes)
        self._write_revocations(swarm, ())
        for name, roles in members.items():
            self._issue(swarm, name, roles, ttl)
        self.rotate()

    def add(self, name: str, roles: tuple[str, ...], *, ttl: float = YEAR) -> Certificate:
        """Certify a new member and seal the current content key to it."""
        swarm = self._swarm()
        if (self.root / "certs" / f"{name}.cert").exists() and name not in self._revoked_names():
            raise KeyStoreError(f"{name!r} already has a certificate; revoke it first to re-key it")
        cert = self._issue(swarm, name, roles, ttl)
        current = self.current_key_id()
        if current is not None:
            key = self._operator_content_key(current)
            self._seal(current, key, name, cert)
        return cert

    def revoke(self, name: str) -> str:
        """Revoke `name`'s certificate and rotate the content key past it; returns the new key id."""
        swarm = self._swarm()
        cert = self.certificate(name)
        serials = set(self.revocations().serials) | {cert.serial}
        self._write_revocations(swarm, tuple(sorted(serials)))
        return self.rotate()

    def rotate(self) -> str:
        """A new content key, sealed to every valid member; it becomes current. Returns its id."""
        self._swarm()
        key = ContentKey.generate(f"k{int(time.time())}-{new_id()[:6]}")
        trust = self.trust()
        for cert in self.certificates():
            if cert.serial in trust.revoked:
                continue
            self._seal(key.key_id, key.key, cert.agent_id, cert)
        # the operator keeps it too (sealed to the swarm's own box key) so `add` can share it later
        self._seal(key.key_id, key.key, "_operator", None)
        current = self._dir("content") / "current"
        write_atomic(current, key.key_id.encode())
        return key.key_id

    # ------------------------------------------------------------------ reading

    def certificate(self, name: str) -> Certificate:
        path = self.root / "certs" / f"{name}.cert"
        try:
            return msgspec.msgpack.decode(path.read_bytes(), type=Certificate)
        except FileNotFoundError:
            raise KeyStoreError(f"no certificate for {name!r} under {self.root}") from None

    def certificates(self) -> list[Certificate]:
        folder = self.root / "certs"
        return [self.certificate(p.stem) for p in sorted(folder.glob("*.cert"))] if folder.exists() else []

    def revocations(self) -> Revocations:
        """The revocation list, checked against the swarm key (a tampered list is refused)."""
        rl = msgspec.msgpack.decode((self.root / "revoked.list").read_bytes(), type=Revocations)
        try:
            Ed25519PublicKey.from_public_bytes(self.swarm_public()).verify(rl.signature, rl.signed_bytes())
        except (InvalidSignature, ValueError):
            raise KeyStoreError(f"{self.root / 'revoked.list'} is not signed by the swarm key") from None
        return rl

    def _revoked_names(self) -> set[str]:
        revoked = set(self.revocations().serials)
        return {c.agent_id for c in self.certificates() if c.serial in revoked}

    def trust(self, now: float | None = None) -> Trust:
        """Every valid certificate, as a peer would accept authors."""
        now = time.time() if now is None else now
        trust = Trust(self.swarm_public())
        for cert in self.certificates():
            if cert.expires_at > now:
                trust.add(cert, now)
        for serial in self.revocations().serials:  # known but revoked: refused as revoked, not unknown
            trust.revoke(serial)
        return trust

    def current_key_id(self) -> str | None:
        path = self.root / "content" / "current"
        return path.read_text().strip() if path.exists() else None

    def keyring(self, name: str) -> ContentKeyring:
        """The content keys sealed to member `name`, opened with its private keys."""
        agent = AgentKeys.load(self.root / "agents" / name)
        ring = ContentKeyring()
        current = self.current_key_id()
        folder = self.root / "content"
        for blob in sorted(folder.glob(f"*/{name}.sealed")) if folder.exists() else []:
            key_id, key = open_key(agent, blob.read_bytes())
            ring.install(key_id, key, current=key_id == current)
        return ring

    def members(self) -> list[MemberInfo]:
        revoked = set(self.revocations().serials)
        folder = self.root / "content"
        return [MemberInfo(name=c.agent_id, roles=c.roles, serial=c.serial, expires_at=c.expires_at,
                           revoked=c.serial in revoked,
                           content_keys=tuple(sorted(p.parent.name for p in folder.glob(f"*/{c.agent_id}.sealed"))))
                for c in self.certificates()]

    # ------------------------------------------------------------------ internals

    def _issue(self, swarm: SwarmKey, name: str, roles: tuple[str, ...], ttl: float) -> Certificate:
        folder = self.root / "agents" / name
        if folder.exists():  # re-keying a revoked member: its old keys are retired, not reused
            folder.rename(self.root / "agents" / f".{name}.retired.{int(time.time())}")
        keys = AgentKeys.generate()
        keys.save(self._dir("agents", name))
        cert = issue(swarm, keys, name, roles, ttl)
        path = self._dir("certs") / f"{name}.cert"
        path.write_bytes(msgspec.msgpack.encode(cert))
        return cert

    def _operator_keys(self) -> AgentKeys:
        folder = self.root / "swarm" / "operator"
        if not (folder / BOX_KEY_FILE).exists():
            folder.mkdir(mode=0o700, exist_ok=True)
            AgentKeys.generate().save(folder)
        return AgentKeys.load(folder)

    def _operator_content_key(self, key_id: str) -> bytes:
        blob = (self.root / "content" / key_id / "_operator.sealed").read_bytes()
        return open_key(self._operator_keys(), blob)[1]

    def _seal(self, key_id: str, key: bytes, name: str, cert: Certificate | None) -> None:
        box = cert.box_key if cert is not None else self._operator_keys().box_public
        (self._dir("content", key_id) / f"{name}.sealed").write_bytes(seal_key_for(box, key_id, key))

    def _write_revocations(self, swarm: SwarmKey, serials: tuple[int, ...]) -> None:
        unsigned = Revocations(serials=serials, issued_at=time.time())
        rl = msgspec.structs.replace(unsigned, signature=swarm.sign(unsigned.signed_bytes()))
        path = self.root / "revoked.list"
        write_atomic(path, msgspec.msgpack.encode(rl))
