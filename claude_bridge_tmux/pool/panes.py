"""Warm panes: start, hand out, clear, recycle.

A ``WarmPane`` is a ``ClaudeSession`` started without a prompt and waiting at claude's input prompt.
A job takes an idle pane of its key (``try_take``), runs one turn on it, and gives it back
(``release``): the pane then runs ``/clear`` in the background — a fresh conversation with a new
session id, confirmed by the SessionStart hook (``source: "clear"``) — and becomes idle again.
Panes are retired (killed, and replaced when they belong to a warm target) after K jobs, after a
failed or cancelled job, when claude's RSS passes a bound, when idle too long beyond the warm target,
or when they die.  Every state change notifies the job queue.

States: ``starting`` → ``idle`` ⇄ ``busy`` → ``clearing`` → ``idle`` …; any → ``retired``.
Times are ``time.monotonic()`` seconds; RSS in bytes.

**Room for another key** (pool at ``max_panes`` or its RSS budget): every start costs claude's whole
boot (~1.4 s of CPU), so panes are not traded back and forth between keys (:func:`eviction_victim`).
A job whose key already has live panes waits for one of them, unless a pane of another key has been
idle for :data:`EVICT_IDLE_S`. A job whose key has no live pane evicts the least recently used idle
pane of another key; when none is idle, it leaves a *claim*: the next pane to come back from a job
whose key can spare it (another live pane of its key, or nobody waiting for it) is retired for the
claiming key instead of going idle (:func:`claim_to_serve`), so a rare key is never starved by a busy one.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from claude_bridge_tmux.config import POOL_IDLE_TIMEOUT_S as DEFAULT_IDLE_TIMEOUT
from claude_bridge_tmux.follow.session import ClaudeSession, TurnError
from claude_bridge_tmux.host.paths import atomic_write, write_private
from claude_bridge_tmux.host.preseed import PreseedError, SeedRequest, TrustLease, preseed
from claude_bridge_tmux.pool.jobqueue import InProcessQueue
from claude_bridge_tmux.pool.key import describe, job_env_script, key_material, pane_key
from claude_bridge_tmux.run.lifecycle import wait_for_mcp_servers
from claude_bridge_tmux.tmux.pane import TmuxServer

JOB_ENV_NAME = "job-env.sh"
START_RETRY_MAX_S = 30.0             # s: the longest wait before a warm pane is started again after failures
PANE_RSS_ESTIMATE = 300 << 20        # bytes: a booting pane's share of the budget (2.1.x: ~255 MiB idle)


def default_rss_budget(meminfo: str = "/proc/meminfo") -> int:
    """Half the machine's memory (MemTotal), at least 1 GiB; 4 GiB when /proc/meminfo is unreadable."""
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return max(1 << 30, int(line.split()[1]) * 1024 // 2)
    except (OSError, ValueError, IndexError):
        pass
    return 4 << 30


START_TIMEOUT = 60.0
CLEAR_TIMEOUT = 30.0
EVICT_IDLE_S = 10.0      # s: an idle pane of another key this old may go for a key that has live panes


@dataclass(frozen=True)
class PaneView:
    """What the eviction policy looks at in a pane: ``state`` as in the module docstring,
    ``last_used`` in monotonic seconds."""

    id: str
    key: str
    state: str
    last_used: float


def eviction_victim(key: str, panes: Iterable[PaneView], now: float, *,
                    min_idle_s: float = EVICT_IDLE_S) -> str | None:
    """The id of the pane to retire so that a pane of ``key`` can start in a full pool, or None (wait).

    Only idle panes of other keys are candidates, least recently used first. While ``key`` has live
    panes (any state but ``retired``), a candidate must have been idle ``min_idle_s`` or longer: the job
    is better off waiting for its own key's pane than paying a start and costing another key its pane.
    """
    live = [p for p in panes if p.state != "retired"]
    candidates = [p for p in live if p.state == "idle" and p.key != key]
    if any(p.key == key for p in live):
        candidates = [p for p in candidates if now - p.last_used >= min_idle_s]
    return min(candidates, key=lambda p: p.last_used).id if candidates else None


def claim_to_serve(pane: PaneView, panes: Iterable[PaneView], claims: Iterable[str],
                   waiting: Mapping[str, int]) -> str | None:
    """The claiming key (oldest claim first) that ``pane``, just back from a job, is retired for, or
    None (it goes idle for its own key). A claim holds while its key has waiting jobs and no live pane;
    ``pane`` can be spared when its key has another live pane or no job waiting for it."""
    live = [p for p in panes if p.state != "retired"]
    spare = any(p.key == pane.key and p.id != pane.id for p in live) or waiting.get(pane.key, 0) == 0
    if not spare:
        return None
    for key in claims:
        if key != pane.key and waiting.get(key, 0) > 0 and not any(p.key == key for p in live):
            return key
    return None


@dataclass
class LaunchConfig:
    """How to start a pane for one key (derived from a prepared call)."""

    claude_bin: str
    version: str
    claude_args: list[str]
    env: dict[str, str]
    cwd: str
    settings: dict
    deny: bool
    # the tool gate hook (jobs with --max-turns / --max-budget-usd: the limit itself is the job's)
    gated: bool = False
    # the host-independent key (pool/key.route_key), for routing queued jobs
    route: str | None = field(default=None, compare=False)

    # computed once: a job's config is asked for its key on every try to take a pane
    @cached_property
    def material(self) -> dict:
        return key_material(self.claude_bin, self.version, self.cwd, self.env, self.claude_args,
                            self.settings, self.deny, self.gated)

    @cached_property
    def key(self) -> str:
        return pane_key(self.material)

    @property
    def label(self) -> str:
        return describe(self.material)


_ids = itertools.count(1)


@dataclass
class WarmPane:
    """One pooled pane and its bookkeeping."""

    config: LaunchConfig
    session: ClaudeSession
    key: str
    id: str = field(default_factory=lambda: f"p{next(_ids)}")
    state: str = "starting"
    jobs: int = 0
    created: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    lease: TrustLease | None = None
    reason: str | None = None

    def rss(self) -> int | None:
        """Resident memory of the claude process in bytes (from /proc), or None."""
        pid = self.session.pane.pid() if self.session.pane else None
        if not pid:
            return None
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None


class PanePool:
    """All panes of one daemon, on one private tmux server."""

    def __init__(self, server: TmuxServer, *, max_panes: int = 8, max_jobs_per_pane: int = 50,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT, rss_limit: int = 2 << 30,
                 rss_budget: int | None = None, log: Callable[[str], None] | None = None):
        self.server = server
        self.max_panes = max_panes
        self.max_jobs_per_pane = max_jobs_per_pane
        self.idle_timeout = idle_timeout
        self.rss_limit = rss_limit
        self.rss_budget = rss_budget if rss_budget is not None else default_rss_budget()
        self.log = log or (lambda m: None)
        self.queue = InProcessQueue()
        self.lock = threading.RLock()
        self.panes: dict[str, WarmPane] = {}
        self.warm_targets: dict[str, tuple[LaunchConfig, int]] = {}
        self.draining = False
        self.retired_count = 0
        self._closers: list[threading.Thread] = []   # background retirements (joined by stop)
        self._start_failures: dict[str, int] = {}    # key -> consecutive failed starts
        self._retry_at: dict[str, float] = {}        # key -> monotonic time before which no warm start
        self._start_error: dict[str, str] = {}       # key -> why its last pane failed to start
        self._claims: dict[str, LaunchConfig] = {}    # key without a pane -> its config (oldest first)

    # -- starting ----------------------------------------------------------------------------
    def _new_session(self, cfg: LaunchConfig) -> ClaudeSession:
        import uuid
        session = ClaudeSession(claude_bin=cfg.claude_bin, claude_args=cfg.claude_args, env=dict(cfg.env),
                                cwd=cfg.cwd, session_id=str(uuid.uuid4()), settings=cfg.settings,
                                deny_permission_requests=cfg.deny, server=self.server, log=self.log,
                                gate_tools=cfg.gated)
        wait_for_mcp_servers(session, cfg.version)
        if not cfg.material["strict_env"]:
            # each job's own variables reach claude's Bash commands through this script (pool/key.py)
            env_file = session.run_dir / JOB_ENV_NAME
            write_private(env_file, b"")
            session.env["CLAUDE_ENV_FILE"] = str(env_file)
        return session

    @staticmethod
    def set_job_env(pane: WarmPane, job_env: dict[str, str]) -> None:
        """Write the job's environment script for ``pane`` (before its prompt is submitted).

        claude reads the script once per session id, at the session's first Bash command; every job
        runs in a new session (the first on a fresh pane, the others after ``/clear``). Raises OSError.
        """
        env_file = pane.session.env.get("CLAUDE_ENV_FILE")
        if env_file and not pane.config.material["strict_env"]:
            atomic_write(Path(env_file), job_env_script(pane.session.env, job_env).encode("utf-8", "surrogatepass"))

    def start_pane(self, cfg: LaunchConfig) -> WarmPane:
        """Create a pane record in state ``starting`` and boot claude in a background thread."""
        pane = WarmPane(config=cfg, session=self._new_session(cfg), key=cfg.key)
        with self.lock:
            self.panes[pane.id] = pane
        threading.Thread(target=self._boot, args=(pane,), daemon=True, name=f"boot-{pane.id}").start()
        return pane

    def _boot(self, pane: WarmPane) -> None:
        cfg = pane.config
        try:
            pane.lease = preseed(cfg.env, SeedRequest(cwd=cfg.cwd, api_key=cfg.env.get("ANTHROPIC_API_KEY"),
                                                      cli_version=cfg.version), f"pool-{pane.id}")
            pane.session.trust_leased = pane.lease is not None and cfg.cwd in pane.lease.claims
            pane.session.start()
            pane.session.wait_started(time.monotonic() + START_TIMEOUT)
        except (TurnError, PreseedError, Exception) as e:  # noqa: BLE001 - any boot failure retires
            reason = getattr(e, "reason", None) or str(e)
            self.log(f"pane {pane.id} failed to start: {reason}")
            pane.reason = reason
            with self.lock:       # no restart storm: the warm target is retried later, backing off
                n = self._start_failures.get(pane.key, 0) + 1
                self._start_failures[pane.key] = n
                self._start_error[pane.key] = reason
                self._retry_at[pane.key] = time.monotonic() + min(START_RETRY_MAX_S, 2.0 ** (n - 1))
            self.retire(pane, f"start failed: {reason}", replace=False)
            return
        with self.lock:
            self._start_failures.pop(pane.key, None)
            self._retry_at.pop(pane.key, None)
            self._start_error.pop(pane.key, None)
        with self.lock:
            if pane.state == "starting":
                pane.state = "idle"
                pane.last_used = time.monotonic()
        self.log(f"pane {pane.id} warm (key {pane.key}, session {pane.session.info.session_id})")
        self.queue.notify()

    def set_warm_target(self, cfg: LaunchConfig, count: int) -> None:
        """Keep ``count`` panes of ``cfg``'s key alive (started now in the background)."""
        with self.lock:
            self.warm_targets[cfg.key] = (cfg, count)
        self.ensure_warm()

    def ensure_warm(self) -> None:
        """Start panes for warm targets that are short of their count (within ``max_panes``)."""
        if self.draining:
            return
        with self.lock:
            now = time.monotonic()
            for key, (cfg, count) in self.warm_targets.items():
                if self._retry_at.get(key, 0.0) > now:
                    continue            # its last start failed: wait (maintain() calls again)
                have = sum(1 for p in self.panes.values() if p.key == key and p.state != "retired")
                for _ in range(count - have):
                    live = self.live()
                    if len(live) >= self.max_panes or (
                            live and self.rss_used() + PANE_RSS_ESTIMATE > self.rss_budget):
                        return
                    self.start_pane(cfg)

    def start_error(self, key: str) -> str | None:
        """Why the last pane of ``key`` failed to start, during the back-off after that failure (1 s,
        doubling per consecutive failure up to START_RETRY_MAX_S); jobs of that key fail with it then
        instead of starting pane after pane. None otherwise."""
        with self.lock:
            if self._retry_at.get(key, 0.0) > time.monotonic():
                return self._start_error.get(key)
            return None

    def live(self) -> list[WarmPane]:
        with self.lock:
            return [p for p in self.panes.values() if p.state != "retired"]

    def rss_used(self) -> int:
        """Bytes the live panes hold: measured RSS, or :data:`PANE_RSS_ESTIMATE` for a pane still booting."""
        return sum(p.rss() or PANE_RSS_ESTIMATE for p in self.live())

    def _views(self) -> list[PaneView]:
        return [PaneView(p.id, p.key, p.state, p.last_used) for p in self.panes.values()]

    def _room_for_one_more(self, cfg: LaunchConfig) -> bool:
        """Make room for a new pane of ``cfg``'s key (pane cap and RSS budget) by retiring idle panes of
        other keys as :func:`eviction_victim` allows; False when the pool is full and the job must wait
        (having left a claim when its key has no live pane). A pool with no live pane always has room
        (one pane may exceed the budget alone)."""
        key = cfg.key
        while True:
            live = self.live()
            if not live:
                return True
            over_cap = len(live) >= self.max_panes
            over_budget = self.rss_used() + PANE_RSS_ESTIMATE > self.rss_budget
            if not (over_cap or over_budget):
                return True
            victim_id = eviction_victim(key, self._views(), time.monotonic())
            if victim_id is None:
                if not any(p.key == key for p in live):
                    self._claims.setdefault(key, cfg)
                return False
            why = "pool at its pane cap" if over_cap else f"pool at its RSS budget ({self.rss_budget >> 20} MiB)"
            self.retire(self.panes[victim_id], f"evicted (least recently used, {why})", replace=False)

    # -- jobs ----------------------------------------------------------------------------------
    def try_take(self, cfg: LaunchConfig) -> WarmPane | None:
        """An idle pane of ``cfg``'s key, now busy; or None after making sure one is on its way
        (starting a pane, evicting the least recently used idle pane of another key if at the cap)."""
        key = cfg.key
        with self.lock:
            if self.draining:
                return None
            idle = [p for p in self.panes.values() if p.key == key and p.state == "idle"]
            if idle:
                pane = min(idle, key=lambda p: p.last_used)
                pane.state = "busy"
                pane.last_used = time.monotonic()
                return pane
            coming = [p for p in self.panes.values() if p.key == key and p.state in ("starting", "clearing")]
            waiting_for_key = max(1, self.queue.waiting_for(key))
            if len(coming) >= waiting_for_key:
                return None
            if self._retry_at.get(key, 0.0) > time.monotonic():
                return None         # its last start failed moments ago (start_error says why)
            if not self._room_for_one_more(cfg):
                return None
            self._claims.pop(key, None)
            self.start_pane(cfg)
            return None

    def release(self, pane: WarmPane, *, ok: bool, reason: str | None = None) -> None:
        """Give a pane back after a job: clear it for the next job, or retire it."""
        with self.lock:
            pane.jobs += 1
            pane.last_used = time.monotonic()
        rss = pane.rss()
        why = None
        if not ok:
            why = reason or "job failed"
        elif pane.jobs >= self.max_jobs_per_pane:
            why = f"served {pane.jobs} jobs"
        elif rss is not None and rss > self.rss_limit:
            why = f"RSS {rss >> 20} MiB over the limit"
        elif self.draining:
            why = "pool draining"
        # in the background: the caller gets its exit code now, not after claude's exit / a /clear
        with self.lock:
            pane.state = "retiring" if why else "clearing"
        if why:
            t = threading.Thread(target=self.retire, args=(pane, why), daemon=True, name=f"retire-{pane.id}")
            with self.lock:
                self._closers = [c for c in self._closers if c.is_alive()] + [t]
            t.start()
        else:
            threading.Thread(target=self._clear, args=(pane,), daemon=True, name=f"clear-{pane.id}").start()

    def _clear(self, pane: WarmPane) -> None:
        try:
            pane.session.clear(time.monotonic() + CLEAR_TIMEOUT)
        except TurnError as e:
            self.retire(pane, f"/clear failed: {e.reason}")
            return
        # (the queue's counts are read before the pool's lock: a waiting job holds the queue's lock
        # while it takes the pool's)
        waiting = {k: self.queue.waiting_for(k) for k in {*list(self._claims), pane.key}}
        with self.lock:
            claim = self._claim_for(pane, waiting)
            if claim is None and pane.state == "clearing":
                pane.state = "idle"
        if claim is not None:
            self.retire(pane, "handed over to a job of another key that had no pane", replace=False)
            with self.lock:
                if not self.draining:
                    self.start_pane(claim)
        self.queue.notify()

    def _claim_for(self, pane: WarmPane, waiting: Mapping[str, int]) -> LaunchConfig | None:
        """The claim (see the module docstring) that ``pane``, just cleared, is given up for; claims of
        keys with no job waiting (``waiting``: key -> jobs) are forgotten. Called with the lock held."""
        if pane.state != "clearing" or not self._claims:
            return None
        views = self._views()
        for k in [k for k in self._claims if waiting.get(k, 0) == 0]:
            del self._claims[k]        # its jobs were served, gave up or went away
        key = claim_to_serve(PaneView(pane.id, pane.key, pane.state, pane.last_used), views, self._claims, waiting)
        return self._claims.pop(key) if key is not None else None

    def retire(self, pane: WarmPane, reason: str, *, replace: bool = True) -> None:
        """Kill a pane and forget it; start a replacement when a warm target needs one."""
        with self.lock:
            if pane.state == "retired":
                return
            pane.state = "retired"
            pane.reason = reason
            self.panes.pop(pane.id, None)
            self.retired_count += 1
        self.log(f"pane {pane.id} retired: {reason}")
        pane.session.close()
        if pane.lease is not None:
            pane.lease.release()
        if replace:
            self.ensure_warm()
        self.queue.notify()

    # -- upkeep ----------------------------------------------------------------------------------
    def maintain(self) -> None:
        """Retire dead panes and panes idle past ``idle_timeout`` beyond their warm target."""
        now = time.monotonic()
        with self.lock:
            panes = list(self.panes.values())
        for pane in panes:
            if pane.state == "idle" and pane.session.pane is not None:
                dead, _ = pane.session.pane.status()
                if dead:
                    self.retire(pane, "claude exited while idle")
                    continue
                target = self.warm_targets.get(pane.key, (None, 0))[1]
                same = [p for p in panes if p.key == pane.key and p.state != "retired"]
                if now - pane.last_used > self.idle_timeout and len(same) > target:
                    self.retire(pane, "idle timeout", replace=False)
        self._shed_over_budget()
        self.ensure_warm()

    def _shed_over_budget(self) -> None:
        """Over the RSS budget (panes grow as they serve jobs): retire idle panes beyond their warm
        target, least recently used first, until the pool fits or none is left to retire."""
        while self.rss_used() > self.rss_budget:
            with self.lock:
                live = self.live()
                spare = [p for p in live if p.state == "idle" and
                         sum(1 for q in live if q.key == p.key) > self.warm_targets.get(p.key, (None, 0))[1]]
            if not spare:
                return
            victim = min(spare, key=lambda p: p.last_used)
            self.retire(victim, f"over the RSS budget ({self.rss_budget >> 20} MiB)", replace=False)

    def drain(self) -> None:
        """Stop taking jobs; retire idle panes now and busy ones when their job ends."""
        with self.lock:
            self.draining = True
            panes = list(self.panes.values())
        for pane in panes:
            if pane.state in ("idle", "starting", "clearing"):
                self.retire(pane, "pool draining", replace=False)

    def stop(self) -> None:
        """Retire every pane."""
        with self.lock:
            self.draining = True
            panes = list(self.panes.values())
        for pane in panes:
            self.retire(pane, "pool stopped", replace=False)
        with self.lock:
            closers = list(self._closers)
        for t in closers:     # retirements begun after a job: their claude must be gone too
            t.join(10.0)

    def status(self) -> list[dict]:
        """One dict per pane: id, key, route, label, state, jobs, age_s, session_id, rss."""
        now = time.monotonic()
        out = []
        for p in self.live():
            out.append({"pane": p.id, "tmux_pane": p.session.pane.pane_id if p.session.pane else None,
                        "pid": p.session.pane.pid() if p.session.pane else None,
                        "key": p.key, "route": p.config.route, "label": p.config.label, "state": p.state,
                        "jobs": p.jobs,
                        "age_s": round(now - p.created, 1), "session_id": p.session.info.session_id,
                        "rss": p.rss()})
        return out
