"""Pool workers on a shared Redis queue: a real redis-server on a loopback port, several worker daemons
(each with its own runtime and state dirs, standing in for hosts), callers with CLAUDE_BRIDGE_POOL_URL,
the real CLI and the mock model."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import assert_no_leftovers, claude_processes

pytestmark = pytest.mark.integration
NEWEST_CLI_ONLY = True      # the queue's behaviour does not depend on the CLI version (conftest.py)

if shutil.which("redis-server") is None:
    pytest.skip("redis-server is not installed (scripts/setup installs it)", allow_module_level=True)
redis = pytest.importorskip("redis")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A real redis-server on a loopback port; ``restart()`` stops it and starts it on the same port
    (with ``persist``, an append-only file keeps the data across the restart)."""

    def __init__(self, d: Path, *, persist: bool = False):
        self.port = _free_port()
        self.dir = d
        self.persist = persist
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      *aof, "--dir", str(self.dir)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.RedisError:
                if time.monotonic() > end:
                    self.proc.kill()
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


@pytest.fixture
def redis_server(tmp_path):
    d = tmp_path / "redis"
    d.mkdir()
    server = RedisServer(d)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    return redis_server.url


class Workers:
    """Worker daemons (``pool start --foreground --queue URL``), each with its own dirs (a "host")."""

    def __init__(self, bed, url: str, tmp: Path):
        self.bed, self.url, self.tmp = bed, url, tmp
        self.procs: dict[str, subprocess.Popen] = {}
        self.envs: dict[str, dict] = {}

    def start(self, name: str, *extra: str) -> None:
        env = dict(self.bed.env, CLAUDE_BRIDGE_RUNTIME_DIR=str(self.tmp / name / "run"),
                   CLAUDE_BRIDGE_STATE_DIR=str(self.tmp / name / "state"))
        self.envs[name] = env
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "claude_bridge_tmux", "pool", "start", "--foreground", "--size", "1",
             "--queue", self.url, "--root", str(self.bed.cwd), *extra], env=env, cwd=self.bed.cwd,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def status(self) -> dict:
        p = subprocess.run([sys.executable, "-m", "claude_bridge_tmux", "pool", "status", "--queue", self.url,
                            "--json"], capture_output=True, text=True, env=self.bed.env, timeout=30)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def wait_idle(self, n: int, timeout: float = 60) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = self.status()
            ready = [w for w in st["workers"] if any(p["state"] == "idle" for p in w["panes"])]
            if len(ready) >= n:
                return st
            time.sleep(0.2)
        raise AssertionError(f"{n} workers with a warm pane did not show up: {self.status()}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def workers(bed, redis_url):
    # short paths: a worker's tmux socket lives under its runtime dir (unix socket paths max ~107 bytes)
    hosts = Path(tempfile.mkdtemp(prefix="cbq-"))
    w = Workers(bed, redis_url, hosts)
    yield w
    w.stop()
    for env in w.envs.values():      # a SIGKILLed worker leaves its panes: the next run's gc reaps them
        subprocess.run([sys.executable, "-m", "claude_bridge_tmux", "gc"], env=env, capture_output=True, timeout=60)
    end = time.monotonic() + 15
    while claude_processes(bed.home) and time.monotonic() < end:
        time.sleep(0.2)
    shutil.rmtree(hosts, ignore_errors=True)
    assert claude_processes(bed.home) == []


def call(bed, url: str, *args: str, cwd=None, env_extra=None, timeout=120) -> subprocess.CompletedProcess:
    env = dict(bed.env, CLAUDE_BRIDGE_POOL_URL=url, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "claude_bridge_tmux", *args], capture_output=True, env=env,
                          cwd=cwd or bed.cwd, timeout=timeout, stdin=subprocess.DEVNULL)


