"""Conformance harness: the same scenario through the real ``claude -p`` and through ``claude-bridge -p``.

Both run the same pinned CLI version against the same mock model, each in its own throwaway HOME
and cwd.  Outputs are normalised (ids, uuids, timestamps, durations and timing fields, session ids,
temp paths, socket paths) and compared field by field; :func:`diff_outputs` returns the set of
differing *field paths*, e.g. ``result.total_cost_usd``, ``assistant#2.timestamp``,
``stream:sequence``, ``result:key-order``, ``stdout``, ``rc``.

Run directly for a quick look (``python -m tests.conformance.harness [--update-allowlist]``);
the pytest suite lives in ``test_conformance.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-ant-test-0123456789abcdefghij"
HERE = Path(__file__).resolve().parent
ALLOWLIST = HERE / "allowlist.json"
REPORT = HERE / "REPORT.md"

# --------------------------------------------------------------------------- scenarios

UNICODE_PROMPT = "MOCK:echo ünïcödé ✓ 🚀👍🏽 שלום مرحبا \"dq\" 'sq' `bt` $HOME \\ tab\there\nsecond line ☃"
# one SessionStart hook (-p prints its hook lines before system/init; several would finish in a racy order)
SESSION_START_SETTINGS = json.dumps({"hooks": {"SessionStart": [{"hooks": [{"type": "command",
                                                                           "command": "echo session context"}]}]}})
SCHEMA = json.dumps({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]})
STREAM_INPUT = "".join(json.dumps({"type": "user", "message": {"role": "user", "content": c}}) + "\n"
                       for c in ("first input", [{"type": "text", "text": "second input MOCK:tool=echo_2"}]))
LONG_PROMPT = "MOCK:echo\n" + "\n".join(f"line {i:05d}: ünïcödé ✓ lorem ipsum dolor sit amet" for i in range(400))


@dataclass(frozen=True)
class Scenario:
    """One invocation: ``args`` after the binary, optional ``stdin``, extra ``env``."""

    name: str
    args: tuple[str, ...]
    stdin: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    fmt: str = "text"
    note: str = ""
    # parallel tool calls finish in either order (in claude -p too): compare results order-free
    unordered_tools: bool = False
    # --include-partial-messages: compare with consecutive deltas of one block merged (the bridge's
    # grain is one delta per content block, -p's one per SSE chunk)
    merge_deltas: bool = False


def _fmt(fmt: str) -> tuple[str, ...]:
    return ("--output-format", fmt) + (("--verbose",) if fmt == "stream-json" else ())


def _scen(name: str, prompt: str, fmts=("text", "json", "stream-json"), **kw) -> list[Scenario]:
    return [Scenario(f"{name}.{f}", ("-p", prompt, *_fmt(f)), fmt=f, **kw) for f in fmts]


SCENARIOS: list[Scenario] = [
    *_scen("plain", "hello conformance"),
    *_scen("tool", "run it MOCK:tool=echo_hi"),
    *_scen("tools2", "both MOCK:tools2", fmts=("json", "stream-json"), unordered_tools=True),
    *_scen("thinking", "ponder MOCK:thinking", fmts=("json", "stream-json")),
    *_scen("multi", "blocks MOCK:multi=3", fmts=("json", "stream-json")),
    *_scen("api_error", "boom MOCK:err=500", note="CLAUDE_CODE_MAX_RETRIES=0"),
    *_scen("deny", "deny me MOCK:tool=python3_-c_1", note="default permission mode denies"),
    *_scen("long_reply", "long MOCK:long=3000", fmts=("json",)),
    *_scen("unicode", UNICODE_PROMPT, fmts=("text", "json", "stream-json")),
    *_scen("long_prompt", LONG_PROMPT, fmts=("json",)),
    Scenario("stdin.json", ("-p", *_fmt("json")), stdin="from stdin ✓\n", fmt="json"),
    Scenario("stdin_and_arg.text", ("-p", "the argument"), stdin="and stdin\n", fmt="text"),
    # -p semantics and print-only options the bridge emulates (README: "Print-mode semantics")
    *_scen("slash_unknown", "/nosuchcmd arg"),
    *_scen("slash_clear", "/clear", fmts=("json", "stream-json")),
    *_scen("bang", "!echo bang", fmts=("json",)),
    Scenario("max_turns.text", ("-p", "loop MOCK:toolloop", "--max-turns", "1"), fmt="text"),
    *[Scenario(f"max_turns.{f}", ("-p", "loop MOCK:toolloop", "--max-turns", "2", *_fmt(f)), fmt=f)
      for f in ("json", "stream-json")],
    # the limit reached on a tool that needs approval (denied, default mode) and on a failing one
    Scenario("max_turns_denied.stream-json", ("-p", "denied MOCK:tool=python3_-c_1", "--max-turns", "1",
                                              *_fmt("stream-json")), fmt="stream-json"),
    Scenario("max_turns_failed.stream-json", ("-p", "failed MOCK:tool=false", "--allowedTools", "Bash",
                                              "--max-turns", "1", *_fmt("stream-json")), fmt="stream-json"),
    Scenario("budget.json", ("-p", "plain", "--max-budget-usd", "0.0000001", *_fmt("json")), fmt="json"),
    *[Scenario(f"json_schema.{f}", ("-p", "answer MOCK:structured", "--json-schema", SCHEMA, *_fmt(f)), fmt=f)
      for f in ("json", "stream-json")],
    # an invalid StructuredOutput call and the retry; no call at all (the nudge); invalid calls until -p gives up
    Scenario("json_schema_invalid.stream-json", ("-p", 'answer MOCK:structured={"answer":5}', "--json-schema", SCHEMA,
                                                 *_fmt("stream-json")), fmt="stream-json"),
    Scenario("json_schema_never.stream-json", ("-p", "answer MOCK:nostructured", "--json-schema", SCHEMA,
                                               *_fmt("stream-json")), fmt="stream-json"),
    *[Scenario(f"json_schema_exhausted.{f}", ("-p", 'answer MOCK:structured={"answer":5} MOCK:stuckstructured',
                                              "--json-schema", SCHEMA, *_fmt(f)), fmt=f) for f in ("text", "stream-json")],
    Scenario("stream_input.stream-json", ("-p", "--input-format", "stream-json", "--replay-user-messages",
                                          *_fmt("stream-json")), stdin=STREAM_INPUT, fmt="stream-json"),
    Scenario("partial.stream-json", ("-p", "partial MOCK:tool=echo_p", "--include-partial-messages",
                                     *_fmt("stream-json")), fmt="stream-json", merge_deltas=True),
    Scenario("json_verbose.json", ("-p", "verbose json", "--output-format", "json", "--verbose"), fmt="json"),
    *[Scenario(f"system_prompt.{f}", ("-p", "terse MOCK:tool=echo_sp", "--system-prompt", "You are terse.", *_fmt(f)),
               fmt=f) for f in ("json", "stream-json")],
    Scenario("session_start_hook.stream-json", ("-p", "hooked", "--settings", SESSION_START_SETTINGS,
                                                *_fmt("stream-json")), fmt="stream-json"),
    Scenario("no_persistence.json", ("-p", "nothing kept", "--no-session-persistence", *_fmt("json")), fmt="json"),
    Scenario("usage.unknown_flag", ("-p", "x", "--frobnicate"), fmt="usage"),
    Scenario("usage.stream_no_verbose", ("-p", "x", "--output-format", "stream-json"), fmt="usage"),
    Scenario("usage.empty_prompt", ("-p", ""), fmt="usage"),
]

# --------------------------------------------------------------------------- running


@dataclass
class RunOutput:
    stdout: str
    stderr: str
    rc: int
    root: str
    seconds: float


def _seed(home: Path, cwd: Path, version: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    (home / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "lastOnboardingVersion": version,
        "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
        "projects": {str(cwd): {"hasTrustDialogAccepted": True}},
    }))


def run_one(kind: str, scenario: Scenario, version: str, claude_bin: str, mock_url: str,
            base: Path, timeout: float = 120) -> RunOutput:
    """Run ``scenario`` with ``kind`` = ``"claude"`` (the real -p) or ``"bridge"`` in a fresh bed."""
    root = Path(tempfile.mkdtemp(prefix=f"cf-{kind[0]}-", dir=base))
    home, cwd = root / "home", root / "work"
    _seed(home, cwd, version)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
        "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": mock_url, "CLAUDE_CODE_MAX_RETRIES": "0",
        "DISABLE_AUTOUPDATER": "1", "CLAUDE_BRIDGE_CLAUDE_BIN": claude_bin,
        "CLAUDE_BRIDGE_RUNTIME_DIR": str(root / "run"), "CLAUDE_BRIDGE_STATE_DIR": str(root / "state"),
        "PYTHONPATH": str(ROOT), **dict(scenario.env),
    }
    cmd = [claude_bin] if kind == "claude" else [sys.executable, "-m", "claude_bridge_tmux"]
    t0 = time.monotonic()
    try:
        p = subprocess.run([*cmd, *scenario.args], env=env, cwd=cwd, capture_output=True, timeout=timeout,
                           input=scenario.stdin.encode() if scenario.stdin is not None else None,
                           stdin=None if scenario.stdin is not None else subprocess.DEVNULL)
        out = RunOutput(p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"), p.returncode,
                        str(root), time.monotonic() - t0)
    except subprocess.TimeoutExpired as e:
        out = RunOutput((e.stdout or b"").decode("utf-8", "replace"), "TIMEOUT", -1, str(root), timeout)
    return out


@dataclass
class Comparison:
    version: str
    scenario: Scenario
    claude: RunOutput
    bridge: RunOutput
    diffs: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def run_all(binaries: list[tuple[str, str]], scenarios: list[Scenario] | None = None, workers: int = 8,
            keep: bool = False) -> list[Comparison]:
    """Every scenario x version, claude -p and bridge in parallel threads (one bed each)."""
    from claude_bridge_tmux.testing.mock_api import MockServer

    scenarios = scenarios if scenarios is not None else SCENARIOS
    base = Path(tempfile.mkdtemp(prefix="conformance-"))
    results: dict[tuple[str, str, str], RunOutput] = {}
    lock = threading.Lock()
    try:
        with MockServer() as mock:
            jobs = [(kind, s, v, b) for v, b in binaries for s in scenarios for kind in ("bridge", "claude")]

            def work(job):
                kind, s, v, b = job
                out = run_one(kind, s, v, b, mock.url, base)
                with lock:
                    results[(kind, s.name, v)] = out

            with ThreadPoolExecutor(max_workers=workers) as ex:
                list(ex.map(work, jobs))
        comps = []
        for v, _b in binaries:
            for s in scenarios:
                c, br = results[("claude", s.name, v)], results[("bridge", s.name, v)]
                comps.append(Comparison(v, s, c, br, diff_outputs(s, c, br)))
        return comps
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------- normalising

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_IDS = re.compile(r"\b(msg_mock_|toolu_|req_mock_|sig_|msg_|req_)[0-9A-Za-z]{6,}")
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")
_SOCK = re.compile(r"/tmp/cc-socks/\d+\.sock")
# Fields whose value is a measurement of this particular run (normalised to their JSON type).
TIMING_KEYS = {"duration_ms", "duration_api_ms", "ttft_ms", "ttft_stream_ms", "time_to_request_ms",
               "first_content_frame_ms", "thinking_duration_ms", "durationMs", "elapsed_time_ms"}


class Normaliser:
    """Replaces run-specific values by stable placeholders (numbered by first appearance)."""

    def __init__(self, root: str):
        self.root = root.rstrip("/")
        self.enc_root = re.sub(r"[^A-Za-z0-9]", "-", self.root)
        self.maps: dict[str, dict[str, str]] = {}

    def _ph(self, kind: str, value: str) -> str:
        m = self.maps.setdefault(kind, {})
        if value not in m:
            m[value] = f"<{kind}{len(m) + 1}>"
        return m[value]

    def text(self, s: str) -> str:
        s = s.replace(self.root, "<ROOT>").replace(self.enc_root, "<ENCROOT>")
        s = _SOCK.sub("<SOCK>", s)
        s = _TS.sub("<TS>", s)
        s = _UUID.sub(lambda m: self._ph("uuid", m.group()), s)
        s = _IDS.sub(lambda m: self._ph(m.group(1).rstrip("_"), m.group()), s)
        return s

    def value(self, v: Any, key: str | None = None) -> Any:
        if key in TIMING_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool):
            return "<ms>"
        # a line's own uuid is never referenced elsewhere in the output: no numbering (so one
        # extra or missing line does not renumber every later one); session ids are one per run
        if key == "uuid" and isinstance(v, str) and _UUID.fullmatch(v):
            return "<uuid>"
        if key == "session_id" and isinstance(v, str) and _UUID.fullmatch(v):
            return "<session>"
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, dict):
            return {k: self.value(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        return v


def label_lines(lines: list[dict]) -> list[str]:
    """``init``, ``assistant#1``, ``user#1``, ``system/permission_denied#1``, ``result`` …"""
    counts: dict[str, int] = {}
    out = []
    for m in lines:
        t = m.get("type")
        if t == "result":
            out.append("result")
            continue
        if t == "system" and m.get("subtype") == "init":
            out.append("init")
            continue
        base = f"{t}/{m.get('subtype')}" if t == "system" else str(t)
        counts[base] = counts.get(base, 0) + 1
        out.append(f"{base}#{counts[base]}")
    return out


