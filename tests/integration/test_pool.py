"""Pool mode on the real CLI: warm panes, routing, isolation, recycling, failures, clean stop."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import assert_no_leftovers, claude_processes

pytestmark = pytest.mark.integration


def pool_cmd(bed, *args, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "claude_bridge_tmux", "pool", *args], capture_output=True,
                          text=True, env=env or bed.env, cwd=bed.cwd, timeout=timeout, stdin=subprocess.DEVNULL)


def status(bed) -> dict:
    p = pool_cmd(bed, "status", "--json")
    return json.loads(p.stdout)


def wait_for(pred, timeout=60.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def idle_panes(bed) -> list[dict]:
    st = status(bed)
    return [p for p in st.get("panes", []) if p["state"] == "idle"]


@pytest.fixture
def pool(bed, request):
    opts = getattr(request, "param", None) or ["--size", "1"]
    p = pool_cmd(bed, "start", *opts)
    assert p.returncode == 0, p.stdout + p.stderr
    wait_for(lambda: len(idle_panes(bed)) >= 1, what="a warm pane")
    yield bed
    pool_cmd(bed, "stop")
    assert_no_leftovers(bed)


_NORMALISE = [
    (re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'), "UUID"),
    (re.compile(r'msg_mock_[0-9a-f]+'), "MSGID"),
    (re.compile(r'req_mock_[0-9a-f]+'), "REQID"),
    (re.compile(r'toolu_[0-9a-f]+'), "TOOLID"),
    (re.compile(r'"(\w+_ms)":\d+(\.\d+)?'), r'"\1":0'),  # every timing field
    (re.compile(r'"timestamp":"[^"]+"'), '"timestamp":"T"'),
    # per-process value (the CLI's own messaging socket, named after its pid)
    (re.compile(r'"messaging_socket_path":"[^"]*"'), '"messaging_socket_path":"SOCK"'),
]


def normalise(out: bytes) -> str:
    text = out.decode()
    for rx, rep in _NORMALISE:
        text = rx.sub(rep, text)
    return text


@pytest.mark.newest_cli_only
def test_start_status_stop(pool):
    st = status(pool)
    assert st["running"] and st["pid"] > 0
    assert len(st["panes"]) == 1
    pane = st["panes"][0]
    assert pane["state"] == "idle" and pane["jobs"] == 0 and pane["rss"] > 0
    assert re.fullmatch(r"[0-9a-f-]{36}", pane["session_id"])
    human = pool_cmd(pool, "status").stdout
    assert "PANE" in human and pane["key"] in human


@pytest.mark.newest_cli_only
def test_routing_on_off_and_required(pool):
    p = pool.bridge("-p", "routed", "--output-format", "json")
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["result"] == "MOCK-REPLY to: routed"
    assert status(pool)["jobs_total"] == 1
    off = dict(pool.env, CLAUDE_BRIDGE_POOL="0")
    p = pool.bridge("-p", "cold", "--output-format", "json", env=off)
    assert p.returncode == 0
    assert status(pool)["jobs_total"] == 1, "CLAUDE_BRIDGE_POOL=0 must run cold"


@pytest.mark.newest_cli_only
def test_pool_required_but_absent_is_a_clear_error(bed):
    p = bed.bridge("-p", "x", env=dict(bed.env, CLAUDE_BRIDGE_POOL="require"))
    assert p.returncode == 1
    assert b"no pool daemon is running" in p.stderr
    assert bed.mock.main_requests() == []


SCENARIOS = [
    ("plain", ["-p", "same output", "--output-format", "text"]),
    ("json", ["-p", "same output", "--output-format", "json"]),
    ("stream", ["-p", "same output", "--output-format", "stream-json", "--verbose"]),
    ("tool", ["-p", "tool MOCK:tool=echo_pooled", "--output-format", "stream-json", "--verbose"]),
    ("error", ["-p", "err MOCK:err=500", "--output-format", "json"]),
]


def test_output_equals_cold_path(pool):
    cold_env = dict(pool.env, CLAUDE_BRIDGE_POOL="0")
    for name, argv in SCENARIOS:
        cold = pool.bridge(*argv, env=cold_env)
        warm = pool.bridge(*argv)
        assert (warm.returncode, warm.stderr) == (cold.returncode, cold.stderr), name
        assert normalise(warm.stdout) == normalise(cold.stdout), name
    assert status(pool)["jobs_total"] == len(SCENARIOS)


def test_jobs_are_isolated(pool):
    a = pool.bridge("-p", "first secret-alpha", "--output-format", "json")
    b = pool.bridge("-p", "second prompt", "--output-format", "json")
    assert a.returncode == b.returncode == 0
    ra, rb = json.loads(a.stdout), json.loads(b.stdout)
    assert ra["session_id"] != rb["session_id"]
    second = [r for r in pool.mock.main_requests() if r["prompt"] == "second prompt"][0]
    assert "secret-alpha" not in json.dumps(second["body"]["messages"])
    first = [r for r in pool.mock.main_requests() if r["prompt"] == "first secret-alpha"][0]
    assert second["nmsg"] == first["nmsg"], "the second job starts a fresh conversation"


def test_bang_prompts_reach_the_model_as_text(pool):
    """Pool panes always paste: a prompt starting with "!" must never run as a shell command there
    (twice on one pane: also after /clear), and the one after it still works."""
    for prompt in ("!touch bang-one", "!touch bang-two\nsecond line", "plain after bangs"):
        p = pool.bridge("-p", prompt, "--output-format", "json")
        assert p.returncode == 0, p.stderr.decode()
        assert json.loads(p.stdout)["num_turns"] == 1
    assert [r["prompt"] for r in pool.mock.main_requests()] == [
        "!touch bang-one", "!touch bang-two\nsecond line", "plain after bangs"]
    assert not list(pool.cwd.glob("bang-*"))
    assert status(pool)["jobs_total"] == 3


def test_callers_stop_hook_runs_to_its_end_on_a_pool_pane(pool):
    """A pool turn may end before claude has run its Stop hooks; the pane's next use and its
    retirement (here: `pool stop` right after the call) wait for them, so a caller's slow Stop hook
    is never cut short."""
    mark = pool.cwd / "stop-hook-done"
    settings = json.dumps({"hooks": {"Stop": [{"hooks": [
        {"type": "command", "command": f"sleep 2; echo done > {mark}"}]}]}})
    p = pool.bridge("-p", "hook job", "--output-format", "json", "--settings", settings)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["result"] == "MOCK-REPLY to: hook job"
    assert pool_cmd(pool, "stop").returncode == 0
    assert mark.read_text() == "done\n"


@pytest.mark.newest_cli_only
@pytest.mark.parametrize("pool", [["--size", "1", "--max-jobs-per-pane", "2"]], indirect=True)
def test_recycle_after_k_jobs(pool):
    first_pane = status(pool)["panes"][0]["pane"]
    for i in range(2):
        assert pool.bridge("-p", f"job {i}", "--output-format", "json").returncode == 0
    panes = wait_for(lambda: [p for p in idle_panes(pool) if p["pane"] != first_pane], what="a replacement pane")
    assert panes[0]["jobs"] == 0
    assert first_pane not in [p["pane"] for p in status(pool)["panes"]]


@pytest.mark.newest_cli_only
def test_sigkilled_caller_cancels_its_job(pool):
    proc = pool.spawn_bridge("-p", "slow MOCK:slow=0.3 MOCK:long=3000", "--output-format", "json")
    wait_for(lambda: any(p["state"] == "busy" for p in status(pool)["panes"]), what="a busy pane")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for(lambda: status(pool)["jobs_failed"] == 1, what="the job to be cancelled")
    wait_for(lambda: idle_panes(pool), what="a free pane again")
    p = pool.bridge("-p", "after kill", "--output-format", "json")
    assert p.returncode == 0 and json.loads(p.stdout)["result"] == "MOCK-REPLY to: after kill"


@pytest.mark.newest_cli_only
def test_pane_killed_under_a_running_job(pool):
    proc = pool.spawn_bridge("-p", "slow MOCK:slow=0.3 MOCK:long=3000", "--output-format", "json")
    busy = wait_for(lambda: [p for p in status(pool)["panes"] if p["state"] == "busy"], what="a busy pane")
    # kill the claude process of that pane
    assert busy[0]["pid"] in claude_processes(pool.home)
    os.kill(busy[0]["pid"], signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert b"claude exited" in err
    wait_for(lambda: [p for p in idle_panes(pool) if p["pane"] != busy[0]["pane"]], what="a replacement pane")


@pytest.mark.newest_cli_only
def test_two_keys_side_by_side(pool):
    a = pool.bridge("-p", "default key", "--output-format", "json")
    b = pool.bridge("-p", "other key", "--output-format", "json", "--model", "claude-sonnet-5")
    assert a.returncode == 0 and b.returncode == 0, b.stderr.decode()
    assert json.loads(b.stdout)["modelUsage"].keys() >= {"claude-sonnet-5"} or \
        "sonnet" in json.dumps(json.loads(b.stdout)["modelUsage"])
    keys = {p["key"] for p in status(pool)["panes"]}
    assert len(keys) == 2


@pytest.mark.newest_cli_only
def test_daemon_stopped_while_a_client_waits(pool):
    proc = pool.spawn_bridge("-p", "slow MOCK:slow=0.3 MOCK:long=3000", "--output-format", "json")
    wait_for(lambda: any(p["state"] == "busy" for p in status(pool)["panes"]), what="a busy pane")
    assert pool_cmd(pool, "stop").returncode == 0
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert b"pool daemon went away" in err
    assert_no_leftovers(pool)


def test_emulated_options_through_the_pool(pool):
    """--json-schema (its StructuredOutput MCP server) and --resume get a pane of their own; --max-turns a
    warm pane with the tool gate; every answer is the call's own."""
    bed = pool
    env = dict(bed.env, CLAUDE_BRIDGE_POOL="require")
    schema = json.dumps({"type": "object", "properties": {"resp": {"type": "string"}}, "required": ["resp"]})
    p = bed.bridge("-p", 'pooled MOCK:structured={"resp":5}', "--json-schema", schema, "--output-format", "json", env=env)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["structured_output"] == {"resp": "mock"}
    # (a --json-schema session is not resumed here: 2.1.329 would offer its replayed tool list again,
    # docs/cli-behaviour.md §9a)
    p = bed.bridge("-p", "first", "--output-format", "json", env=env)
    first = json.loads(p.stdout)
    p = bed.bridge("-p", "again", "--resume", first["session_id"], "--output-format", "json", env=env)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["session_id"] == first["session_id"]
    assert json.loads(p.stdout)["result"] == "MOCK-REPLY to: again"
    p = bed.bridge("-p", "loop MOCK:toolloop", "--max-turns", "1", env=env)
    assert (p.returncode, p.stdout) == (1, b"Error: Reached max turns (1)")


