"""One turn on a started session, written as ``claude -p`` writes it: the tool gate of --max-turns /
--max-budget-usd, the --json-schema re-prompts, the result variant, stream-json input turns, and the
one-line report of a turn that failed.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from claude_bridge_tmux.follow import agents
from claude_bridge_tmux.follow.engine import TurnOutcome
from claude_bridge_tmux.follow.localcmd import record_time
from claude_bridge_tmux.follow.session import ClaudeSession, SessionInfo, TurnError
from claude_bridge_tmux.follow.tree import Record, content_text, response_ids, tool_use_owner
from claude_bridge_tmux.invocation.plan import RunPlan
from claude_bridge_tmux.output import jsjson, messages, structured, tasks
from claude_bridge_tmux.output.emit import Emitter
from claude_bridge_tmux.output.result import (
    budget_error,
    count_turns,
    last_assistant,
    max_turns_error,
    responses,
    result_message,
    total_cost,
)
from claude_bridge_tmux.run.init_probe import InitProbe
from claude_bridge_tmux.run.prepare import Prepared, init_message
from claude_bridge_tmux.versions import dialect

PANE_TAIL_LINES = 15      # the pane's last lines shown under a failure

ToolGate = Callable[[list[Record], str, Mapping[str, Any] | None], bool | None]
"""A tool gate: ``gate(turn_records, tool_use_id, call)`` -> True stop the turn after
this tool, False go on, None cannot tell yet (see ``follow.engine.Gate``: ``call`` is the gate hook's entry
for the tool, ``{tool_name, tool_input, tool_use_id, tool_response}``, and may be left out)."""


def unknown_command_to_model(version: str) -> bool:
    """2.1.329's ``claude -p`` sends an unknown ``/command`` to the model; 2.1.197's answers
    ``Unknown command: /x`` itself (docs/probe-notes.md §5)."""
    return dialect(version).unknown_command_to_model


def turn_gate(plan: RunPlan, *, version: str | None = None,
              model_key: str | Callable[[], str | None] | None = None,
              previous: Mapping[str, Any] | None = None) -> ToolGate | None:
    """The tool gate of a run with --max-turns / --max-budget-usd: stop after the tools of
    response N (the next request would be N+1 > max-turns), or of the response that brought the
    cost to the budget; None when the run has no limit."""
    if plan.max_turns is None and plan.max_budget_usd is None:
        return None
    limit = plan.max_turns if plan.max_turns is not None else float("inf")

    def gate(records: list[Record], tool_use_id: str, payload: Mapping[str, Any] | None = None) -> bool | None:
        rec = tool_use_owner(records, tool_use_id)
        owner = (rec.get("message") or {}).get("id") if rec is not None else None
        ids = response_ids(records)
        if owner not in ids:
            return None
        if ids.index(owner) + 1 + 1 > limit:
            return True
        if plan.max_budget_usd is not None:
            upto = [r for r in records if r.get("type") != "assistant"
                    or (r.get("message") or {}).get("id") in ids[:ids.index(owner) + 1]]
            key = model_key() if callable(model_key) else model_key
            return total_cost(upto, version=version, model_key=key, previous=previous) >= plan.max_budget_usd
        return False
    return gate


def _either(first: ToolGate, second: ToolGate | None) -> ToolGate:
    """Two tool gates as one: stop when either says stop, wait (None) while either cannot tell yet."""
    if second is None:
        return first

    def gate(records: list[Record], tool_use_id: str, payload: Mapping[str, Any] | None = None) -> bool | None:
        a, b = first(records, tool_use_id, payload), second(records, tool_use_id, payload)
        if a or b:
            return True
        if a is None or b is None:
            return None
        return False
    return gate


def _synthetic_user_line(text: str, session_id: str) -> dict:
    """The stream-json line of a bridge re-prompt (as ``-p`` prints its structured-output nudge)."""
    ts = messages.line_timestamp(time.time())
    return {"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": text}]},
            "parent_tool_use_id": None, "session_id": session_id, "uuid": str(uuidlib.uuid4()),
            "timestamp": ts, "isSynthetic": True}


def emit_turn(prep: Prepared, session: ClaudeSession, emitter: Emitter, *, submitted: bool,
              deadline: float, probe: InitProbe | None, err: Callable[[str], None],
              cancel: threading.Event | None = None, prompt: str | None = None,
              previous: Mapping[str, Any] | None = None, replay: dict | None = None, fast_end: bool = False) -> int:
    """Follow one turn on a started session and write its output; return the exit code.

    When the turn launched background agents (2.1.329+, follow/agents.py), the turns claude starts
    itself as they finish are followed too, each printed as ``claude -p`` prints it (its own
    ``system/init`` … ``result``; ``json`` prints only the last result, ``text`` each result's text,
    a blank line between); the exit code is the last turn's. Arguments: see :func:`_emit_one`.
    """
    lines = _TaskLines(session, emitter, printing=prep.plan.output_format == "stream-json")
    emitter.event_hooks["record"].append(lines.on_record)
    try:
        done = _emit_one(prep, session, emitter, submitted=submitted, deadline=deadline, probe=probe, err=err,
                         cancel=cancel, prompt=prompt, previous=previous, replay=replay, fast_end=fast_end,
                         agents_done=lines.finished_records)
        pending = {launch.agent_id for launch in agents.background_launches(done.records)}
        pending -= agents.notified_tasks(jsjson.dumps(done.records))
        code = _write_result(emitter, done.result, err, more=bool(pending))
        while pending:
            # claude starts a turn of its own for each finished agent (a notification can also reach a
            # turn still running, as a queued message: then that turn has covered it)
            emitter.new_turn()
            done = _emit_one(prep, session, emitter, submitted=True, deadline=time.monotonic() + prep.plan.timeout,
                             probe=probe, err=err, cancel=cancel, prompt="", previous=emitter.last_result,
                             fast_end=fast_end, prompt_origin=agents.NOTIFICATION_ORIGIN,
                             before_init=lines.flush, agents_done=lines.finished_records)
            covered = agents.notified_tasks(jsjson.dumps(done.records)) | agents.notified_tasks(
                content_text(done.prompt_record) if done.prompt_record else None)
            if not covered & pending:
                covered = set(pending)      # (a notification turn that names no task: never wait for ever)
            pending = (pending - covered) | {launch.agent_id for launch in agents.background_launches(done.records)}
            code = _write_result(emitter, done.result, err, more=bool(pending), continued=True)
        return code
    finally:
        emitter.event_hooks["record"].remove(lines.on_record)


class _TaskLines:
    """Prints the task lines of Agent calls (output/tasks.py) into a stream-json run. A background agent
    (2.1.329): the launch lines as the call's tool_result is printed, the agent's own lines and its end
    lines once claude has enqueued its notification (``flush``). A foreground one (2.1.197): all its
    lines right before the call's tool_result."""

    def __init__(self, session: ClaudeSession, emitter: Emitter, *, printing: bool = True):
        self.session = session
        self.emitter = emitter
        self.printing = printing          # stream-json: the lines are printed (else only the costs kept)
        self.agent_records: list[dict] = []   # records of agents that ended since the last result
        self.book = tasks.TaskBook(lambda: emitter.session_id)
        self.seen_ops = len(session.queue_operations)     # (a pane's earlier jobs' operations are not ours)
        self.foreground = dialect(emitter.version).foreground_agent_lines

    def on_record(self, rec: dict) -> None:
        # (a tool_result comes after its call's record: the emitter has the call's input by then)
        for launch in agents.background_launches([rec]):
            self._print(self.book.launched(launch, self.emitter.tool_input(launch.tool_use_id)))
        for end in agents.foreground_ends([rec]):
            records = self.session.subagent_records(end.launch.agent_id)
            self.agent_records += records
            if self.foreground:
                done = record_time(rec)
                self._print(self.book.foreground(end, self.emitter.tool_input(end.launch.tool_use_id), records,
                                                 self._translate, int(done * 1000) if done is not None else None))

    def _print(self, lines: list[dict]) -> None:
        if self.printing:
            for line in lines:
                self.emitter.line(line)

    def finished_records(self) -> list[dict]:
        """The records of the agents that ended since the last call (their end lines printed first):
        what their requests cost goes into the result about to be written."""
        self.flush()
        taken, self.agent_records = self.agent_records, []
        return taken

    def flush(self) -> None:
        """The end lines of every agent whose notification claude has enqueued (and its messages)."""
        ops = self.session.queue_operations
        prompt = self.session.turn_prompt or {}
        origin = prompt.get("origin") if agents.is_notification_prompt(prompt) else None
        run_id = origin.get("runId") if isinstance(origin, dict) else None
        for op in ops[self.seen_ops:]:
            if op.get("operation") != "enqueue":
                continue
            fields = agents.notification_fields(op.get("content") if isinstance(op.get("content"), str) else None)
            task = self.book.tasks.get(fields.get("task-id") or "")
            if task is None or task.launch.agent_id not in self.book.running:
                continue
            records = self.session.subagent_records(task.launch.agent_id)
            self.agent_records += records
            self._print(self.book.agent_lines(task, records, self._translate))
            end = record_time(op)
            self._print(self.book.finished(fields, int(end * 1000) if end is not None else None, run_id))
        self.seen_ops = len(ops)

    def _translate(self, rec: dict) -> list[dict]:
        # (stream_messages leaves sidechain records out of the main thread's lines)
        main = {k: v for k, v in rec.items() if k != "isSidechain"}
        return messages.stream_messages(main, session_id=self.emitter.session_id, version=self.emitter.version)