def test_jobs_from_many_callers_are_answered_by_several_workers(bed, workers):
    workers.start("host-a")
    workers.start("host-b")
    workers.wait_idle(2)
    results: dict[int, subprocess.CompletedProcess] = {}

    def one(i: int) -> None:
        results[i] = call(bed, workers.url, "-p", f"job {i}", "--output-format", "json",
                          env_extra={"TASK_ID": str(i)})
    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, p in results.items():
        assert p.returncode == 0, p.stderr.decode()
        assert json.loads(p.stdout)["result"] == f"MOCK-REPLY to: job {i}"
    end = time.monotonic() + 10
    while True:       # a worker's counters reach Redis with its heartbeat, right after its job
        done = {w["name"]: int(w["jobs_done"]) for w in workers.status()["workers"]}
        if sum(done.values()) == 6 or time.monotonic() > end:
            break
        time.sleep(0.2)
    assert sum(done.values()) == 6 and all(n > 0 for n in done.values()), done
    assert workers.status()["depth"] == 0


def test_output_is_what_a_local_call_prints(bed, workers):
    workers.start("host-a")
    workers.wait_idle(1)
    args = ("-p", "tool MOCK:tool=echo_queued", "--output-format", "stream-json", "--verbose")
    queued = call(bed, workers.url, *args)
    local = subprocess.run([sys.executable, "-m", "claude_bridge_tmux", *args], capture_output=True,
                           env=dict(bed.env, CLAUDE_BRIDGE_POOL="0"), cwd=bed.cwd, timeout=120,
                           stdin=subprocess.DEVNULL)
    assert (queued.returncode, queued.stderr) == (local.returncode, local.stderr)
    kinds = lambda out: [(m["type"], m.get("subtype")) for m in map(json.loads, out.splitlines())]  # noqa: E731
    assert kinds(queued.stdout) == kinds(local.stdout)
    assert json.loads(queued.stdout.splitlines()[-1])["result"] == "MOCK-TOOL-DONE: queued"


def test_no_credential_in_the_job_payload(bed, workers):
    workers.start("host-a")
    workers.wait_idle(1)
    p = call(bed, workers.url, "-p", "hi", env_extra={"MY_SERVICE_TOKEN": "tok-123", "GITHUB_TOKEN": "ghp_x"})
    assert p.returncode == 0, p.stderr.decode()
    r = redis.Redis.from_url(workers.url, decode_responses=True)
    payloads = [r.hget(k, "payload") for k in r.scan_iter("claude-bridge:job:*")]
    assert payloads and all(bed.env["ANTHROPIC_API_KEY"] not in pl and "tok-123" not in pl and "ghp_x" not in pl
                            for pl in payloads)