def test_gated_jobs_share_a_warm_gated_pane(pool):
    """--max-turns and --max-budget-usd calls, whatever their limits, are served one after the other by
    one warm pane that carries the tool gate (not a pane started per call); each stops where
    ``claude -p`` stops, and a turn within its limit ends normally."""
    env = dict(pool.env, CLAUDE_BRIDGE_POOL="require")

    def gated_panes() -> list[dict]:
        return [q for q in status(pool)["panes"] if "(tool gate)" in q["label"]]
    p = pool.bridge("-p", "loop MOCK:toolloop", "--max-turns", "1", env=env)
    assert (p.returncode, p.stdout) == (1, b"Error: Reached max turns (1)"), p.stderr.decode()
    first = gated_panes()
    assert len(first) == 1
    wait_for(lambda: [q for q in gated_panes() if q["state"] == "idle"], what="the gated pane back idle")
    p = pool.bridge("-p", "loop again MOCK:toolloop", "--max-turns", "2", "--output-format", "json", env=env)
    res = json.loads(p.stdout)
    assert (p.returncode, res["subtype"], res["errors"]) == (1, "error_max_turns", ["Reached maximum number of turns (2)"])
    p = pool.bridge("-p", "within MOCK:tool=echo_inside", "--max-turns", "3", "--output-format", "json", env=env)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["result"].strip() == "MOCK-TOOL-DONE: inside"
    p = pool.bridge("-p", "costly", "--max-budget-usd", "0.000001", "--output-format", "json", env=env)
    res = json.loads(p.stdout)
    assert (p.returncode, res["subtype"]) == (1, "error_max_budget_usd"), p.stdout.decode()
    wait_for(lambda: [q for q in gated_panes() if q["state"] == "idle"], what="the gated pane back idle")
    panes = gated_panes()
    assert [q["pane"] for q in panes] == [first[0]["pane"]] and panes[0]["jobs"] == 4