@dataclass
class _Done:
    """One followed turn: its ``result`` message, its records (tree order) and its prompt record."""

    result: dict
    records: list[Record]
    prompt_record: Record | None


def _write_result(emitter: Emitter, result: dict, err: Callable[[str], None], *, more: bool,
                  continued: bool = False) -> int:
    emitter.last_result = result
    stderr_text, code = emitter.result(result, more=more, continued=continued)
    if stderr_text:
        err(stderr_text.rstrip("\n"))
    return code


def _emit_one(prep: Prepared, session: ClaudeSession, emitter: Emitter, *, submitted: bool,
              deadline: float, probe: InitProbe | None, err: Callable[[str], None],
              cancel: threading.Event | None = None, prompt: str | None = None,
              previous: Mapping[str, Any] | None = None, replay: dict | None = None, fast_end: bool = False,
              prompt_origin: str | None = None, before_init: Callable[[], None] | None = None,
              agents_done: Callable[[], list[Record]] | None = None) -> _Done:
    """Follow one turn on a started session and write its lines; return its result (not yet written).

    ``prompt`` (default: the plan's) is the turn's prompt; ``previous`` the result of the run's
    previous turn (stream-json input: cost, modelUsage and duration_api_ms are cumulative);
    ``replay`` a line written right after ``system/init`` (--replay-user-messages).
    ``fast_end``: the pane is used again after this call (pool), so the turn may end on the Stop hook
    once the final reply is in the file (see ``ClaudeSession.run_turn``); not with
    --include-hook-events, which prints the Stop hooks' own records.
    With --json-schema the turn ends on a valid StructuredOutput call (the tool gate); a turn without
    any call is followed by ``-p``'s nudge in the same pane (see structured.py); the result covers both.
    ``prompt_origin``: a turn claude starts itself (see ``ClaudeSession.run_turn``); its prompt record's
    ``origin`` goes into the result as ``-p`` writes it. Raises TurnError when the turn cannot complete
    (the caller reports it with ``report_error``).
    """
    plan = prep.plan
    prompt = plan.prompt if prompt is None else prompt
    if previous is None:
        previous = prep.restored   # the process's first result: the cost a resumed session starts from
    if replay is not None:
        emitter.init(init_message(plan, session.info, probe))
        emitter.line(dict(replay, session_id=session.info.session_id or emitter.session_id))

    def on_session(info: SessionInfo) -> None:
        emitter.session_id = info.session_id or emitter.session_id
        if before_init is not None:
            before_init()
        emitter.init(init_message(plan, info, probe))

    gate = turn_gate(plan, version=prep.version, model_key=lambda: session.info.model, previous=previous)
    limit = structured.max_attempts(plan.env)
    on_record: Callable[[dict], None] = emitter.record
    if plan.json_schema is not None:
        gate = _either(structured.gate(plan.json_schema, limit), gate)
        names = structured.PrintNames(plan.json_schema)

        def record_named(rec: dict) -> None:
            emitter.record(names(rec))
        on_record = record_named
    to_model = unknown_command_to_model(prep.version)

    def run(prompt: str, was_submitted: bool) -> TurnOutcome:
        return session.run_turn(prompt, submitted=was_submitted, deadline=deadline, on_record=on_record,
                                on_session=on_session, cancel=cancel, gate=gate,
                                unknown_command_to_model=to_model,
                                fast_end=fast_end and not plan.include_hook_events, prompt_origin=prompt_origin)

    outcome = run(prompt, submitted)
    turns = [outcome]
    value: object = structured.MISSING
    schema_problem: str | None = None
    json_failures = 0
    if plan.json_schema is not None and outcome.local_text is None:
        value, json_failures, schema_problem = structured.outcome(outcome.records, plan.json_schema)
        last = last_assistant(outcome.records)
        if value is structured.MISSING and json_failures == 0 and last is not None \
                and not last.get("isApiErrorMessage") and not outcome.gate_stopped:
            # no StructuredOutput call at all: -p's nudge once, in the same pane; a second answer
            # without a call is a plain success (as -p)
            emitter.line(_synthetic_user_line(structured.NUDGE, emitter.session_id))
            turns.append(run(structured.NUDGE, False))
            value, json_failures, schema_problem = structured.outcome(turns[-1].records, plan.json_schema)
    emitter.session_id = session.info.session_id or plan.session_id
    emitter.init(init_message(plan, session.info, probe))
    session_id = session.info.session_id or plan.session_id
    common: dict[str, Any] = dict(session_id=session_id, uuid=str(uuidlib.uuid4()),
                  model_key=session.info.model, version=prep.version, fmt=plan.output_format,
                  result_index=emitter.results, agent_records=agents_done() if agents_done is not None else ())
    records = [r for t in turns for r in t.records]
    if plan.json_schema is not None:
        records = [names(r) for r in records]      # -p's tool name and results (also for the result)
    api_requests = [r for t in turns for r in t.api_requests]
    timing: dict[str, Any] = dict(prompt=outcome.prompt_record, api_requests=api_requests)
    if outcome.local_text is not None:
        line = messages.local_command_message(outcome.local_text, session_id=session_id,
                                              version=prep.version, timestamp=messages.line_timestamp(time.time()))
        if line is not None:
            emitter.line(line)
        result = result_message(
            [], duration_ms=outcome.wall_ms, duration_api_ms=0, result=outcome.local_text,
            local_command=True, command_name=prompt[1:].split(None, 1)[0] if prompt[1:] else None,
            previous=previous, **common)
    elif plan.max_budget_usd is not None and total_cost(
            records, version=prep.version, model_key=session.info.model, previous=previous) >= plan.max_budget_usd:
        # checked after every response, as claude -p (a text answer that crosses the budget is an error too)
        result = result_message(
            records, duration_ms=None, duration_api_ms=None, estimate_timings=False,
            subtype="error_max_budget_usd", errors=[budget_error(plan.max_budget_usd)],
            num_turns=len(responses(records)), previous=previous, **timing, **common)
    elif value is not structured.MISSING:
        result = result_message(
            records, duration_ms=None, duration_api_ms=None, estimate_timings=True,
            num_turns=sum(count_turns(t.records) for t in turns), previous=previous,
            structured_output=value, result=jsjson.dumps(value), **timing, **common)
    elif plan.json_schema is not None and json_failures >= limit:
        # -p gives up while the last response still streams: its usage is not in ``usage`` (nor, on
        # 2.1.197, in modelUsage / total_cost_usd)
        before_last = structured.without_last_response(records)
        result = result_message(
            records if dialect(prep.version).structured_retries_cost_all else before_last,
            duration_ms=None, duration_api_ms=None, estimate_timings=False,
            subtype="error_max_structured_output_retries",
            errors=[structured.exhausted_error(json_failures, schema_problem, prep.version)],
            num_turns=sum(count_turns(t.records) for t in turns), previous=previous,
            usage_records=before_last, **timing, **common)
    elif turns[-1].gate_stopped and plan.max_turns is not None:
        result = result_message(
            records, duration_ms=None, duration_api_ms=None, estimate_timings=False, subtype="error_max_turns",
            errors=[max_turns_error(plan.max_turns)],
            num_turns=len(responses(turns[-1].records)) + 1, previous=previous, **timing, **common)
    else:
        result = result_message(
            records, duration_ms=None, duration_api_ms=None, estimate_timings=True,
            num_turns=sum(count_turns(t.records) for t in turns), previous=previous, **timing, **common)
    origin = (outcome.prompt_record or {}).get("origin") if prompt_origin is not None else None
    if isinstance(origin, dict):
        # -p's result of a turn it did not start from a prompt says where it came from (before its counters)
        items = list(result.items())
        at = next((i for i, (k, _) in enumerate(items) if k in ("subagent_stats", "safety_stops", "is_error")),
                  len(items))
        result = dict([*items[:at], ("origin", origin), *items[at:]])
    for notice in (prep.notices if prompt_origin is None else ()):
        if plan.output_format == "stream-json" or emitter.collect:
            emitter.line(messages.informational_line(notice, session_id=session_id,
                                                     timestamp=messages.line_timestamp(time.time())))
        else:
            err(notice.rstrip("\n"))
    return _Done(result, records, outcome.prompt_record)


