"""Background agents (the ``Agent`` tool on CLI 2.1.329+): what a turn launched and what claude does
when they finish.

On 2.1.329 an ``Agent`` call runs in the background: its tool_result comes at once
(``toolUseResult.status == "async_launched"``, with ``agentId``), the main turn goes on and ends, and
when the agent finishes claude enqueues a ``<task-notification>`` (a ``queue-operation`` record with
``operation: "enqueue"``) and starts a turn of its own whose prompt record has
``origin.kind == "task-notification"``. ``claude -p`` follows that turn too and prints a second
``system/init`` … ``result`` (docs/cli-behaviour.md §13); so does the bridge. Pure functions over
transcript records (dicts as in follow/tree.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from claude_bridge_tmux.follow.tree import Record

NOTIFICATION_ORIGIN = "task-notification"
_TASK_ID = re.compile(r"<task-id>([^<]+)</task-id>")
_FIELD = re.compile(r"<(output-file|status|result|subagent_tokens|tool_uses|duration_ms|tool-use-id)>(.*?)</\1>", re.S)


@dataclass(frozen=True)
class Launch:
    """One background agent a turn started: ``agent_id`` (claude's task id), the Agent call's
    ``tool_use_id``, its ``description`` and ``prompt``, and the ``output_file`` claude named."""

    agent_id: str
    tool_use_id: str
    description: str
    prompt: str
    output_file: str


def _agent_results(records: Iterable[Record]) -> Iterator[tuple[dict, str]]:
    """(``toolUseResult``, tool_use_id) of each main-thread tool result among ``records`` that names an agent."""
    for rec in records:
        if rec.get("type") != "user" or rec.get("isSidechain"):
            continue
        result = rec.get("toolUseResult")
        if not isinstance(result, dict) or not result.get("agentId"):
            continue
        content = (rec.get("message") or {}).get("content")
        tool_use_id = next((b.get("tool_use_id") for b in content if isinstance(b, dict)
                            and b.get("type") == "tool_result"), None) if isinstance(content, list) else None
        yield result, str(tool_use_id or "")


def background_launches(records: Iterable[Record]) -> list[Launch]:
    """The background agents launched by the main thread's tool results among ``records``."""
    return [Launch(str(result["agentId"]), tool_use_id, str(result.get("description") or ""),
                   str(result.get("prompt") or ""), str(result.get("outputFile") or ""))
            for result, tool_use_id in _agent_results(records) if result.get("status") == "async_launched"]


@dataclass(frozen=True)
class Finished:
    """A foreground agent's end, from its Agent call's tool_result (2.1.197: ``toolUseResult`` with
    ``status: "completed"``): ``total_tokens``, ``tool_uses``, ``duration_ms`` as the CLI counted them."""

    launch: Launch
    status: str
    total_tokens: int
    tool_uses: int
    duration_ms: int


def foreground_ends(records: Iterable[Record]) -> list[Finished]:
    """The foreground agents whose Agent call's tool_result is among ``records`` (main thread)."""
    out = []
    for result, tool_use_id in _agent_results(records):
        if result.get("status") == "async_launched" or result.get("isAsync"):
            continue
        launch = Launch(str(result["agentId"]), tool_use_id, "", str(result.get("prompt") or ""), "")
        out.append(Finished(launch, str(result.get("status") or "completed"), _int(result.get("totalTokens")),
                            _int(result.get("totalToolUseCount")), _int(result.get("totalDurationMs"))))
    return out


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def notified_tasks(text: str | None) -> set[str]:
    """The task ids a ``<task-notification>`` text names."""
    return set(_TASK_ID.findall(text or ""))


def is_notification_prompt(record: Record) -> bool:
    """A prompt record of a turn claude started for a task notification."""
    return record.get("type") == "user" and (record.get("origin") or {}).get("kind") == NOTIFICATION_ORIGIN


def notification_fields(text: str | None) -> dict[str, str]:
    """The fields of one ``<task-notification>`` text: ``task-id``, ``tool-use-id``, ``output-file``,
    ``status``, ``result``, ``subagent_tokens``, ``tool_uses``, ``duration_ms`` (those present)."""
    fields = {k: v.strip() for k, v in _FIELD.findall(text or "")}
    ids = _TASK_ID.findall(text or "")
    if ids:
        fields["task-id"] = ids[0]
    return fields
