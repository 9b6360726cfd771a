"""Many hosts, one queue: pool workers and callers meet in Redis (redis-py; ``redis://`` / ``rediss://``).

Callers (``CLAUDE_BRIDGE_POOL_URL=redis://…``) put jobs in; worker daemons (``claude-bridge pool start
--queue redis://…``) run them on their warm panes and stream the output back. Keys (``PREFIX`` =
``claude-bridge:``):

- ``jobs``: a stream of job ids (consumer group ``workers``);
- ``job:<id>``: a hash ``payload`` (JSON: argv, stdin, cwd, env), ``state`` (``queued`` → ``started``
  → ``done``), ``worker``, ``cancel``; expires a day after the job ends;
- ``out:<id>``: a stream of the job's frames, the local pool protocol's (``{"ev": "out", "b": base64}``,
  ``{"ev": "err", "t": text}``, ``{"ev": "exit", "code": n}``), read live by the caller;
- ``caller:<id>``: the caller's heartbeat (TTL CALLER_TTL_S); when it is gone the job is cancelled;
- ``worker:<name>`` (TTL WORKER_TTL_S) and the set ``workers``: each worker's heartbeat and panes
  (their keys and states), its capacity and running count;
- ``inbox:<name>``: a stream of job ids forwarded to that worker (same consumer group).

Routing: a worker that reads a job from ``jobs`` and has no idle pane of the job's key (the pane key of
pool/key.py, computed by the worker from the job) looks at the other workers' heartbeats; when one
advertises an idle pane of that key and has room, the job is forwarded to its inbox once (``hops``
in the job hash), otherwise it runs here. A worker reads its inbox before the shared stream; the
inbox of a worker that died is read by the others.

Delivery (each job runs at most once): a worker marks a job ``started`` atomically (a Lua script)
before anything runs; a job read by a worker that died before marking it is reclaimed by another
worker after RECLAIM_IDLE_S (``XAUTOCLAIM``); a job whose worker dies after marking it is never run
again: its caller sees the worker's heartbeat expire and ends with a one-line error and exit 1
within WORKER_TTL_S + a second.

No credential travels: the job's environment loses every variable that looks like one
(:func:`strip_credentials`) and the worker's own HOME/login is used (:func:`worker_env`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping
from typing import Any

from claude_bridge_tmux.pool.protocol import FrameChannel

PREFIX = "claude-bridge:"
GROUP = "workers"
CALLER_TTL_S = 10
CALLER_BEAT_S = 3.0
WORKER_TTL_S = 10
WORKER_BEAT_S = 2.0
RECLAIM_IDLE_S = 15.0
JOB_KEEP_S = 86400
OUT_MAXLEN = 100_000

# Never sent to a worker: credentials, and what only makes sense on the caller's host.
_SECRET = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_KEY|APIKEY|PRIVATE_KEY|AUTH)", re.I)
HOST_ONLY = {"HOME", "USER", "LOGNAME", "SHELL", "PATH", "TMPDIR", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME",
             "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "CLAUDE_CONFIG_DIR", "CLAUDE_BRIDGE_RUNTIME_DIR",
             "CLAUDE_BRIDGE_STATE_DIR", "CLAUDE_BRIDGE_CLAUDE_BIN", "CLAUDE_BRIDGE_POOL_URL", "SSH_AUTH_SOCK",
             "DISPLAY", "PWD", "OLDPWD", "SHLVL", "_", "TERM", "COLORTERM", "PYTHONPATH", "VIRTUAL_ENV",
             "ANTHROPIC_BASE_URL"}


class QueueError(Exception):
    """Redis is unreachable or refused us; ``str(e)`` is one line."""


def key(name: str) -> str:
    return PREFIX + name


def strip_credentials(env: Mapping[str, str]) -> dict[str, str]:
    """The part of a caller's environment a job carries: no credential-like variable, nothing
    host-specific (HOME, PATH, the CLI's config dir, the API endpoint: the worker's own are used)."""
    return {k: v for k, v in env.items() if k not in HOST_ONLY and not _SECRET.search(k)}


def worker_env(own: Mapping[str, str], job: Mapping[str, str]) -> dict[str, str]:
    """The environment a job runs with on a worker: the worker's own (its login, HOME, PATH) with the
    job's variables on top (already stripped of credentials by the caller; stripped again here)."""
    return {**own, **strip_credentials(job)}


