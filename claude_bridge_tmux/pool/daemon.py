"""The pool daemon: a Unix-socket server that runs ``claude-bridge -p`` calls on warm panes.

One thread per connection.  A ``run`` request is prepared exactly like a cold call (same flags,
plan and output code: ``runner.prepare`` / ``runner.emit_turn``), so pooled output is what the cold
path prints.  Calls that need a pane of their own — a caller-chosen ``--session-id``, ``--resume``,
``--continue``, ``--fork-session``, or a prompt starting with ``/`` or ``!`` (claude's input box
would treat it as a command; given at launch it means what it means to ``claude -p``) — get a
dedicated pane started for them on the daemon's tmux server, closed afterwards.

The daemon outlives its clients; a client that disconnects cancels its job (the pane is interrupted
and retired).  SIGTERM / SIGINT stop it cleanly: panes, tmux server, socket and pid file removed.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bridge_tmux.config import POOL_IDLE_TIMEOUT_S as DEFAULT_IDLE_TIMEOUT
from claude_bridge_tmux.follow.session import TurnError
from claude_bridge_tmux.host import paths
from claude_bridge_tmux.host.preseed import PreseedError
from claude_bridge_tmux.invocation.plan import UsageError
from claude_bridge_tmux.output.emit import EmitOptions, Emitter
from claude_bridge_tmux.pool import protocol
from claude_bridge_tmux.pool.key import route_key
from claude_bridge_tmux.pool.panes import LaunchConfig, PanePool, WarmPane
from claude_bridge_tmux.run.lifecycle import dedicated_session, deny_permission_requests, gate_tools, new_session
from claude_bridge_tmux.run.prepare import Prepared, needs_own_pane, new_init_probe, prepare
from claude_bridge_tmux.run.turn import emit_turn, report_error
from claude_bridge_tmux.tmux.pane import PaneError, TmuxServer

if TYPE_CHECKING:
    from claude_bridge_tmux.pool.redisq import RedisWorker

MAINTAIN_EVERY = 2.0
DEDICATED_OPTIONS = ("--resume", "--continue", "--fork-session", "--from-pr")


class _ConnOut:
    """File-like binary stdout of a client: ``write`` sends an ``out`` frame."""

    def __init__(self, conn: _Conn):
        self.conn = conn

    def write(self, data: bytes) -> int:
        self.conn.send({"ev": "out", "b": base64.b64encode(data).decode()})
        return len(data)

    def flush(self) -> None:
        pass


class _Conn(protocol.FrameChannel):
    """A client connection: thread-safe frame sending; ``closed`` is set when the client hangs up."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def send(self, frame: dict) -> None:
        if self.closed.is_set():
            raise BrokenPipeError("client went away")
        data = protocol.encode(frame)
        with self.lock:
            try:
                self.sock.sendall(data)
            except OSError as e:
                self.closed.set()
                raise BrokenPipeError("client went away") from e

    def watch_hangup(self) -> None:
        """Background: set ``closed`` when the client closes its end (it sends nothing after the request)."""
        def run():
            try:
                while True:
                    if not self.sock.recv(4096):
                        break
            except OSError:
                pass
            self.closed.set()
        threading.Thread(target=run, daemon=True).start()


