"""What every part of a gossip node shares: its identity, memory, keys, verifier and feed indexes."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..bus.bus import Bus
from ..config import SwarmConfig
from ..logs import BurstLog
from ..memory import Memory
from .errors import GossipError
from .feed import Block, FeedState, FeedVerifier, VerifierState
from .feedlog import FeedIndex, load
from .identity import AgentKeys
from .keystore import KeyStore

__all__ = ["NodeState"]


class NodeState:
    """The state of one agent's gossip node and the helpers every part of it uses; `GossipNode`
    adds sharing (`Sharing`), admission (`Admission`) and the lifecycle on top."""

    def __init__(self, *, name: str, config: SwarmConfig, bus: Bus, memory: Memory, keystore: KeyStore,
                 peers: Sequence[str], log: logging.Logger | None = None) -> None:
        self.name = name
        self.config = config
        self.settings = config.gossip
        self.bus = bus
        self.memory = memory
        self.keystore = keystore
        self.peers = [p for p in peers if p != name]
        self.log = log or logging.getLogger(f"reverie.gossip.{name}")
        self.counters: Counter[str] = Counter()
        self._burst = BurstLog(self.log)
        self._keys: AgentKeys = AgentKeys.load(keystore.root / "agents" / name)
        self.trust = keystore.trust()
        self.keyring = keystore.keyring(name)
        self._stamp = self._key_stamp()
        self.verifier = FeedVerifier(self.trust)
        self._index: dict[str, FeedIndex] = {}
        self._own: Block | None = None
        self._appending = asyncio.Lock()  # sharing: one append to the own feed at a time
        self._queue: list[tuple[str | None, bytes]] = []  # sharing: (outbox key or None, encoded payload)
        self._flusher: asyncio.Task[None] | None = None
        self._admitting = asyncio.Lock()  # admission: one batch of peers' blocks at a time

    async def _load_feeds(self) -> None:
        """Rebuild the verifier and feed indexes from what memory holds."""
        feeds = []
        for author in sorted({c.agent_id for c in self.keystore.certificates()} | {self.name}):
            held = await self.memory.run(load, self.memory.store, author)
            self._index[author] = held.index
            if author == self.name:
                self._own = held.last
            elif held.digests or held.frozen:
                feeds.append(FeedState(author, tuple(held.digests), held.index.last_seq, held.frozen))
        self.verifier.load_state(VerifierState(tuple(feeds)))

    # ------------------------------------------------------------------ heads

    def heads(self) -> dict[str, int]:
        """{author: last seq held}, this agent's own feed included."""
        heads = self.verifier.heads()
        own = self._index.get(self.name)
        if own is not None and own.last_seq:
            heads[self.name] = own.last_seq
        return heads

    def holds(self, author: str, seq: int) -> bool:
        return self.heads().get(author, 0) >= seq

    # ------------------------------------------------------------------ keys

    def _key_stamp(self) -> tuple[float, ...]:
        root = self.keystore.root
        paths = [root / "content" / "current", root / "revoked.list", root / "certs"]
        return tuple(_mtime(p) for p in paths)

    def _refresh_keys(self, *, force: bool = False) -> None:
        """Reload certificates, revocations and content keys when the key store changed
        (`reverie keys add/revoke/rotate` while agents run)."""
        stamp = self._key_stamp()
        if stamp == self._stamp and not force:
            return
        self._stamp = stamp
        try:
            trust = self.keystore.trust()
            keyring = self.keystore.keyring(self.name)
        except (GossipError, OSError, ValueError) as exc:
            self._burst.warning("keys", "could not reload keys: %s", exc)
            return
        self.trust = self.verifier.trust = trust
        self.keyring = keyring


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns / 1e9
    except OSError:
        return 0.0
