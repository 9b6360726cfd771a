"""Python API: multi-turn ``Session`` on one pane, and ``Pool.ask`` for fan-out through the daemon.

Both take claude's print-mode options as keyword arguments: ``model="sonnet"``,
``permission_mode="acceptEdits"``, ``allowed_tools=["Bash", "Read"]``, ``append_system_prompt="..."``,
``dangerously_skip_permissions=True`` … (snake_case → ``--kebab-case``; lists become variadic values;
``True`` is a bare flag).  Results are the ``result`` object ``claude -p --output-format json`` prints
(``result``, ``session_id``, ``usage``, ``total_cost_usd``, ``is_error`` …).

Example (a conversation)::

    from claude_bridge_tmux.api import Session
    with Session(cwd="/repo", model="sonnet") as s:
        print(s.send("What does setup.py do?")["result"])
        for event in s.stream("And the tests?"):   # assistant / user messages, then the result
            print(event["type"])

Example (fan-out)::

    import asyncio
    from claude_bridge_tmux.api import Pool
    async def main():
        pool = Pool(cwd="/repo")                     # uses (or starts) the pool daemon
        answers = await asyncio.gather(*(pool.ask(f"Summarise {f}") for f in files))
        data = await pool.ask("List three colours", json_schema={"type": "array", "items": {"type": "string"}})
        print(data["structured_output"])
    asyncio.run(main())

Errors: ``BridgeError`` (one-line reason; ``.exit_code``) when a call fails before producing a
result; ``SchemaError`` when the answer still does not match ``json_schema`` after the retries.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from claude_bridge_tmux.errors import BridgeError
from claude_bridge_tmux.pool import client as poolclient
from claude_bridge_tmux.pool import protocol


class SchemaError(BridgeError):
    """The answer did not match the JSON schema after the allowed re-prompts; ``last_result`` holds it."""

    def __init__(self, message: str, last_result: dict):
        super().__init__(message)
        self.last_result = last_result


def flags_to_argv(flags: dict[str, Any]) -> list[str]:
    """``{"model": "x", "allowed_tools": ["A", "B"], "verbose": True}`` → claude options (each list
    value as ``--key=value`` so a value can never be read as a prompt or another option)."""
    argv: list[str] = []
    for name, value in flags.items():
        if value is None or value is False:
            continue
        opt = "--" + name.replace("_", "-")
        if value is True:
            argv.append(opt)
        elif isinstance(value, (list, tuple)):
            argv += [f"{opt}={v}" for v in value]
        else:
            argv.append(f"{opt}={value}")
    return argv


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def extract_json(text: str) -> Any:
    """The JSON value in a reply: the whole text, else the first fenced block. Raises ValueError."""
    try:
        return json.loads(text)
    except ValueError:
        m = _FENCE.search(text or "")
        if m:
            return json.loads(m.group(1))
        raise


def _schema_prompt(prompt: str, schema: dict) -> str:
    return (f"{prompt}\n\nAnswer with only a JSON value (no prose, no code fence) that matches this JSON "
            f"Schema:\n{json.dumps(schema)}")


def _validate(value: Any, schema: dict) -> str | None:
    import jsonschema
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as e:
        path = "/".join(str(p) for p in e.absolute_path) or "root"
        return f"{path}: {e.message}"
    return None


class _Lines:
    """A binary writer that turns the stream-json lines the emitter writes into dicts on a queue."""

    def __init__(self, q) -> None:
        self.q = q
        self.buf = b""

    def write(self, data: bytes) -> int:
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            if line.strip():
                self.q.put(json.loads(line))
        return len(data)

    def flush(self) -> None:
        pass


class Session:
    """A conversation on one pane of its own: every ``send`` is a turn of the same session.

    ``Session(cwd=None, env=None, timeout=600.0, **claude_flags)``: every ``claude -p`` option works,
    as in the CLI (``resume="ID"``, ``fork_session=True``, ``max_turns=3``, ``max_budget_usd=0.5``,
    ``json_schema='{...}'``, ``permission_mode="plan"`` …). Use as a context manager or call
    ``close()``. Starting costs the CLI's boot (about 1–2 s); each turn then costs only the turn.
    Raises BridgeError for a bad option (the CLI's message and exit code) or a failed start.
    """

    def __init__(self, *, cwd: str | None = None, env: dict[str, str] | None = None, timeout: float = 600.0,
                 **claude_flags: Any):
        from contextlib import ExitStack

        from claude_bridge_tmux.host.preseed import PreseedError
        from claude_bridge_tmux.run.lifecycle import dedicated_session
        from claude_bridge_tmux.run.prepare import prepare

        self.cwd = os.path.abspath(cwd or os.getcwd())
        self.env = dict(os.environ if env is None else env)
        self.timeout = timeout
        self._stack = ExitStack()
        self._previous: dict | None = None
        self._started = False
        try:
            self._prep = prepare(["-p", "session", *flags_to_argv(claude_flags), "--output-format=stream-json",
                                  "--verbose"], env=self.env, cwd=self.cwd, stdin_text=None)
        except Exception as e:  # UsageError
            raise BridgeError(getattr(e, "message", str(e)), getattr(e, "exit_code", 1)) from e
        try:
            self._session = self._stack.enter_context(dedicated_session(self._prep))
            self._session.start()
            self._session.wait_started(time.monotonic() + 60)
        except PreseedError as e:
            self.close()
            raise BridgeError(f"claude-bridge: {e}") from e
        except Exception as e:
            self.close()
            raise BridgeError(f"claude did not start: {getattr(e, 'reason', e)}") from e

    @property
    def session_id(self) -> str | None:
        """The conversation's session id (as in every result)."""
        return self._session.info.session_id

    def stream(self, prompt: str) -> Iterator[dict]:
        """Run one turn; yield exactly the messages ``claude-bridge -p --output-format stream-json
        --verbose`` prints for it (``system/init``, assistant and user messages as claude writes them,
        the ``result`` last), with the session's options (max_turns, budget, json_schema …) applied.
        Cost, modelUsage and duration_api_ms are cumulative over the session's turns, as with
        stream-json input. Raises BridgeError when the turn fails."""
        import queue
        import threading

        from claude_bridge_tmux.follow.session import TurnError
        from claude_bridge_tmux.output.emit import EmitOptions, Emitter
        from claude_bridge_tmux.run.turn import emit_turn

        q: queue.Queue = queue.Queue()
        prep = self._prep
        emitter = Emitter("stream-json", _Lines(q), self.session_id or prep.plan.session_id, version=prep.version,
                          options=EmitOptions.of(prep.plan))
        errors: list[str] = []

        def work():
            try:
                emit_turn(prep, self._session, emitter, submitted=False, deadline=time.monotonic() + self.timeout,
                          probe=None, err=errors.append, prompt=prompt, previous=self._previous, fast_end=True)
                self._previous = getattr(emitter, "last_result", None)
            except TurnError as e:
                q.put(BridgeError(e.cli_message or e.reason, e.exit_code))
            except Exception as e:  # noqa: BLE001 - reported to the caller's thread
                q.put(BridgeError(f"claude-bridge: {e}"))
            q.put(None)

        threading.Thread(target=work, daemon=True).start()
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, BridgeError):
                raise item
            yield item

    def send(self, prompt: str) -> dict:
        """Run one turn and return its ``result`` object."""
        result: dict = {}
        for event in self.stream(prompt):
            if event.get("type") == "result":
                result = event
        return result

    def close(self) -> None:
        """Kill the pane (claude and its children gone), release the preseed lease. Idempotent."""
        self._stack.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ResultStore:
    """Answered items of a producer, kept across restarts: an SQLite file (stdlib ``sqlite3``) mapping
    ``item_id`` to its ``result`` object. Thread-safe; each ``put`` is committed at once."""

    def __init__(self, path: str | os.PathLike):
        import sqlite3
        import threading
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS results (item_id TEXT PRIMARY KEY, result TEXT NOT NULL, "
                         "created REAL NOT NULL)")

    def get(self, item_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT result FROM results WHERE item_id = ?", (item_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, item_id: str, result: dict) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?)",
                             (item_id, json.dumps(result), time.time()))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class ValidationFailed(BridgeError):
    """``validate`` still rejected the answer after ``max_validation_retries`` re-asks; ``last_result``
    holds the last answer and ``problem`` the last reason."""

    def __init__(self, message: str, last_result: dict, problem: str):
        super().__init__(message)
        self.last_result = last_result
        self.problem = problem


