"""Unit tests for the mock Anthropic Messages API (claude_bridge_tmux.testing.mock_api).

Request bodies below are trimmed copies of what Claude Code 2.1.197 / 2.1.329 send (see
docs/cli-behaviour.md §9): a first user message made of a <system-reminder> block plus the prompt,
followed by a role "system" message; tool round trips append assistant + tool_result messages.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from claude_bridge_tmux.testing.mock_api import MockServer, analyze_request, example_from_schema, parse_directives

REPO = Path(__file__).resolve().parents[2]
SESSION = "12345678-aaaa-4bbb-8ccc-000000000001"
REMINDER = "<system-reminder>\nAs you answer the user's questions, you can use the following context:\n</system-reminder>"
TITLE_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}},
    "required": ["title"],
    "additionalProperties": False,
}


# ------------------------------------------------------------------------------------------
# helpers


def user_id(session: str = SESSION) -> str:
    return json.dumps({"device_id": "ab" * 32, "account_uuid": "", "session_id": session})


def body_for(prompt, *, session=SESSION, stream=True, tools=("Bash", "Read"), extra_msgs=(), **kw):
    """A main-conversation request like the CLI's first request of a turn."""
    b = {
        "model": "claude-opus-4-8",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": REMINDER},
                    {"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}},
                ],
            },
            {"role": "system", "content": "Available agent types for the Agent tool:\n- claude: ..."},
            *extra_msgs,
        ],
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.709; cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK."},
        ],
        "tools": [{"name": t, "description": t, "input_schema": {"type": "object"}} for t in tools],
        "metadata": {"user_id": user_id(session)},
        "max_tokens": 64000,
        "thinking": {"type": "adaptive"},
        "stream": stream,
    }
    b.update(kw)
    return b


def with_tool_results(body, assistant_blocks, results):
    """Append the assistant reply and a tool_result user message (results: [(content, is_error)])."""
    b = json.loads(json.dumps(body))
    b["messages"].append({"role": "assistant", "content": assistant_blocks})
    tool_ids = [blk["id"] for blk in assistant_blocks if blk["type"] == "tool_use"]
    b["messages"].append(
        {
            "role": "user",
            "content": [
                {"tool_use_id": tid, "type": "tool_result", "content": c, "is_error": e}
                for tid, (c, e) in zip(tool_ids, results)
            ],
        }
    )
    return b


