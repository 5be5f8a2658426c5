"""Gossip on a real bus: in-process nodes with real keys and LMDB memories on a real nats-server."""

from __future__ import annotations

from pathlib import Path

import msgspec
import nats

from reverie.protocol import ResultStatus, encode
from reverie.runtime import connect
from reverie.runtime.gossip import (
    AgentKeys,
    ContentKey,
    FeedWriter,
    SwarmKey,
    encode_block,
    encode_fragment,
    issue,
)
from reverie.runtime.gossip.provision import ensure_keys
from reverie.runtime.gossip.wire import (
    Carried,
    LessonShare,
    Push,
    PushAck,
    encode_payload,
)

from .conftest import LOCAL_AGENTS, agents_running, eventually, load_task, make_config
from .fakes.gossip import gossip_nodes, keystore, lesson, node_config, open_node

MARKER = "zebra-quartz-7731-private-memory"


async def test_a_shared_lesson_and_memory_reach_every_peer_and_recall(nats_url: str, tmp_path: Path) -> None:
    config = node_config(nats_url, tmp_path / "data", ["a", "b", "c"], interval=0.1)
    async with gossip_nodes(config, nats_url) as nodes:
        nodes["a"].share_lessons([lesson(1), lesson(2, features=("op:resize",))])
        nodes["a"].share_memory("/accepted/t1", b'{"steps": ["backup", "migrate"]}')
        await nodes["a"].flush()
        await eventually(lambda: _all(n.holds("a", 3) for n in nodes.values()), what="every node to hold a#3")
        for name in ("b", "c"):
            memory = nodes[name].memory
            recalled = await memory.recall(["op:drop_table"])
            assert [(x.id, x.source) for x in recalled] == [("l1", "a")]
            assert recalled[0].reason.text == "drop_table needs a backup first"
            shared = await memory.get("/peers/a/accepted/t1")
            assert shared is not None and b"migrate" in shared.content
            assert nodes[name].counters["gossip.refused"] == 0


async def test_a_share_staged_in_a_commit_survives_a_crash_before_it_reached_the_feed(
        nats_url: str, tmp_path: Path) -> None:
    """The dreamer stages a round's shares in the round's own commit: if the process dies
    before they are appended to the feed, the next start of the agent shares them, once."""
    config = node_config(nats_url, tmp_path / "data", ["a", "b"], interval=0.1)
    async with gossip_nodes(config, nats_url, names=["a"]) as nodes:
        a = nodes["a"]
        batch = a.memory.store.batch()
        batch.put("/notes/round-3", "what the round wrote")
        a.stage(batch, [LessonShare(lesson(7))])
        await a.memory.commit(batch)  # ...and the process dies before `release`
        assert a.heads() == {} and len(await a.memory.outbox("a.")) == 1
        assert await a.memory.checkpoints() == []  # an outbox entry is not a task's checkpoint
    async with gossip_nodes(config, nats_url) as nodes:
        a, b = nodes["a"], nodes["b"]
        await a.flush()
        assert a.counters["gossip.recovered"] == 1 and a.heads() == {"a": 1}
        assert await a.memory.outbox("a.") == []  # deleted in the commit that appended it
        await eventually(lambda: _all([b.holds("a", 1)]), what="b to hold the recovered share")
        assert [x.id for x in await b.memory.recall(["op:drop_table"])] == ["l7"]
    async with gossip_nodes(config, nats_url, names=["a"]) as nodes:
        assert nodes["a"].heads() == {"a": 1} and nodes["a"].counters["gossip.recovered"] == 0


