"""How a session reads claude's SessionStart hooks (follow/session.py ``_drain_hooks``), with hook
payloads as 2.1.332 writes them: the transcript followed after ``/clear`` is the clear's, also when
the launch's own hook finishes later (a CI run hung on ``-p /clear --resume ID`` under load)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from claude_bridge_tmux.follow.session import ClaudeSession


def _session(tmp_path: Path, session_args: list[str]) -> ClaudeSession:
    env = {"HOME": str(tmp_path / "home"), "CLAUDE_BRIDGE_RUNTIME_DIR": str(tmp_path / "run"),
           "CLAUDE_BRIDGE_STATE_DIR": str(tmp_path / "state"), "PATH": os.environ.get("PATH", "")}
    return ClaudeSession(claude_bin="/bin/false", claude_args=[], env=env, cwd=str(tmp_path), session_id="s-own",
                         settings={}, deny_permission_requests=False, session_args=session_args)


def _hook(session: ClaudeSession, pid: int, payload: dict, mtime: float) -> None:
    path = session.spool.dir / f"SessionStart.{pid}.json"
    path.write_text(json.dumps({"hook_event_name": "SessionStart", **payload}))
    os.utime(path, (mtime, mtime))


def test_a_launch_hook_done_after_the_clears_does_not_switch_back(tmp_path):
    s = _session(tmp_path, ["--resume", "old"])
    try:
        projects = tmp_path / "home" / ".claude" / "projects" / "p"
        resumed, cleared = projects / "old.jsonl", projects / "new.jsonl"
        # the /clear's hook landed first, the launch's (source resume) a moment later
        _hook(s, 101, {"source": "clear", "session_id": "new", "transcript_path": str(cleared)}, 1000.0)
        _hook(s, 100, {"source": "resume", "session_id": "old", "transcript_path": str(resumed)}, 1000.5)
        events = s._drain_hooks()
        assert [e.payload["source"] for e in events] == ["clear"]
        assert (s.info.session_id, s.info.transcript_path) == ("new", str(cleared))
        # and in a later read, too
        _hook(s, 102, {"source": "resume", "session_id": "old", "transcript_path": str(resumed)}, 1001.0)
        assert s._drain_hooks() == [] and s.info.session_id == "new"
    finally:
        s.close()


def test_the_usual_order_follows_the_resumed_session_then_the_clear(tmp_path):
    s = _session(tmp_path, ["--resume", "old"])
    try:
        projects = tmp_path / "home" / ".claude" / "projects" / "p"
        _hook(s, 100, {"source": "resume", "session_id": "old", "transcript_path": str(projects / "old.jsonl")}, 1000.0)
        assert [e.payload["source"] for e in s._drain_hooks()] == ["resume"] and s.info.session_id == "old"
        _hook(s, 101, {"source": "clear", "session_id": "new", "transcript_path": str(projects / "new.jsonl")}, 1001.0)
        assert [e.payload["source"] for e in s._drain_hooks()] == ["clear"] and s.info.session_id == "new"
    finally:
        s.close()