def post(url, body, path="/v1/messages?beta=true", headers=None, timeout=20):
    """POST JSON; returns (status, headers, raw bytes) also for HTTP errors."""
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    req = urllib.request.Request(url + path, data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def parse_sse(raw: bytes):
    """-> list of (event, data dict)."""
    events = []
    for chunk in raw.decode("utf-8").split("\n\n"):
        if not chunk.strip():
            continue
        ev, data = None, []
        for line in chunk.split("\n"):
            if line.startswith("event: "):
                ev = line[len("event: "):]
            elif line.startswith("data: "):
                data.append(line[len("data: "):])
        events.append((ev, json.loads("\n".join(data))))
    return events


def assemble(events):
    """Rebuild the message from SSE events like the Anthropic SDK does."""
    msg, blocks, jsons = None, {}, {}
    for ev, d in events:
        assert ev == d["type"]
        if ev == "message_start":
            msg = d["message"]
        elif ev == "content_block_start":
            blocks[d["index"]] = dict(d["content_block"])
            jsons[d["index"]] = ""
        elif ev == "content_block_delta":
            b, delta = blocks[d["index"]], d["delta"]
            if delta["type"] == "text_delta":
                b["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                b["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                b["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                jsons[d["index"]] += delta["partial_json"]
        elif ev == "content_block_stop":
            if blocks[d["index"]]["type"] == "tool_use":
                blocks[d["index"]]["input"] = json.loads(jsons[d["index"]] or "{}")
        elif ev == "message_delta":
            msg["stop_reason"] = d["delta"]["stop_reason"]
            msg["usage"] = {**msg["usage"], **d["usage"]}
    msg["content"] = [blocks[i] for i in sorted(blocks)]
    return msg


def ask(srv, body, **kw):
    """POST a body and return the message (SSE assembled or JSON)."""
    status, headers, raw = post(srv.url, body, **kw)
    assert status == 200, raw
    if body.get("stream"):
        assert headers["Content-Type"].startswith("text/event-stream")
        return assemble(parse_sse(raw))
    return json.loads(raw)


def texts(msg):
    return [b["text"] for b in msg["content"] if b["type"] == "text"]


@pytest.fixture
def srv(tmp_path):
    with MockServer(log_path=tmp_path / "mock.log", chunk=20) as s:
        yield s


# ------------------------------------------------------------------------------------------
# pure functions


def test_parse_directives():
    assert parse_directives("hi MOCK:multi=2 MOCK:tool MOCK:say=a_b  \n") == {"multi": "2", "tool": True, "say": "a_b"}
    assert parse_directives("MOCK:structured={\"n\":1}") == {"structured": '{"n":1}'}
    assert parse_directives("no directives") == {}
    assert parse_directives(None) == {}


def test_analyze_request_prompt_and_trailers():
    b = body_for("hello there\n")
    # the CLI appends reminder-only user messages and role-system messages after the prompt
    b["messages"].append({"role": "user", "content": [{"type": "text", "text": REMINDER}]})
    info = analyze_request(b)
    assert info.prompt == "hello there\n"  # exact, trailing newline kept
    assert info.session_id == SESSION
    assert info.is_first and not info.is_tool_result and info.side_kind is None


def test_analyze_request_string_content_and_wrappers():
    b = body_for("x")
    b["messages"] = [
        {"role": "user", "content": "the real prompt"},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        {"role": "user", "content": [{"type": "text", "text": "<local-command-stdout>x</local-command-stdout>"},
                                     {"type": "text", "text": "Caveat: something"}]},
    ]
    info = analyze_request(b)
    assert info.prompt == "the real prompt"
    assert not info.is_first and info.step == 1


def test_analyze_request_tool_round_trip_walks_back():
    b = body_for("run MOCK:tool")
    tu = {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "echo hi"}}
    b2 = with_tool_results(b, [{"type": "text", "text": "I will"}, tu], [("hi", False)])
    info = analyze_request(b2)
    assert info.prompt == "run MOCK:tool"
    assert info.tool_results == [{"tool_use_id": "toolu_1", "name": "Bash", "text": "hi", "is_error": False}]
    assert not info.is_first


def test_analyze_request_side_queries():
    title = {
        "model": "m", "tools": [], "stream": True,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "<session>\nx MOCK:err=500\n</session>"}]}],
        "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": TITLE_SCHEMA}},
    }
    assert analyze_request(title).side_kind == "title"
    compact = body_for("x")
    compact["messages"].append({"role": "assistant", "content": [{"type": "text", "text": "a"}]})
    compact["messages"].append({"role": "user", "content": "CRITICAL: Respond with TEXT ONLY. Do NOT call any tools.\n..."})
    assert analyze_request(compact).side_kind == "compact"


def test_example_from_schema():
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"},
                                               "tags": {"type": "array", "items": {"type": "string"}},
                                               "kind": {"enum": ["a", "b"]}, "ok": {"type": "boolean"}},
              "required": ["name", "n"]}
    assert example_from_schema(schema) == {"name": "mock", "n": 42, "tags": ["mock"], "kind": "a", "ok": True}
    assert example_from_schema(TITLE_SCHEMA, title="Mock session title") == {"title": "Mock session title"}
    assert example_from_schema({"type": "integer", "maximum": 5}) == 5


# ------------------------------------------------------------------------------------------
# server basics