def test_a_cwd_outside_the_workers_roots_is_refused(bed, workers, tmp_path):
    workers.start("host-a")
    workers.wait_idle(1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    p = call(bed, workers.url, "-p", "hi", cwd=elsewhere)
    assert p.returncode == 1
    assert b"outside its roots" in p.stderr and p.stdout == b""
    assert bed.mock.main_requests() == []


def test_a_job_of_a_worker_that_died_before_starting_it_runs_elsewhere(bed, workers):
    """A consumer reads the job and dies without starting it; a live worker reclaims it."""
    from claude_bridge_tmux.pool import redisq
    r = redis.Redis.from_url(workers.url, decode_responses=True)
    redisq.ensure_group(r)
    caller = subprocess.Popen([sys.executable, "-m", "claude_bridge_tmux", "-p", "reclaimed", "--output-format",
                               "json"], env=dict(bed.env, CLAUDE_BRIDGE_POOL_URL=workers.url), cwd=bed.cwd,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.monotonic() + 20
    got = []
    while not got and time.monotonic() < end:       # the "dead worker" takes the job first
        got = r.xreadgroup(redisq.GROUP, "ghost-worker", {redisq.key("jobs"): ">"}, count=1, block=500)
    assert got, "the job was never queued"
    workers.start("host-a")
    out, err = caller.communicate(timeout=redisq.RECLAIM_IDLE_S + 60)
    assert caller.returncode == 0, err.decode()
    assert json.loads(out)["result"] == "MOCK-REPLY to: reclaimed"
    assert len([q for q in bed.mock.main_requests() if q["prompt"] == "reclaimed"]) == 1


def _slow_job_running(bed, workers, hang: int = 60) -> subprocess.Popen:
    """One worker, and a caller whose job has reached the model (which takes ``hang`` s to answer)."""
    workers.start("host-a")
    workers.wait_idle(1)
    caller = subprocess.Popen([sys.executable, "-m", "claude_bridge_tmux", "-p", f"slow MOCK:hang={hang}"],
                              env=dict(bed.env, CLAUDE_BRIDGE_POOL_URL=workers.url), cwd=bed.cwd,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.monotonic() + 30
    while not bed.mock.main_requests() and time.monotonic() < end:
        time.sleep(0.1)
    return caller


def test_a_worker_killed_mid_turn_fails_the_job_once(bed, workers):
    from claude_bridge_tmux.pool import redisq
    caller = _slow_job_running(bed, workers)
    assert bed.mock.main_requests(), "the job never reached the model"
    workers.procs["host-a"].kill()
    killed = time.monotonic()
    out, err = caller.communicate(timeout=60)
    assert caller.returncode == 1
    assert b"went away while running this job" in err
    assert time.monotonic() - killed < redisq.WORKER_TTL_S + 5
    workers.start("host-b")                 # another worker does not run it again
    workers.wait_idle(1)
    time.sleep(2)
    assert len(bed.mock.main_requests()) == 1


def test_a_caller_that_goes_away_cancels_its_job(bed, workers):
    from claude_bridge_tmux.pool import redisq
    caller = _slow_job_running(bed, workers)
    caller.send_signal(signal.SIGTERM)
    assert caller.wait(10) == 128 + signal.SIGTERM
    end = time.monotonic() + redisq.CALLER_TTL_S + 20
    while time.monotonic() < end:
        w = workers.status()["workers"][0]
        if int(w["running"]) == 0:
            break
        time.sleep(0.5)
    assert int(workers.status()["workers"][0]["running"]) == 0
    p = call(bed, workers.url, "-p", "after the cancel")
    assert p.returncode == 0 and p.stdout == b"MOCK-REPLY to: after the cancel\n"


def test_unreachable_queue_is_a_one_line_error(bed):
    url = f"redis://127.0.0.1:{_free_port()}/0"
    p = call(bed, url, "-p", "hi", timeout=60)
    assert p.returncode == 1 and p.stderr.count(b"\n") == 1 and b"cannot reach the Redis queue" in p.stderr
    w = subprocess.run([sys.executable, "-m", "claude_bridge_tmux", "pool", "start", "--queue", url],
                       capture_output=True, env=bed.env, cwd=bed.cwd, timeout=60, stdin=subprocess.DEVNULL)
    assert w.returncode == 1 and b"cannot reach the Redis queue" in w.stderr
    assert_no_leftovers(bed)


def test_queue_status_lists_workers_and_depth(bed, workers):
    workers.start("host-a")
    workers.wait_idle(1)
    p = subprocess.run([sys.executable, "-m", "claude_bridge_tmux", "pool", "status", "--queue", workers.url],
                       capture_output=True, text=True, env=bed.env, timeout=30)
    assert p.returncode == 0
    assert "1 worker(s), 0 job(s) waiting" in p.stdout and "idle" in p.stdout


@pytest.mark.parametrize("persist", [False, True], ids=["no-persistence", "append-only-file"])
def test_redis_restarting_mid_job(bed, workers, redis_server, persist):
    """Redis restarts while a job's turn runs. With an append-only file the data survives: the caller
    gets the whole answer, exit 0. Without it the job is lost: the caller gets one line and exit 1
    (never a second run), the worker stops that turn, recreates its consumer group, and answers the
    next job."""
    if persist:                       # (the fixture's server has none: start one that has)
        redis_server.stop()
        redis_server.persist = True
        redis_server.start()
    caller = _slow_job_running(bed, workers, hang=6)
    assert bed.mock.main_requests(), "the job never reached the model"
    restarted = time.monotonic()
    redis_server.restart(down_s=1.0)
    out, err = caller.communicate(timeout=60)
    took = time.monotonic() - restarted
    if persist:
        assert caller.returncode == 0, err
        assert out.startswith(b"MOCK-REPLY to: slow")
    else:
        assert caller.returncode == 1, (out, err)
        assert err.count(b"\n") == 1 and b"lost this job" in err, err
        assert took < 15, took
    time.sleep(7)                     # (the lost turn would have ended by now: it must not run again)
    assert len(bed.mock.main_requests()) == 1
    p = call(bed, workers.url, "-p", "after the restart", timeout=90)
    assert p.returncode == 0 and p.stdout == b"MOCK-REPLY to: after the restart\n", p.stderr


def test_redis_gone_for_good_mid_job(bed, workers, redis_server):
    """Redis stops while a job runs and does not come back: the caller waits out REDIS_OUTAGE_S (a
    restart), then one line and exit 1."""
    from claude_bridge_tmux.pool import redisq
    caller = _slow_job_running(bed, workers, hang=30)
    assert bed.mock.main_requests(), "the job never reached the model"
    redis_server.stop()
    stopped = time.monotonic()
    out, err = caller.communicate(timeout=60)
    assert caller.returncode == 1
    assert err.count(b"\n") == 1 and b"lost the Redis queue" in err, err
    assert time.monotonic() - stopped < redisq.REDIS_OUTAGE_S + 5


def test_jobs_go_to_the_worker_with_a_warm_pane_of_their_key(bed, workers):
    """Two workers; jobs of a key only one of them has a pane for are all served by that pane
    (forwarded through its inbox), never by a second, cold pane on the other worker."""
    workers.start("host-a")
    workers.start("host-b")
    st = workers.wait_idle(2)
    warm_keys = {p["key"] for w in st["workers"] for p in w["panes"]}
    opts = ("--append-system-prompt", "routed jobs")
    for k in range(6):
        p = call(bed, workers.url, "-p", f"routed {k}", *opts)
        assert p.returncode == 0 and p.stdout == f"MOCK-REPLY to: routed {k}\n".encode(), p.stderr
    end = time.monotonic() + 10
    while True:                        # (the heartbeat after the last job shows its count)
        st = workers.status()
        routed = [(w["name"], p) for w in st["workers"] for p in w["panes"] if p["key"] not in warm_keys]
        if sum(int(p["jobs"]) for _n, p in routed) >= 6 or time.monotonic() > end:
            break
        time.sleep(0.3)
    assert len(routed) == 1, routed
    assert int(routed[0][1]["jobs"]) == 6


def test_a_job_forwarded_to_a_worker_that_died_runs_elsewhere(bed, workers):
    """A job sits in the inbox of a worker that is gone (forwarded to it just before it died): a live
    worker reads that inbox and runs the job, once."""
    from claude_bridge_tmux.pool import redisq
    workers.start("host-a")
    workers.wait_idle(1)
    r = redisq.connect(workers.url)
    job_id = "f" * 32
    env = dict(bed.env)
    r.hset(redisq.key(f"job:{job_id}"), mapping={
        "payload": json.dumps({"argv": ["-p", "forwarded to the dead"], "stdin": None, "cwd": str(bed.cwd),
                               "env": redisq.strip_credentials(env)}),
        "state": "queued", "created": time.time(), "hops": 1})
    r.set(redisq.key(f"caller:{job_id}"), "1", ex=redisq.CALLER_TTL_S)
    r.sadd(redisq.key("workers"), "dead-host")
    redisq.ensure_group(r, redisq.key("inbox:dead-host"))
    r.xadd(redisq.key("inbox:dead-host"), {"id": job_id})
    out: list[bytes] = []
    started = time.monotonic()
    code = redisq.follow(r, job_id, lambda f: out.append(base64.b64decode(f["b"])) if f.get("ev") == "out" else None)
    assert code == 0
    assert b"".join(out) == b"MOCK-REPLY to: forwarded to the dead\n"
    assert time.monotonic() - started < redisq.RECLAIM_IDLE_S + 10
    assert len(bed.mock.main_requests()) == 1
