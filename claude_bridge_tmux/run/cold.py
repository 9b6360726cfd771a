"""The cold print path: one ``claude-bridge -p`` call = one pane, one turn, one output.

flags -> plan -> preseed -> pane -> submit -> transcript -> emit.  Every pane, file and server the
run created is removed on success, on error, on timeout, and on SIGINT / SIGTERM / SIGHUP (then the
exit code is 128 + signal, as claude's: 130, 143, 129).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import BinaryIO, TextIO

from claude_bridge_tmux.errors import BridgeError, os_error_line
from claude_bridge_tmux.follow.session import TurnError
from claude_bridge_tmux.invocation.plan import UsageError
from claude_bridge_tmux.invocation.stdin import StdinError, read_prompt_stdin
from claude_bridge_tmux.run.lifecycle import dedicated_session
from claude_bridge_tmux.run.prepare import new_init_probe, prepare

# output.emit and run.turn are imported once claude is starting in its pane: their ~20 ms of imports
# then run beside claude's own start-up instead of before it (scripts/bench --breakdown).


class Terminated(BaseException):
    """Raised in the main thread by a termination signal; ``signum`` gives the exit code 128+signum."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, _frame):
    raise Terminated(signum)


class TerminationSignals:
    """Turn SIGINT/SIGTERM/SIGHUP into ``Terminated`` for the duration of a run."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __enter__(self):
        self.saved = {s: signal.signal(s, _raise_terminated) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, h in self.saved.items():
            signal.signal(s, h)
        return False


def make_logger(env: dict[str, str], err):
    """A ``log(msg)`` that writes timestamped lines to stderr when CLAUDE_BRIDGE_DEBUG is set."""
    debug = bool(env.get("CLAUDE_BRIDGE_DEBUG"))

    def log(msg: str) -> None:
        if debug:
            err(f"[claude-bridge {time.monotonic():.3f}] {msg}")
    return log


def run_print(argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
              stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
              stderr: TextIO | None = None, observer=None) -> int:
    """Run one print-mode invocation cold (its own pane); return the exit code. Never raises for run failures.

    ``observer`` (``runlog.RunObserver``) sees every event and stderr line, the Emitter, and the pane's
    final screen (run log, progress line)."""
    env = dict(os.environ if env is None else env)
    cwd = os.path.abspath(cwd or os.getcwd())
    stdout = stdout or sys.stdout.buffer
    stderr = stderr or sys.stderr

    def err(msg: str) -> None:
        print(msg, file=stderr, flush=True)

    log = make_logger(env, err)
    if observer is not None:
        log, err = observer.attach(log, err)
    with TerminationSignals():
        try:
            try:
                prep = prepare(argv, env=env, cwd=cwd, warn=err,
                               read_stdin=lambda: read_prompt_stdin(stdin, warn=err))
            except UsageError as e:
                err(e.message)               # claude's own text
                return e.exit_code
            plan = prep.plan
            log(f"plan: submit={plan.submit} session={plan.session_id} args={plan.claude_args}")
            with dedicated_session(prep, log=log, on_close=observer.closing if observer is not None else None) \
                    as session:
                deadline = time.monotonic() + plan.timeout
                streams = plan.input_format == "stream-json"
                session.start(launch_prompt=plan.prompt if plan.submit == "launch" and not streams else None)
                from claude_bridge_tmux.output.emit import EmitOptions, Emitter
                from claude_bridge_tmux.run.turn import emit_turn, run_stream_input
                emitter = Emitter(plan.output_format, stdout, plan.session_id, version=prep.version,
                                  options=EmitOptions.of(prep))
                if observer is not None:
                    observer.watch(emitter)
                probe = None
                if plan.prints_messages and not env.get("CLAUDE_BRIDGE_NO_INIT_PROBE"):
                    probe = new_init_probe(prep)
                if streams:
                    return run_stream_input(prep, session, emitter, stdin or sys.stdin.buffer, probe=probe, err=err)
                return emit_turn(prep, session, emitter, submitted=plan.submit == "launch", deadline=deadline,
                                 probe=probe, err=err)
        except TurnError as e:
            from claude_bridge_tmux.run.turn import report_error
            return report_error(e, err)
        except StdinError as e:
            err(str(e))                      # claude's own text
            return e.exit_code
        except BridgeError as e:
            err(f"claude-bridge: {e}")
            return e.exit_code
        except Terminated as t:
            return 128 + t.signum
        except OSError as e:                 # e.g. a full disk under the runtime dir
            err(os_error_line(e))
            return 1