async def test_a_peer_that_was_down_catches_up_in_one_exchange(nats_url: str, tmp_path: Path) -> None:
    config = node_config(nats_url, tmp_path / "data", ["a", "b"], interval=60)  # exchanges driven here
    async with gossip_nodes(config, nats_url, names=["a"]) as nodes:
        a = nodes["a"]
        async with open_node(config, "b", nats_url) as b:
            await b.start()
            b.share_lessons([lesson(9999, topic="risk")])
            await b.flush()
            await b.exchange("a")  # a pulls b's block in turn (it saw b's heads ahead)
            await eventually(lambda: _all([a.holds("b", 1)]), what="a to pull b's block")
        for i in range(50):  # 500 fragments in 50 blocks while b is down
            a.share_lessons([lesson(i * 10 + j, text=f"lesson {i}-{j}") for j in range(10)])
            await a.flush()
        assert a.heads() == {"a": 500, "b": 1}
        async with open_node(config, "b", nats_url) as b:
            await b.start()
            admitted = await b.exchange("a")
            assert admitted == 50 and b.holds("a", 500)
            assert b.counters["gossip.exchanges"] == 1  # one request, one reply
            assert len(await b.memory.lessons("order")) == 500
        # restarted from its memory, b knows what it holds and asks for nothing again
        async with open_node(config, "b", nats_url) as b:
            assert b.heads() == {"a": 500, "b": 1}
            await b.start()
            assert await b.exchange("a") == 0
            assert a.counters["gossip.blocks_sent"] == 50


async def test_catch_up_larger_than_one_reply_takes_a_bounded_number_of_steps(nats_url: str, tmp_path: Path) -> None:
    config = node_config(nats_url, tmp_path / "data", ["a", "b"], interval=60, max_reply_bytes=16 * 1024)
    async with gossip_nodes(config, nats_url) as nodes:
        a, b = nodes["a"], nodes["b"]
        for i in range(50):
            a.share_lessons([lesson(i * 10 + j, text=f"lesson {i}-{j} " + "x" * 100) for j in range(10)])
        await a.flush()
        assert await b.exchange("a") == a.counters["gossip.shared"] // 10 or b.holds("a", 500)
        assert b.holds("a", 500)
        # each reply stayed within the budget (plus at most one block), so it took several steps
        assert 1 < b.counters["gossip.exchanges"] <= 8


async def test_tampered_forged_replayed_and_forked_blocks_are_refused_and_never_stored(
        nats_url: str, tmp_path: Path) -> None:
    config = node_config(nats_url, tmp_path / "data", ["a", "b", "c"], interval=60)
    async with gossip_nodes(config, nats_url, names=["b"]) as nodes:
        b = nodes["b"]
        store = keystore(config)
        a_keys = AgentKeys.load(store.root / "agents" / "a")
        ring = store.keyring("a")
        key = ring.current()
        good_block, good_frags = FeedWriter("a", a_keys).append([_lesson_payload(1)], key)
        good = Carried(encode_block(good_block), [encode_fragment(f) for f in good_frags])

        # every flipped byte of the block, and of its fragment: refused, one by one
        flipped = [Carried(_flip(good.block, i), good.fragments) for i in range(len(good.block))]
        flipped += [Carried(good.block, [_flip(good.fragments[0], i)]) for i in range(len(good.fragments[0]))]
        ack = await _push(nats_url, config, flipped)
        assert ack.admitted == 0 and ack.refused == len(flipped)
        assert b.counters["gossip.refused.unsignedfragment"] > 0 and b.counters["gossip.refused.badsignature"] > 0
        assert await b.memory.contents("/gossip/") == [] and await b.memory.lessons() == []

        # an author the swarm never certified (its own swarm key), and one under the wrong key
        rogue_swarm, rogue = SwarmKey.generate(), AgentKeys.generate()
        issue(rogue_swarm, rogue, "mallory", ("critic",), 3600)
        forged = FeedWriter("mallory", rogue).append([_lesson_payload(2)], key)
        impostor = FeedWriter("a", rogue).append([_lesson_payload(3)], key)  # a's name, not a's key
        undecryptable = FeedWriter("a", a_keys).append([_lesson_payload(4)], ContentKey.generate(key.key_id))
        unknown_key = FeedWriter("a", a_keys).append([_lesson_payload(5)], ContentKey.generate("k-nobody-has"))
        cases = [_carry(*forged), _carry(*impostor), _carry(*undecryptable), _carry(*unknown_key),
                 Carried(b"\xc1not msgpack", []), Carried(good.block, [])]
        before_counts = dict(b.counters)
        ack = await _push(nats_url, config, cases)
        assert (ack.admitted, ack.refused) == (0, len(cases))
        refused = {k.removeprefix("gossip.refused."): v - before_counts.get(k, 0) for k, v in b.counters.items()
                   if k.startswith("gossip.refused.")}
        assert refused["unknownauthor"] == 1 and refused["undecryptable"] == 2 and refused["malformed"] >= 2
        assert refused["badsignature"] == 1  # the impostor
        assert await b.memory.contents("/gossip/") == []

        # malformed and oversized messages: a typed error reply, counted; the node keeps serving
        async with await nats.connect(nats_url) as raw:
            reply = await raw.request(config_subject(config, "b"), b"\x00garbage", timeout=5)
            assert b"malformed" in reply.data or b"type" in reply.data
            big = await raw.request(config_subject(config, "b"), b"\x92" + b"x" * (config.max_message_bytes + 10),
                                    timeout=5)
            assert b"oversized" in big.data

        # the genuine block is admitted once; a replay changes nothing
        ack = await _push(nats_url, config, [good])
        assert (ack.admitted, ack.refused) == (1, 0)
        before = await b.memory.contents("/gossip/")
        ack = await _push(nats_url, config, [good])
        assert (ack.admitted, ack.refused) == (0, 0) and b.counters["gossip.duplicate"] == 1
        assert await b.memory.contents("/gossip/") == before

        # a fork: a's key signs a different block 0; the feed is frozen here, also after a restart
        fork_block, fork_frags = FeedWriter("a", a_keys).append([_lesson_payload(6)], key)
        ack = await _push(nats_url, config, [_carry(fork_block, fork_frags)])
        assert ack.refused == 1 and b.counters["gossip.refused.fork"] == 1
        nxt = FeedWriter("a", a_keys, after=good_block).append([_lesson_payload(7)], key)
        ack = await _push(nats_url, config, [_carry(*nxt)])
        assert ack.refused == 1 and b.counters["gossip.refused.feedfrozen"] == 1
        assert [x.id for x in await b.memory.lessons()] == ["l1"]
        assert await b.memory.get("/gossip/a/frozen") is not None
    async with open_node(config, "b", nats_url) as b2:
        assert b2.verifier.frozen("a")