def connect(url: str):
    """A redis-py client for ``url`` (``redis://[user:password@]host:port/db``, ``rediss://`` for TLS,
    query options as redis-py reads them). Raises QueueError when the server does not answer."""
    try:
        import redis
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise QueueError("claude-bridge: the redis package is missing (pip install redis)") from e
    try:
        client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5,
                                      health_check_interval=30)
        client.ping()
    except (redis.RedisError, ValueError) as e:
        raise QueueError(f"claude-bridge: cannot reach the Redis queue at {redact(url)}: {e}") from e
    return client


def redact(url: str) -> str:
    """``url`` without its password (for messages and status)."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


def cwd_problem(cwd: str, roots: list[str], worker: str) -> str | None:
    """A one-line reason worker ``worker`` cannot run a job in ``cwd``: it does not exist there, or it
    is not inside one of ``roots`` (real paths: a symlink out of a root counts as outside). None if fine."""
    if not cwd or not os.path.isdir(cwd):
        return f"claude-bridge: the job's directory {cwd or '(none)'} does not exist on pool worker {worker}"
    real = os.path.realpath(cwd)
    if not any(real == root or real.startswith(root.rstrip("/") + "/") for root in roots):
        return (f"claude-bridge: pool worker {worker} does not run jobs in {cwd} (outside its roots: "
                f"{', '.join(roots)}; see pool start --root)")
    return None


def ensure_group(r, stream: str | None = None) -> None:
    """The consumer group on ``stream`` (default: the shared ``jobs`` stream), created if missing."""
    import redis
    try:
        r.xgroup_create(stream or key("jobs"), GROUP, id="0", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


# A job is started once: queued -> started (by this worker), atomically.
_START = """
if redis.call('HGET', KEYS[1], 'state') == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'started', 'worker', ARGV[1], 'started_at', ARGV[2])
  return 1