def _parse_stream(text: str) -> list[dict] | None:
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError:
        return None


def _walk(path: str, a: Any, b: Any, out: dict[str, tuple[Any, Any]]) -> None:
    missing = "<missing>"
    if isinstance(a, dict) and isinstance(b, dict):
        if [k for k in a if k in b] != [k for k in b if k in a]:
            out[f"{path}:key-order"] = (list(a), list(b))
        for k in list(a) + [k for k in b if k not in a]:
            _walk(f"{path}.{k}", a.get(k, missing), b.get(k, missing), out)
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(
            isinstance(x, (dict, list)) for x in a + b):
        for i, (x, y) in enumerate(zip(a, b)):
            _walk(f"{path}[{i}]", x, y, out)
        return
    if a != b or type(a) is not type(b):
        out[path] = (a, b)


# Fields that are lists describing the installation (compared as a whole, not item by item).
def _reorder_text(stdout: str) -> str:
    try:
        if stdout.lstrip().startswith("{") and "\n{" in stdout.strip():
            lines = [json.loads(x) for x in stdout.splitlines() if x.strip()]
            return "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in _unorder(lines))
        return json.dumps(_unorder(json.loads(stdout)), ensure_ascii=False) + "\n"
    except ValueError:
        return _unorder(stdout)