async def test_nothing_crossing_the_bus_holds_a_memory_in_plaintext(nats_url: str, tmp_path: Path) -> None:
    config = node_config(nats_url, tmp_path / "data", ["a", "b", "c"], interval=0.1)
    captured: list[bytes] = []
    async with await nats.connect(nats_url) as spy:
        async def record(msg: nats.aio.msg.Msg) -> None:
            captured.append(msg.subject.encode() + b" " + (msg.reply or "").encode() + b" " + msg.data)

        await spy.subscribe("rv.>", cb=record)
        await spy.subscribe("_INBOX.>", cb=record)
        await spy.flush()
        async with gossip_nodes(config, nats_url) as nodes:
            nodes["a"].share_memory("/notes/secret", MARKER)
            nodes["a"].share_lessons([lesson(1, text=MARKER)])
            await nodes["a"].flush()
            await eventually(lambda: _all(n.holds("a", 2) for n in nodes.values()), what="the marker to spread")
            got = await nodes["c"].memory.get("/peers/a/notes/secret")
            assert got is not None and got.text == MARKER
        await spy.flush()
    assert any(b".gossip." in c for c in captured), "the spy saw the gossip traffic"
    assert not any(MARKER.encode() in c for c in captured)
    for name in ("a", "b", "c"):  # and at rest: the LMDB files hold no plaintext either
        for f in (tmp_path / "data" / name).glob("*.mdb"):
            assert MARKER.encode() not in f.read_bytes()