end
return 0
"""


# -- caller side ----------------------------------------------------------------------------------

def submit(r, *, argv: list[str], stdin: str | None, cwd: str, env: Mapping[str, str]) -> str:
    """Queue one job; returns its id. The payload holds no credential (:func:`strip_credentials`)."""
    job_id = uuidlib.uuid4().hex
    payload = json.dumps({"argv": argv, "stdin": stdin, "cwd": cwd, "env": strip_credentials(env)})
    pipe = r.pipeline()
    pipe.hset(key(f"job:{job_id}"), mapping={"payload": payload, "state": "queued", "created": time.time()})
    pipe.expire(key(f"job:{job_id}"), JOB_KEEP_S)
    pipe.set(key(f"caller:{job_id}"), "1", ex=CALLER_TTL_S)
    pipe.xadd(key("jobs"), {"id": job_id})
    pipe.execute()
    return job_id


def follow(r, job_id: str, on_frame: Callable[[dict], None], *, stop: threading.Event | None = None) -> int:
    """Read the job's output frames as the worker writes them, calling ``on_frame`` for ``out``/``err``;
    return the exit code. Keeps the caller's heartbeat alive meanwhile.

    A worker that dies after starting the job ends it with a one-line ``err`` frame and exit 1 (never
    a second run). Redis unreachable for a moment (a restart) is waited out for up to
    ``REDIS_OUTAGE_S``; a server that comes back without the job (no persistence) ends it the same way
    (the worker sees the job gone and stops its turn). Raises :class:`QueueError` when Redis stays away.
    """
    last = "0-0"
    told_lost = False
    beat_at = checked_at = time.monotonic()
    while True:
        if stop is not None and stop.is_set():
            return 1
        try:
            now = time.monotonic()
            if now - beat_at > CALLER_BEAT_S:
                r.set(key(f"caller:{job_id}"), "1", ex=CALLER_TTL_S, xx=True)
                beat_at = now
            got = r.xread({key(f"out:{job_id}"): last}, block=1000, count=100)
            for _stream, entries in got or []:
                for entry_id, fields in entries:
                    last = entry_id
                    frame = json.loads(fields["f"])
                    if frame.get("ev") == "exit":
                        return int(frame.get("code", 1))
                    told_lost = told_lost or frame.get("t") == LOST_JOB
                    on_frame(frame)
            if time.monotonic() - checked_at > 1.0:
                checked_at = time.monotonic()
                state = r.hmget(key(f"job:{job_id}"), "state", "worker")
                if state[0] is None:
                    if not told_lost:          # (the worker may have said so already)
                        on_frame({"ev": "err", "t": LOST_JOB})
                    return 1
                if state[0] == "started" and state[1] and not r.exists(key(f"worker:{state[1]}")):
                    # drain what it wrote before it went away
                    got = r.xread({key(f"out:{job_id}"): last}, count=1000)
                    for _stream, entries in got or []:
                        for _entry_id, fields in entries:
                            frame = json.loads(fields["f"])
                            if frame.get("ev") == "exit":
                                return int(frame.get("code", 1))
                            on_frame(frame)
                    on_frame({"ev": "err", "t": f"claude-bridge: the pool worker {state[1]} went away while "
                                                "running this job (it is not run again)"})
                    return 1
        except _outage_errors() as e:
            wait_for_redis(r, e, stop=stop)
            checked_at = 0.0          # look at the job's state first thing


LOST_JOB = "claude-bridge: the Redis queue lost this job (the server restarted without its data); it is not run again"
REDIS_OUTAGE_S = 15.0       # how long a caller or worker waits for an unreachable Redis to come back


def _outage_errors() -> tuple[type[BaseException], ...]:
    import redis
    return (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


def wait_for_redis(r, first: BaseException, *, stop: threading.Event | None = None,
                   bound_s: float = REDIS_OUTAGE_S) -> None:
    """Ping until Redis answers again (a restart), at most ``bound_s`` seconds; then raise
    :class:`QueueError` naming the first error."""
    end = time.monotonic() + bound_s
    while time.monotonic() < end:
        if stop is not None and stop.is_set():
            return
        time.sleep(0.25)
        try:
            r.ping()
            return
        except _outage_errors():
            continue
    raise QueueError(f"claude-bridge: lost the Redis queue: unreachable for {bound_s:.0f} s ({first})")


def cancel(r, job_id: str) -> None:
    """The caller is going away: the worker interrupts the job's turn."""
    pipe = r.pipeline()
    pipe.delete(key(f"caller:{job_id}"))
    pipe.hset(key(f"job:{job_id}"), "cancel", "1")
    pipe.execute()


def queue_status(r) -> dict[str, Any]:
    """Workers (from their heartbeats), their panes, and the queue depth (jobs not yet read or started)."""
    workers = []
    for name in sorted(r.smembers(key("workers"))):
        info = r.hgetall(key(f"worker:{name}"))
        if not info:
            r.srem(key("workers"), name)
            continue
        info["panes"] = json.loads(info.get("panes") or "[]")
        workers.append({"name": name, **info})
    depth = 0
    try:
        for g in r.xinfo_groups(key("jobs")):
            if g.get("name") == GROUP:
                depth = int(g.get("lag") or 0) + int(g.get("pending") or 0)
    except Exception:  # noqa: BLE001 - no stream yet
        depth = 0
    return {"workers": workers, "depth": depth}


# -- worker side ----------------------------------------------------------------------------------

class RedisConn(FrameChannel):
    """A job's output channel on Redis, with the interface of the daemon's socket connection
    (``send``, ``err``, ``closed``): frames go to ``out:<id>``; ``closed`` is set when the caller's
    heartbeat expires or it asks to cancel."""

    def __init__(self, r, job_id: str):
        self.r = r
        self.job_id = job_id
        self.closed = threading.Event()
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.lost = False            # Redis came back without the job: its caller is told, not its output

    def send(self, frame: dict) -> None:
        if self.closed.is_set() and frame.get("ev") != "exit" and not self.lost:
            raise BrokenPipeError("the caller went away")
        with self.lock:
            fields = {"f": json.dumps(frame)}
            try:
                self.r.xadd(key(f"out:{self.job_id}"), fields, maxlen=OUT_MAXLEN, approximate=True)
            except _outage_errors() as e:     # Redis restarting: wait (bounded), then write it again
                try:
                    wait_for_redis(self.r, e)
                except QueueError as lost:
                    raise BrokenPipeError(str(lost)) from e
                self.r.xadd(key(f"out:{self.job_id}"), fields, maxlen=OUT_MAXLEN, approximate=True)

    def watch_hangup(self) -> None:
        def run():
            while not self.done.wait(1.0):
                try:
                    gone = not self.r.exists(key(f"caller:{self.job_id}"))
                    # (a Redis restarted without its data has lost the job: its caller ends it)
                    state, cancel = self.r.hmget(key(f"job:{self.job_id}"), "state", "cancel")
                    self.lost = state is None
                    cancelled = cancel == "1" or self.lost
                except Exception:  # noqa: BLE001 - Redis hiccup: keep the job, retry
                    continue
                if gone or cancelled:
                    self.closed.set()
                    return
        threading.Thread(target=run, daemon=True, name=f"hangup-{self.job_id[:8]}").start()