_TOOLS2 = re.compile(r"MOCK-TOOLS2-DONE: (.*) / (.*)")


def _unorder(obj: Any, order: dict[str, int] | None = None) -> Any:
    """Order-free form of a parallel-tools run: the results text sorted, and consecutive
    tool-result user lines sorted by the position of their tool_use in the output."""
    if order is None:
        order = {}
        for m in re.finditer(r'"type": ?"tool_use", ?"id": ?"([^"]+)"', json.dumps(obj)):
            order.setdefault(m.group(1), len(order))
    if isinstance(obj, str):
        return _TOOLS2.sub(lambda m: "MOCK-TOOLS2-DONE: " + " / ".join(sorted(m.groups())), obj)
    if isinstance(obj, dict):
        return {k: _unorder(v, order) for k, v in obj.items()}
    if isinstance(obj, list):
        items = [_unorder(v, order) for v in obj]
        if all(isinstance(x, dict) for x in items):
            i = 0
            while i < len(items):
                j = i
                while j < len(items) and items[j].get("type") == "user":
                    j += 1
                if j - i > 1:
                    items[i:j] = sorted(items[i:j], key=lambda x: order.get(
                        x["message"]["content"][0].get("tool_use_id", ""), 99))
                i = max(j, i + 1)
        return items
    return obj


