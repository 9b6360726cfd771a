"""Write ``claude -p`` output: ``text``, ``json`` or ``stream-json`` (formats of docs/cli-behaviour.md §1, §2).

The emitter is the only writer of stdout.  Stream lines are flushed one by one as the transcript
yields them.  A closed stdout (EPIPE) makes every later write a no-op and sets ``broken``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from claude_bridge_tmux.follow.localcmd import record_time
from claude_bridge_tmux.output import messages, modes, partial
from claude_bridge_tmux.output.jsjson import dumps
from claude_bridge_tmux.output.result import ms_between
from claude_bridge_tmux.versions import dialect


class ByteSink(Protocol):
    """Where an Emitter writes: a binary stdout, a pool connection's frames, the API's line buffer."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


@dataclass(frozen=True)
class EmitOptions:
    """What a run prints besides the messages: ``partial`` (--include-partial-messages: stream_event
    lines), ``collect`` (json + --verbose: every message as one array), ``hook_events``
    (--include-hook-events); ``session_start``: the caller's SessionStart settings (its
    ``hooks.SessionStart`` list, as a JSON-like tuple) and ``session_source`` (``startup`` or ``resume``),
    for the SessionStart hooks that leave no record (see ``messages.session_start_lines``)."""

    partial: bool = False
    collect: bool = False
    hook_events: bool = False
    session_start: tuple = ()
    session_source: str = "startup"
    session_start_before: tuple = ()     # ((command, its latest record), ...) of a resumed session

    @classmethod
    def of(cls, run: Any) -> EmitOptions:
        """The options of a ``RunPlan``, or of a ``Prepared`` call (plan and the caller's settings). Pass
        the ``Prepared`` only when claude starts for this call (its SessionStart hooks run for it)."""
        plan = getattr(run, "plan", run)
        settings = getattr(run, "settings", None)
        hooks = settings.get("hooks") if isinstance(settings, dict) and settings.get("disableAllHooks") is not True \
            else None
        groups = hooks.get("SessionStart") if isinstance(hooks, dict) else None
        return cls(partial=plan.include_partial_messages, collect=plan.output_format == "json" and plan.verbose,
                   hook_events=plan.include_hook_events,
                   session_start=tuple(g for g in groups if isinstance(g, dict)) if isinstance(groups, list) else (),
                   session_source=session_source(plan),
                   session_start_before=tuple((getattr(run, "session_start_before", None) or {}).items()))


def session_source(plan: Any) -> str:
    """The ``source`` a run's SessionStart hooks get: ``startup``, ``resume`` (--resume, --continue),
    ``fork`` (--fork-session, ``Dialect.session_start_fork_source``)."""
    if plan.fork and dialect(plan.cli_version).session_start_fork_source:
        return "fork"
    return "resume" if plan.resume or plan.continue_session else "startup"


