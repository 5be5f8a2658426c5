"""A gossip node: one agent's feed, what it holds of its peers' feeds, and anti-entropy.

Every `interval` the node picks `fanout` random live peers and, with each, runs push-pull
over `rv.<swarm>.gossip.<peer>` (see `wire`): it sends its heads, admits the blocks the peer
sends back, and pushes the blocks the peer lacks. Work is bounded on both sides: a reply
carries at most `max_reply_bytes` of blocks (`more` says there is more; the initiator asks
again at once, up to `MAX_STEPS` times per exchange), a push is verified block by block, and
heads beyond `MAX_AUTHORS` are refused by the decoder. A peer that was down catches up in one
exchange when what it missed fits one reply.

A block is admitted only if its author's certificate is valid now, its one signature
verifies, it continues the author's chain, and every fragment is the one it signed; then its
payloads are opened, and the block, its fragments and what they teach (lessons for recall,
shared memories under `/peers/<author>/`) are one memory commit. Every refusal is counted by
kind (`gossip.refused.<kind>`), logged at most once per burst, and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from reverie.protocol import Codec, ProtocolError, encode
from reverie.protocol.messages import Error

from ..bus.bus import Bus
from ..config import SwarmConfig
from ..logs import BurstLog
from ..memory import Batch, Lesson, Memory, MemoryError, PreconditionFailed
from ..process import pid_alive
from .errors import Fork, GossipError, Malformed, Replay
from .feed import (
    MAX_FRAGMENTS,
    Block,
    FeedState,
    FeedVerifier,
    FeedWriter,
    Fragment,
    VerifierState,
    decode_block,
    decode_fragment,
)
from .feedlog import FeedIndex, add_block, frozen_path, head_path, load, read_blocks
from .identity import AgentKeys
from .keystore import KeyStore
from .wire import (
    Carried,
    LessonShare,
    MemoryShare,
    Payload,
    Push,
    PushAck,
    Reply,
    Request,
    SyncReply,
    SyncRequest,
    decode_payload,
    encode_payload,
)

__all__ = ["GossipNode"]

MAX_STEPS = 8
"""Request/reply steps one exchange may take when replies say `more`."""
MAX_REPLY_BLOCKS = 512
BLOCK_PAYLOAD_BYTES = 48 * 1024
"""A shared block is cut at this many payload bytes, so any one block fits any reply."""
LIVE_AFTER_HEARTBEATS = 3


class GossipNode:
    """Open with `await GossipNode.open(config, name, bus)` (None when gossip is off or the
    agent has no keys), then `start()`; `share()` appends to this agent's feed."""

    def __init__(self, *, name: str, config: SwarmConfig, bus: Bus, memory: Memory, keystore: KeyStore,
                 peers: Sequence[str], log: logging.Logger | None = None, own_memory: bool = False) -> None:
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
        self._own_memory = own_memory
        self._keys: AgentKeys = AgentKeys.load(keystore.root / "agents" / name)
        self._stamp: tuple[float, ...] = ()
        self.trust = keystore.trust()
        self.keyring = keystore.keyring(name)
        self._stamp = self._key_stamp()
        self.verifier = FeedVerifier(self.trust)
        self._index: dict[str, FeedIndex] = {}
        self._own: Block | None = None
        self._admitting = asyncio.Lock()
        self._exchanging = asyncio.Lock()
        self._pulls: dict[str, asyncio.Task[None]] = {}
        self._appending = asyncio.Lock()
        self._queue: list[tuple[str | None, bytes]] = []  # (outbox key or None, encoded payload)
        self._flusher: asyncio.Task[None] | None = None
        self._loop: asyncio.Task[None] | None = None
        self._sub: Subscription | None = None
        self._beats: Subscription | None = None
        self._seen: dict[str, float] = {}
        self._codec: Codec[Request] = Codec(Request, max_bytes=config.max_message_bytes)
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
    async def open(cls, config: SwarmConfig, name: str, bus: Bus, *, memory: Memory | None = None,
                   log: logging.Logger | None = None) -> GossipNode | None:
        """The node of agent `name`, or None if gossip is disabled or the agent has no keys."""
        log = log or logging.getLogger(f"reverie.gossip.{name}")
        if not cls.wanted(config, name, log=log):
            return None
        keystore = KeyStore(config.data_path / "keys")
        own = memory is None
        if memory is None:
            memory = await Memory.open(config.data_path / name, agent=name)
        node = cls(name=name, config=config, bus=bus, memory=memory, keystore=keystore,
                   peers=[a.name for a in config.agents], log=log, own_memory=own)
        await node.load()
        return node

    # ------------------------------------------------------------------ lifecycle

    async def load(self) -> None:
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
        await self._recover_outbox()

    async def start(self, *, serve: bool = True) -> None:
        """Answer peers and run anti-entropy every `interval` (`serve=False`: only share)."""
        if not serve:
            return
        nc = self.bus.nc
        self._sub = await nc.subscribe(self.bus.subjects.gossip(self.name), queue=self.name, cb=self._on_request)
        self._beats = await nc.subscribe(self.bus.subjects.heartbeat("*"), cb=self._on_heartbeat)
        self._loop = asyncio.create_task(self._anti_entropy(), name=f"gossip:{self.name}")

    async def stop(self) -> None:
        self._stopping.set()
        for sub in (self._sub, self._beats):
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
        if self._own_memory:
            await self.memory.close()

    # ------------------------------------------------------------------ sharing

    def share(self, payloads: Iterable[Payload]) -> None:
        """Queue payloads for this agent's feed; they are sealed, signed and stored in blocks
        shortly (`flush()` waits for it). Never blocks the caller on crypto or disk. What is
        queued is lost if the process dies first: `stage` makes a share durable."""
        self._enqueue([(None, encode_payload(p)) for p in payloads])

    def share_lessons(self, lessons: Iterable[Lesson]) -> None:
        self.share(LessonShare(lesson) for lesson in lessons)

    def share_memory(self, path: str, content: bytes | str) -> None:
        self.share([MemoryShare(path, content.encode() if isinstance(content, str) else bytes(content))])

    def stage(self, batch: Batch, payloads: Iterable[Payload]) -> list[tuple[str | None, bytes]]:
        """Write `payloads` into `batch` as outbox entries, so they commit with the caller's
        own changes; after the commit, `release` what this returns. A crash in between loses
        nothing: the next start of this agent shares what its outbox holds. The entry is
        deleted in the same commit that appends it to the feed."""
        stamp = f"{self.name}.{os.getpid()}.{time.time_ns():020d}"
        staged: list[tuple[str | None, bytes]] = []
        for i, payload in enumerate(payloads):
            key, encoded = f"{stamp}.{i:06d}", encode_payload(payload)
            batch.outbox(key, encoded)
            staged.append((key, encoded))
        return staged

    def release(self, staged: list[tuple[str | None, bytes]]) -> None:
        """Share what `stage` put into a batch that has now committed."""
        self._enqueue(staged)

    def _enqueue(self, entries: list[tuple[str | None, bytes]]) -> None:
        self._queue.extend(entries)
        if self._queue and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.create_task(self._flush(), name=f"gossip-share:{self.name}")

    async def flush(self) -> None:
        """Wait until everything shared so far is in this agent's feed."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        while self._queue:
            chunk: list[tuple[str | None, bytes]] = []
            size = 0
            while self._queue and len(chunk) < MAX_FRAGMENTS:
                key, encoded = self._queue[0]
                if chunk and size + len(encoded) > BLOCK_PAYLOAD_BYTES:
                    break
                chunk.append((key, encoded))
                size += len(encoded)
                self._queue.pop(0)
            try:
                await self._append([encoded for _, encoded in chunk], [key for key, _ in chunk if key])
            except (GossipError, MemoryError) as exc:
                self.counters["gossip.share_failed"] += len(chunk)
                self._burst.warning("share", "could not append %d fragments to the feed of %s: %s",
                                    len(chunk), self.name, exc)

    async def _recover_outbox(self) -> None:
        """Queue what a dead process of this agent staged but never appended (its pid is in
        the key; a live replica's entries are its own business)."""
        mine = str(os.getpid())
        pending = [(key, data) for key, data in await self.memory.outbox(f"{self.name}.")
                   if (pid := key.split(".")[1]) == mine or not pid.isdigit() or not pid_alive(int(pid))]
        if pending:
            self.counters["gossip.recovered"] += len(pending)
            self.log.info("sharing %d fragments a stopped process of %s had staged", len(pending), self.name)
            self._enqueue([(key, data) for key, data in pending])

    async def _append(self, payloads: list[bytes], outbox: Sequence[str] = ()) -> Block:
        async with self._appending:
            for _ in range(10):
                self._refresh_keys()
                head = await self.memory.get(head_path(self.name))
                after = decode_block(head.content) if head is not None else None
                writer = FeedWriter(self.name, self._keys, after=after)
                block, fragments = writer.append(payloads, self.keyring.current())
                batch = self.memory.store.batch()
                # compare-and-set on the head: another replica of this agent may append too
                add_block(batch, block, fragments, head_expect=head.sha256 if head is not None else None)
                for key in outbox:  # shared now: the staged copy goes in the same commit
                    batch.outbox(key, None)
                try:
                    await self.memory.commit(batch)
                except PreconditionFailed:
                    continue
                self._note_own(after, block)
                self.counters["gossip.shared"] += len(fragments)
                return block
            raise GossipError(f"the feed of {self.name} kept changing under 10 appends")

    def _note_own(self, after: Block | None, block: Block) -> None:
        index = self._index.setdefault(self.name, FeedIndex())
        if (after.index + 1 if after is not None else 0) == len(index.first_seqs):
            index.add(block)
        self._own = block

    async def _refresh_own(self) -> None:
        """Pick up blocks another replica of this agent appended."""
        head = await self.memory.get(head_path(self.name))
        if head is None:
            return
        block = decode_block(head.content)
        if self._own is None or block.index > self._own.index:
            held = await self.memory.run(load, self.memory.store, self.name)
            self._index[self.name] = held.index
            self._own = held.last

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

    # ------------------------------------------------------------------ anti-entropy

    def live_peers(self) -> list[str]:
        """Peers heard from lately (heartbeats); all configured peers before any were heard."""
        window = self.config.heartbeat_interval * LIVE_AFTER_HEARTBEATS
        now = time.monotonic()
        live = [p for p in self.peers if now - self._seen.get(p, -1e9) <= window]
        return live or list(self.peers)

    async def _on_heartbeat(self, msg: Msg) -> None:
        self._seen[msg.subject.rpartition(".")[2]] = time.monotonic()

    async def _anti_entropy(self) -> None:
        interval = self.settings.interval
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), interval * random.uniform(0.75, 1.25))
                return
            except asyncio.TimeoutError:
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
        except Exception as exc:  # noqa: BLE001 - a failed pull is retried by the next round
            self._burst.warning(f"pull:{peer}", "pulling from %s failed: %r", peer, exc)
        finally:
            self._pulls.pop(peer, None)

    async def _ask(self, subject: str, message: SyncRequest | Push, peer: str) -> Reply | None:
        data = encode(message)
        self.counters["gossip.bytes_sent"] += len(data)
        try:
            replies = await self.bus.request_many(subject, message, expect=1, timeout=self.settings.timeout)
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            self._burst.warning(f"ask:{peer}", "gossip with %s failed: %s", peer, exc)
            return None
        if not replies:
            self.counters["gossip.no_reply"] += 1
            return None
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
        try:
            request = self._codec.decode(msg.data)
        except ProtocolError as exc:
            self._refuse("request", f"an undecodable gossip request on {msg.subject}: {exc}")
            await self._respond(msg, Error(code=exc.reason, message=exc.detail, subject=msg.subject))
            return
        if isinstance(request, SyncRequest):
            blocks, more = await self._missing(request.heads)
            mine = self.heads()
            await self._respond(msg, SyncReply(blocks=blocks, more=more))
            if any(seq > mine.get(author, 0) for author, seq in request.heads.items()):
                self._pull_from(request.sender)
        else:
            admitted, refused = await self._admit(request.blocks, request.sender)
            await self._respond(msg, PushAck(admitted=admitted, refused=refused))

    async def _respond(self, msg: Msg, reply: msgspec.Struct) -> None:
        if not msg.reply:
            return
        data = encode(reply)
        self.counters["gossip.bytes_sent"] += len(data)
        try:
            await self.bus.nc.publish(self.bus.reply_subject(msg.reply), data)
        except nats.errors.Error as exc:
            self._burst.warning("respond", "could not answer a gossip request: %s", exc)

    async def _missing(self, theirs: dict[str, int]) -> tuple[list[Carried], bool]:
        """Blocks held here that a peer with heads `theirs` lacks, within the reply budget."""
        budget = self.settings.max_reply_bytes
        out: list[Carried] = []
        more = False
        mine = self.heads()
        authors = [a for a, seq in mine.items() if seq > theirs.get(a, 0)]
        random.shuffle(authors)  # no author starves another when the budget runs out
        for author in authors:
            if budget <= 0 or len(out) >= MAX_REPLY_BLOCKS:
                more = True
                break
            start = self._index[author].after(theirs.get(author, 0))
            if start is None:
                continue
            blocks, used, held_back = await self.memory.run(
                read_blocks, self.memory.store, author, start, budget, MAX_REPLY_BLOCKS - len(out))
            out.extend(blocks)
            budget -= used
            more = more or held_back
        self.counters["gossip.blocks_sent"] += len(out)
        self.counters["gossip.block_bytes_sent"] += sum(len(c.block) + sum(map(len, c.fragments)) for c in out)
        return out, more

    # ------------------------------------------------------------------ admission

    async def _admit(self, carried: list[Carried], peer: str) -> tuple[int, int]:
        """Verify, open and store blocks; returns (admitted, refused)."""
        if not carried:
            return 0, 0
        async with self._admitting:
            self._refresh_keys()  # a revocation or rotation applies to the very next block
            batch = self.memory.store.batch()
            recorded: list[tuple[Block, bytes]] = []
            forks: list[Fork] = []
            refused = 0
            now = time.time()
            for item in carried:
                try:
                    block, fragments = self._decode(item)
                    if block.author == self.name:
                        self.counters["gossip.own"] += 1
                        continue
                    digest = self.verifier.check(block, fragments, now)
                    payloads = self._open(fragments)
                except Replay:
                    self.counters["gossip.duplicate"] += 1
                    continue
                except Fork as exc:
                    forks.append(exc)
                    refused += 1
                    self._refuse("fork", f"{exc} (from {peer}); the feed is frozen")
                    continue
                except GossipError as exc:
                    refused += 1
                    self._refuse(type(exc).__name__.lower(), f"refused a block from {peer}: {exc}")
                    continue
                self.verifier.record(block, digest)  # the next block of this feed checks against it
                recorded.append((block, digest))
                add_block(batch, block, fragments)
                for fragment, payload in zip(fragments, payloads):
                    self._apply(batch, block.author, fragment, payload)
            for fork in forks:
                batch.put(frozen_path(fork.author), msgspec.msgpack.encode((fork.index, fork.admitted, fork.conflicting)))
            if len(batch):
                try:
                    await self.memory.commit(batch)
                except BaseException:
                    await self.load()  # nothing of it was stored: forget what was recorded
                    raise
            for block, _ in recorded:
                self._index.setdefault(block.author, FeedIndex()).add(block)
            self.counters["gossip.admitted"] += len(recorded)
            self.counters["gossip.fragments_admitted"] += sum(len(b.hashes) for b, _ in recorded)
            return len(recorded), refused

    def _decode(self, item: Carried) -> tuple[Block, list[Fragment]]:
        block = decode_block(item.block)
        if len(item.fragments) > MAX_FRAGMENTS:
            raise Malformed(f"{len(item.fragments)} fragments carried with one block")
        return block, [decode_fragment(f) for f in item.fragments]

    def _open(self, fragments: list[Fragment]) -> list[Payload | None]:
        """Every fragment's payload (None: opened, but not a payload this node understands).
        A fragment under a key not installed here makes the keys reload once (a rotation)."""
        if any(f.key_id not in self.keyring.key_ids() for f in fragments):
            self._refresh_keys(force=True)
        out: list[Payload | None] = []
        for fragment in fragments:
            plaintext = self.keyring.open(fragment)  # Undecryptable refuses the block
            try:
                out.append(decode_payload(plaintext))
            except (msgspec.DecodeError, ValueError):
                self._refuse("payload", f"fragment {fragment.seq} of {fragment.author} holds no known payload")
                out.append(None)
        return out

    def _apply(self, batch: Batch, author: str, fragment: Fragment, payload: Payload | None) -> None:
        try:
            if isinstance(payload, LessonShare):
                batch.lesson(msgspec.structs.replace(payload.lesson, source=author, created_at=0.0))
            elif isinstance(payload, MemoryShare):
                if not payload.path.startswith("/"):
                    raise MemoryError(f"a shared memory path starts with '/', not {payload.path[:40]!r}")
                batch.put(f"/peers/{author}{payload.path}", payload.content)
        except (MemoryError, TypeError) as exc:
            # the block is signed and stays held (its feed goes on); this payload is not applied
            self._refuse("payload", f"fragment {fragment.seq} of {author} cannot be applied: {exc}")

    def _refuse(self, kind: str, detail: str) -> None:
        self.counters["gossip.refused"] += 1
        self.counters[f"gossip.refused.{kind}"] += 1
        self._burst.warning(f"refuse:{kind}", "gossip: %s", detail)

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

