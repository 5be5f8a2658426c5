"""`reverie keys`: the swarm's identities on disk, revocation, content key rotation."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from reverie.runtime.gossip import (
    CertificateRevoked,
    ContentKey,
    FeedVerifier,
    FeedWriter,
    Undecryptable,
)
from reverie.runtime.gossip.identity import AgentKeys
from reverie.runtime.gossip.keystore import KeyStore, KeyStoreError

from .conftest import ROOT, run_cli

MEMBERS = {"dreamer": ("dreamer",), "rules": ("critic",), "planner": ("critic",)}


def test_init_certifies_every_member_with_private_keys_0600(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    store.init(MEMBERS)
    private = [p for p in (tmp_path / "keys").rglob("*.key")]
    assert len(private) == 1 + 2 * 3 + 2  # swarm, three agents, the operator's own box/signing keys
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in private)
    trust = store.trust()
    assert {trust.author(n, time.time()).agent_id for n in MEMBERS} == set(MEMBERS)
    current = store.current_key_id()
    assert current and all(store.keyring(n).current().key_id == current for n in MEMBERS)
    with pytest.raises(KeyStoreError, match="already holds a swarm key"):
        store.init(MEMBERS)


def test_revoked_member_is_refused_and_gets_no_new_content_key(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    store.init(MEMBERS)
    old = store.current_key_id()
    # rules writes a block under the old key before it is revoked: still readable afterwards
    rules = AgentKeys.load(tmp_path / "keys" / "agents" / "rules")
    ring = store.keyring("rules")
    block, fragments = FeedWriter("rules", rules).append([b"lesson before"], ring.current())
    new = store.revoke("rules")
    assert new != old and store.current_key_id() == new
    trust = store.trust()
    now = time.time()
    with pytest.raises(CertificateRevoked):
        trust.author("rules", now)
    assert trust.author("planner", now).agent_id == "planner"
    assert new not in store.keyring("rules").key_ids()
    assert set(store.keyring("planner").key_ids()) == {old, new}
    planner_ring = store.keyring("planner")
    with pytest.raises(CertificateRevoked):
        FeedVerifier(trust).admit(block, fragments, now)
    assert planner_ring.open(fragments[0]) == b"lesson before"  # no fragment became unreadable
    # a fragment sealed under the new key cannot be read by the revoked member
    planner = AgentKeys.load(tmp_path / "keys" / "agents" / "planner")
    _, fresh = FeedWriter("planner", planner).append([b"after"], planner_ring.current())
    with pytest.raises(Undecryptable):
        store.keyring("rules").open(fresh[0])
    assert isinstance(planner_ring.current(), ContentKey)


def test_added_member_gets_the_current_key_and_a_tampered_revocation_list_is_refused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    store.init(MEMBERS)
    store.add("scout", ("agent",))
    assert store.keyring("scout").current().key_id == store.current_key_id()
    with pytest.raises(KeyStoreError, match="already has a certificate"):
        store.add("scout", ("agent",))
    raw = bytearray((tmp_path / "keys" / "revoked.list").read_bytes())
    raw[-1] ^= 1
    (tmp_path / "keys" / "revoked.list").write_bytes(bytes(raw))
    with pytest.raises(KeyStoreError, match="not signed by the swarm key"):
        store.trust()


def test_keys_cli_prints_public_facts_only(tmp_path: Path) -> None:
    cfg = str(ROOT / "deploy" / "local.toml")
    init = run_cli("keys", cfg, "--data-dir", str(tmp_path), "--json", "init")
    assert init.returncode == 0, init.stderr
    report = json.loads(init.stdout)
    assert sorted(m["name"] for m in report["members"]) == ["budget", "dreamer", "planner", "rules", "sandbox"]
    assert {m["name"]: m["roles"] for m in report["members"]}["rules"] == ["critic"]
    revoked = run_cli("keys", cfg, "--data-dir", str(tmp_path), "revoke", "budget")
    assert revoked.returncode == 0 and "revoked budget; new content key" in revoked.stdout
    listed = json.loads(run_cli("keys", cfg, "--data-dir", str(tmp_path), "list", "--json").stdout)
    assert [m["revoked"] for m in listed["members"] if m["name"] == "budget"] == [True]
    secrets = [p.read_bytes() for p in (tmp_path / "keys").rglob("*.key")]
    out = (init.stdout + revoked.stdout).encode()
    assert secrets and not any(s.hex().encode() in out or s in out for s in secrets)
    again = run_cli("keys", cfg, "--data-dir", str(tmp_path), "init")
    assert again.returncode == 2 and "already holds a swarm key" in again.stderr