def test_url_port_probe_and_count_tokens(srv):
    assert srv.url == f"http://127.0.0.1:{srv.port}"
    with urllib.request.urlopen(srv.url + "/", timeout=5) as r:
        assert r.status == 200 and json.loads(r.read()) == {}
    req = urllib.request.Request(srv.url + "/api/hello", method="HEAD")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
    status, _, raw = post(srv.url, {"model": "m", "messages": []}, path="/v1/messages/count_tokens?beta=true")
    assert status == 200 and json.loads(raw) == {"input_tokens": 42}
    assert [r["kind"] for r in srv.requests] == ["probe", "probe", "count_tokens"]
    assert srv.main_requests() == []


def test_refuses_non_loopback():
    for host in ("0.0.0.0", "10.1.2.3", "example.com"):
        with pytest.raises(ValueError):
            MockServer(host=host)
    with MockServer(host="localhost") as s:
        assert s.port > 0


def test_default_reply_stream_shape_and_usage(srv):
    status, headers, raw = post(srv.url, body_for("hello json"), headers={"User-Agent": "claude-cli/test", "x-app": "cli"})
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["request-id"].startswith("req_mock_")
    events = parse_sse(raw)
    names = [e for e, _ in events]
    assert names[0] == "message_start" and "ping" in names
    assert names[-2:] == ["message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_mock_") and start["model"] == "claude-opus-4-8"
    assert start["usage"] == {"input_tokens": 12, "cache_creation_input_tokens": 7, "cache_read_input_tokens": 3,
                              "output_tokens": 1, "service_tier": "standard"}
    deltas = [d["delta"]["text"] for e, d in events if e == "content_block_delta"]
    assert all(len(t) <= 20 for t in deltas) and len(deltas) == 2
    msg = assemble(events)
    assert texts(msg) == ["MOCK-REPLY to: hello json"]
    assert msg["stop_reason"] == "end_turn"
    assert msg["usage"]["output_tokens"] == len("MOCK-REPLY to: hello json") // 4
    rec = srv.main_requests()[0]
    assert rec["prompt"] == "hello json" and rec["session_id"] == SESSION
    assert rec["user_agent"] == "claude-cli/test" and rec["x_app"] == "cli"
    assert rec["system_head"].startswith("You are a Claude agent")
    assert rec["answer"]["msg_id"] == start["id"] and rec["answer"]["blocks"] == ["text"]


def test_default_reply_non_stream_and_newlines(srv):
    msg = ask(srv, body_for("the argument\nfrom stdin MOCK:thinking\n", stream=False))
    assert msg["type"] == "message" and msg["role"] == "assistant"
    assert msg["content"][0]["type"] == "thinking" and msg["content"][0]["signature"].startswith("sig_")
    assert texts(msg) == ["MOCK-REPLY to: the argument from stdin MOCK:thinking "]
    long = ask(srv, body_for("x" * 500, stream=False))
    assert texts(long) == ["MOCK-REPLY to: " + "x" * 200]


def test_multi_say_long_echo(srv):
    assert texts(ask(srv, body_for("MOCK:multi=3 hi"))) == [
        f"Block {i} of 3: MOCK-REPLY to: MOCK:multi=3 hi" for i in (1, 2, 3)]
    assert len(texts(ask(srv, body_for("MOCK:multi")))) == 3
    assert texts(ask(srv, body_for("x MOCK:say=hello_world"))) == ["hello world"]
    t = texts(ask(srv, body_for("x MOCK:long=5000")))[0]
    assert len(t) == 5000 and t.startswith("line 00001 lorem ipsum")
    assert t == texts(ask(srv, body_for("y MOCK:long=5000")))[0]  # deterministic
    prompt = "MOCK:echo ünïcödé ✓ 日本語 🚀\n" + "".join(f"line {i} αβγ 😀 \"q\" \\\n" for i in range(2000)) + "\n\n"
    assert texts(ask(srv, body_for(prompt))) == [prompt]


def test_directive_with_trailing_whitespace(srv):
    assert texts(ask(srv, body_for("x MOCK:say=ok\n\n  "))) == ["ok"]


