"""A background init probe never outlives the bridge: it is killed by the exit handler."""

from __future__ import annotations

import threading
import time

from claude_bridge_tmux.host import proc as procmod
from claude_bridge_tmux.run import init_probe


def test_a_running_probe_is_killed_on_the_way_out(tmp_path):
    fake = tmp_path / "claude"
    pidfile = tmp_path / "pid"
    fake.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 30\n")
    fake.chmod(0o755)
    t = threading.Thread(target=init_probe.run_probe, args=(str(fake), [], {"PATH": "/usr/bin:/bin"}, str(tmp_path)),
                         daemon=True)
    t.start()
    end = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < end
        time.sleep(0.02)
    pid = int(pidfile.read_text())
    assert not procmod.process_gone(pid)
    init_probe.kill_running_probes()          # what atexit (and __main__.exit_now) runs
    assert procmod.process_gone(pid)
    t.join(5)
    assert not t.is_alive()
