"""Version-aware output (shapes, price tables, 2.1.329 fields), on captures of 2.1.329.

tests/data/v2.1.329/<case>/: ``print.out`` (`claude -p` stdout), ``print_transcript.jsonl`` (the
transcript that -p run wrote: same uuids as its output), ``interactive.jsonl`` (the interactive CLI
driven by the bridge on the same scenario; another run, other ids). See its README.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from claude_bridge_tmux import versions as versioned
from claude_bridge_tmux.follow.tree import TurnTree, is_prompt_record, parse_line
from claude_bridge_tmux.output import pricing, shapes
from claude_bridge_tmux.output.emit import Emitter
from claude_bridge_tmux.output.jsjson import dumps
from claude_bridge_tmux.output.messages import init_message, stream_messages, thinking_estimate, tool_result_meta
from claude_bridge_tmux.output.result import model_usage, result_message, sum_usage, turn_timings

V329 = Path(__file__).resolve().parents[1] / "data" / "v2.1.329"
CASES = sorted(p.name for p in V329.iterdir() if p.is_dir())
STREAM_CASES = [c for c in CASES if c.endswith("stream-json")]
RUN_FIELDS = ("duration_ms", "duration_api_ms", "ttft_ms", "ttft_stream_ms", "time_to_request_ms",
              "first_content_frame_ms", "uuid", "session_id")


def records(path: Path) -> list[dict]:
    return [r for r in (parse_line(x) for x in path.read_bytes().splitlines()) if r]


def turn(path: Path) -> tuple[dict, list[dict], list[dict]]:
    recs = records(path)
    prompt = [r for r in recs if is_prompt_record(r)][-1]
    return prompt, TurnTree(prompt["uuid"]).add_all(recs).ordered(), [r for r in recs if r.get("type") == "api-request"]


def printed(case: str) -> list[dict]:
    return [json.loads(x) for x in (V329 / case / "print.out").read_text().splitlines() if x.startswith("{")]


def raw_printed(case: str) -> list[str]:
    return [x for x in (V329 / case / "print.out").read_text().splitlines() if x.startswith("{")]


def ours_for(records_, session_id, version="2.1.329"):
    em_tools: dict = {}
    out = []
    for r in records_:
        for b in (r.get("message") or {}).get("content") or () if r.get("type") == "assistant" else ():
            if isinstance(b, dict) and b.get("type") == "tool_use":
                em_tools[b["id"]] = b
        out += stream_messages(r, session_id=session_id, version=version, tool_uses=em_tools,
                               new_uuid=lambda: "U")
    return out


def without(d: dict, keys=RUN_FIELDS) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


# =========================================================================== versioned data


class TestVersioned:
    @pytest.mark.parametrize("want,got", [
        ("2.1.197", "2.1.197"), ("2.1.329", "2.1.329"), ("2.1.250", "2.1.197"), ("2.1.400", "2.1.329"),
        ("1.0.0", "2.1.197"), ("2.1.329 (Claude Code)", "2.1.329"), (None, "2.1.329"), ("garbage", "2.1.329"),
    ])
    def test_nearest(self, want, got):
        assert versioned.nearest(want, ("2.1.329", "2.1.197")) == got

    def test_packaged(self):
        assert versioned.packaged("shapes") == ("2.1.197", "2.1.329", "2.1.332")
        assert versioned.packaged("pricing") == ("2.1.197", "2.1.329", "2.1.332")

    def test_default_is_the_reference_version(self):
        assert shapes.load().version == "2.1.197"
        assert pricing.load_table().version == "2.1.197"
        assert shapes.load("2.1.400").version == "2.1.332"
        assert shapes.load("2.1.330").version == "2.1.329"
        assert pricing.load_table("2.1.250").version == "2.1.197"


# =========================================================================== shapes


class TestShapes:
    def test_recorded_files_have_provenance_and_no_run_values(self):
        for v in ("2.1.197", "2.1.329"):
            raw = json.loads(versioned.read("shapes", v)[1])
            assert raw["version"] == v and "record-shapes" in raw["source"] and raw["recorded"]
            text = json.dumps(raw)
            assert "/tmp/" not in text and "toolu_" not in text and "msg_mock" not in text

    def test_result_key_orders(self):
        s197, s329 = shapes.load("2.1.197"), shapes.load("2.1.329")
        assert list(s197.result_sample("json", "success"))[:2] == ["type", "subtype"]
        assert list(s329.result_sample("json", "success"))[0] == "duration_api_ms"
        assert "model_usage_since_last_result" in s329.result_sample("stream-json", "success")
        assert "model_usage_since_last_result" not in s329.result_sample("json", "success")
        assert s329.rules["model_usage_key"] == "response" and s197.rules["model_usage_key"] == "requested"

    def test_placeholders_never_copied(self):
        s = shapes.load("2.1.329")
        out = s.shape_result("json", "success", {"type": "result"})
        assert not [k for k, v in out.items() if shapes.is_placeholder(v)]
        assert "ttft_ms" not in out and "duration_ms" not in out  # measured: never from a sample
        assert out["subagent_stats"]["killed"] == {"parent": 0, "user": 0, "system": 0}
        assert out["safety_stops"] == 0 and out["result_index"] == 0 and out["queued_turn_count"] == 0
        assert out["fast_mode_disabled_reason"] == "sdk_opt_in_required"
        assert out["terminal_reason"] == "completed"

    def test_variant_fallback_and_always_keys(self):
        s = shapes.load("2.1.197")
        out = s.shape_result("json", "error_during_execution", {"type": "result", "errors": ["x"], "subtype": "error_during_execution"})
        assert out["errors"] == ["x"] and list(out)[-1] == "errors"
        out = s.shape_result("json", "success", {"structured_output": {"a": 1}, "type": "result"})
        assert out["structured_output"] == {"a": 1}

    def test_order_line_drops_unknown_keys_and_fills_only_when_asked(self):
        s = shapes.load("2.1.197")
        line = s.order_line("assistant", {"uuid": "u", "type": "assistant", "timestamp": "t", "session_id": "s"})
        assert line == {"type": "assistant", "session_id": "s", "uuid": "u"}
        s = shapes.load("2.1.329")
        pd = s.order_line("system/permission_denied", {"type": "system", "subtype": "permission_denied"}, fill=True)
        assert pd["decision_reason_type"] == "other" and "uuid" not in pd
        assert s.order_line("no/such", {"b": 1, "a": 2}) == {"b": 1, "a": 2}


# =========================================================================== pricing


class TestPricing329:
    def test_catalog_provenance(self):
        t = pricing.load_table("2.1.329")
        assert "model catalog" in t.source and t.date and t.us_geo_multiplier == 1.1

    @pytest.mark.parametrize("case", STREAM_CASES)
    def test_print_costs_reproduced_bit_for_bit(self, case):
        # -p 2.1.329 sends no title request: its own transcript holds every costed request
        theirs = printed(case)[-1]
        _prompt, recs, _ = turn(V329 / case / "print_transcript.jsonl")
        from claude_bridge_tmux.output.result import responses
        mu, total = model_usage(responses(recs), prices=pricing.load_table("2.1.329"), key_rule="response")
        assert total == theirs["total_cost_usd"]
        for k, e in theirs["modelUsage"].items():
            # provider comes from the shape's default ("firstParty"), not from usage
            assert {f: mu[k][f] for f in e if f != "provider"} == {f: v for f, v in e.items() if f != "provider"}

    def test_catalog_lookups(self):
        t = pricing.load_table("2.1.329")
        p = t.lookup("claude-opus-5-5")
        assert (p.input, p.output, p.cache_read, p.cache_write, p.cache_write_1h) == (4, 20, 0.2, 5, 8)
        assert t.canonical("claude-haiku-4-5-20251001") == "claude-haiku-4-5"
        assert t.context_window("claude-opus-5-5") == 1_000_000 and t.max_output_tokens("claude-opus-5-5") == 128000
        assert t.cost_basis("my-custom-model") == "unknown" and t.cost_basis("claude-sonnet-5-5") == "list"
        # an unknown model: priced like the default model, 1M window, 32000 max output (captured)
        u = t.lookup("my-custom-model")
        assert pricing.request_cost(u, input_tokens=12, output_tokens=4, cache_read_input_tokens=3,
                                    cache_creation_input_tokens=7) == 0.00016359999999999997
        assert t.context_window("my-custom-model") == 1_000_000 and t.max_output_tokens("my-custom-model") == 32000

    def test_captured_model_costs(self):
        t = pricing.load_table("2.1.329")
        c = lambda m, o: pricing.request_cost(t.lookup(m), input_tokens=12, output_tokens=o,  # noqa: E731
                                              cache_read_input_tokens=3, cache_creation_input_tokens=7)
        assert c("claude-haiku-5-5", 4) == 4.105e-06
        assert c("claude-sonnet-5-5", 4) == 8.179999999999998e-05
        assert c("claude-opus-5-5", 6) == 0.00020360000000000002

    def test_one_hour_cache_geo_and_long_prompt(self):
        t = pricing.load_table("2.1.329")
        p = t.lookup("claude-opus-5-5")
        u = {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 1_000_000,
             "cache_creation": {"ephemeral_1h_input_tokens": 400_000, "ephemeral_5m_input_tokens": 600_000}}
        assert pricing.usage_cost(p, u, t) == pytest.approx(0.4 * 8 + 0.6 * 5)
        assert pricing.usage_cost(p, dict(u, inference_geo="us"), t) == pytest.approx((0.4 * 8 + 0.6 * 5) * 1.1)
        # 2.1.197 has no geo multiplier
        t197 = pricing.load_table("2.1.197")
        assert pricing.usage_cost(t197.lookup("claude-opus-4-8"), dict(u, inference_geo="us"), t197) == \
            pytest.approx(0.4 * 10 + 0.6 * 6.25)
        h = t.lookup("claude-haiku-5-5")
        assert h.long_prompt is not None and h.above_prompt_tokens == 100_000
        small = pricing.request_cost(h, input_tokens=100_000)
        big = pricing.request_cost(h, input_tokens=100_001)
        assert small == pytest.approx(0.1 * 0.1) and big == pytest.approx(100_001 / 1e6 * 0.5)

    def test_web_search_added_after_geo(self):
        t = pricing.load_table("2.1.329")
        p = t.lookup("claude-opus-5-5")
        assert pricing.usage_cost(p, {"inference_geo": "us", "server_tool_use": {"web_search_requests": 1}}, t) == 0.01


# =========================================================================== stream lines


class TestStream329:
    @pytest.mark.parametrize("case", STREAM_CASES)
    def test_print_transcript_reproduces_print_lines(self, case):
        prompt, recs, _ = turn(V329 / case / "print_transcript.jsonl")
        ours = [dumps(m) for m in ours_for(recs, prompt["sessionId"]) if m["type"] in ("assistant", "user")]
        theirs = [x for x in raw_printed(case) if x.startswith(('{"type":"assistant"', '{"type":"user"'))]
        assert ours == theirs

    def test_permission_denied_line(self):
        prompt, recs, _ = turn(V329 / "deny.stream-json" / "print_transcript.jsonl")
        ours = [m for m in ours_for(recs, prompt["sessionId"]) if m["type"] == "system"]
        (theirs,) = [m for m in printed("deny.stream-json") if m.get("subtype") == "permission_denied"]
        assert ours == [dict(theirs, uuid="U")]

    def test_hook_denial_in_interactive_transcript_reads_like_print(self):
        prompt, recs, _ = turn(V329 / "deny.stream-json" / "interactive.jsonl")
        (user,) = [r for r in recs if r.get("type") == "user"]
        assert user["permissionDecision"]["source"] == "hook"
        ours = ours_for(recs, "S")
        kinds = [(m["type"], m.get("subtype")) for m in ours]
        assert kinds == [("assistant", None), ("assistant", None), ("system", "permission_denied"), ("user", None),
                         ("assistant", None)]
        (theirs_user,) = [m for m in printed("deny.stream-json") if m["type"] == "user"]
        meta = ours[3]["tool_result_meta"][0]
        assert {k: v for k, v in meta.items() if k != "id"} == \
            {k: v for k, v in theirs_user["tool_result_meta"][0].items() if k != "id"}
        assert list(ours[3]) == list(theirs_user)

    def test_thinking_tokens_line_totals_print_estimate(self):
        prompt, recs, _ = turn(V329 / "thinking.stream-json" / "interactive.jsonl")
        ours = ours_for(recs, "S")
        theirs = [m for m in printed("thinking.stream-json") if m.get("subtype") == "thinking_tokens"]
        assert ours[0]["subtype"] == "thinking_tokens"
        assert ours[0]["estimated_tokens"] == theirs[-1]["estimated_tokens"] == sum(t["estimated_tokens_delta"] for t in theirs)
        assert list(ours[0]) == list(theirs[0])
        assert ours[1]["thinking_display"] == "updates" and "thinking_duration_ms" in ours[1]
        assert thinking_estimate("") == 0 and thinking_estimate("abcde") == 2

    def test_2_1_197_shapes_keep_2_1_197_lines(self):
        prompt, recs, _ = turn(V329 / "deny.stream-json" / "interactive.jsonl")
        ours = ours_for(recs, "S", version="2.1.197")
        assert [m["type"] for m in ours] == ["assistant", "assistant", "user", "assistant"]
        assert "timestamp" not in ours[0] and "tool_result_meta" not in ours[2]

    def test_tool_result_meta_mapping(self):
        rec = {"message": {"content": [{"type": "tool_result", "tool_use_id": "t1"}]},
               "permissionDecision": {"decision": "accept", "source": "config", "reasonType": "subcommandResults"}}
        assert tool_result_meta(rec, False) == [{"id": "t1", "permission_decision": {
            "decision": "accept", "source": "config", "reason_type": "subcommandResults"}}]
        rec = dict(rec, permissionDecision={"decision": "reject", "source": "config", "reasonCode": "x"},
                   toolDenialKind="user-rejected")
        assert tool_result_meta(rec, True) == [{"id": "t1", "non_execution_kind": "user-rejected",
                                                "permission_decision": {"decision": "reject", "source": "config"}}]
        assert tool_result_meta({"message": {"content": [{"type": "tool_result", "tool_use_id": "t"}]}}, False) == [{"id": "t"}]
        # an --allowedTools rule: the record has ruleSource, -p's output schema drops it (2.1.329, recorded)
        rec = dict(rec, permissionDecision={"decision": "accept", "source": "config", "reasonType": "rule",
                                            "ruleSource": "cliArg"})
        assert tool_result_meta(rec, False) == [{"id": "t1", "permission_decision": {
            "decision": "accept", "source": "config", "reason_type": "rule"}}]

    def test_emitter_learns_version_and_tools_from_records(self):
        import io
        prompt, recs, _ = turn(V329 / "deny.stream-json" / "interactive.jsonl")
        buf = io.BytesIO()
        em = Emitter("stream-json", buf, "S")
        for r in recs:
            em.record(r)
        lines = [json.loads(x) for x in buf.getvalue().splitlines()]
        assert em.version == "2.1.329"
        (pd,) = [m for m in lines if m.get("subtype") == "permission_denied"]
        assert pd["tool_name"] == "Bash"


# =========================================================================== result


class TestResult329:
    @pytest.mark.parametrize("case", STREAM_CASES + ["deny.json"])
    def test_interactive_result_equals_print_result(self, case):
        fmt = "json" if case.endswith(".json") else "stream-json"
        theirs = printed(case)[-1]
        prompt, recs, api = turn(V329 / case / "interactive.jsonl")
        ours = result_message(recs, session_id="S", duration_ms=None, duration_api_ms=None, uuid="U",
                              model_key="claude-opus-5-5", prompt=prompt, api_requests=api, version="2.1.329",
                              fmt=fmt, estimate_timings=True)
        assert list(ours) == list(theirs)
        if case.startswith("tools2"):  # parallel results: either order, in -p too
            ours["result"], theirs = "x", dict(theirs, result="x")
        ids = lambda d: json.loads(re.sub(r"toolu_[0-9a-f]+", "toolu_X", json.dumps(d)))  # noqa: E731
        assert ids(without(ours)) == ids(without(theirs))
        for k in RUN_FIELDS:
            assert type(ours.get(k)) is type(theirs.get(k)), k

    def test_api_error_result_has_no_ttft(self):
        prompt, recs, api = turn(V329 / "api_error.stream-json" / "interactive.jsonl")
        ours = result_message(recs, session_id="S", duration_ms=None, duration_api_ms=None, uuid="U",
                              prompt=prompt, api_requests=api, version="2.1.329", fmt="json", estimate_timings=True)
        assert ours["terminal_reason"] == "api_error" and ours["api_error_type"] == "api_error"
        assert "ttft_ms" not in ours and ours["duration_api_ms"] == 0 and ours["modelUsage"] == {}
        assert list(ours["usage"])[0] == "output_tokens_details"  # -p's api-error usage order

    def test_same_turn_with_2_1_197_shapes(self):
        prompt, recs, api = turn(V329 / "tool.stream-json" / "interactive.jsonl")
        ours = result_message(recs, session_id="S", duration_ms=None, duration_api_ms=None, uuid="U",
                              model_key="claude-opus-5-5[1m]", prompt=prompt, version="2.1.197", fmt="json")
        assert list(ours)[:2] == ["type", "subtype"] and "subagent_stats" not in ours
        assert list(ours["modelUsage"]) == ["claude-opus-5-5[1m]"]
        assert "thinkingTokens" not in ours["modelUsage"]["claude-opus-5-5[1m]"]
        assert "output_tokens_details" not in ours["usage"]

    def test_timings_from_api_request_records(self):
        prompt, recs, api = turn(V329 / "tool.stream-json" / "interactive.jsonl")
        t = turn_timings(recs, prompt, api)
        assert t["time_to_request_ms"] <= t["ttft_ms"] <= t["duration_ms"]
        assert 0 < t["duration_api_ms"] <= t["duration_ms"]
        t2 = turn_timings(recs, prompt, ())  # without api-request records (2.1.197)
        assert t2["time_to_request_ms"] == t2["ttft_ms"] and t2["duration_api_ms"] >= t["duration_api_ms"]

    def test_usage_template_sums_nested_numbers(self):
        tpl = {"a": 0, "d": {"x": 0}, "s": "standard", "n": None, "l": []}
        msgs = [{"usage": {"a": 1, "d": {"x": 2}, "s": "priority", "extra": 5}},
                {"usage": {"a": 3, "d": {"x": 4}, "n": 7}},
                {"model": "<synthetic>", "usage": {"a": 100, "s": None}}]
        assert sum_usage(msgs, tpl) == {"a": 4, "d": {"x": 6}, "s": "priority", "n": 7, "l": []}

    def test_model_usage_key_rules(self):
        msgs = [{"model": "claude-sonnet-5-5", "usage": {"input_tokens": 1}}]
        t = pricing.load_table("2.1.329")
        assert list(model_usage(msgs, model_key="claude-sonnet-5-5[1m]", prices=t, key_rule="response")[0]) == \
            ["claude-sonnet-5-5"]
        assert list(model_usage(msgs, model_key="claude-sonnet-5-5[1m]", prices=t, key_rule="requested")[0]) == \
            ["claude-sonnet-5-5[1m]"]


# =========================================================================== init fallback


class TestInit329:
    def test_fallback_init_matches_print_init_shape(self):
        theirs = printed("plain.stream-json")[0]
        ours = init_message(session_id=theirs["session_id"], cwd=theirs["cwd"], model=theirs["model"],
                            permission_mode="default", claude_code_version="2.1.329",
                            api_key_source="ANTHROPIC_API_KEY", uuid=theirs["uuid"],
                            memory_paths=theirs["memory_paths"], version="2.1.329", fill_from_sample=True)
        # the socket path is per process: not invented
        assert [k for k in theirs if k != "messaging_socket_path"] == list(ours)
        assert ours == {k: v for k, v in theirs.items() if k != "messaging_socket_path"}

    def test_fallback_without_sample_keeps_empty_inventories(self):
        ours = init_message(session_id="s", cwd="/w", model="m", permission_mode="default",
                            claude_code_version="2.1.329", uuid="u", version="2.1.329")
        assert ours["tools"] == [] and "capabilities" not in ours and ours["original_cwd"] == "/w"


def test_results_never_carry_placeholders():
    for case in CASES:
        prompt, recs, api = turn(V329 / case / "interactive.jsonl")
        for v in ("2.1.197", "2.1.329"):
            for fmt in ("json", "stream-json"):
                r = result_message(copy.deepcopy(recs), session_id="S", duration_ms=None, duration_api_ms=None,
                                   uuid="U", prompt=prompt, api_requests=api, version=v, fmt=fmt,
                                   estimate_timings=True)
                assert "<" not in json.dumps({k: v for k, v in r.items() if k != "result"}), (case, v, fmt)