def test_thinking_stream_events(srv):
    events = parse_sse(post(srv.url, body_for("think MOCK:thinking"))[2])
    kinds = [d["delta"]["type"] for e, d in events if e == "content_block_delta"]
    assert "thinking_delta" in kinds and "signature_delta" in kinds and "text_delta" in kinds
    msg = assemble(events)
    assert [b["type"] for b in msg["content"]] == ["thinking", "text"]
    assert msg["usage"]["output_tokens"] == (len(msg["content"][0]["thinking"]) + len(msg["content"][1]["text"])) // 4


def test_tool_round_trip(srv):
    b = body_for("run MOCK:tool")
    first = ask(srv, b)
    assert first["stop_reason"] == "tool_use"
    assert first["content"][0] == {"type": "text", "text": "I will run a command."}
    tu = first["content"][1]
    assert tu["type"] == "tool_use" and tu["name"] == "Bash" and tu["id"].startswith("toolu_")
    assert tu["input"] == {"command": "echo hi", "description": "Run echo hi"}
    done = ask(srv, with_tool_results(b, first["content"], [("hi", False)]))
    assert texts(done) == ["MOCK-TOOL-DONE: hi"] and done["stop_reason"] == "end_turn"
    err = ask(srv, with_tool_results(b, first["content"], [([{"type": "text", "text": "denied"}], True)]))
    assert texts(err) == ["MOCK-TOOL-ERROR: denied"]
    custom = ask(srv, body_for("MOCK:tool=touch_zz.txt", stream=False))
    assert custom["content"][1]["input"] == {"command": "touch zz.txt", "description": "Run touch zz.txt"}
    reqs = srv.main_requests()
    assert [r["tool_result"] for r in reqs] == [False, True, True, False]
    assert all(r["prompt"] in ("run MOCK:tool", "MOCK:tool=touch_zz.txt") for r in reqs)


def test_tools2_and_toolloop(srv):
    b = body_for("run MOCK:tools2")
    first = ask(srv, b)
    cmds = [blk["input"]["command"] for blk in first["content"] if blk["type"] == "tool_use"]
    assert cmds == ["echo one", "echo two"] and first["stop_reason"] == "tool_use"
    done = ask(srv, with_tool_results(b, first["content"], [("one", False), ("two", False)]))
    assert texts(done) == ["MOCK-TOOLS2-DONE: one / two"]
    lb = body_for("x MOCK:toolloop")
    r1 = ask(srv, lb)
    r2 = ask(srv, with_tool_results(lb, r1["content"], [("loop", False)]))
    assert r1["stop_reason"] == r2["stop_reason"] == "tool_use"


def test_errors_shape_and_retry_after(srv):
    for code, etype, message in [
        (500, "api_error", "Internal server error (mock)"),
        (529, "overloaded_error", "Overloaded (mock)"),
        (401, "authentication_error", None),
        (429, "rate_limit_error", None),
        (400, "invalid_request_error", None),
    ]:
        status, headers, raw = post(srv.url, body_for(f"fail MOCK:err={code}"))
        assert status == code
        body = json.loads(raw)
        assert body["type"] == "error" and body["error"]["type"] == etype
        if message:
            assert body["error"]["message"] == message
        assert headers["request-id"].startswith("req_mock_")
    status, headers, _ = post(srv.url, body_for("fail MOCK:err=429 MOCK:retryafter=3"))
    assert status == 429 and headers["retry-after"] == "3"
    assert srv.main_requests()[0]["answer"] == {"error": 500, "error_type": "api_error"}
    assert srv.main_requests()[0]["status"] == 500


def test_errtimes_per_session(srv):
    p = "fail once MOCK:err=529 MOCK:errtimes=1"
    assert post(srv.url, body_for(p, session="s-1"))[0] == 529
    assert post(srv.url, body_for(p, session="s-1"))[0] == 200
    assert post(srv.url, body_for(p, session="s-1"))[0] == 200
    assert post(srv.url, body_for(p, session="s-2"))[0] == 529  # another CLI session counts anew
    p2 = "twice MOCK:err=500 MOCK:errtimes=2"
    assert [post(srv.url, body_for(p2))[0] for _ in range(3)] == [500, 500, 200]