_DELTA_TEXT = ("text", "thinking", "partial_json")


def merge_deltas(lines: list[dict]) -> list[dict]:
    """Consecutive ``content_block_delta`` events of one block and delta type merged into one."""
    out: list[dict] = []
    for m in lines:
        ev = m.get("event") if m.get("type") == "stream_event" else None
        prev = out[-1].get("event") if out and out[-1].get("type") == "stream_event" else None
        if ev and prev and ev.get("type") == prev.get("type") == "content_block_delta" \
                and ev.get("index") == prev.get("index") and ev["delta"].get("type") == prev["delta"].get("type"):
            for k in _DELTA_TEXT:
                if k in ev["delta"]:
                    prev["delta"][k] = prev["delta"].get(k, "") + ev["delta"][k]
            continue
        out.append(json.loads(json.dumps(m)))
    return out


def diff_outputs(s: Scenario, claude: RunOutput, bridge: RunOutput) -> dict[str, tuple[Any, Any]]:
    """Differing field paths -> (claude value, bridge value), both normalised."""
    if s.unordered_tools:
        claude = RunOutput(_reorder_text(claude.stdout), claude.stderr, claude.rc, claude.root, claude.seconds)
        bridge = RunOutput(_reorder_text(bridge.stdout), bridge.stderr, bridge.rc, bridge.root, bridge.seconds)
    nc, nb = Normaliser(claude.root), Normaliser(bridge.root)
    out: dict[str, tuple[Any, Any]] = {}
    if claude.rc != bridge.rc:
        out["rc"] = (claude.rc, bridge.rc)
    ec, eb = nc.text(claude.stderr).strip(), nb.text(bridge.stderr).strip()
    if ec != eb:
        out["stderr"] = (ec, eb)
    if s.fmt in ("text", "usage"):
        c, b = nc.text(claude.stdout), nb.text(bridge.stdout)
        if c != b:
            out["stdout"] = (c, b)
        return out
    if s.fmt == "json":
        try:
            c, b = json.loads(claude.stdout), json.loads(bridge.stdout)
        except ValueError:
            out["stdout"] = (claude.stdout, bridge.stdout)
            return out
        if not claude.stdout.endswith("\n") or claude.stdout.count("\n") != bridge.stdout.count("\n") or \
                not bridge.stdout.endswith("\n"):
            out["stdout:lines"] = (claude.stdout.count("\n"), bridge.stdout.count("\n"))
        _walk("result", nc.value(c), nb.value(b), out)
        return out
    lc, lb = _parse_stream(claude.stdout), _parse_stream(bridge.stdout)
    if lc is None or lb is None:
        out["stdout"] = (claude.stdout, bridge.stdout)
        return out
    if s.merge_deltas:
        lc, lb = merge_deltas(lc), merge_deltas(lb)
    lc, lb = nc.value(lc), nb.value(lb)
    labc, labb = label_lines(lc), label_lines(lb)
    if labc != labb:
        out["stream:sequence"] = (labc, labb)
    byc, byb = dict(zip(labc, lc)), dict(zip(labb, lb))
    for lab in labc + [x for x in labb if x not in byc]:
        if lab not in byb:
            out[f"{lab}:missing-in-bridge"] = (True, False)
            continue
        if lab not in byc:
            out[f"{lab}:extra-in-bridge"] = (False, True)
            continue
        _walk(lab, byc[lab], byb[lab], out)
    return out