def test_per_job_environment_on_one_warm_pane(pool):
    """Callers that differ only in a variable claude does not read (TASK_ID, as harnesses set per task)
    share one warm pane, and each job's tools see that job's own value, not the pane starter's."""
    seen, panes = [], None
    for task in ("1", "2", "3"):
        env = dict(pool.env, TASK_ID=task, ONLY_IN_JOB_1="yes") if task == "1" else dict(pool.env, TASK_ID=task)
        p = pool.bridge("-p", "which task MOCK:tool=echo_task=$TASK%5FID_only=${ONLY%5FIN%5FJOB%5F1:-unset}",
                        "--allowedTools", "Bash", "--output-format", "json", env=env)
        assert p.returncode == 0, p.stderr.decode()
        seen.append(json.loads(p.stdout)["result"].removeprefix("MOCK-TOOL-DONE: ").strip())
        now = sorted(q["pane"] for q in status(pool)["panes"] if "allowedTools" in q["label"])
        assert panes is None or now == panes, "a new pane was started for a new TASK_ID"
        panes = now
    assert seen == ["task=1 only=yes", "task=2 only=unset", "task=3 only=unset"]
    assert status(pool)["jobs_total"] == 3


@pytest.mark.newest_cli_only
@pytest.mark.parametrize("pool", [["--size", "1", "--rss-budget", "1"]], indirect=True)
def test_rss_budget_evicts_idle_panes_of_other_keys(pool):
    """Over the budget, a job of a new key replaces the least recently used idle pane instead of adding
    one; the budget and the use are in `pool status`."""
    proc = pool.spawn_bridge("-p", "other key", "--output-format", "json", "--model", "claude-sonnet-5")
    seen = []
    while proc.poll() is None:
        # (looked at while the job runs: once idle, a pane over the budget with no warm target is shed
        # by the pool's upkeep and the warm pane comes back, so a look afterwards races that)
        st = status(pool)
        seen.append([q["label"] for q in st["panes"]])
        assert st["rss_budget"] == 1 << 20 and (st["rss_used"] > 0 or not st["panes"])
        time.sleep(0.1)
    out, err = proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert all(len(labels) <= 1 for labels in seen), seen
    assert any(labels and "claude-sonnet-5" in labels[0] for labels in seen), seen
    assert "of 1 MiB budget" in pool_cmd(pool, "status").stdout
    p = pool.bridge("-p", "default key again", "--output-format", "json")
    assert p.returncode == 0, p.stderr.decode()
    wait_for(lambda: not [q for q in status(pool)["panes"] if "claude-sonnet-5" in q["label"]], timeout=20,
             what="the other key's pane to be gone")


