"""The task lines ``claude -p --output-format stream-json`` prints for background agents (2.1.329+).

Shapes as 2.1.329 ``-p`` prints them (captured on the mock: one ``Agent`` call whose agent runs a
Bash command; docs/cli-behaviour.md §13):

* at the launch, before the Agent call's tool_result line:
  ``system/background_tasks_changed`` ``{"tasks":[{task_id, task_type:"local_agent", subagent_type,
  description}]}`` (the tasks now running) and ``system/task_started`` ``{task_id, tool_use_id,
  description, subagent_type, is_backgrounded:true, spawn_depth:1, task_type:"local_agent", prompt}``;
* the agent's own messages: its assistant and tool_result lines with ``parent_tool_use_id`` (the
  Agent call), ``agent_id``, ``subagent_type`` and ``task_description``, and after each of its tool
  calls a ``system/task_progress`` line;
* when it finishes: ``system/task_updated`` ``{task_id, run_id, patch:{status, end_time}}``,
  ``system/task_notification`` ``{task_id, run_id, tool_use_id, status, output_file, summary,
  summary_is_report:true, usage:{total_tokens, tool_uses, duration_ms}}`` and
  ``background_tasks_changed`` with the tasks still running.

The bridge reads them from the transcripts: the launch from the Agent call's tool_result record, the
agent's messages from its own file (``<session>/subagents/agent-<id>.jsonl``), the end from the
``<task-notification>`` claude enqueues. ``-p`` also puts a ``run_id`` in the launch lines; the
interactive CLI writes it nowhere before the agent ends, so the launch lines have none (the end
lines carry the one of the turn claude starts for the notification). Pure: ``uuid`` is the only
thing generated.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from claude_bridge_tmux.follow.agents import Finished, Launch
from claude_bridge_tmux.follow.localcmd import record_time
from claude_bridge_tmux.follow.tree import Record

TASK_TYPE = "local_agent"


@dataclass
class Task:
    """One background agent of the run, as the task lines describe it."""

    launch: Launch
    subagent_type: str
    started_at: float | None = None       # epoch s of the agent's first record (task_progress duration)
    tool_uses: int = 0
    emitted: set[str] = field(default_factory=set)   # uuids of the agent's records already printed


def _system(subtype: str, session_id: str, new_uuid: Callable[[], str], **fields: Any) -> dict:
    return {"type": "system", "subtype": subtype, **fields, "uuid": new_uuid(), "session_id": session_id}


class TaskBook:
    """The run's background agents and the task lines they give (stream-json only).

    ``launched(launch, tool_input)`` → the launch lines; ``agent_lines(task, records, translate)`` →
    the agent's own lines (``translate(record)`` gives the main-thread lines of a record, which are
    then marked as the agent's); ``finished(fields, end_ms, run_id)`` → the end lines.
    """

    def __init__(self, session_id: Callable[[], str], new_uuid: Callable[[], str] | None = None):
        self.session_id = session_id
        self.new_uuid = new_uuid or (lambda: str(uuidlib.uuid4()))
        self.tasks: dict[str, Task] = {}
        self.running: list[str] = []

    def _running_line(self) -> dict:
        tasks = [{"task_id": t.launch.agent_id, "task_type": TASK_TYPE, "subagent_type": t.subagent_type,
                  "description": t.launch.description} for t in (self.tasks[i] for i in self.running)]
        return _system("background_tasks_changed", self.session_id(), self.new_uuid, tasks=tasks)

    def launched(self, launch: Launch, tool_input: Mapping[str, Any] | None) -> list[dict]:
        """The lines before the Agent call's tool_result line (``tool_input``: the call's input)."""
        if launch.agent_id in self.tasks:
            return []
        subagent_type = str((tool_input or {}).get("subagent_type") or "general-purpose")
        task = Task(launch, subagent_type)
        self.tasks[launch.agent_id] = task
        self.running.append(launch.agent_id)
        started = _system("task_started", self.session_id(), self.new_uuid, task_id=launch.agent_id,
                          tool_use_id=launch.tool_use_id, description=launch.description,
                          subagent_type=subagent_type, is_backgrounded=True, spawn_depth=1, task_type=TASK_TYPE,
                          prompt=launch.prompt)
        return [self._running_line(), started]

    def agent_lines(self, task: Task, records: list[Record], translate: Callable[[Record], list[dict]], *,
                    foreground: bool = False) -> list[dict]:
        """The lines of the agent's records not printed yet (its prompt record excluded), in file order.
        ``foreground``: 2.1.197's shapes (only the agent's tool calls and results, no ``agent_id``, each
        ``task_progress`` before its call)."""
        out: list[dict] = []
        for rec in records:
            u = rec.get("uuid")
            if not isinstance(u, str) or u in task.emitted or rec.get("type") not in ("assistant", "user"):
                continue
            task.emitted.add(u)
            if task.started_at is None:
                task.started_at = record_time(rec)
            if rec.get("type") == "user" and not _has_tool_result(rec):
                continue          # its prompt (-p prints the agent's messages, not the prompt it was given)
            tool = _last_tool_use(rec)
            if foreground and rec.get("type") == "assistant" and tool is None:
                continue          # (2.1.197 -p prints none of the agent's text)
            lines = [self._as_agent(line, task, foreground) for line in translate(rec)
                     if line.get("type") in ("assistant", "user")]
            progress = []
            if tool is not None:
                task.tool_uses += 1
                name = str(tool.get("name") or "")
                what = (tool.get("input") or {}).get("description") if isinstance(tool.get("input"), dict) else None
                now = record_time(rec)
                duration = int(max(0.0, (now or 0) - (task.started_at or now or 0)) * 1000)
                progress.append(_system("task_progress", self.session_id(), self.new_uuid,
                                        task_id=task.launch.agent_id, tool_use_id=task.launch.tool_use_id,
                                        description=f"Running {what or name}", subagent_type=task.subagent_type,
                                        usage={"total_tokens": _context_tokens(rec), "tool_uses": task.tool_uses,
                                               "duration_ms": duration},
                                        last_tool_name=name))
            out += progress + lines if foreground else lines + progress
        return out

    @staticmethod
    def _as_agent(line: dict, task: Task, foreground: bool = False) -> dict:
        head = {k: line[k] for k in ("type", "message") if k in line}
        rest = {k: v for k, v in line.items() if k not in head and k not in ("parent_tool_use_id", "tool_use_result")}
        agent = {} if foreground else {"agent_id": task.launch.agent_id}
        return {**head, "parent_tool_use_id": task.launch.tool_use_id, **agent, **rest,
                "subagent_type": task.subagent_type, "task_description": task.launch.description}

    def foreground(self, end: Finished, tool_input: Mapping[str, Any] | None, records: list[Record],
                   translate: Callable[[Record], list[dict]], end_ms: int | None) -> list[dict]:
        """2.1.197's lines for a foreground agent, printed before its Agent call's tool_result: the
        start, the prompt it was given, its tool calls and results, its end (``end_ms``: epoch ms)."""
        inp = tool_input or {}
        launch = Launch(end.launch.agent_id, end.launch.tool_use_id, str(inp.get("description") or ""),
                        end.launch.prompt or str(inp.get("prompt") or ""), "")
        if launch.agent_id in self.tasks:
            return []
        task = Task(launch, str(inp.get("subagent_type") or "general-purpose"))
        self.tasks[launch.agent_id] = task
        sid = self.session_id()
        out = [_system("task_started", sid, self.new_uuid, task_id=launch.agent_id, tool_use_id=launch.tool_use_id,
                       description=launch.description, subagent_type=task.subagent_type, task_type=TASK_TYPE,
                       prompt=launch.prompt)]
        first = next((r for r in records if r.get("type") == "user"), None)
        stamp = first.get("timestamp") if first is not None else None
        out.append({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": launch.prompt}]},
                    "parent_tool_use_id": launch.tool_use_id, "session_id": sid,
                    "uuid": str(first.get("uuid")) if first is not None and first.get("uuid") else self.new_uuid(),
                    **({"timestamp": stamp} if isinstance(stamp, str) else {}),
                    "subagent_type": task.subagent_type, "task_description": launch.description})
        out += self.agent_lines(task, records, translate, foreground=True)
        patch: dict[str, Any] = {"status": end.status}
        if end_ms is not None:
            patch["end_time"] = end_ms
        out.append(_system("task_updated", sid, self.new_uuid, task_id=launch.agent_id, patch=patch))
        out.append(_system("task_notification", sid, self.new_uuid, task_id=launch.agent_id,
                           tool_use_id=launch.tool_use_id, status=end.status, output_file="",
                           summary=launch.description,
                           usage={"total_tokens": end.total_tokens, "tool_uses": end.tool_uses,
                                  "duration_ms": end.duration_ms}))
        return out

    def finished(self, fields: Mapping[str, str], end_ms: int | None, run_id: str | None) -> list[dict]:
        """The end lines of the task a ``<task-notification>`` (its ``fields``, follow/agents.py) names;
        ``end_ms``: when it was enqueued (epoch ms). [] for a task this run did not launch."""
        task_id = fields.get("task-id")
        task = self.tasks.get(task_id or "")
        if task is None or task_id not in self.running:
            return []
        self.running.remove(task_id)
        status = fields.get("status") or "completed"
        ids = {"task_id": task_id, **({"run_id": run_id} if run_id else {})}
        patch: dict[str, Any] = {"status": status}
        if end_ms is not None:
            patch["end_time"] = end_ms
        summary = fields.get("result") or fields.get("summary") or task.launch.description
        usage = {"total_tokens": _int(fields.get("subagent_tokens")), "tool_uses": _int(fields.get("tool_uses")),
                 "duration_ms": _int(fields.get("duration_ms"))}
        return [
            _system("task_updated", self.session_id(), self.new_uuid, **ids, patch=patch),
            _system("task_notification", self.session_id(), self.new_uuid, **ids,
                    tool_use_id=fields.get("tool-use-id") or task.launch.tool_use_id, status=status,
                    output_file=fields.get("output-file") or task.launch.output_file, summary=summary,
                    summary_is_report="result" in fields, usage=usage),
            self._running_line(),
        ]


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _has_tool_result(rec: Record) -> bool:
    content = (rec.get("message") or {}).get("content")
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def _last_tool_use(rec: Record) -> Mapping[str, Any] | None:
    if rec.get("type") != "assistant":
        return None
    content = (rec.get("message") or {}).get("content")
    tools = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_use"] if isinstance(content, list) else []
    return tools[-1] if tools else None


def _context_tokens(rec: Record) -> int:
    """All the tokens of one response (input, cache reads and writes, output): ``-p``'s ``total_tokens``."""
    u = (rec.get("message") or {}).get("usage") or {}
    return sum(int(u.get(k) or 0) for k in ("input_tokens", "cache_creation_input_tokens",
                                             "cache_read_input_tokens", "output_tokens"))