# --------------------------------------------------------------------------- allow-list & report


def load_allowlist(path: Path = ALLOWLIST) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"reasons": [], "expected": {}}


def reason_entry(allow: dict, version: str, fieldpath: str, scenario: str | None = None) -> dict | None:
    """The first ``reasons`` entry whose ``pattern`` (regex, full match), ``versions`` (default: all)
    and ``scenarios`` (regex on the scenario name, default: all; checked when ``scenario`` is given)
    cover ``fieldpath``."""
    for r in allow.get("reasons", []):
        if version not in r.get("versions", [version]):
            continue
        if scenario is not None and r.get("scenarios") and not re.match(r["scenarios"], scenario):
            continue
        if re.fullmatch(r["pattern"], fieldpath):
            return r
    return None


def reason_for(allow: dict, version: str, fieldpath: str) -> str | None:
    r = reason_entry(allow, version, fieldpath)
    return r["reason"] if r else None


def short(v: Any, n: int = 120) -> str:
    s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    s = s.replace("\n", "\\n").replace("|", "\\|")
    return s if len(s) <= n else s[: n - 1] + "…"


def write_report(comps: list[Comparison], allow: dict, path: Path = REPORT) -> str:
    """REPORT.md: per version, which scenarios match exactly, and every remaining difference."""
    versions = sorted({c.version for c in comps})
    lines = ["# Conformance report: `claude -p` vs `claude-bridge -p`", "",
             "Generated by `tests/conformance` (do not edit by hand). Each scenario runs through the real",
             "`claude -p` and through `claude-bridge -p` on the same pinned CLI and the same mock model;",
             "outputs are normalised (ids, uuids, timestamps, durations/timing fields, session ids, temp",
             "paths) and compared field by field. Every difference must be in `allowlist.json` with a reason.", ""]
    lines.append("| version | scenarios | exact match | only allowed differences | unexpected or fixed |")
    lines.append("|---|---|---|---|---|")
    for v in versions:
        cs = [c for c in comps if c.version == v]
        exp = allow.get("expected", {}).get(v, {})
        exact = sum(1 for c in cs if not c.diffs)
        bad = sum(1 for c in cs if set(c.diffs) != set(exp.get(c.scenario.name, [])))
        lines.append(f"| {v} | {len(cs)} | {exact} | {max(len(cs) - exact - bad, 0)} | {bad} |")
    lines += ["", "Reasons:", ""]
    for r in allow.get("reasons", []):
        vs = ", ".join(r.get("versions", ["all versions"]))
        lines.append(f"- **{r.get('id', '?')}** ({vs}): {r['reason']}")
    lines.append("")
    for v in versions:
        lines += [f"## {v}", ""]
        cs = [c for c in comps if c.version == v]
        exp = allow.get("expected", {}).get(v, {})
        ok = [c.scenario.name for c in cs if not c.diffs]
        lines.append(f"Exact match ({len(ok)} of {len(cs)}): " + (", ".join(f"`{n}`" for n in ok) or "none"))
        lines.append("")
        rows = []
        for c in cs:
            want = set(exp.get(c.scenario.name, []))
            for f, (a, b) in sorted(c.diffs.items()):
                r = reason_entry(allow, v, f, c.scenario.name)
                tag = r.get("id", "?") if r else "**no reason**"
                if f not in want:
                    tag = "**UNEXPECTED** " + tag
                rows.append(f"| `{c.scenario.name}` | `{f}` | {short(a)} | {short(b)} | {tag} |")
            for f in sorted(want - set(c.diffs)):
                rows.append(f"| `{c.scenario.name}` | `{f}` | | | **FIXED (remove from allow-list)** |")
        if rows:
            lines += ["| scenario | field | claude -p | claude-bridge | reason |", "|---|---|---|---|---|", *rows]
        lines.append("")
    text = "\n".join(lines)
    path.write_text(text)
    return text