class Daemon:
    """The pool server. ``serve()`` blocks until ``stop`` (request or signal)."""

    def __init__(self, *, size: int = 1, warm_argvs: list[list[str]] | None = None, max_panes: int = 8,
                 max_jobs_per_pane: int = 50, idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 env: dict[str, str] | None = None, cwd: str | None = None, log=None,
                 rss_budget: int | None = None, exit_idle: float = 0.0, queue_url: str | None = None,
                 roots: list[str] | None = None):
        self.runtime = paths.runtime_dir(env)
        self.sock_path = protocol.socket_path(self.runtime)
        self.pid_path = os.path.join(str(self.runtime), protocol.PID_NAME)
        self.run_dir = paths.new_run_dir("pool")
        self.server = TmuxServer(self.run_dir)
        self.log = log or (lambda m: None)
        self.pool = PanePool(self.server, max_panes=max(max_panes, size), max_jobs_per_pane=max_jobs_per_pane,
                             idle_timeout=idle_timeout, rss_budget=rss_budget, log=self.log)
        self.exit_idle = exit_idle           # s without any job before the daemon stops itself (0: never)
        self.queue_url = queue_url           # redis://… : also serve jobs of a shared queue (pool/redisq.py)
        self.roots = roots                   # a queued job's cwd must be inside one of these (default: cwd)
        self.remote: RedisWorker | None = None
        self.active_jobs = 0
        self.last_activity = time.monotonic()
        self._activity_lock = threading.Lock()
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd or os.getcwd()
        self.roots = self.roots or [self.cwd]
        self.size = size
        self.warm_argvs = warm_argvs if warm_argvs is not None else [[]]
        self.stopping = threading.Event()
        self.started = time.monotonic()
        self.jobs_total = 0
        self.jobs_failed = 0
        self.overheads_ms: list[float] = []
        self._listener: socket.socket | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def bind(self) -> None:
        """Take the socket (refusing when another daemon answers there) and write the pid file."""
        existing = protocol.connect(self.sock_path, timeout=0.5)
        if existing is not None:
            existing.close()
            raise RuntimeError(f"a pool daemon is already running ({self.sock_path})")
        try:
            os.unlink(self.sock_path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            s.bind(self.sock_path)
        finally:
            os.umask(old)
        s.listen(64)
        s.settimeout(0.5)
        self._listener = s
        paths.write_private(Path(self.pid_path + ".tmp"), str(os.getpid()).encode())
        os.replace(self.pid_path + ".tmp", self.pid_path)

    def warm_up(self) -> None:
        """Start the warm panes: ``size`` panes for each warm argv (flags only, like a -p call's)."""
        for extra in self.warm_argvs:
            try:
                prep = prepare(["-p", "warm-up", *extra], env=self.env, cwd=self.cwd, stdin_text=None)
            except UsageError as e:
                self.log(f"warm spec {extra} rejected: {e.message}")
                continue
            self.pool.set_warm_target(self._config(prep), self.size)

    def serve(self) -> None:
        """Accept connections until stopped; then clean everything up."""
        if self._listener is None:
            self.bind()
        last_maintain = time.monotonic()
        try:
            if self.queue_url:
                # first: an unreachable queue fails the start at once (QueueError), before any pane
                from claude_bridge_tmux.pool.redisq import RedisWorker
                self.remote = RedisWorker(self.queue_url, run_job=self.run_counted, capacity=self.pool.max_panes,
                                          roots=self.roots or [self.cwd], status=self.pool.status, log=self.log,
                                          route=self.job_keys)
            self.warm_up()
            if self.remote is not None:
                self.remote.start()
                self.log(f"serving the Redis queue as worker {self.remote.name}")
            assert self._listener is not None      # (bind() above)
            while not self.stopping.is_set():
                try:
                    sock, _ = self._listener.accept()
                except TimeoutError:
                    sock = None
                except OSError:
                    if self.stopping.is_set():
                        break
                    raise
                if sock is not None:
                    threading.Thread(target=self._handle, args=(sock,), daemon=True).start()
                if self._idle_exit_due():
                    self.log(f"no job for {self.exit_idle:g} s: stopping (--exit-idle)")
                    break
                if time.monotonic() - last_maintain > MAINTAIN_EVERY:
                    last_maintain = time.monotonic()
                    threading.Thread(target=self.pool.maintain, daemon=True).start()
        finally:
            self.shutdown()

    def run_counted(self, conn, req: dict, run=None) -> int:
        """Run one job (a local client's or a queued one; ``run(conn, req)``, default a ``-p`` job) and
        keep the activity count for --exit-idle."""
        with self._activity_lock:
            self.active_jobs += 1
        try:
            return (run or self._run)(conn, req)
        finally:
            with self._activity_lock:
                self.active_jobs -= 1
                self.last_activity = time.monotonic()

    def _idle_exit_due(self) -> bool:
        with self._activity_lock:
            return bool(self.exit_idle) and self.active_jobs == 0 and \
                time.monotonic() - self.last_activity > self.exit_idle

    def shutdown(self) -> None:
        """Retire all panes, kill the tmux server, remove socket, pid file and run dir. Idempotent."""
        self.stopping.set()
        if self.remote is not None:
            self.remote.stop()
        self.pool.stop()
        self.server.kill()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        for p in (self.sock_path, self.pid_path):
            try:
                if p == self.pid_path and Path(p).read_text().strip() != str(os.getpid()):
                    continue
                os.unlink(p)
            except OSError:
                pass
        import shutil
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: self.stopping.set())

    # -- requests ------------------------------------------------------------------------------
    def _handle(self, sock: socket.socket) -> None:
        conn = _Conn(sock)
        try:
            if protocol.peer_uid(sock) != os.getuid():
                return
            reader = protocol.LineReader(sock)
            req = reader.read()
            if not isinstance(req, dict):
                return
            op = req.get("op")
            if op in ("run", "sdk"):
                if op == "run":
                    conn.watch_hangup()
                    code = self.run_counted(conn, req)
                else:     # an Agent SDK session (pool/sdkjob.py): its stdin keeps coming on the socket
                    code = self.run_counted(conn, req, lambda c, r: self._run_sdk(c, r, reader))
                try:
                    conn.send({"ev": "exit", "code": code})
                except BrokenPipeError:
                    pass
            elif op in ("status", "ping"):
                conn.send({"ev": "reply", **self.status()})
            elif op == "drain":
                self.pool.drain()
                conn.send({"ev": "reply", "ok": True})
            elif op == "stop":
                conn.send({"ev": "reply", "ok": True})
                self.stopping.set()
        except (OSError, ValueError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def status(self) -> dict:
        """Daemon summary + one row per pane (see PanePool.status)."""
        ov = sorted(self.overheads_ms)
        return {"pid": os.getpid(), "uptime_s": round(time.monotonic() - self.started, 1),
                "socket": self.sock_path, "jobs_total": self.jobs_total, "jobs_failed": self.jobs_failed,
                "waiting": self.pool.queue.waiting(), "draining": self.pool.draining,
                "overhead_ms_median": ov[len(ov) // 2] if ov else None,
                "rss_budget": self.pool.rss_budget, "rss_used": self.pool.rss_used(),
                "idle_timeout_s": self.pool.idle_timeout, "exit_idle_s": self.exit_idle or None,
                "queue": self.remote.name if self.remote is not None else None,
                "panes": self.pool.status()}

    def job_keys(self, req: dict) -> tuple[str, str | None] | None:
        """The pane key and route (pool/key.py) a job request (``argv``, ``env``, ``cwd``, ``stdin``,
        ``route_env``) would take a pane of here, or None when it needs a pane of its own or is not a
        valid call (it then fails when run)."""
        argv = [str(a) for a in req.get("argv") or []]
        env = {str(k): str(v) for k, v in (req.get("env") or {}).items()}
        try:
            prep = prepare(argv, env=env, cwd=str(req.get("cwd") or "/"), stdin_text=req.get("stdin"))
        except Exception:  # noqa: BLE001 - judged (and reported) when the job runs
            return None
        if self.needs_dedicated_pane(prep, argv):
            return None
        cfg = self._config(prep, req.get("route_env"))
        return cfg.key, cfg.route

    @staticmethod
    def _config(prep: Prepared, route_env: dict[str, str] | None = None) -> LaunchConfig:
        """The launch config of a prepared call; its route from ``route_env`` (a queued job's carried
        variables) or else from the call's own environment, as a job would carry it."""
        from claude_bridge_tmux.pool.redisq import strip_credentials
        plan = prep.plan
        deny = deny_permission_requests(plan)
        gated = gate_tools(plan)
        carried = strip_credentials(plan.env if route_env is None else route_env)
        return LaunchConfig(claude_bin=prep.claude_bin, version=prep.version, claude_args=plan.claude_args,
                            env=plan.env, cwd=plan.cwd, settings=prep.settings, deny=deny, gated=gated,
                            route=route_key(prep.version, plan.cwd, carried, plan.claude_args, prep.settings, deny,
                                            gated))

    @staticmethod
    def needs_dedicated_pane(prep: Prepared, argv: list[str]) -> bool:
        """True for calls a shared, cleared pane cannot serve (see module docstring)."""
        plan = prep.plan
        if any(a.split("=", 1)[0] in DEDICATED_OPTIONS for a in plan.claude_args):
            return True
        if needs_own_pane(plan, prep.settings):
            return True   # --resume / --continue / --fork-session, --json-schema, --no-session-persistence
        if any(a == "--session-id" or a.startswith("--session-id=") for a in argv):
            return True
        return plan.prompt[:1] in ("/", "!")

    def _run(self, conn: _Conn, req: dict) -> int:
        t_in = time.monotonic()
        self.log("job received")
        env = {str(k): str(v) for k, v in (req.get("env") or {}).items()}
        cwd = str(req.get("cwd") or "/")
        argv = [str(a) for a in req.get("argv") or []]
        self.jobs_total += 1
        try:
            prep = prepare(argv, env=env, cwd=cwd, stdin_text=req.get("stdin"), warn=conn.err)
        except UsageError as e:
            conn.err(e.message)
            return e.exit_code
        t_prepared = time.monotonic()
        plan = prep.plan
        deadline = time.monotonic() + plan.timeout
        probe = None
        if plan.prints_messages and not env.get("CLAUDE_BRIDGE_NO_INIT_PROBE"):
            probe = new_init_probe(prep)
        out = _ConnOut(conn)
        if self.needs_dedicated_pane(prep, argv):
            return self._run_dedicated(conn, prep, deadline, probe, out)
        cfg = self._config(prep, req.get("route_env"))
        pane = self._take_pane(conn, cfg, deadline)
        if pane is None:
            return 1
        t_taken = time.monotonic()
        self.log(f"job prepared in {(t_prepared - t_in) * 1000:.1f} ms, pane {pane.id} taken after "
                 f"{(t_taken - t_prepared) * 1000:.1f} ms")
        session = pane.session
        try:
            self.pool.set_job_env(pane, plan.env)
        except OSError as e:
            self.pool.release(pane, ok=False, reason=f"job env: {e}")
            conn.err(f"claude-bridge: cannot write the job's environment for the pane: {e}")
            return 1
        emitter = Emitter(plan.output_format, out, session.info.session_id or plan.session_id, version=prep.version,
                          options=EmitOptions.of(plan))
        ok = False
        reason = None
        try:
            code = emit_turn(prep, session, emitter, submitted=False, deadline=deadline, probe=probe, fast_end=True,
                             err=conn.err, cancel=conn.closed)
            ok = True
            return code
        except TurnError as e:
            self.jobs_failed += 1
            reason = e.reason
            if e.kind == "cancelled":
                session.interrupt()
                return 1
            if self.stopping.is_set():
                # the pane died because the pool is being stopped: say that, not "claude exited"
                conn.err("claude-bridge: the pool daemon went away before the call finished (it was stopped)")
                return 1
            return report_error(e, conn.err)
        except (BrokenPipeError, PaneError) as e:
            self.jobs_failed += 1
            reason = str(e)
            session.interrupt()
            return 1
        finally:
            t_end = time.monotonic()
            self.log(f"job done ({'ok' if ok else reason})")
            self.pool.release(pane, ok=ok, reason=reason)
            if ok and session.last_submit_at and session.last_end_at:
                # daemon overhead: preparing the call, getting the prompt into the pane, and writing
                # the output after the turn ended (queue wait and the model's turn excluded)
                overhead = (t_prepared - t_in) + (session.last_submit_at - t_taken) + (t_end - session.last_end_at)
                self.overheads_ms.append(overhead * 1000)
                self.overheads_ms[:] = self.overheads_ms[-500:]

    def _take_pane(self, conn: _Conn, cfg: LaunchConfig, deadline: float) -> WarmPane | None:
        """A pane of ``cfg``'s key for one job, waiting in the key's queue until ``deadline``; or None
        after telling the client why (the client went away, claude cannot start, the timeout)."""
        pane = self.pool.queue.wait_turn(
            cfg.key, lambda _k: self.pool.try_take(cfg), deadline - time.monotonic(),
            lambda: conn.closed.is_set() or self.pool.start_error(cfg.key) is not None)
        if pane is not None:
            return pane
        self.jobs_failed += 1
        if conn.closed.is_set():
            return None
        why = self.pool.start_error(cfg.key)
        if why is not None:
            conn.err(f"claude-bridge: claude could not be started for this job: {why}")
            return None
        conn.err("claude-bridge: no pool pane became free before the timeout"
                 if not self.pool.draining else "claude-bridge: the pool is draining and takes no new jobs")
        return None

    def _run_sdk(self, conn: _Conn, req: dict, reader: protocol.LineReader) -> int:
        """One Agent SDK session on a warm pane (pool/sdkjob.py): the client has answered
        ``initialize``; ``first`` is the first user message; later SDK lines arrive as ``in`` frames.
        The pane is given back (cleared) at the end, or retired if the session changed its mode or
        model."""
        from claude_bridge_tmux.pool.sdkjob import SocketLines
        from claude_bridge_tmux.run.sdk import LineWriter, SdkSession
        env = {str(k): str(v) for k, v in (req.get("env") or {}).items()}
        argv = [str(a) for a in req.get("argv") or []]
        self.jobs_total += 1
        try:
            prep = prepare(["-p", *argv], env=env, cwd=str(req.get("cwd") or "/"), warn=conn.err)
        except UsageError as e:
            conn.err(e.message)
            return e.exit_code
        plan = prep.plan
        deadline = time.monotonic() + plan.timeout
        pane = self._take_pane(conn, self._config(prep), deadline)
        if pane is None:
            return 1
        out = LineWriter(_ConnOut(conn))    # type: ignore[arg-type]  # (a frame sink, not a file)
        sdk = SdkSession(prep, pane.session, out, conn.err, None)
        sdk.fast_end = True
        replacements: list = []

        def restart(old):
            fresh = new_session(prep, log=self.log)
            replacements.append(fresh)
            fresh.start()
            return fresh
        sdk.restart = restart

        def hangup() -> None:
            conn.closed.set()
            if sdk.turn_running.is_set() and sdk.session is not None:
                sdk.interrupted.set()
                sdk.session.interrupt()
        if isinstance(req.get("first"), dict):
            sdk.inbox.put(req["first"])
        sdk.pane_started.set()
        threading.Thread(target=sdk.read_stdin, args=(SocketLines(reader, hangup),), daemon=True,
                         name="pool-sdk-stdin").start()
        ok = False
        reason = None
        try:
            self.pool.set_job_env(pane, plan.env)
            emitter = Emitter(plan.output_format, out, pane.session.info.session_id or plan.session_id,
                              version=prep.version, options=EmitOptions.of(plan))
            probe = new_init_probe(prep) if not env.get("CLAUDE_BRIDGE_NO_INIT_PROBE") else None
            code = sdk.run(emitter, probe)
            ok = not conn.closed.is_set()
            return code
        except TurnError as e:
            self.jobs_failed += 1
            reason = e.reason
            return report_error(e, conn.err)
        except (BrokenPipeError, PaneError, OSError) as e:
            self.jobs_failed += 1
            reason = str(e)
            return 1
        finally:
            for extra in replacements:
                extra.close()
            if sdk.altered:
                ok, reason = False, "the SDK session changed the pane's permission mode or model"
            self.pool.release(pane, ok=ok, reason=reason)

    def _run_dedicated(self, conn: _Conn, prep: Prepared, deadline: float, probe, out) -> int:
        plan = prep.plan
        try:
            with dedicated_session(prep, log=self.log, server=self.server) as session:
                emitter = Emitter(plan.output_format, out, plan.session_id, version=prep.version,
                                  options=EmitOptions.of(prep))
                session.start(launch_prompt=plan.prompt if plan.submit == "launch" else None)
                return emit_turn(prep, session, emitter, submitted=plan.submit == "launch", deadline=deadline,
                                 probe=probe, err=conn.err, cancel=conn.closed)
        except TurnError as e:
            self.jobs_failed += 1
            return 1 if e.kind == "cancelled" else report_error(e, conn.err)
        except (PreseedError, PaneError, BrokenPipeError) as e:
            self.jobs_failed += 1
            conn.err(f"claude-bridge: {e}")
            return 1


def run_daemon(*, size: int, warm_argvs: list[list[str]], max_panes: int, max_jobs_per_pane: int,
               idle_timeout: float, log_path: str | None = None, rss_budget: int | None = None,
               exit_idle: float = 0.0, queue_url: str | None = None, roots: list[str] | None = None) -> int:
    """Entry point of the daemon process (``claude-bridge pool start --foreground``)."""
    logf = open(log_path, "a", buffering=1) if log_path else None

    def log(msg: str) -> None:
        if logf:
            logf.write(f"{time.strftime('%H:%M:%S')} {time.monotonic():.3f} {msg}\n")

    d = Daemon(size=size, warm_argvs=warm_argvs, max_panes=max_panes, max_jobs_per_pane=max_jobs_per_pane,
               idle_timeout=idle_timeout, log=log, rss_budget=rss_budget, exit_idle=exit_idle,
               queue_url=queue_url, roots=roots)
    d.install_signal_handlers()
    try:
        d.bind()
    except RuntimeError as e:
        print(f"claude-bridge: {e}", flush=True)
        d.shutdown()
        return 1
    log(f"pool daemon {os.getpid()} listening on {d.sock_path}")
    try:
        d.serve()
    except Exception as e:  # noqa: BLE001 - e.g. the Redis queue is unreachable: one line, exit 1
        from claude_bridge_tmux.pool.redisq import QueueError
        if not isinstance(e, QueueError):
            raise
        print(str(e), flush=True)
        log(str(e))
        return 1
    log("pool daemon stopped")
    return 0