def test_side_queries_ignore_directives(srv):
    title = {
        "model": "claude-opus-4-8", "tools": [], "stream": True, "metadata": {"user_id": user_id()},
        "thinking": {"type": "disabled"},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "<session>\nfail MOCK:err=500\n</session>\n\nWrite the title"}]}],
        "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": TITLE_SCHEMA}},
    }
    msg = ask(srv, title)
    assert json.loads(texts(msg)[0]) == {"title": "Mock session title"}
    compact = body_for("MOCK:err=500")
    compact["messages"].append({"role": "assistant", "content": [{"type": "text", "text": "a"}]})
    compact["messages"].append({"role": "user", "content": "CRITICAL: Respond with TEXT ONLY. Do NOT call any tools.\n"})
    assert "<summary>" in texts(ask(srv, compact))[0]
    assert srv.main_requests() == []
    kinds = [(r["is_side_query"], r["side_kind"], r["directives"]) for r in srv.requests]
    assert kinds == [(True, "title", {}), (True, "compact", {})]


def test_streamerr_and_streamerrblock(srv):
    events = parse_sse(post(srv.url, body_for("x MOCK:streamerr"))[2])
    assert [e for e, _ in events][-1] == "error"
    assert not any(e == "content_block_start" for e, _ in events)
    assert events[-1][1] == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded (mock stream error)"}}
    # the CLI falls back to a non-streaming request: that one succeeds
    assert texts(ask(srv, body_for("x MOCK:streamerr", stream=False))) == ["MOCK-REPLY to: x MOCK:streamerr"]
    events = parse_sse(post(srv.url, body_for("x MOCK:streamerrblock=1 MOCK:multi=2"))[2])
    names = [e for e, _ in events]
    assert names.count("content_block_stop") == 1 and names[-1] == "error"


def test_maxtokens_then_continuation(srv):
    b = body_for("x MOCK:maxtokens")
    first = ask(srv, b)
    assert first["stop_reason"] == "max_tokens"
    b["messages"].append({"role": "assistant", "content": first["content"]})
    b["messages"].append({"role": "user", "content": "Output token limit hit. Resume directly — no apology."})
    second = ask(srv, b)
    assert second["stop_reason"] == "end_turn" and texts(second) == ["MOCK-REPLY to: x MOCK:maxtokens"]


def test_structured_output(srv):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}, "required": ["name", "n"]}

    def sbody(prompt):
        b = body_for(prompt, tools=("Bash",))
        b["tools"].append({"name": "StructuredOutput", "description": "...", "input_schema": schema})
        return b

    m = ask(srv, sbody("give me json"))
    assert m["stop_reason"] == "tool_use"
    assert [(c["name"], c["input"]) for c in m["content"]] == [("StructuredOutput", {"name": "mock", "n": 42})]
    b = sbody('give MOCK:structured={"name":1}')
    bad = ask(srv, b)
    assert bad["content"][0]["input"] == {"name": 1}
    retry = ask(srv, with_tool_results(b, bad["content"], [("Output does not match required schema", True)]))
    assert retry["content"][0]["name"] == "StructuredOutput" and retry["content"][0]["input"] == {"name": "mock", "n": 42}
    nb = sbody("give MOCK:nostructured")
    never = ask(srv, nb)
    assert texts(never) == ["MOCK-REPLY to: give MOCK:nostructured"]
    nb["messages"].append({"role": "assistant", "content": never["content"]})
    nb["messages"].append({"role": "user", "content": [{"type": "text", "text": "[structured-output-enforce] You MUST call the StructuredOutput tool"}]})
    again = ask(srv, nb)
    assert texts(again) == ["MOCK-REPLY to: give MOCK:nostructured"]
    assert srv.main_requests()[-1]["prompt"] == "give MOCK:nostructured"


def test_slow_and_hang(srv):
    t = time.monotonic()
    ask(srv, body_for("x MOCK:slow=0.05 MOCK:say=" + "a" * 100))  # 5 chunks of 20
    assert time.monotonic() - t >= 0.25
    t = time.monotonic()
    ask(srv, body_for("x MOCK:hang=0.5"))
    assert time.monotonic() - t >= 0.5


