"""Run logs (kept in the state dir, bounded) and the progress line (terminal + text only)."""

from __future__ import annotations

import io
import os

from claude_bridge_tmux.run import runlog


class Tty(io.StringIO):
    def isatty(self):
        return True


class FakeEmitter:
    """The Emitter's observer contract: ``event_hooks`` called before each write and per record."""

    def __init__(self, fmt="text"):
        self.fmt = fmt
        self.session_id = "s-1"
        self.out = []
        self.event_hooks = {"write": [], "record": []}

    def _write(self, text):
        for hook in self.event_hooks["write"]:
            hook()
        self.out.append(text)

    def record(self, rec):
        for hook in self.event_hooks["record"]:
            hook(rec)
        self.out.append(("record", rec.get("type")))


def test_the_real_emitter_calls_its_event_hooks():
    from claude_bridge_tmux.output.emit import Emitter
    seen = []
    em = Emitter("stream-json", io.BytesIO(), "s", version="2.1.329",
                 event_hooks={"write": [lambda: seen.append("write")], "record": [lambda r: seen.append(r["type"])]})
    em.line({"type": "system", "subtype": "init"})
    em.record({"type": "attachment", "uuid": "u"})
    assert seen == ["write", "attachment"]


def test_progress_only_on_a_terminal_for_text_without_debug():
    assert runlog.progress_wanted(Tty(), "text", {})
    assert not runlog.progress_wanted(io.StringIO(), "text", {})
    assert not runlog.progress_wanted(Tty(), "json", {})
    assert not runlog.progress_wanted(Tty(), "stream-json", {})
    assert not runlog.progress_wanted(Tty(), "text", {"CLAUDE_BRIDGE_DEBUG": "1"})
    assert not runlog.progress_wanted(Tty(), "text", {"CLAUDE_BRIDGE_NO_PROGRESS": "1"})


def test_progress_line_is_drawn_updated_and_erased():
    tty = Tty()
    p = runlog.Progress(tty)
    p.set("starting claude")
    p.set("running Bash")
    p.stop()
    p.set("too late")
    out = tty.getvalue()
    assert "claude-bridge: starting claude (0s)" in out and "claude-bridge: running Bash" in out
    assert out.endswith("\r\x1b[2K") and "too late" not in out


def test_phases_follow_the_transcript():
    tool = {"type": "assistant", "message": {"content": [{"type": "text", "text": "x"},
                                                         {"type": "tool_use", "name": "Bash", "input": {}}]}}
    result = {"type": "user", "message": {"content": [{"type": "tool_result", "content": "ok"}]}}
    text = {"type": "assistant", "message": {"content": [{"type": "text", "text": "done"}]}}
    assert runlog.phase_of_record(tool) == "running Bash"
    assert runlog.phase_of_record(result) == "waiting for the model"
    assert runlog.phase_of_record(text) is None


def test_observer_erases_progress_before_the_answer_and_errors():
    tty = Tty()
    obs = runlog.RunObserver(["-p", "x"], {}, stderr=tty)
    em = FakeEmitter()
    obs.watch(em)
    log, err = obs.attach(lambda m: None, lambda m: tty.write(m + "\n"))
    log("hook UserPromptSubmit")
    em.record({"type": "assistant", "message": {"content": [{"type": "tool_use", "name": "Read"}]}})
    assert "running Read" in tty.getvalue()
    em._write("the answer\n")
    assert obs.progress.stopped and tty.getvalue().endswith("\r\x1b[2K")
    err("claude-bridge: boom")
    assert tty.getvalue().endswith("\r\x1b[2Kclaude-bridge: boom\n")
    assert em.out == [("record", "assistant"), "the answer\n"]
    assert [m for _, m in obs.events] == ["hook UserPromptSubmit"]
    assert obs.stderr_lines == ["claude-bridge: boom"]


def test_no_progress_on_a_pipe():
    pipe = io.StringIO()
    obs = runlog.RunObserver(["-p", "x"], {}, stderr=pipe)
    em = FakeEmitter()
    obs.watch(em)
    em._write("answer")
    assert obs.progress is None and pipe.getvalue() == ""


def test_run_logs_are_private_and_bounded(tmp_path):
    env = {"CLAUDE_BRIDGE_STATE_DIR": str(tmp_path / "state"), "CLAUDE_BRIDGE_KEEP_LOGS": "3"}
    paths = []
    for i in range(5):
        obs = runlog.RunObserver(["-p", "prompt %d" % i, "x" * 500], env)
        obs.event("pane %0 started")
        obs.screen = ["❯ prompt", "● answer"]
        p = obs.finish(i)
        os.utime(p, (1000 + i, 1000 + i))
        paths.append(p)
    kept = runlog.log_files(tmp_path / "state" / "runs")
    assert kept == paths[2:]
    assert oct(kept[-1].stat().st_mode & 0o777) == "0o600"
    text = kept[-1].read_text()
    assert "exit      4 after" in text and "pane %0 started" in text and "● answer" in text
    assert "…(500 chars)" in text                    # long argv tokens are shortened
    assert runlog.RunObserver([], dict(env, CLAUDE_BRIDGE_KEEP_LOGS="0")).finish(0) is None
