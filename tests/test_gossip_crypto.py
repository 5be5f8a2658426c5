"""The gossip crypto core on real key files: certificates, signed hash-chained feeds, sealed
payloads, content key rotation, and every single-byte corruption of blocks and fragments."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import msgspec
import pytest

from reverie.runtime import ReverieError
from reverie.runtime.gossip import (
    AgentKeys,
    BadCertificateSignature,
    BadSignature,
    Block,
    BrokenChain,
    CertificateError,
    CertificateExpired,
    CertificateRevoked,
    ContentKey,
    ContentKeyring,
    FeedFrozen,
    FeedVerifier,
    FeedWriter,
    Fork,
    Fragment,
    Gap,
    GossipError,
    InsecureKeyFile,
    KeyFileError,
    Malformed,
    Replay,
    SwarmKey,
    Trust,
    Undecryptable,
    UnknownAuthor,
    decode_block,
    decode_fragment,
    encode_block,
    encode_fragment,
    issue,
    open_key,
    seal_key_for,
    verify,
)

NOW = 1_800_000_000.0
DAY = 86_400.0


@pytest.fixture(scope="module")
def swarm() -> SwarmKey:
    return SwarmKey.generate()


@pytest.fixture(scope="module")
def alice() -> AgentKeys:
    return AgentKeys.generate()


@pytest.fixture
def trust(swarm: SwarmKey, alice: AgentKeys) -> Trust:
    t = Trust(swarm.public_bytes)
    t.add(issue(swarm, alice, "alice", ("dreamer",), DAY, now=NOW), NOW)
    return t


@pytest.fixture
def key1() -> ContentKey:
    return ContentKey.generate("k1")


def payloads(block: int, n: int = 3) -> list[bytes]:
    return [f"block {block} payload {i} ".encode() * 4 for i in range(n)]


def keyring(*keys: ContentKey) -> ContentKeyring:
    ring = ContentKeyring()
    for k in keys:
        ring.install(k.key_id, k.key)
    return ring


# --------------------------------------------------------------------------- key files


def test_key_files_are_0600_from_creation_and_reload(tmp_path: Path, swarm: SwarmKey) -> None:
    agent = AgentKeys.generate()
    old = os.umask(0)  # the mode comes from open(2) itself, not from a permissive umask or a chmod
    try:
        paths = [swarm.save(tmp_path), *agent.save(tmp_path)]
    finally:
        os.umask(old)
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.stat().st_size == 32
    assert SwarmKey.load(tmp_path).public_bytes == swarm.public_bytes
    loaded = AgentKeys.load(tmp_path)
    assert (loaded.signing_public, loaded.box_public) == (agent.signing_public, agent.box_public)
    assert len(agent.signing_public) == len(agent.box_public) == 32
    with pytest.raises(KeyFileError):  # never overwrites a key
        swarm.save(tmp_path)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o610])
def test_a_key_file_others_can_access_is_refused(tmp_path: Path, swarm: SwarmKey, mode: int) -> None:
    path = swarm.save(tmp_path)
    os.chmod(path, mode)
    with pytest.raises(InsecureKeyFile) as info:
        SwarmKey.load(tmp_path)
    assert info.value.path == path and str(path) in str(info.value)
    assert isinstance(info.value, ReverieError)


def test_a_truncated_or_missing_key_file_is_a_key_file_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        AgentKeys.load(tmp_path)
    fd = os.open(tmp_path / "swarm.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"short")
    os.close(fd)
    with pytest.raises(KeyFileError, match="5 bytes"):
        SwarmKey.load(tmp_path)


# --------------------------------------------------------------------------- certificates


def test_certificate_verifies_and_round_trips(swarm: SwarmKey, alice: AgentKeys) -> None:
    cert = issue(swarm, alice, "alice", ["dreamer", "critic"], DAY, now=NOW)
    assert cert.roles == ("dreamer", "critic") and cert.expires_at == NOW + DAY
    verify(cert, swarm.public_bytes, NOW + 10)
    wire = msgspec.msgpack.decode(msgspec.msgpack.encode(cert), type=type(cert))
    verify(wire, swarm.public_bytes, NOW + 10)


@pytest.mark.parametrize("change", [
    {"agent_id": "mallory"}, {"signing_key": bytes(32)}, {"box_key": bytes(32)},
    {"roles": ("dreamer", "admin")}, {"issued_at": NOW - 1}, {"expires_at": NOW + 10 * DAY},
    {"serial": 7},
])
def test_a_tampered_certificate_fails(swarm: SwarmKey, alice: AgentKeys, change: dict[str, object]) -> None:
    cert = issue(swarm, alice, "alice", ("dreamer",), DAY, now=NOW)
    with pytest.raises(BadCertificateSignature):
        verify(msgspec.structs.replace(cert, **change), swarm.public_bytes, NOW)


def test_a_certificate_from_another_swarm_fails(alice: AgentKeys) -> None:
    other = SwarmKey.generate()
    with pytest.raises(BadCertificateSignature):
        verify(issue(other, alice, "alice", (), DAY, now=NOW), SwarmKey.generate().public_bytes, NOW)


def test_expired_revoked_and_unknown(swarm: SwarmKey, alice: AgentKeys, trust: Trust) -> None:
    cert = issue(swarm, alice, "alice", (), DAY, now=NOW)
    with pytest.raises(CertificateExpired):
        verify(cert, swarm.public_bytes, NOW + DAY)
    with pytest.raises(CertificateExpired):
        verify(cert, swarm.public_bytes, NOW - 3600)  # not yet valid
    with pytest.raises(CertificateRevoked):
        verify(cert, swarm.public_bytes, NOW, {cert.serial})

    assert trust.author("alice", NOW).agent_id == "alice"
    with pytest.raises(CertificateExpired):
        trust.author("alice", NOW + DAY + 1)
    with pytest.raises(UnknownAuthor):
        trust.author("bob", NOW)
    trust.revoke(trust.author("alice", NOW).serial)
    with pytest.raises(CertificateRevoked):
        trust.author("alice", NOW)
    with pytest.raises(BadCertificateSignature):
        trust.add(msgspec.structs.replace(cert, agent_id="bob"), NOW)
    with pytest.raises(UnknownAuthor):
        trust.author("bob", NOW)


# --------------------------------------------------------------------------- feeds


def test_three_blocks_admitted_in_order_then_decrypt(trust: Trust, alice: AgentKeys, key1: ContentKey) -> None:
    writer = FeedWriter("alice", alice)
    verifier = FeedVerifier(trust)
    ring = keyring(key1)
    sent = [payloads(b, n=b + 1) for b in range(3)]
    opened = []
    for batch in sent:
        block, fragments = writer.append(batch, key1)
        block, fragments = decode_block(encode_block(block)), [decode_fragment(encode_fragment(f)) for f in fragments]
        opened.append([ring.open(f) for f in verifier.admit(block, fragments, NOW)])
    assert opened == sent
    (feed,) = verifier.state().feeds
    assert (feed.author, len(feed.digests), feed.last_seq, feed.frozen) == ("alice", 3, 6, False)

    restored = FeedVerifier(trust, msgspec.msgpack.decode(msgspec.msgpack.encode(verifier.state()),
                                                          type=type(verifier.state())))
    block, fragments = writer.append([b"four"], key1)
    assert restored.admit(block, fragments, NOW)[0].seq == 7
    resumed = FeedWriter("alice", alice, after=block)
    block5, fragments5 = resumed.append([b"five"], key1)
    assert [f.seq for f in restored.admit(block5, fragments5, NOW)] == [8]


def test_an_uncertified_or_expired_author_is_refused(trust: Trust, key1: ContentKey) -> None:
    mallory = AgentKeys.generate()
    block, fragments = FeedWriter("mallory", mallory).append([b"x"], key1)
    verifier = FeedVerifier(trust)
    with pytest.raises(UnknownAuthor):
        verifier.admit(block, fragments, NOW)
    # claims to be alice, signed with its own key
    block, fragments = FeedWriter("alice", mallory).append([b"x"], key1)
    with pytest.raises(BadSignature):
        verifier.admit(block, fragments, NOW)
    with pytest.raises(CertificateError):
        verifier.admit(block, fragments, NOW + 2 * DAY)
    assert verifier.state().feeds == ()


def flipped(data: bytes) -> list[bytes]:
    """Every single-byte corruption: each position XORed with 0x01 and with 0xff."""
    out = []
    for i in range(len(data)):
        for mask in (0x01, 0xFF):
            out.append(data[:i] + bytes([data[i] ^ mask]) + data[i + 1:])
    return out


def test_every_flipped_byte_of_a_block_or_fragment_is_refused(trust: Trust, alice: AgentKeys,
                                                              key1: ContentKey) -> None:
    writer = FeedWriter("alice", alice)
    verifier = FeedVerifier(trust)
    verifier.admit(*writer.append(payloads(0), key1), NOW)
    block, fragments = writer.append(payloads(1, n=4), key1)
    before = verifier.state()

    def refused(b: bytes | Block, frags: list[Fragment]) -> None:
        with pytest.raises(GossipError):
            verifier.admit(b if isinstance(b, Block) else decode_block(b), frags, NOW)
        assert verifier.state() == before

    wire = encode_block(block)
    for corrupt in flipped(wire):
        refused(corrupt, fragments)
    for i, fragment in enumerate(fragments):
        for corrupt in flipped(encode_fragment(fragment)):
            try:
                damaged = decode_fragment(corrupt)
            except Malformed:
                continue  # refused at the wire, before admission
            refused(block, [*fragments[:i], damaged, *fragments[i + 1:]])
    # swapped, missing and extra fragments
    refused(block, [fragments[1], fragments[0], *fragments[2:]])
    refused(block, fragments[:-1])
    refused(block, [*fragments, fragments[-1]])
    assert verifier.state() == before
    assert len(verifier.admit(block, fragments, NOW)) == 4  # the genuine one still goes in


def test_malformed_and_oversized_input(trust: Trust, alice: AgentKeys, key1: ContentKey) -> None:
    block, _ = FeedWriter("alice", alice).append([b"x"], key1)
    wire = encode_block(block)
    for bad in (b"", b"\xc1", wire[:-1], wire + b"\x00", msgspec.msgpack.encode([1, 2, 3])):
        with pytest.raises(Malformed):
            decode_block(bad)
    with pytest.raises(Malformed, match="exceeds"):
        decode_block(wire, max_bytes=len(wire) - 1)
    assert decode_block(wire, max_bytes=len(wire)) == block
    with pytest.raises(Malformed):
        decode_fragment(b"\x95" + b"\x00" * 40)


def test_fork_freezes_the_author(trust: Trust, alice: AgentKeys, key1: ContentKey) -> None:
    verifier = FeedVerifier(trust)
    writer, twin = FeedWriter("alice", alice), FeedWriter("alice", alice)
    verifier.admit(*writer.append(payloads(0), key1), NOW)
    verifier.admit(*writer.append(payloads(1), key1), NOW)
    twin.append(payloads(0), key1)  # same block 0 content, different nonces: a different block
    fork_block, fork_fragments = twin.append([b"the other story"], key1)
    with pytest.raises(Fork) as info:
        verifier.admit(fork_block, fork_fragments, NOW)
    assert info.value.index == 1 and info.value.conflicting == fork_block.digest
    assert verifier.state().feeds[0].frozen
    with pytest.raises(FeedFrozen):
        verifier.admit(*writer.append(payloads(2), key1), NOW)
    restored = FeedVerifier(trust, verifier.state())
    with pytest.raises(FeedFrozen):
        restored.admit(*writer.append(payloads(3), key1), NOW)


def test_fork_at_block_zero(trust: Trust, alice: AgentKeys, key1: ContentKey) -> None:
    verifier = FeedVerifier(trust)
    verifier.admit(*FeedWriter("alice", alice).append([b"a"], key1), NOW)
    with pytest.raises(Fork):
        verifier.admit(*FeedWriter("alice", alice).append([b"b"], key1), NOW)


def test_replay_changes_nothing(trust: Trust, alice: AgentKeys, key1: ContentKey) -> None:
    verifier = FeedVerifier(trust)
    writer = FeedWriter("alice", alice)
    first = writer.append(payloads(0), key1)
    verifier.admit(*first, NOW)
    second = writer.append(payloads(1), key1)
    verifier.admit(*second, NOW)
    before = verifier.state()
    for block, fragments in (first, second, (second[0], [])):
        with pytest.raises(Replay):
            verifier.admit(block, fragments, NOW)
        assert verifier.state() == before
    assert not issubclass(Replay, (Fork, BadSignature, BrokenChain, Gap))


def test_gaps_and_broken_chains(trust: Trust, alice: AgentKeys, key1: ContentKey) -> None:
    verifier = FeedVerifier(trust)
    writer = FeedWriter("alice", alice)
    b0, b1, b2 = (writer.append(payloads(i), key1) for i in range(3))
    with pytest.raises(Gap):
        verifier.admit(*b1, NOW)  # block 0 missing
    verifier.admit(*b0, NOW)
    before = verifier.state()
    with pytest.raises(Gap):
        verifier.admit(*b2, NOW)  # block 1 skipped
    assert verifier.state() == before

    # correctly signed by alice but chained to nothing she admitted, or with a seq hole
    def signed(**change: object) -> Block:
        unsigned = msgspec.structs.replace(b1[0], **change)
        return msgspec.structs.replace(unsigned, signature=alice.sign(unsigned.header()))

    with pytest.raises(BrokenChain):
        verifier.admit(signed(prev=bytes(32)), b1[1], NOW)
    with pytest.raises(Gap):
        verifier.admit(signed(first_seq=b1[0].first_seq + 1), b1[1], NOW)
    with pytest.raises(BrokenChain):
        verifier.admit(signed(first_seq=1), b1[1], NOW)
    assert verifier.state() == before
    verifier.admit(*b1, NOW)
    verifier.admit(*b2, NOW)


def test_signature_is_checked_before_decryption(trust: Trust, alice: AgentKeys, key1: ContentKey) -> None:
    unknown = ContentKey.generate("never-installed")
    block, fragments = FeedWriter("alice", alice).append(payloads(0), unknown)
    forged = msgspec.structs.replace(block, signature=bytes(64))
    ring = keyring(key1)
    verifier = FeedVerifier(trust)

    def ingest(b: Block, frags: list[Fragment]) -> list[bytes]:
        return [ring.open(f) for f in verifier.admit(b, frags, NOW)]

    with pytest.raises(BadSignature):
        ingest(forged, fragments)
    with pytest.raises(Undecryptable):  # genuine block, key not held: only then does opening fail
        ingest(block, fragments)


# --------------------------------------------------------------------------- sealing


def test_content_key_rotation(trust: Trust, alice: AgentKeys) -> None:
    k1, k2 = ContentKey.generate("k1"), ContentKey.generate("k2")
    writer = FeedWriter("alice", alice)
    verifier = FeedVerifier(trust)
    old = verifier.admit(*writer.append([b"under k1"], k1), NOW)
    new = verifier.admit(*writer.append([b"under k2"], k2), NOW)
    ring = keyring(k1, k2)
    assert ring.current().key_id == "k2"
    assert [ring.open(f) for f in old + new] == [b"under k1", b"under k2"]
    ring.retire("k1")
    with pytest.raises(Undecryptable, match="not installed"):
        ring.open(old[0])
    assert ring.open(new[0]) == b"under k2"
    # a wrong key under the right id fails its tag
    impostor = ContentKeyring()
    impostor.install("k2", os.urandom(32))
    with pytest.raises(Undecryptable, match="authenticate"):
        impostor.open(new[0])


def test_a_ciphertext_cannot_move_to_another_author_or_seq(alice: AgentKeys, key1: ContentKey) -> None:
    _, (a, b) = FeedWriter("alice", alice).append([b"one", b"two"], key1)
    ring = keyring(key1)
    for moved in (msgspec.structs.replace(a, seq=2), msgspec.structs.replace(a, author="bob"),
                  msgspec.structs.replace(b, nonce=a.nonce, ciphertext=a.ciphertext)):
        with pytest.raises(Undecryptable):
            ring.open(moved)


def test_content_keys_are_sealed_to_one_member(alice: AgentKeys) -> None:
    bob = AgentKeys.generate()
    key = os.urandom(32)
    blob = seal_key_for(alice.box_public, "k7", key)
    assert open_key(alice, blob) == ("k7", key)
    with pytest.raises(Undecryptable):
        open_key(bob, blob)
    for corrupt in (blob[:-1], blob[:31], b"", bytes(len(blob)), blob[:40] + bytes([blob[40] ^ 1]) + blob[41:]):
        with pytest.raises(Undecryptable):
            open_key(alice, corrupt)


def test_errors_share_the_reverie_base() -> None:
    for cls in (GossipError, CertificateError, Malformed, Undecryptable, KeyFileError):
        assert issubclass(cls, ReverieError)
