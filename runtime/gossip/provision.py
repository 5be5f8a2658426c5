"""Keys for every agent of a deploy config: what `reverie keys init` and `reverie up` create."""

from __future__ import annotations

from ..config import SwarmConfig
from ..kinds import Roster
from .keystore import KeyStore

__all__ = ["ensure_keys", "members_of"]


def members_of(config: SwarmConfig) -> dict[str, tuple[str, ...]]:
    """Each agent of `config` and the roles its certificate names (its class's role)."""
    return {name: (kind.role,) for name, kind in Roster.of(config).items()}


def ensure_keys(config: SwarmConfig) -> list[str]:
    """Create the swarm's keys on first use, and certify agents added to the config since;
    returns the names that got keys now. A revoked agent is left revoked (re-keying it is
    `reverie keys CONFIG add NAME`, an operator's decision)."""
    store = KeyStore(config.data_path / "keys")
    members = members_of(config)
    if not store.initialised:
        store.init(members)
        return list(members)
    known = {c.agent_id for c in store.certificates()}
    added = [name for name in members if name not in known]
    for name in added:
        store.add(name, members[name])
    return added