def update_expected(comps: list[Comparison], allow: dict, path: Path = ALLOWLIST) -> None:
    """Rewrite ``expected`` from the measured differences (reasons are kept as written)."""
    exp = allow.setdefault("expected", {})
    for c in comps:
        per = exp.setdefault(c.version, {})
        if c.diffs:
            per[c.scenario.name] = sorted(c.diffs)
        else:
            per.pop(c.scenario.name, None)
    path.write_text(json.dumps(allow, indent=1, ensure_ascii=False) + "\n")


def binaries_from_env() -> list[tuple[str, str]]:
    out = []
    for b in (os.environ.get("CLAUDE_BRIDGE_CLAUDE_BINS") or "").split(os.pathsep):
        if b:
            v = subprocess.run([b, "--version"], capture_output=True, text=True).stdout.split()[0]
            out.append((v, b))
    return out


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--update-allowlist", action="store_true")
    ap.add_argument("--only", default=None, help="regex on scenario names")
    ap.add_argument("--show", action="store_true", help="print every difference")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    bins = binaries_from_env()
    scen = [s for s in SCENARIOS if not a.only or re.search(a.only, s.name)]
    t0 = time.monotonic()
    comps = run_all(bins, scen, keep=a.keep)
    allow = load_allowlist()
    for c in comps:
        print(f"{c.version} {c.scenario.name}: {len(c.diffs)} diffs  (claude {c.claude.seconds:.1f}s, "
              f"bridge {c.bridge.seconds:.1f}s)")
        if a.show:
            for f, (x, y) in sorted(c.diffs.items()):
                print(f"    {f}: {short(x, 200)}  ||  {short(y, 200)}")
    print(f"total {time.monotonic() - t0:.1f}s")
    if a.update_allowlist:
        update_expected(comps, allow)
    if not a.only:
        write_report(comps, load_allowlist())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