class Emitter:
    """Writes one run's output. ``fmt`` is ``"text" | "json" | "stream-json"``; ``out`` a binary stream.

    ``event_hooks`` (as httpx's): ``{"write": [f()], "record": [f(record)]}``, called before each write
    to ``out`` and for each transcript record taken (the run log's progress line uses them).
    """

    def __init__(self, fmt: str, out: ByteSink, session_id: str, version: str | None = None,
                 options: EmitOptions | None = None,
                 event_hooks: dict[str, list[Callable[..., None]]] | None = None):
        options = options or EmitOptions()
        self.event_hooks: dict[str, list[Callable[..., None]]] = {"write": [], "record": []}
        for name, fns in (event_hooks or {}).items():
            self.event_hooks.setdefault(name, []).extend(fns)
        self.fmt = fmt
        self.out = out
        self.session_id = session_id
        # CLI version whose output shapes are used; None: taken from the first transcript record
        self.version = version
        self.broken = False
        self.init_sent = False
        self.last_result: dict | None = None   # the last result written (see runner.emit_turn)
        self.results = 0                       # results written so far (result_index of the next)
        self._tool_uses: dict[str, dict] = {}
        self._denied: set[str] = set()
        self.partial = options.partial         # --include-partial-messages (stream_event lines)
        self.collect = options.collect         # json + --verbose: every message, printed as one array
        self.hook_events = options.hook_events  # --include-hook-events
        self._session_start = options.session_start
        self._session_source = options.session_source
        self._session_start_before = options.session_start_before
        # claude -p prints its SessionStart hooks' lines, then system/init: init waits for those records
        # (they come before the turn's first record) or for the first other line
        self._ss_records: list[dict] = []
        self._ss_done = False
        self._held_init: dict | None = None
        self._collected: list[dict] = []
        self._open: dict | None = None         # the API response whose events are open (partial)
        self._begun: list[str] = []            # message ids whose events began since the last result
        self._last_time: float | None = None  # the last timestamped record's time (epoch s; None: unparseable)

    def new_turn(self) -> None:
        """The next turn of the same run prints its own ``system/init`` (stream-json input)."""
        self.init_sent = False

    def _write(self, text: str) -> None:
        if self.broken:
            return
        for hook in self.event_hooks["write"]:
            hook()
        try:
            self.out.write(text.encode("utf-8", "surrogatepass"))
            self.out.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.broken = True

    def line(self, obj: dict) -> None:
        """One stream-json line (only in stream-json mode; collected for json + --verbose); a held
        ``system/init`` (and the SessionStart hook lines before it) goes first."""
        self._session_started()
        self._line(obj)

    def _line(self, obj: dict) -> None:
        if self.fmt == "stream-json":
            self._write(dumps(obj) + "\n")
        elif self.collect:
            self._collected.append(obj)

    def init(self, message: dict) -> None:
        """The ``system/init`` line; sent once, after the SessionStart hook lines (held until the
        turn's first record, line or result shows that they are all known)."""
        if not self.init_sent:
            self.init_sent = True
            if self._ss_done:
                self._line(message)
            else:
                self._held_init = message

    def _session_started(self) -> None:
        """Print the SessionStart hook lines (once per run; stream-json only: -p's json --verbose array
        has none) and the held ``system/init``."""
        if not self._ss_done:
            self._ss_done = True
            a = next((r["attachment"] for r in self._ss_records if isinstance(r["attachment"].get("hookName"), str)
                      and ":" in r["attachment"]["hookName"]), None)
            source = a["hookName"].split(":", 1)[1] if a else self._session_source
            configured = messages.session_start_commands({"hooks": {"SessionStart": list(self._session_start)}},
                                                         source)
            lines = messages.session_start_lines(self._ss_records, session_id=self.session_id,
                                                 configured=configured, source=source,
                                                 earlier=dict(self._session_start_before))
            for msg in lines if self.fmt == "stream-json" else ():
                self._line(msg)
            self._ss_records = []
        if self._held_init is not None:
            held, self._held_init = self._held_init, None
            self._line(held)

    def tool_input(self, tool_use_id: str) -> dict | None:
        """The input of tool call ``tool_use_id`` of a record already given to :meth:`record`, or None."""
        block = self._tool_uses.get(tool_use_id)
        return block.get("input") if block is not None else None

    def record(self, record: dict) -> None:
        """The stream-json lines for one transcript record of the turn (assistant / user tool_result;
        the denial and thinking-estimate system lines of versions that print them)."""
        for hook in self.event_hooks["record"]:
            hook(record)
        if self.version is None and isinstance(record.get("version"), str):
            self.version = record["version"]
        if record.get("type") == "assistant":
            for b in (record.get("message") or {}).get("content") or ():
                if isinstance(b, dict) and b.get("type") == "tool_use" and isinstance(b.get("id"), str):
                    self._tool_uses[b["id"]] = b
        elif record.get("type") == "attachment":
            a = record.get("attachment") or {}
            if a.get("type") == "hook_permission_decision" and a.get("decision") == "deny" and a.get("toolUseID"):
                self._denied.add(a["toolUseID"])
        if self.fmt != "stream-json" and not self.collect:
            return
        if messages.is_session_start_record(record):
            if not self._ss_done:
                self._ss_records.append(record)
            return      # (one after the run's first turn: a restarted pane's, which -p never runs)
        self._session_started()
        msgs = messages.stream_messages(record, session_id=self.session_id, version=self.version,
                                        tool_uses=self._tool_uses, denied_ids=self._denied)
        if self.hook_events and self.fmt == "stream-json":     # (-p's json --verbose array has none)
            msgs = messages.hook_event_lines(record, session_id=self.session_id) + msgs
        if self.partial:
            self._partial_record(record, msgs)
        else:
            for msg in msgs:
                self.line(msg)
        if isinstance(record.get("timestamp"), str):
            self._last_time = record_time(record)

    # -- --include-partial-messages ---------------------------------------------------------------
    def _event(self, event: dict, *, thinking: bool = False, ttft_ms: int | None = None) -> None:
        mid = self._open["id"] if self._open else None
        self.line(partial.stream_event(event, session_id=self.session_id, version=self.version,
                                       api_message_id=mid, thinking=thinking, ttft_ms=ttft_ms))

    def close_message(self) -> None:
        """End the open response's events (message_delta, message_stop)."""
        if self._open is None:
            return
        for ev in partial.message_end_events(self._open["message"]):
            self._event(ev)
        self._open = None

    def _partial_record(self, record: dict, msgs: list[dict]) -> None:
        message = record.get("message") or {}
        if record.get("type") != "assistant" or messages.is_synthetic(message) or not msgs:
            if msgs:
                self.close_message()
            for m in msgs:
                self.line(m)
            return
        mid = message.get("id")
        if self._open is not None and self._open["id"] != mid:
            self.close_message()
        if self._open is None:
            self._open = {"id": mid, "blocks": 0, "message": message}
            if isinstance(mid, str) and mid not in self._begun:
                self._begun.append(mid)
            self.line(partial.status_line(session_id=self.session_id, version=self.version))
            ttft = ms_between(self._last_time, record_time(record))
            self._event(partial.message_start_event(message), thinking=dialect(self.version).stream_event_extras,
                        ttft_ms=max(ttft or 0, 0))
        self._open["message"] = message
        blocks = [b for b in message.get("content") or () if isinstance(b, dict)]
        *before, assistant = msgs          # thinking_tokens lines, then the assistant line
        stops = []
        for b in blocks:
            index = self._open["blocks"]
            self._open["blocks"] += 1
            thinking = b.get("type") == "thinking"
            start, deltas = partial.block_events(b, index)
            self._event(start, thinking=thinking)
            for m in before:
                self.line(m)
            before = []
            for d in deltas:
                self._event(d, thinking=thinking and d["delta"]["type"] == "thinking_delta")
            stops.append({"type": "content_block_stop", "index": index})
        for m in before:
            self.line(m)
        self.line(assistant)
        for st in stops:
            self._event(st)

    def result(self, result: dict, *, more: bool = False, continued: bool = False) -> tuple[str, int]:
        """Write the final output for ``result``; return ``(stderr_text, exit_code)`` as ``claude -p``.

        ``more``: another result of the same run follows (a turn claude starts itself when a background
        agent finishes): ``json`` prints only the last one (``--verbose``: every message, both results,
        in one array at the end). ``continued``: this result follows such an earlier one: ``text`` puts
        a blank line between them (2.1.329 ``-p``: ``first\n\nsecond\n``)."""
        self._session_started()
        if self.partial:
            self.close_message()
            if self._begun and self.fmt == "stream-json" and dialect(self.version).result_begun_message_ids:
                with_begun(result, self._begun)
            self._begun = []
        self.results += 1
        if self.fmt == "stream-json":
            self.line(result)
            return "", modes.exit_code(result)
        if self.fmt == "json" and more:
            if self.collect:
                self._collected.append(result)
            return "", modes.exit_code(result)
        if self.fmt == "text" and continued:
            self._write("\n")
        if self.fmt == "json" and self.collect:
            # `-p --output-format json --verbose`: the whole message list as one JSON array
            self._write(dumps([*self._collected, result]) + "\n")
            self._collected = []
            return "", modes.exit_code(result)
        if self.fmt == "json":
            self._write(modes.json_output(result))
            return "", modes.exit_code(result)
        stdout, stderr, code = modes.text_output(result, self.version)
        self._write(stdout)
        return stderr, code


def with_begun(result: dict, ids: list[str]) -> None:
    """Add ``begun_message_ids`` to ``result`` in place, right after ``uuid`` (2.1.332 ``-p``
    with --include-partial-messages; at the end when there is no ``uuid``)."""
    items = [(k, v) for k, v in result.items() if k != "begun_message_ids"]
    at = next((i + 1 for i, (k, _) in enumerate(items) if k == "uuid"), len(items))
    items.insert(at, ("begun_message_ids", list(ids)))
    result.clear()
    result.update(items)
