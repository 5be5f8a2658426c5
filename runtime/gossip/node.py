"""A gossip node: one agent's feed, what it holds of its peers' feeds, and anti-entropy.

Every `interval` the node picks `fanout` random live peers and, with each, runs push-pull
over `rv.<swarm>.gossip.<peer>` (see `wire`): it sends its heads, admits the blocks the peer
sends back, and pushes the blocks the peer lacks. Work is bounded on both sides: a reply
carries at most `max_reply_bytes` of blocks (`more` says there is more; the initiator asks
again at once, up to `MAX_STEPS` times per exchange), a push is verified block by block, and
heads beyond `MAX_AUTHORS` are refused by the decoder. A peer that was down catches up in one
exchange when what it missed fits one reply. Sharing is in `sharing`, admission in `admission`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from types import TracebackType

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from reverie.protocol import Codec, ProtocolError, encode
from reverie.protocol.messages import Error

from ..bus.bus import Bus
from ..bus.responder import Responder
from ..config import SwarmConfig
from ..memory import Memory
from .admission import Admission
from .keystore import KeyStore
from .sharing import Sharing
from .wire import Push, PushAck, Reply, Request, SyncReply, SyncRequest

__all__ = ["MAX_STEPS", "SKIP_SILENT_FOR", "GossipNode"]

MAX_STEPS = 8
"""Request/reply steps one exchange may take when replies say `more`."""
SKIP_SILENT_FOR = 3
"""Heartbeat intervals a peer that did not answer is left out of the rounds, then tried again.
Peers are judged by their answers, not by listening to every heartbeat: that fan-in (each node
hearing every agent's heartbeat) made an idle swarm's CPU grow with the square of its size."""


class GossipNode(Sharing, Admission):
    """Open with `await GossipNode.open(config, name, bus, memory=...)` (None when gossip is
    off or the agent has no keys), then `async with node:` (or `start()`/`stop()`); `share()`
    appends to this agent's feed. The memory is the caller's: the node never closes it."""

    def __init__(self, *, name: str, config: SwarmConfig, bus: Bus, memory: Memory, keystore: KeyStore,
                 peers: Sequence[str], log: logging.Logger | None = None) -> None:
        super().__init__(name=name, config=config, bus=bus, memory=memory, keystore=keystore, peers=peers, log=log)
        self._exchanging = asyncio.Lock()
        self._pulls: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.Task[None] | None = None
        self._sub: Subscription | None = None
        self._silent: dict[str, float] = {}
        """Peer -> when it last failed to answer (until it answers or asks again)."""
        self._requests: Responder[Request] = Responder(
            bus, Codec(Request, max_bytes=config.max_message_bytes), burst=self._burst,
            on_bad=self._bad_request, on_sent=self._sent)
        self._replies: Codec[Reply] = Codec(Reply, max_bytes=config.max_message_bytes)
        self._stopping = asyncio.Event()

    @staticmethod
    def wanted(config: SwarmConfig, name: str, *, log: logging.Logger | None = None) -> bool:
        """Gossip is on in `config` and agent `name` has keys (else says why, at info)."""
        if not config.gossip.enabled:
            return False
        keystore = KeyStore(config.data_path / "keys")
        if not (keystore.root / "agents" / name).is_dir() or not keystore.initialised:
            (log or logging.getLogger(f"reverie.gossip.{name}")).info(
                "gossip off: no keys for %s under %s (`reverie keys CONFIG init` creates them)", name, keystore.root)
            return False
        return True

    @classmethod
    async def open(cls, config: SwarmConfig, name: str, bus: Bus, *, memory: Memory,
                   log: logging.Logger | None = None) -> GossipNode | None:
        """The node of agent `name` on `memory`, or None if gossip is disabled or the agent has no keys."""
        log = log or logging.getLogger(f"reverie.gossip.{name}")
        if not cls.wanted(config, name, log=log):
            return None
        node = cls(name=name, config=config, bus=bus, memory=memory, keystore=KeyStore(config.data_path / "keys"),
                   peers=[a.name for a in config.agents], log=log)
        await node.load()
        return node

    # ------------------------------------------------------------------ lifecycle

    async def load(self) -> None:
        """Rebuild the verifier and feed indexes from what memory holds, and queue what a
        stopped process of this agent staged but never shared."""
        await self._load_feeds()
        await self._recover_outbox()

    async def __aenter__(self) -> GossipNode:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self, *, serve: bool = True) -> None:
        """Answer peers and run anti-entropy every `interval` (`serve=False`: only share)."""
        if not serve:
            return
        nc = self.bus.nc
        try:
            self._sub = await nc.subscribe(self.bus.subjects.gossip(self.name), queue=self.name, cb=self._on_request)
        except BaseException:
            await self.stop()  # started fully or not at all
            raise
        self._loop = asyncio.create_task(self._anti_entropy(), name=f"gossip:{self.name}")

    async def stop(self) -> None:
        """Stop answering and gossiping, then wait until what was shared is in the feed."""
        self._stopping.set()
        for sub in (self._sub,):
            if sub is not None:
                try:
                    await sub.unsubscribe()
                except nats.errors.Error:
                    pass
        for task in [self._loop, *self._pulls.values()]:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.flush()

    # ------------------------------------------------------------------ anti-entropy

    def live_peers(self) -> list[str]:
        """The peers that did not fail to answer lately (`SKIP_SILENT_FOR`); all of them when none did."""
        window = self.config.heartbeat_interval * SKIP_SILENT_FOR
        now = time.monotonic()
        live = [p for p in self.peers if now - self._silent.get(p, -1e9) > window]
        return live or list(self.peers)

    async def _anti_entropy(self) -> None:
        interval = self.settings.interval
        while not self._stopping.is_set():
            try:
                async with asyncio.timeout(interval * random.uniform(0.75, 1.25)):
                    await self._stopping.wait()
                return
            except TimeoutError:
                pass
            try:
                await self.gossip_round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad round must not end gossip for the agent's lifetime
                self.counters["gossip.round_failed"] += 1
                self._burst.warning("round", "gossip round failed: %r", exc, exc_info=True)

    async def gossip_round(self, peers: Sequence[str] | None = None) -> int:
        """Exchange with `fanout` random live peers (or `peers`); returns blocks admitted."""
        self._refresh_keys()
        await self._refresh_own()
        if peers is None:
            live = self.live_peers()
            peers = random.sample(live, min(self.settings.fanout, len(live)))
        admitted = 0
        for peer in peers:
            admitted += await self.exchange(peer)
        return admitted

    async def exchange(self, peer: str) -> int:
        """Pull from one peer until it holds nothing back; returns blocks admitted here.

        The peer sees these heads and, if it lacks something held here, pulls it in turn (the
        push half of push-pull). Exchanges of one node run one at a time, each sending heads
        the previous one advanced, so no block is fetched twice by concurrent pulls."""
        subject = self.bus.subjects.gossip(peer)
        admitted = 0
        async with self._exchanging:
            for _ in range(MAX_STEPS):
                reply = await self._ask(subject, SyncRequest(sender=self.name, heads=self.heads()), peer)
                if not isinstance(reply, SyncReply):
                    return admitted
                self.counters["gossip.exchanges"] += 1
                admitted += (await self._admit(reply.blocks, peer))[0]
                if not reply.more:
                    break
        return admitted

    async def settle(self) -> None:
        """Wait for the pulls that peers' requests triggered here."""
        while self._pulls:
            await asyncio.gather(*self._pulls.values(), return_exceptions=True)

    def _pull_from(self, peer: str) -> None:
        """Pull from `peer` soon (it showed heads ahead of ours); at most one pending per peer."""
        if peer in self._pulls or peer not in self.peers or self._stopping.is_set():
            return
        task = asyncio.create_task(self._pull(peer), name=f"gossip-pull:{self.name}<{peer}")
        self._pulls[peer] = task

    async def _pull(self, peer: str) -> None:
        try:
            await self.exchange(peer)
        except Exception as exc:  # a failed pull is retried by the next round
            self._burst.warning(f"pull:{peer}", "pulling from %s failed: %r", peer, exc)
        finally:
            self._pulls.pop(peer, None)

    # ------------------------------------------------------------------ the wire

    async def _ask(self, subject: str, message: SyncRequest | Push, peer: str) -> Reply | None:
        self._sent(len(encode(message)))
        try:
            replies = await self.bus.request_many(subject, message, expect=1, timeout=self.settings.timeout)
        except (nats.errors.Error, TimeoutError) as exc:
            self._burst.warning(f"ask:{peer}", "gossip with %s failed: %s", peer, exc)
            self._silent[peer] = time.monotonic()
            return None
        if not replies:
            self.counters["gossip.no_reply"] += 1
            self._silent[peer] = time.monotonic()
            return None
        self._silent.pop(peer, None)
        try:
            reply = self._replies.decode(replies[0].data)
        except ProtocolError as exc:
            self._refuse("reply", f"an undecodable gossip reply from {peer}: {exc}")
            return None
        if isinstance(reply, Error):
            self._burst.warning(f"err:{peer}", "%s refused a gossip request: %s", peer, reply.message)
            return None
        return reply

    async def _on_request(self, msg: Msg) -> None:
        self.counters["gossip.requests"] += 1
        match await self._requests.decode(msg):
            case SyncRequest(sender=sender, heads=heads):
                self._silent.pop(sender, None)  # it asks, so it is up
                blocks, more = await self._missing(heads)
                mine = self.heads()
                await self._requests.answer(msg, SyncReply(blocks=blocks, more=more))
                if any(seq > mine.get(author, 0) for author, seq in heads.items()):
                    self._pull_from(sender)
            case Push(sender=sender, blocks=blocks):
                admitted, refused = await self._admit(blocks, sender)
                await self._requests.answer(msg, PushAck(admitted=admitted, refused=refused))
            case None:
                pass  # answered with a typed Error

    def _bad_request(self, msg: Msg, exc: ProtocolError) -> None:
        self._refuse("request", f"an undecodable gossip request on {msg.subject}: {exc}")

    def _sent(self, size: int) -> None:
        self.counters["gossip.bytes_sent"] += size