@pytest.mark.newest_cli_only
@pytest.mark.parametrize("pool", [["--size", "1", "--idle-timeout", "1"]], indirect=True)
def test_idle_pane_beyond_the_warm_size_retires(pool):
    warm = status(pool)["panes"][0]["pane"]
    p = pool.bridge("-p", "other key", "--output-format", "json", "--model", "claude-sonnet-5")
    assert p.returncode == 0, p.stderr.decode()
    wait_for(lambda: [q["pane"] for q in status(pool)["panes"]] == [warm], timeout=20,
             what="the extra pane to retire")


@pytest.mark.newest_cli_only
@pytest.mark.parametrize("pool", [["--size", "1", "--exit-idle", "10"]], indirect=True)
def test_daemon_with_exit_idle_stops_itself(pool):
    assert pool.bridge("-p", "one job", "--output-format", "json").returncode == 0
    wait_for(lambda: not status(pool).get("running"), timeout=45, what="the daemon to stop itself")
    assert_no_leftovers(pool)


@pytest.mark.newest_cli_only
def test_pool_start_mode_starts_an_on_demand_daemon(bed):
    env = dict(bed.env, CLAUDE_BRIDGE_POOL="start")
    try:
        p = bed.bridge("-p", "on demand", "--output-format", "json", env=env)
        assert p.returncode == 0, p.stderr.decode()
        assert json.loads(p.stdout)["result"] == "MOCK-REPLY to: on demand"
        st = status(bed)
        assert st["running"] and st["jobs_total"] == 1 and st["exit_idle_s"] == 600
    finally:
        pool_cmd(bed, "stop")
    assert_no_leftovers(bed)


@pytest.mark.newest_cli_only
def test_a_pane_that_cannot_start_fails_the_job_fast_without_a_restart_storm(bed, tmp_path):
    """tmux cannot create its socket (the runtime dir's path is too long for a unix socket, while the
    daemon's own socket still fits): the job fails in one line at once, and the pool backs off instead
    of starting pane after pane."""
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="cbl-"))
    runtime = base / ("r" * (96 - len(str(base)) - len("/pool.sock") - 1))
    env = dict(bed.env, CLAUDE_BRIDGE_RUNTIME_DIR=str(runtime), CLAUDE_BRIDGE_STATE_DIR=str(tmp_path / "st"))
    try:
        p = pool_cmd(bed, "start", "--size", "1", env=env)
        assert p.returncode == 0, p.stdout + p.stderr
        t0 = time.monotonic()
        job = bed.bridge("-p", "x", env=dict(env, CLAUDE_BRIDGE_POOL="require"), timeout=60)
        assert job.returncode == 1 and time.monotonic() - t0 < 15
        assert b"claude could not be started for this job" in job.stderr
        time.sleep(3)
        log = (tmp_path / "st" / "pool.log").read_text()
        assert 0 < log.count("failed to start") <= 6, log.count("failed to start")
    finally:
        pool_cmd(bed, "stop", env=env)
        shutil.rmtree(base, ignore_errors=True)