def stream_input_error(line: str, version: str, exc: ValueError) -> str:
    """claude -p's stderr line for a stream-json input line that is not JSON (2.1.329 exact; 2.1.197's
    quotes its JavaScript parser's message, approximated)."""
    if dialect(version).stream_input_error_v2:
        return f"Error parsing streaming input line (type=unknown, {len(line)} chars): SyntaxError"
    return f"Error parsing streaming input line: {line}: SyntaxError: JSON Parse error: {getattr(exc, 'msg', exc)}"


def message_text(message: object) -> str | None:
    """The prompt of a stream-json user message: its string content, or its text blocks joined;
    None when it has other blocks (images, documents: a pane cannot take them)."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content and all(isinstance(b, dict) and b.get("type") == "text" for b in content):
        return "\n".join(str(b.get("text", "")) for b in content)
    return None


def run_stream_input(prep: Prepared, session: ClaudeSession, emitter: Emitter, stdin: BinaryIO, *,
                     probe: InitProbe | None, err: Callable[[str], None],
                     cancel: threading.Event | None = None) -> int:
    """--input-format stream-json: each ``{"type":"user","message":...}`` line of stdin is one turn in the
    same pane and session, processed as it arrives, each with its own ``system/init`` … ``result``
    (cost, modelUsage and duration_api_ms cumulative, as ``claude -p``). Lines of other types are
    skipped. Returns the last turn's exit code (0 without any message)."""
    plan = prep.plan
    previous: dict | None = None
    code = 0
    started = False
    for raw in iter(stdin.readline, b""):
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            err(stream_input_error(line, prep.version, e))
            return 1
        if not isinstance(obj, dict) or obj.get("type") != "user":
            continue
        text = message_text(obj.get("message"))
        if text is None:
            err("claude-bridge: only text content can be sent through an interactive pane "
                "(a stream-json input message has image or other non-text blocks)")
            return 1
        deadline = time.monotonic() + plan.timeout
        if not started:
            session.wait_started(deadline)
            started = True
        emitter.new_turn()
        replay = None
        if plan.replay_user_messages:
            replay = {"type": "user", "message": obj.get("message"), "session_id": emitter.session_id,
                      "parent_tool_use_id": None, "uuid": obj.get("uuid") or str(uuidlib.uuid4()),
                      "timestamp": messages.line_timestamp(time.time()), "isReplay": True}
        code = emit_turn(prep, session, emitter, submitted=False, deadline=deadline, probe=probe, err=err,
                         cancel=cancel, prompt=text, previous=previous, replay=replay)
        previous = getattr(emitter, "last_result", None)
    return code


def report_error(e: TurnError, err: Callable[[str], None]) -> int:
    """Write a TurnError to stderr (one-line reason + the pane's last lines); return the exit code."""
    if e.kind == "exited" and e.exit_status:
        # claude refused to start (bad option, root + bypass, ...): pass on what it printed,
        # and its exit code, as `claude -p` would have.
        for line in _pane_tail(e.screen):
            err(line)
        return e.exit_status
    if e.cli_message is not None:
        # claude -p has its own answer for this situation: print it
        err(e.cli_message)
        return e.cli_exit_code if e.cli_exit_code is not None else 1
    err(f"claude-bridge: {e.reason}")
    tail = _pane_tail(e.screen)
    if tail:
        err("claude-bridge: last lines of the pane:")
        for line in tail:
            err(f"  | {line}")
    return 1


def _pane_tail(lines: list[str]) -> list[str]:
    rows = [line for line in lines if line.strip() and not _TMUX_DEAD.match(line)]
    return rows[-PANE_TAIL_LINES:]


# tmux's own remain-on-exit line ("Pane is dead (status 1, <date>)"): not something claude printed
_TMUX_DEAD = re.compile(r"^Pane is dead( \(.*\))?$")