class RedisWorker:
    """The daemon's consumer of the shared queue: reads jobs while it has room, starts each once,
    runs it with ``run_job(conn, request) -> exit code``, and keeps its heartbeat."""

    def __init__(self, url: str, *, run_job: Callable[[Any, dict], int], capacity: int,
                 roots: list[str], status: Callable[[], list[dict]], log: Callable[[str], None],
                 name: str | None = None, own_env: Mapping[str, str] | None = None,
                 route: Callable[[dict], tuple[str, str | None] | None] | None = None):
        self.url = url
        self.r = connect(url)
        ensure_group(self.r)
        self.route = route            # (pane key, route) a job would use here (None: its own pane / invalid)
        self.capacity = max(1, capacity)
        self._peers: list[dict] = []
        self._peers_at = 0.0
        self._forwarded: dict[str, list[float]] = {}   # peer -> epoch s of jobs forwarded to it
        self.run_job = run_job
        self.slots = threading.Semaphore(max(1, capacity))
        self.roots = [os.path.realpath(p) for p in roots]
        self.status = status
        self.log = log
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.inbox = key(f"inbox:{self.name}")
        ensure_group(self.r, self.inbox)
        self.own_env = dict(os.environ if own_env is None else own_env)
        self.stopping = threading.Event()
        self.running = 0
        self.jobs_done = 0
        self._script = self.r.register_script(_START)
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.beat()
        for target in (self._consume, self._heartbeat, self._reclaim):
            t = threading.Thread(target=target, daemon=True, name=f"redis-{target.__name__}")
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self.stopping.set()
        try:
            self.r.delete(key(f"worker:{self.name}"))
            self.r.srem(key("workers"), self.name)
        except Exception:  # noqa: BLE001 - Redis already gone
            pass

    # -- loops -----------------------------------------------------------------------------------
    def beat(self) -> None:
        panes = [{k: p.get(k) for k in ("pane", "key", "route", "state", "jobs", "rss")} for p in self.status()]
        pipe = self.r.pipeline()
        pipe.hset(key(f"worker:{self.name}"), mapping={
            "host": socket.gethostname(), "pid": os.getpid(), "running": self.running,
            "capacity": self.capacity,
            "jobs_done": self.jobs_done, "panes": json.dumps(panes), "updated": time.time(),
            "roots": json.dumps(self.roots)})
        pipe.expire(key(f"worker:{self.name}"), WORKER_TTL_S)
        pipe.sadd(key("workers"), self.name)
        pipe.execute()

    def _heartbeat(self) -> None:
        while not self.stopping.wait(WORKER_BEAT_S):
            try:
                self.beat()
            except Exception as e:  # noqa: BLE001 - Redis restarting: try again next beat
                self.log(f"redis heartbeat failed: {e}")

    def _consume(self) -> None:
        while not self.stopping.is_set():
            if not self.slots.acquire(timeout=1.0):
                continue
            try:
                # the inbox (jobs forwarded here) first, then the shared stream; one slot, one job
                got = self.r.xreadgroup(GROUP, self.name, {self.inbox: ">"}, count=1) or \
                    self.r.xreadgroup(GROUP, self.name, {self.inbox: ">", key("jobs"): ">"}, count=1, block=1000)
            except Exception as e:  # noqa: BLE001 - Redis restarting: back off, keep going
                self.slots.release()
                self.log(f"redis read failed: {e}")
                if "NOGROUP" in str(e):   # a Redis that restarted without its data: the groups anew
                    with contextlib.suppress(Exception):
                        ensure_group(self.r)
                        ensure_group(self.r, self.inbox)
                        continue
                self.stopping.wait(1.0)
                continue
            entries = [(stream, eid, f) for stream, items in got or [] for eid, f in items]
            if not entries:
                self.slots.release()
                continue
            entries.sort(key=lambda e: e[0] != self.inbox)
            (stream, entry_id, fields), rest = entries[0], entries[1:]
            self._take(entry_id, fields.get("id", ""), stream=stream, may_forward=stream != self.inbox)
            for stream, entry_id, fields in rest:   # (read together with an inbox job): give it back
                self._give_back(stream, entry_id, fields)

    def _give_back(self, stream: str, entry_id: str, fields: Mapping[str, str]) -> None:
        """Put a job read without a slot for it back at the end of ``stream``."""
        try:
            pipe = self.r.pipeline()
            pipe.xadd(stream, dict(fields))
            pipe.xack(stream, GROUP, entry_id)
            pipe.execute()
        except Exception as e:  # noqa: BLE001 - left pending: the reclaim loop takes it over
            self.log(f"redis: could not give back job {fields.get('id')}: {e}")

    def peers(self, *, fresh: bool = False) -> list[dict]:
        """The other live workers' heartbeats (``name``, ``panes``, ``running``, ``capacity``), at most
        a second old (``fresh``: read now)."""
        if fresh or time.monotonic() - self._peers_at > 1.0:
            peers = []
            for name in self.r.smembers(key("workers")):
                if name == self.name:
                    continue
                info = self.r.hgetall(key(f"worker:{name}"))
                if info:
                    info["panes"] = json.loads(info.get("panes") or "[]")
                    peers.append({"name": name, **info})
            self._peers, self._peers_at = peers, time.monotonic()
        return self._peers

    def forward_target(self, job_id: str) -> str | None:
        """Another worker with a free pane of this job's route, when this one has no pane of the job's
        key idle or about to be (clearing); else None (the job runs here).

        A peer's panes count as free when idle or clearing in its last heartbeat, less the jobs this
        worker forwarded to it since that heartbeat (so a burst of jobs is not all sent to one pane)."""
        if self.route is None:
            return None
        req = self._request(job_id)
        keys = self.route(req) if req is not None else None
        if keys is None or keys[1] is None:
            return None
        pane_key, route = keys
        if any(p.get("key") == pane_key and p.get("state") in ("idle", "clearing") for p in self.status()):
            return None
        # the cached heartbeats first; before settling for a cold pane here, the current ones (a peer
        # that has just finished a job of this route beat before its caller heard of the end)
        read_at = self._peers_at
        for fresh in (False, True):
            if fresh and self._peers_at != read_at:
                break                      # the cached copy was too old and has just been read anew
            for w in self.peers(fresh=fresh):
                name = str(w["name"])
                updated = float(w.get("updated") or 0)
                sent = [t for t in self._forwarded.get(name, []) if t > updated]
                self._forwarded[name] = sent
                free = sum(1 for p in w["panes"] if p.get("route") == route and p.get("state") in ("idle", "clearing"))
                if free - len(sent) > 0 and int(w.get("running") or 0) < int(w.get("capacity") or 1):
                    self._forwarded[name].append(time.time())
                    return name
        return None

    def _request(self, job_id: str) -> dict | None:
        """The job's request as this worker runs it (``op``, argv, stdin, cwd, the worker's env)."""
        raw = self.r.hget(key(f"job:{job_id}"), "payload")
        if not raw:
            return None
        req = json.loads(raw)
        job_env = req.get("env") or {}
        return dict(req, op="run", env=worker_env(self.own_env, job_env), route_env=strip_credentials(job_env))

    def _reclaim(self) -> None:
        """Jobs read by a worker that died before starting them, and jobs forwarded to a worker that
        died before reading them: take them over."""
        while not self.stopping.wait(RECLAIM_IDLE_S / 3):
            streams = [key("jobs")]
            try:
                for name in self.r.smembers(key("workers")):
                    if name != self.name and not self.r.exists(key(f"worker:{name}")):
                        streams.append(key(f"inbox:{name}"))
                        self.r.srem(key("workers"), name)
                streams += [s for s in self.r.scan_iter(match=key("inbox:*"), count=100)
                            if s not in streams and s != self.inbox
                            and not self.r.exists(key(f"worker:{s[len(key('inbox:')):]}"))]
            except Exception:  # noqa: BLE001
                continue
            for stream in streams:
                self._reclaim_stream(stream, dead_inbox=stream != key("jobs"))

    def _reclaim_stream(self, stream: str, *, dead_inbox: bool) -> None:
        try:
            _next, entries, *_ = self.r.xautoclaim(stream, GROUP, self.name, count=10,
                                                   min_idle_time=0 if dead_inbox else int(RECLAIM_IDLE_S * 1000))
            if dead_inbox:
                ensure_group(self.r, stream)
                got = self.r.xreadgroup(GROUP, self.name, {stream: ">"}, count=100)
                entries = list(entries) + [(eid, f) for _s, items in got or [] for eid, f in items]
        except Exception:  # noqa: BLE001
            return
        for entry_id, fields in entries:
            if fields is None:
                continue
            if self.slots.acquire(timeout=RECLAIM_IDLE_S):
                self._take(entry_id, fields.get("id", ""), stream=stream)
        if dead_inbox and not entries:
            with contextlib.suppress(Exception):
                self.r.delete(stream)

    def _take(self, entry_id: str, job_id: str, *, stream: str | None = None, may_forward: bool = False) -> None:
        """Start ``job_id`` if nobody has (else drop the entry); a slot is held for it. A job from the
        shared stream may first be forwarded, once, to a worker with an idle pane of its key."""
        stream = stream or key("jobs")
        if may_forward:
            try:
                target = self.forward_target(job_id)
                if target is not None and self.r.hincrby(key(f"job:{job_id}"), "hops", 1) == 1:
                    pipe = self.r.pipeline()
                    pipe.xadd(key(f"inbox:{target}"), {"id": job_id})
                    pipe.xack(stream, GROUP, entry_id)
                    pipe.execute()
                    self.log(f"job {job_id[:8]} forwarded to {target} (an idle pane of its key)")
                    self.slots.release()
                    return
            except Exception as e:  # noqa: BLE001 - routing is an optimisation: run it here
                self.log(f"redis: routing job {job_id[:8]} failed: {e}")
        try:
            started = self._script(keys=[key(f"job:{job_id}")], args=[self.name, time.time()])
        except Exception:  # noqa: BLE001
            started = 0
        self.r.xack(stream, GROUP, entry_id)
        if not started:
            self.slots.release()
            return
        t = threading.Thread(target=self._run, args=(job_id,), daemon=True, name=f"job-{job_id[:8]}")
        t.start()

    def _run(self, job_id: str) -> None:
        conn = RedisConn(self.r, job_id)
        self.running += 1
        code = 1
        try:
            req = self._request(job_id) or {}
            problem = self.cwd_problem(str(req.get("cwd") or ""))
            if problem:
                conn.err(problem)
            else:
                conn.watch_hangup()
                code = self.run_job(conn, req)
        except Exception as e:  # noqa: BLE001 - the caller gets a one-line reason, never silence
            conn.err(f"claude-bridge: the pool worker {self.name} failed: {e}")
            code = 1
        finally:
            conn.done.set()
            self.running -= 1
            self.jobs_done += 1
            try:
                # status shows the finished job (and its pane free again) before the caller hears of
                # the end: a next job of the same route is routed to that pane, not to a cold one
                self.beat()
            except Exception:  # noqa: BLE001 - the next heartbeat retries
                pass
            try:
                if conn.lost:
                    code = 1
                    conn.send({"ev": "err", "t": LOST_JOB})
                conn.send({"ev": "exit", "code": code})
                pipe = self.r.pipeline()
                pipe.hset(key(f"job:{job_id}"), mapping={"state": "done", "code": code})
                pipe.expire(key(f"out:{job_id}"), JOB_KEEP_S)
                pipe.execute()
            except Exception as e:  # noqa: BLE001
                self.log(f"redis: could not finish job {job_id}: {e}")
            self.slots.release()

    def cwd_problem(self, cwd: str) -> str | None:
        """A one-line reason this worker cannot run a job in ``cwd``, or None (see :func:`cwd_problem`)."""
        return cwd_problem(cwd, self.roots, self.name)