def test_script(tmp_path):
    script = {"readextra": [{"tool": "Read", "input": {"file_path": "/x"}}, "read done"]}
    with MockServer(script=script) as s:
        b = body_for("MOCK:script=readextra")
        first = ask(s, b)
        assert first["stop_reason"] == "tool_use" and first["content"][0]["name"] == "Read"
        second = ask(s, with_tool_results(b, first["content"], [("content", False)]))
        assert texts(second) == ["read done"]


def test_log_file_and_wait(srv, tmp_path):
    ask(srv, body_for("logged MOCK:say=x"))
    rs = srv.wait_for_requests(1, timeout=2, main_only=True)
    assert rs[0]["prompt"] == "logged MOCK:say=x" and "body" in rs[0]
    lines = [json.loads(line) for line in (tmp_path / "mock.log").read_text().splitlines()]
    assert len(lines) == 1 and "body" not in lines[0]
    for key in ("seq", "method", "path", "model", "stream", "nmsg", "ntools", "tools", "system_head", "prompt",
                "tool_result", "directives", "is_side_query", "answer", "status", "session_id", "user_agent",
                "x_app", "anthropic_beta"):
        assert key in lines[0], key
    assert lines[0]["directives"] == {"say": "x"} and lines[0]["nmsg"] == 2
    with pytest.raises(TimeoutError):
        srv.wait_for_requests(5, timeout=0.2)


def test_bad_json_and_unknown_path(srv):
    status, _, raw = post(srv.url, b"{not json")
    assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"
    status, _, raw = post(srv.url, {"x": 1}, path="/v1/other")
    assert status == 404


def test_client_disconnect_does_not_kill_server(srv):
    data = json.dumps(body_for("x MOCK:slow=0.05 MOCK:long=2000")).encode()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/messages?beta=true HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
    time.sleep(0.3)  # server now writes into a closed socket
    assert texts(ask(srv, body_for("still alive MOCK:say=yes"))) == ["yes"]


def test_keepalive_json_then_sse_connection_close(srv):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    for _ in range(2):  # JSON answers keep the connection open
        conn.request("POST", "/v1/messages", json.dumps(body_for("a", stream=False)), {"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["content"][0]["text"] == "MOCK-REPLY to: a"
    conn.request("POST", "/v1/messages", json.dumps(body_for("b")), {"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.getheader("Connection") == "close"
    assert parse_sse(r.read())[-1][0] == "message_stop"
    conn.close()


def test_command_line_ready_file_and_sigterm(tmp_path):
    ready = tmp_path / "ready"
    log = tmp_path / "log.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_bridge_tmux.testing.mock_api", "--port", "0", "--log", str(log),
         "--ready-file", str(ready), "--chunk", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("MOCK_URL=http://127.0.0.1:")
        url = line.split("=", 1)[1]
        assert ready.read_text().strip() == url
        events = parse_sse(post(url, body_for("hello cli"))[2])
        assert max(len(d["delta"]["text"]) for e, d in events if e == "content_block_delta") == 5
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert json.loads(log.read_text().splitlines()[0])["prompt"] == "hello cli"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    bad = subprocess.run([sys.executable, "-m", "claude_bridge_tmux.testing.mock_api", "--host", "0.0.0.0"],
                         capture_output=True, text=True, env=env, timeout=20)
    assert bad.returncode == 2 and "non-loopback" in bad.stderr


def test_session_id_header_fallback_and_headers_redacted(srv):
    b = body_for("x MOCK:say=y")
    del b["metadata"]
    post(srv.url, b, headers={"x-claude-code-session-id": "hdr-session", "x-api-key": "sk-ant-secret"})
    rec = srv.main_requests()[0]
    assert rec["session_id"] == "hdr-session"
    assert rec["headers"]["x-api-key"] == "<redacted>"
    assert "sk-ant-secret" not in json.dumps(srv.requests, default=str)