async def test_rotation_while_running_loses_nothing_and_a_revoked_agent_is_refused(
        nats_url: str, tmp_path: Path) -> None:
    config = node_config(nats_url, tmp_path / "data", ["a", "b", "c"], interval=0.1)
    async with gossip_nodes(config, nats_url) as nodes:
        store = keystore(config)
        old_key = store.current_key_id()
        nodes["a"].share_lessons([lesson(1)])
        nodes["c"].share_lessons([lesson(100, topic="risk")])
        await nodes["a"].flush()
        await nodes["c"].flush()
        new_key = store.rotate()
        assert new_key != old_key
        nodes["a"].share_lessons([lesson(2)])  # sealed under the new key
        await nodes["a"].flush()
        await eventually(lambda: _all(n.holds("a", 2) and n.holds("c", 1) for n in nodes.values()),
                         what="both keys' fragments everywhere")
        assert {x.id for x in await nodes["b"].memory.lessons("order")} == {"l1", "l2"}

        store.revoke("c")  # c keeps running, sealing under the key it still has
        nodes["c"].share_lessons([lesson(101, topic="risk")])
        await nodes["c"].flush()
        assert nodes["c"].holds("c", 2)

        async def refused_by_peers() -> bool:
            return all(nodes[n].counters["gossip.refused.certificaterevoked"] > 0 for n in ("a", "b"))

        await eventually(refused_by_peers, what="a and b to refuse c's new block")
        for n in ("a", "b"):
            assert not nodes[n].holds("c", 2)
            assert [x.id for x in await nodes[n].memory.lessons("risk")] == ["l100"]  # the old one stays
        nodes["a"].share_lessons([lesson(3)])
        await nodes["a"].flush()
        await eventually(lambda: _all(nodes[n].holds("a", 3) for n in ("b",)), what="b to get a#3")
        assert nodes["a"].keyring.current().key_id not in (old_key, new_key)  # revoking rotated again
        assert nodes["a"].keyring.current().key_id not in nodes["c"].keyring.key_ids()


async def test_a_lesson_one_dreamer_learned_saves_another_dreamer_a_round(nats_url: str, tmp_path: Path) -> None:
    agents = (LOCAL_AGENTS + '\n[[agents]]\nname = "dreamer2"\nkind = "dreamer"\n'
              '[agents.subjects]\ndream = "task.plan2"\n')
    config = make_config(nats_url, tmp_path / "data", agents=agents, extra="[gossip]\ninterval = 0.1\n")
    ensure_keys(config)
    async with agents_running(config, nats_url) as hosts, connect(config, servers=[nats_url]) as swarm:
        first = await swarm.submit(load_task("db-migration"), kind="plan", timeout=30)
        assert first.status is ResultStatus.ACCEPTED and first.rounds == 2 and first.agent == "dreamer"
        learned = {x.id for x in await hosts["dreamer"].agent.memory.lessons()}
        assert learned

        async def spread() -> bool:
            for name in ("dreamer2", "rules"):
                held = {x.id for x in await hosts[name].gossip.memory.lessons() if x.source == "dreamer"}
                if held != learned:
                    return False
            return True

        await eventually(spread, what="dreamer's lessons in dreamer2's and a critic's memory")
        similar = load_task("db-migration")
        similar["title"] = "Migrate the invoices database to schema v3"
        for op in similar["operations"]:
            op["duration"] = op["duration"] + 1
        second = await swarm.submit(similar, kind="plan2", timeout=30)
        assert second.status is ResultStatus.ACCEPTED and second.agent == "dreamer2"
        assert second.rounds < first.rounds
        assert "recalled" in second.accepted.candidate.rationale


# ------------------------------------------------------------------ helpers


async def _all(flags) -> bool:  # type: ignore[no-untyped-def]
    return all(flags)


def _lesson_payload(i: int) -> bytes:
    return encode_payload(LessonShare(lesson(i)))


def _carry(block, fragments) -> Carried:  # type: ignore[no-untyped-def]
    return Carried(encode_block(block), [encode_fragment(f) for f in fragments])


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]


def config_subject(config, name: str) -> str:  # type: ignore[no-untyped-def]
    return f"rv.{config.swarm}.gossip.{name}"


async def _push(url: str, config, blocks: list[Carried]) -> PushAck:  # type: ignore[no-untyped-def]
    async with await nats.connect(url) as raw:
        reply = await raw.request(config_subject(config, "b"), encode(Push(sender="tester", blocks=blocks)), timeout=10)
    return msgspec.msgpack.decode(reply.data, type=PushAck)