class Pool:
    """Asyncio front to the pool: each ``ask`` is one fresh-conversation job on a warm pane.

    ``Pool(cwd=None, env=None, start=True, queue_url=None, store=None)``: with ``start`` a local daemon
    is started when none runs (same as ``CLAUDE_BRIDGE_POOL=start``); ``queue_url`` (default: the env's
    ``CLAUDE_BRIDGE_POOL_URL``) sends the jobs to a shared Redis queue instead (pool/redisq.py);
    ``store`` (a path) keeps answered ``item_id``s so that a restarted producer does not ask them again.
    """

    def __init__(self, *, cwd: str | None = None, env: dict[str, str] | None = None, start: bool = True,
                 queue_url: str | None = None, store: str | os.PathLike | None = None):
        self.cwd = os.path.abspath(cwd or os.getcwd())
        self.env = dict(os.environ if env is None else env)
        self.start = start
        self.queue_url = queue_url or self.env.get("CLAUDE_BRIDGE_POOL_URL")
        self.store = ResultStore(store) if store is not None else None

    def _socket(self) -> str:
        return poolclient.socket_path(self.env)

    async def _run(self, argv: list[str]) -> tuple[bytes, str, int]:
        if self.queue_url:
            return await asyncio.to_thread(self._run_queued, argv)
        path = self._socket()
        if not os.path.exists(path):
            if not self.start or not await asyncio.to_thread(poolclient.start_daemon, self.env):
                raise BridgeError(f"no pool daemon is running ({path})")
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            writer.write(protocol.encode({"op": "run", "argv": argv, "env": self.env, "cwd": self.cwd,
                                          "stdin": None}))
            await writer.drain()
            out, err = bytearray(), []
            while True:
                line = await reader.readline()
                if not line:
                    raise BridgeError("the pool daemon went away before the call finished")
                frame = json.loads(line)
                if frame.get("ev") == "out":
                    out += base64.b64decode(frame["b"])
                elif frame.get("ev") == "err":
                    err.append(frame.get("t", ""))
                elif frame.get("ev") == "exit":
                    return bytes(out), "\n".join(err), int(frame.get("code", 1))
        finally:
            writer.close()

    def _run_queued(self, argv: list[str]) -> tuple[bytes, str, int]:
        from claude_bridge_tmux.pool import redisq
        assert self.queue_url is not None
        try:
            r = redisq.connect(self.queue_url)
        except redisq.QueueError as e:
            raise BridgeError(str(e)) from e
        job_id = redisq.submit(r, argv=argv, stdin=None, cwd=self.cwd, env=self.env)
        out, err = bytearray(), []

        def on_frame(frame: dict) -> None:
            if frame.get("ev") == "out":
                out.extend(base64.b64decode(frame["b"]))
            elif frame.get("ev") == "err":
                err.append(frame.get("t", ""))
        code = redisq.follow(r, job_id, on_frame)
        return bytes(out), "\n".join(err), code

    async def _result(self, argv: list[str]) -> dict:
        out, err, code = await self._run(argv)
        if not out.strip():
            raise BridgeError(err.strip() or f"claude-bridge exited {code} without a result", code)
        return json.loads(out)

    async def ask(self, prompt: str, *, item_id: str | None = None,
                  validate: Callable[[dict], str | None] | None = None, max_validation_retries: int = 5,
                  json_schema: dict | None = None, max_schema_retries: int = 2, **claude_flags: Any) -> dict:
        """Ask one prompt; return the ``result`` object.

        ``item_id``: with a ``store``, an item answered before is returned from it without asking, and
        a new answer is stored. ``validate(result) -> str | None``: a reason to reject the answer; the
        reason is sent back in the same conversation (``--resume``), as OpenBridge does, at most
        ``max_validation_retries`` times, then ValidationFailed. ``json_schema``: the answer must be
        JSON matching it (``structured_output``); a mismatch is re-asked with the validation error at
        most ``max_schema_retries`` times, then SchemaError. Raises BridgeError on failures.
        """
        if item_id is not None and self.store is not None:
            stored = self.store.get(item_id)
            if stored is not None:
                return stored
        flags = flags_to_argv(claude_flags)
        text = _schema_prompt(prompt, json_schema) if json_schema is not None else prompt
        attempts = 0
        while True:
            result = await self._result(["-p", *flags, "--output-format", "json", "--", text])
            if json_schema is None or result.get("is_error"):
                break
            try:
                value = extract_json(result.get("result") or "")
                problem = _validate(value, json_schema)
            except ValueError as e:
                problem = f"not JSON ({e})"
            if problem is None:
                result["structured_output"] = value
                break
            if attempts >= max_schema_retries:
                raise SchemaError(f"the answer does not match the schema: {problem}", result)
            attempts += 1
            text = (f"{_schema_prompt(prompt, json_schema)}\n\nA previous answer was rejected: {problem}. "
                    f"Previous answer:\n{result.get('result')}")
        retries = 0
        while validate is not None and not result.get("is_error"):
            why = validate(result)
            if why is None:
                break
            if retries >= max_validation_retries:
                raise ValidationFailed(f"the answer was rejected {retries + 1} times: {why}", result, why)
            retries += 1
            result = await self._result(["-p", *flags, "--resume", str(result["session_id"]),
                                         "--output-format", "json", "--", why])
        if item_id is not None and self.store is not None and not result.get("is_error"):
            self.store.put(item_id, result)
        return result

    def ask_sync(self, prompt: str, **kwargs: Any) -> dict:
        """``ask`` for code without an event loop."""
        return asyncio.run(self.ask(prompt, **kwargs))
