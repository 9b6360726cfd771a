"""Room for another key in a full pool: which idle pane goes, and when a pane coming back from a job is
handed over to a key that has none (pool/panes.py). Tables of pool states; times in seconds."""

from __future__ import annotations

import pytest

from claude_bridge_tmux.pool.panes import EVICT_IDLE_S, PaneView, claim_to_serve, eviction_victim

NOW = 1000.0


def panes(*specs: str) -> list[PaneView]:
    """``"p1 A idle 30"``: pane p1 of key A, idle, last used 30 s ago."""
    out = []
    for spec in specs:
        pid, key, state, ago = spec.split()
        out.append(PaneView(pid, key, state, NOW - float(ago)))
    return out


@pytest.mark.parametrize("key,pool,victim", [
    # a key with no live pane takes the least recently used idle pane of another key, however fresh
    ("B", panes("p1 A idle 1", "p2 A idle 3", "p3 A busy 0"), "p2"),
    ("B", panes("p1 A busy 0", "p2 A clearing 0"), None),             # nothing idle: wait (and claim)
    ("B", panes("p1 A idle 1", "p2 B retired 0"), "p1"),              # a retired pane is not a live one
    # a key with live panes waits for them rather than trade a fresh pane of another key
    ("A", panes("p1 A busy 0", "p2 B idle 1", "p3 C idle 2"), None),
    ("A", panes("p1 A starting 0", "p2 B idle 3"), None),
    # ... unless a pane of another key has been idle for EVICT_IDLE_S
    ("A", panes("p1 A busy 0", "p2 B idle 1", f"p3 C idle {EVICT_IDLE_S}"), "p3"),
    ("A", panes("p1 A clearing 0", f"p2 B idle {EVICT_IDLE_S + 5}", f"p3 C idle {EVICT_IDLE_S + 1}"), "p2"),
    # never its own key's pane, never a busy one
    ("A", panes("p1 A idle 50", "p2 B busy 50"), None),
    ("A", [], None),
])
def test_eviction_victim(key, pool, victim):
    assert eviction_victim(key, pool, NOW) == victim


@pytest.mark.parametrize("pane,pool,claims,waiting,served", [
    # the soak's case: 7 panes of the busy key, a --max-turns job with no pane claims the next one back
    ("p1", panes("p1 A clearing 0", "p2 A busy 0", "p3 A busy 0"), ["G"], {"A": 3, "G": 1}, "G"),
    # the only pane of a key with waiting jobs stays with its key
    ("p1", panes("p1 A clearing 0"), ["G"], {"A": 1, "G": 1}, None),
    # ... but goes when nobody waits for its key
    ("p1", panes("p1 A clearing 0"), ["G"], {"G": 2}, "G"),
    # a claim holds only while its key has waiting jobs and no live pane
    ("p1", panes("p1 A clearing 0", "p2 A busy 0"), ["G"], {"G": 0}, None),
    ("p1", panes("p1 A clearing 0", "p2 A busy 0", "p3 G starting 0"), ["G"], {"G": 1}, None),
    # the oldest claim first; a claim of the pane's own key is not served by handing it over
    ("p1", panes("p1 A clearing 0", "p2 A busy 0"), ["H", "G"], {"G": 1, "H": 1}, "H"),
    ("p1", panes("p1 A clearing 0", "p2 A busy 0"), ["A", "G"], {"A": 1, "G": 1}, "G"),
    ("p1", panes("p1 A clearing 0", "p2 A busy 0"), [], {"A": 1}, None),
])
def test_claim_to_serve(pane, pool, claims, waiting, served):
    me = next(p for p in pool if p.id == pane)
    assert claim_to_serve(me, pool, claims, waiting) == served
