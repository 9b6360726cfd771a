"""Turn assembly from an interactive Claude Code transcript (pure; no I/O).

A transcript is JSONL; records link to their predecessor through ``parentUuid``.
File order is *not* conversation order (a slow UserPromptSubmit hook makes the
assistant reply land before the prompt record) and the chain *branches* with
parallel tool calls (the second tool_use and the first tool_result end up on a
side branch). A turn is therefore rebuilt as the set of all descendants of the
prompt record, stopping where the next turn starts:

* a descendant ``user`` record that is itself a prompt (see :func:`is_prompt_record`)
  with a different ``promptId`` starts the next turn: it and its subtree are excluded;
* the children of ``system/turn_duration`` belong to whatever happens next (the next
  prompt, local slash commands, ...): the turn_duration record is included, its
  subtree is not;
* ``isSidechain`` records (sub-agent traffic) are skipped.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable
from typing import Any

import orjson

INTERRUPT_PREFIX = "[Request interrupted by user"
# user records that carry the *output* of a local command / bash-mode command
OUTPUT_PREFIXES = ("<bash-stdout>", "<bash-stderr>", "<local-command-stdout>", "<local-command-stderr>")

Record = dict[str, Any]
"""One transcript line as parsed (:func:`parse_line`): a JSON object whose shape depends on its ``type``
(user, assistant, system, attachment, …; the CLI's own format, not a fixed schema)."""


# --------------------------------------------------------------------------- parsing


def parse_line(line: bytes | str) -> Record | None:
    """Parse one transcript line; ``None`` for blank, partial or non-object lines.

    orjson first; lines it rejects (lone surrogates, either as ``\\udXXX`` escapes or
    as raw CESU bytes) are retried with the stdlib parser on a ``surrogatepass``
    decode, so the lone surrogate survives as a Python code point (``output.jsjson.dumps``
    writes it back as ``\\udXXX`` like ``JSON.stringify``).
    """
    try:
        obj = orjson.loads(line)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        obj = None
        try:
            if isinstance(line, str):
                text = line
            else:
                try:
                    text = line.decode("utf-8", "surrogatepass")
                except UnicodeDecodeError:
                    text = line.decode("utf-8", "replace")
            if text.strip():
                obj = json.loads(text)
        except (ValueError, RecursionError):
            obj = None
    return obj if isinstance(obj, dict) else None


# --------------------------------------------------------------------------- record predicates


def content_text(record: Record) -> str | None:
    """The prompt text of a user record: the string content, or its text blocks joined."""
    msg = record.get("message")
    if not isinstance(msg, dict):
        return None
    content = msg.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
        if parts:
            return "".join(parts)
    return None


def has_tool_result(record: Record) -> bool:
    msg = record.get("message")
    content = msg.get("content") if isinstance(msg, dict) else None
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def tool_use_owner(records: Iterable[Record], tool_use_id: str, *, main_thread: bool = True) -> Record | None:
    """The assistant record whose content holds the ``tool_use`` block ``tool_use_id`` (of the main
    thread only, unless ``main_thread`` is False: a subagent's records have ``isSidechain``), or None."""
    for r in records:
        if r.get("type") != "assistant" or (main_thread and r.get("isSidechain")):
            continue
        msg = r.get("message")
        for b in (msg.get("content") if isinstance(msg, dict) else None) or ():
            if isinstance(b, dict) and b.get("type") == "tool_use" and b.get("id") == tool_use_id:
                return r
    return None


def response_ids(records: Iterable[Record]) -> list[str]:
    """The main thread's model responses in order: each assistant ``message.id`` once (one response
    is written as several records, one per content block)."""
    ids: list[str] = []
    for r in records:
        if r.get("type") != "assistant" or r.get("isSidechain"):
            continue
        mid = (r.get("message") or {}).get("id")
        if mid and mid not in ids:
            ids.append(mid)
    return ids


def is_interrupt_record(record: Record) -> bool:
    if record.get("type") != "user" or has_tool_result(record):
        return False
    text = content_text(record)
    return text is not None and text.startswith(INTERRUPT_PREFIX)


def is_prompt_record(record: Record) -> bool:
    """A user prompt: type ``user``, not meta/compact summary, text content, no tool_result,
    not an interrupt marker, not command output (``<bash-stdout>``, ``<local-command-stdout>``).
    (Local-command records such as ``<command-name>/clear…`` and
    bash-mode ``<bash-input>`` records also qualify; they start turns of their own.)"""
    if record.get("type") != "user":
        return False
    if record.get("isMeta") or record.get("isCompactSummary") or record.get("isVisibleInTranscriptOnly"):
        return False
    if record.get("isSidechain"):
        return False
    if has_tool_result(record):
        return False
    text = content_text(record)
    if text is None:
        # e.g. an image-only prompt: still a prompt if it has no tool_result
        msg = record.get("message")
        return isinstance(msg, dict) and isinstance(msg.get("content"), list) and bool(msg["content"])
    return not text.startswith(INTERRUPT_PREFIX) and not text.startswith(OUTPUT_PREFIXES)


def is_turn_duration(record: Record) -> bool:
    return record.get("type") == "system" and record.get("subtype") == "turn_duration"


# --------------------------------------------------------------------------- find_prompt


def find_prompt(
    records: Iterable[Record],
    *,
    prompt_id: str | None = None,
    text: str | None = None,
    after_uuid: str | None = None,
) -> Record | None:
    """The user prompt record of a turn.

    * ``prompt_id``: the record whose ``promptId`` matches (the UserPromptSubmit hook's
      ``prompt_id``). Several records share a promptId (tool results, ``<bash-stdout>``);
      the prompt is the prompt-like one whose parent does not carry the same promptId.
    * ``text``: exact match of the content (string, or text blocks joined); if nothing
      matches exactly, a match after ``.strip()`` on both sides. The *last* match in file
      order wins (the newest turn, e.g. after ``--resume``).
    * ``after_uuid``: only records after the record with this uuid (file order) are
      considered; ``None`` if that record is not in ``records``.
    Both ``prompt_id`` and ``text`` given: both must match.
    """
    recs = list(records)
    if after_uuid is not None:
        for i, r in enumerate(recs):
            if r.get("uuid") == after_uuid:
                recs = recs[i + 1 :]
                break
        else:
            return None
    cands = [r for r in recs if is_prompt_record(r)]
    if prompt_id is not None:
        same = [r for r in recs if r.get("promptId") == prompt_id]
        same_uuids = {r.get("uuid") for r in same}
        pid_cands = [r for r in cands if r.get("promptId") == prompt_id]
        roots = [r for r in pid_cands if r.get("parentUuid") not in same_uuids]
        cands = roots or pid_cands
    if text is not None:
        exact = [r for r in cands if content_text(r) == text]
        if not exact:
            stripped = text.strip()
            exact = [r for r in cands if (content_text(r) or "").strip() == stripped]
        return exact[-1] if exact else None
    return cands[0] if cands else None


# --------------------------------------------------------------------------- TurnTree


class TurnTree:
    """Incremental turn assembly.

    Feed records in file order (whatever order they were written in) with :meth:`add`;
    query in tree order with :meth:`ordered`. Records without a ``uuid`` (metadata such
    as ``mode``, ``ai-title``, ``file-history-snapshot``) are ignored. A record added
    again with the same uuid replaces the earlier copy.
    """

    def __init__(self, prompt_uuid: str | None = None) -> None:
        self.prompt_uuid = prompt_uuid
        self._records: dict[str, Record] = {}
        self._children: dict[str, list[str]] = {}
        self._ends: list[str] = []  # uuids of system/turn_duration records seen
        self._cache: list[Record] | None = None

    # ---- feeding
    def add(self, record: Record) -> None:
        if not isinstance(record, dict):
            return
        uuid = record.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            return
        self._cache = None
        if is_turn_duration(record) and uuid not in self._ends:
            self._ends.append(uuid)
        old = self._records.get(uuid)
        if old is not None:
            old_parent = old.get("parentUuid")
            if old_parent == record.get("parentUuid"):
                self._records[uuid] = record
                return
            siblings = self._children.get(old_parent) if isinstance(old_parent, str) else None
            if siblings and uuid in siblings:
                siblings.remove(uuid)
        self._records[uuid] = record
        parent = record.get("parentUuid")
        if isinstance(parent, str):
            self._children.setdefault(parent, []).append(uuid)

    def add_all(self, records: Iterable[Record]) -> TurnTree:
        for r in records:
            self.add(r)
        return self

    def set_prompt(self, uuid: str) -> None:
        self.prompt_uuid = uuid
        self._cache = None

    def get(self, uuid: str) -> Record | None:
        return self._records.get(uuid)

    @property
    def prompt(self) -> Record | None:
        return self._records.get(self.prompt_uuid) if self.prompt_uuid else None

    # ---- queries
    def ordered(self) -> list[Record]:
        """All descendants of the prompt (prompt excluded) in tree order.

        Parents always precede their children; among records whose parent has already
        been emitted, the earliest ``timestamp`` goes first. For a plain chain this is the
        chain; for parallel tool calls it interleaves the branches chronologically
        (tool_use #1, tool_use #2, result #2, result #1, …) instead of emitting a whole
        side branch after the main line (a strict DFS would put a late side branch after
        the rest of the turn).

        Same-millisecond ties: attachments first, then user/assistant, then system, then
        by uuid — deliberately *not* file order, so the result does not depend on the
        order records were fed in (same-ms siblings' true order is unknowable anyway).
        Records without a timestamp inherit their parent's.
        """
        if self._cache is None:
            self._cache = self._compute_ordered()
        return list(self._cache)

    def _compute_ordered(self) -> list[Record]:
        if not self.prompt_uuid:
            return []
        prompt = self._records.get(self.prompt_uuid)
        prompt_pid = prompt.get("promptId") if prompt else None
        prompt_ts = _ts(prompt) if prompt else ""
        out: list[Record] = []
        heap: list[tuple[str, int, str]] = []  # (timestamp, type rank, uuid)
        seen = {self.prompt_uuid}

        def push_children(uuid: str, parent_ts: str) -> None:
            for cu in self._children.get(uuid, ()):
                if cu in seen:
                    continue
                seen.add(cu)
                child = self._records[cu]
                key = (_ts(child) or parent_ts, _RANK.get(child.get("type"), 1), cu)
                heapq.heappush(heap, key)

        push_children(self.prompt_uuid, prompt_ts)
        while heap:
            ts, _, uuid = heapq.heappop(heap)
            rec = self._records[uuid]
            if rec.get("isSidechain"):
                continue
            if self._starts_other_turn(rec, prompt_pid):
                continue
            out.append(rec)
            if is_turn_duration(rec):
                continue
            push_children(uuid, ts)
        return out

    @staticmethod
    def _starts_other_turn(rec: Record, prompt_pid: str | None) -> bool:
        if not is_prompt_record(rec):
            return False
        pid = rec.get("promptId")
        return pid is None or prompt_pid is None or pid != prompt_pid

    def end_record(self) -> Record | None:
        """The ``system/turn_duration`` record of this turn, if written yet.

        Cheap (walks up from each turn_duration record seen instead of rebuilding the
        turn), so it can be polled after every line.
        """
        if not self.prompt_uuid:
            return None
        prompt = self._records.get(self.prompt_uuid)
        prompt_pid = prompt.get("promptId") if prompt else None
        for end_uuid in self._ends:
            if self._descends_from_prompt(end_uuid, prompt_pid):
                return self._records[end_uuid]
        return None

    def _descends_from_prompt(self, uuid: str, prompt_pid: str | None) -> bool:
        cur = self._records.get(uuid)
        first = True
        hops = 0
        while cur is not None and hops <= len(self._records):
            hops += 1
            if cur.get("isSidechain"):
                return False
            if not first and is_turn_duration(cur):
                return False  # an earlier turn's end: we are in a later turn
            first = False
            parent = cur.get("parentUuid")
            if parent == self.prompt_uuid:
                return True
            cur = self._records.get(parent) if isinstance(parent, str) else None
            if cur is not None and self._starts_other_turn(cur, prompt_pid):
                return False
        return False

    def complete(self) -> bool:
        """True once a ``system/turn_duration`` record descends from the prompt.

        Interrupted turns (Esc/Ctrl-C, rejected permission prompt) and local slash
        commands never write one: they stay incomplete and need another end signal.
        """
        return self.end_record() is not None

    def __len__(self) -> int:
        return len(self._records)


_RANK: dict[Any, int] = {"attachment": 0, "user": 1, "assistant": 1, "system": 2}


def _ts(record: Record | None) -> str:
    if not record:
        return ""
    ts = record.get("timestamp")
    return ts if isinstance(ts, str) else ""


def turn_records(records: Iterable[Record], prompt_uuid: str) -> list[Record]:
    """Convenience: ``TurnTree(prompt_uuid).add_all(records).ordered()``."""
    return TurnTree(prompt_uuid).add_all(records).ordered()
