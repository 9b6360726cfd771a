"""Turn assembly on recorded interactive transcripts (tests/data/transcripts, copied from
recorded from the real CLI; *.chain.txt shows each file's structure)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from claude_bridge_tmux.follow.tree import (
    TurnTree,
    content_text,
    find_prompt,
    is_prompt_record,
    parse_line,
    response_ids,
    tool_use_owner,
    turn_records,
)

DATA = Path(__file__).resolve().parents[1] / "data"
TRANSCRIPTS = DATA / "transcripts"
ALL_FILES = sorted(TRANSCRIPTS.glob("*.jsonl"))


def load(name: str) -> list[dict]:
    path = next(TRANSCRIPTS.glob(name + "*.jsonl"))
    out = []
    with open(path, "rb") as f:
        for line in f:
            rec = parse_line(line)
            if rec is not None:
                out.append(rec)
    return out


def turn_of(records: list[dict], text: str) -> tuple[dict, TurnTree]:
    prompt = find_prompt(records, text=text)
    assert prompt is not None, text
    tree = TurnTree(prompt["uuid"]).add_all(records)
    return prompt, tree


def short(records: list[dict]) -> list[str]:
    return [r["uuid"][:8] for r in records]


# --------------------------------------------------------------------------- parse_line


class TestParseLine:
    def test_plain(self):
        assert parse_line(b'{"type":"user","uuid":"a"}\n') == {"type": "user", "uuid": "a"}

    def test_str_input(self):
        assert parse_line('{"a":1}') == {"a": 1}

    @pytest.mark.parametrize("line", [b"", b"\n", b"   \n", b"garbage", b'{"type":"user","uu', b"[1,2]", b"42", b'"x"', b"null"])
    def test_garbage_and_partial_lines_are_none(self, line):
        assert parse_line(line) is None

    def test_every_prefix_of_a_real_line_is_none_or_complete(self):
        line = (TRANSCRIPTS / "hi18_fieldmap_interactive.jsonl").read_bytes().splitlines()[4]
        full = parse_line(line)
        assert full is not None
        for cut in range(0, len(line), 7):
            assert parse_line(line[:cut]) is None

    def test_lone_surrogate_escape(self):
        # orjson rejects this; JSON.stringify writes lone surrogates exactly like this
        rec = parse_line(b'{"type":"assistant","text":"bad \\ud83d end"}')
        assert rec == {"type": "assistant", "text": "bad \ud83d end"}

    def test_escaped_pair_is_joined(self):
        assert parse_line(b'{"t":"\\ud83d\\ude00"}') == {"t": "\U0001F600"}

    def test_raw_cesu_surrogate_bytes(self):
        rec = parse_line(b'{"t":"x\xed\xa0\xbdy"}')
        assert rec == {"t": "x\ud83dy"}

    def test_invalid_utf8_is_tolerated(self):
        rec = parse_line(b'{"t":"x\xffy"}')
        assert rec is not None and rec["t"].startswith("x") and rec["t"].endswith("y")

    def test_all_captured_lines_parse(self):
        for path in ALL_FILES:
            for line in path.read_bytes().splitlines():
                assert parse_line(line) is not None, path.name


# --------------------------------------------------------------------------- find_prompt


class TestFindPrompt:
    def test_by_text(self):
        recs = load("hi18")
        p = find_prompt(recs, text="fieldmap MOCK:tool")
        assert p["uuid"].startswith("4038fd42")

    def test_by_prompt_id(self):
        recs = load("hi18")
        p = find_prompt(recs, prompt_id="d9341832-b2c8-4bf4-9b70-5597b553fdf8")
        # the tool_result record shares the promptId; the prompt is the user prompt
        assert p["uuid"].startswith("4038fd42")

    def test_prompt_id_and_text_must_both_match(self):
        recs = load("hi18")
        assert find_prompt(recs, prompt_id="d9341832-b2c8-4bf4-9b70-5597b553fdf8", text="other") is None

    def test_unknown(self):
        recs = load("hi18")
        assert find_prompt(recs, text="nope") is None
        assert find_prompt(recs, prompt_id="nope") is None

    def test_strip_fallback(self):
        recs = load("hi18")
        assert find_prompt(recs, text="fieldmap MOCK:tool\n")["uuid"].startswith("4038fd42")

    def test_two_prompts(self):
        recs = load("hi7")
        assert find_prompt(recs, text="hello interactive MOCK:say=first_reply")["uuid"].startswith("8072d5a0")
        assert find_prompt(recs, text="second prompt MOCK:slow=0.3 MOCK:long=300")["uuid"].startswith("77dd967c")

    def test_after_uuid(self):
        recs = load("hi7")
        first = find_prompt(recs, text="hello interactive MOCK:say=first_reply")
        assert find_prompt(recs, text=first["message"]["content"], after_uuid=first["uuid"]) is None
        second = find_prompt(recs, after_uuid=first["uuid"])
        assert second["uuid"].startswith("77dd967c")
        assert find_prompt(recs, after_uuid="not-there") is None

    def test_last_text_match_wins(self):
        recs = load("hi7")
        dup = dict(recs[4], uuid="dup-uuid", promptId="dup")
        p = find_prompt(recs + [dup], text="hello interactive MOCK:say=first_reply")
        assert p["uuid"] == "dup-uuid"

    def test_meta_and_tool_results_are_not_prompts(self):
        recs = load("hi10_after")
        assert find_prompt(recs, text=recs[2]["message"]["content"]) is None  # isMeta caveat
        recs = load("hi11")
        for r in recs:
            if r.get("type") == "user" and isinstance(r["message"]["content"], list):
                assert not is_prompt_record(r)

    def test_bash_mode_records_reuse_the_previous_promptid(self):
        # capture quirk: the <bash-input>/<bash-stdout> records carry the promptId of the
        # *previous* typed prompt (" /nosuchcmd leading space ..."), so a promptId lookup
        # finds that earlier prompt; the bash turn is found by its text.
        recs = load("hi10_multiline")
        bang = next(r for r in recs if r.get("type") == "user" and (content_text(r) or "").startswith("<bash-input>echo bang"))
        assert find_prompt(recs, prompt_id=bang["promptId"])["uuid"].startswith("152019d3")
        assert find_prompt(recs, text=bang["message"]["content"])["uuid"] == bang["uuid"]
        assert find_prompt(recs, prompt_id=bang["promptId"], text=bang["message"]["content"])["uuid"] == bang["uuid"]
        # and the earlier turn still ends at its own turn_duration
        assert "a5504c0c" not in short(turn_records(recs, "152019d3-dc69-4f91-9440-420f1fdcc9e9"))

    def test_out_of_order_file(self):
        recs = load("hi22")
        p = find_prompt(recs, text="slow hook MOCK:say=slowhook_ok")
        assert p["uuid"].startswith("36727948")


# --------------------------------------------------------------------------- TurnTree


class TestTurnTree:
    def test_fieldmap_tool_turn(self):
        recs = load("hi18")
        _, tree = turn_of(recs, "fieldmap MOCK:tool")
        assert short(tree.ordered()) == [
            "d598535a", "4c594434", "6e01a919", "4b5ed490", "76bbea86", "44e162d9", "2b7dc355", "3a7bfd6d",
        ]
        assert tree.complete()
        assert tree.end_record()["uuid"].startswith("3a7bfd6d")

    def test_parallel_tools_side_branches_are_included(self):
        recs = load("hi11")
        _, tree = turn_of(recs, "two tools MOCK:tools2")
        got = short(tree.ordered())
        # records 33..46 of the file: the chain to turn_duration runs through
        # tool_result #2 -> tool_use #1, so 352baf93/ede3cc59 (and 4d0c7fed/8f93af24)
        # are side branches a backward walk would miss
        assert got == [
            "3892358d", "f813e5b4", "352baf93", "ede3cc59", "147493fb", "fa19ab03",
            "da4fb9a6", "1bf1dcf9", "4d0c7fed", "8f93af24", "bcb13c74", "37bd3274",
            "175edd88", "19fdc591",
        ]
        assert tree.complete()

    def test_walk_back_from_end_misses_side_branch(self):
        # documents why ordered() collects descendants instead of walking parentUuid back
        recs = load("hi11")
        prompt, tree = turn_of(recs, "two tools MOCK:tools2")
        by = {r["uuid"]: r for r in recs if "uuid" in r}
        chain, cur = [], tree.end_record()
        while cur["uuid"] != prompt["uuid"]:
            chain.append(cur["uuid"][:8])
            cur = by[cur["parentUuid"]]
        assert "352baf93" not in chain and "ede3cc59" not in chain
        assert {"352baf93", "ede3cc59"} <= set(short(tree.ordered()))

    def test_permission_hook_attachment_side_branch(self):
        recs = load("hi12")
        _, tree = turn_of(recs, "perm MOCK:tool=touch_zz4.txt")
        got = short(tree.ordered())
        assert "a6bac584" in got  # hook_permission_decision shares its parent with the tool_result
        assert got.index("1ec42a9d") < got.index("a6bac584") < got.index("5421e123")
        assert tree.complete()

    def test_out_of_order_writes(self):
        recs = load("hi22")
        # file order: assistant + turn_duration come BEFORE the prompt and its attachments
        types = [r.get("type") for r in recs]
        assert types.index("assistant") < types.index("user")
        _, tree = turn_of(recs, "slow hook MOCK:say=slowhook_ok")
        assert short(tree.ordered()) == ["60b8f7b3", "b7758242", "5464d54c", "21955488", "51474c9d"]
        assert tree.complete()

    def test_out_of_order_incremental(self):
        recs = load("hi22")
        prompt = find_prompt(recs, text="slow hook MOCK:say=slowhook_ok")
        tree = TurnTree(prompt["uuid"])
        for r in recs:
            tree.add(r)
            if r is recs[5]:  # turn_duration written, prompt not yet
                assert tree.ordered() == [] and not tree.complete()
        assert tree.complete()

    def test_two_prompts_isolated(self):
        recs = load("hi7")
        _, t1 = turn_of(recs, "hello interactive MOCK:say=first_reply")
        _, t2 = turn_of(recs, "second prompt MOCK:slow=0.3 MOCK:long=300")
        o1, o2 = t1.ordered(), t2.ordered()
        assert short(o1) == ["d1ad36f7", "ff5003c1", "1683c3cb", "3774ae95"]
        assert short(o2) == ["6ad8248a", "bbfc7bb5"]
        assert not set(short(o1)) & set(short(o2))
        # the second prompt hangs off the first turn's turn_duration: never part of turn 1
        assert "77dd967c" not in short(o1)

    def test_second_turn_incomplete_until_its_own_end(self):
        recs = load("hi7")
        prompt2 = find_prompt(recs, text="second prompt MOCK:slow=0.3 MOCK:long=300")
        tree = TurnTree(prompt2["uuid"])
        for r in recs:
            if r.get("uuid", "").startswith("bbfc7bb5"):
                break
            tree.add(r)
        # turn 1 is complete, but that must not make turn 2 complete
        assert not tree.complete()
        assert short(tree.ordered()) == ["6ad8248a"]

    @pytest.mark.parametrize("name,text", [
        ("hi23", "slow cc MOCK:slow=0.5 MOCK:long=400"),
        ("hi10_after", "slow one MOCK:slow=0.5 MOCK:long=400"),
        ("hi8", "needs permission MOCK:tool=touch_zz2.txt"),
        ("hi11", "perm MOCK:tool=touch_zz3.txt"),
    ])
    def test_interrupts_never_complete(self, name, text):
        recs = load(name)
        _, tree = turn_of(recs, text)
        assert not tree.complete()
        assert tree.end_record() is None
        last = tree.ordered()[-1]
        assert content_text(last).startswith("[Request interrupted by user")

    def test_prompt_after_interrupt_is_its_own_turn(self):
        recs = load("hi10_after")
        _, t1 = turn_of(recs, "slow one MOCK:slow=0.5 MOCK:long=400")
        _, t2 = turn_of(recs, "slow two MOCK:slow=0.3 MOCK:long=200")
        assert "f18137b3" not in short(t1.ordered())
        assert short(t2.ordered()) == ["cd5b90dc", "2a632ddd", "ca622cee"]

    def test_local_command_after_turn_is_excluded(self):
        recs = load("hi10_multiline")
        _, tree = turn_of(recs, "quick 5 MOCK:say=quick_5_ok")
        got = short(tree.ordered())
        assert got[-1] == "ea88d79e"  # turn_duration; the informational records after it are not ours
        assert "68bb1dc4" not in got

    def test_bash_mode_turn_contains_its_output(self):
        recs = load("hi10_multiline")
        bang = next(r for r in recs if r.get("type") == "user" and (content_text(r) or "").startswith("<bash-input>echo bang"))
        tree = TurnTree(bang["uuid"]).add_all(recs)
        assert short(tree.ordered())[0] == "79a3a21d" and tree.complete()

    def test_api_error_turn_completes(self):
        recs = load("hi11")
        _, tree = turn_of(recs, "fail MOCK:err=500")
        assert tree.complete()
        assert tree.ordered()[-2]["isApiErrorMessage"] is True

    def test_no_prompt(self):
        tree = TurnTree()
        tree.add_all(load("hi18"))
        assert tree.ordered() == [] and not tree.complete()
        tree.set_prompt(find_prompt(load("hi18"), text="fieldmap MOCK:tool")["uuid"])
        assert len(tree.ordered()) == 8

    def test_records_without_uuid_are_ignored(self):
        tree = TurnTree("x")
        tree.add({"type": "mode", "mode": "normal"})
        tree.add("not a dict")  # type: ignore[arg-type]
        assert len(tree) == 0

    def test_readding_a_record_does_not_duplicate(self):
        recs = load("hi18")
        _, tree = turn_of(recs, "fieldmap MOCK:tool")
        before = short(tree.ordered())
        tree.add_all(recs)
        assert short(tree.ordered()) == before

    def test_reparented_record_moves(self):
        tree = TurnTree("p")
        tree.add({"uuid": "p", "type": "user", "message": {"content": "hi"}, "timestamp": "1"})
        tree.add({"uuid": "a", "parentUuid": "x", "type": "assistant", "timestamp": "2"})
        assert tree.ordered() == []
        tree.add({"uuid": "a", "parentUuid": "p", "type": "assistant", "timestamp": "2"})
        assert short(tree.ordered()) == ["a"]

    def test_sidechain_records_skipped(self):
        tree = TurnTree("p")
        tree.add({"uuid": "p", "type": "user", "message": {"content": "hi"}, "timestamp": "1"})
        tree.add({"uuid": "s", "parentUuid": "p", "isSidechain": True, "type": "assistant", "timestamp": "2"})
        tree.add({"uuid": "a", "parentUuid": "p", "type": "assistant", "timestamp": "3"})
        assert short(tree.ordered()) == ["a"]

    def test_parallel_results_interleave_chronologically(self):
        # result #1 written before tool_use #2 (tools start while streaming): the main
        # line must not be emitted before the side branch that happened earlier
        recs = [
            {"uuid": "p", "type": "user", "promptId": "P", "message": {"content": "go"}, "timestamp": "t0"},
            {"uuid": "u1", "parentUuid": "p", "type": "assistant", "timestamp": "t1"},
            {"uuid": "r1", "parentUuid": "u1", "type": "user", "promptId": "P", "timestamp": "t2",
             "message": {"content": [{"type": "tool_result", "tool_use_id": "1"}]}},
            {"uuid": "u2", "parentUuid": "u1", "type": "assistant", "timestamp": "t3"},
            {"uuid": "r2", "parentUuid": "u2", "type": "user", "promptId": "P", "timestamp": "t4",
             "message": {"content": [{"type": "tool_result", "tool_use_id": "2"}]}},
            {"uuid": "a", "parentUuid": "r1", "type": "assistant", "timestamp": "t5"},
            {"uuid": "d", "parentUuid": "a", "type": "system", "subtype": "turn_duration", "timestamp": "t6"},
            {"uuid": "n", "parentUuid": "d", "type": "user", "promptId": "Q", "message": {"content": "next"}, "timestamp": "t7"},
        ]
        assert short(turn_records(recs, "p")) == ["u1", "r1", "u2", "r2", "a", "d"]


# --------------------------------------------------------------------------- shuffled feeding


def _all_turns():
    for path in ALL_FILES:
        recs = [r for r in (parse_line(l) for l in path.read_bytes().splitlines()) if r]
        for p in recs:
            if is_prompt_record(p):
                yield path.name, recs, p


@pytest.mark.parametrize("seed", range(8))
def test_shuffled_file_order_gives_identical_turns(seed):
    rng = random.Random(seed)
    n = 0
    for name, recs, prompt in _all_turns():
        expected = TurnTree(prompt["uuid"]).add_all(recs).ordered()
        shuffled = list(recs)
        rng.shuffle(shuffled)
        tree = TurnTree(prompt["uuid"])
        for r in shuffled:
            tree.add(r)
        assert [r["uuid"] for r in tree.ordered()] == [r["uuid"] for r in expected], name
        n += 1
    assert n > 40


def test_every_turn_is_disjoint_from_the_others():
    for path in ALL_FILES:
        recs = [r for r in (parse_line(l) for l in path.read_bytes().splitlines()) if r]
        seen: dict[str, str] = {}
        for p in recs:
            if not is_prompt_record(p):
                continue
            for r in turn_records(recs, p["uuid"]):
                assert r["uuid"] not in seen, (path.name, r["uuid"], seen.get(r["uuid"]))
                seen[r["uuid"]] = p["uuid"]


def test_parents_precede_children():
    for _, recs, prompt in _all_turns():
        order = turn_records(recs, prompt["uuid"])
        pos = {r["uuid"]: i for i, r in enumerate(order)}
        for r in order:
            parent = r.get("parentUuid")
            if parent in pos:
                assert pos[parent] < pos[r["uuid"]]


def test_matches_chain_files():
    """Cross-check with the *.chain.txt summaries: every record of a completed turn
    between its prompt and its turn_duration (file lines) is found."""
    recs = load("hi11")
    _, tree = turn_of(recs, "two tools MOCK:tools2")
    lines = (TRANSCRIPTS / "hi11_api_errors_thinking_multi_tools2_perm.chain.txt").read_text().splitlines()
    ids = [ln.split()[2] for ln in lines[33:47]]
    assert short(tree.ordered()) and set(ids) == set(short(tree.ordered()))
    json.dumps(ids)


def test_fast_end_detection_agrees_with_ordered():
    n = 0
    for name, recs, prompt in _all_turns():
        tree = TurnTree(prompt["uuid"]).add_all(recs)
        in_order = [r for r in tree.ordered() if r.get("subtype") == "turn_duration"]
        end = tree.end_record()
        assert (end is None) == (not in_order), name
        if end is not None:
            assert end is in_order[0]
            n += 1
    assert n > 30


def _asst(mid: str, *blocks: dict, side: bool = False) -> dict:
    return {"type": "assistant", "isSidechain": side, "message": {"id": mid, "content": list(blocks)}}


def test_tool_use_owner_and_response_ids():
    """The record holding a tool_use (main thread unless asked), and each response once, in order,
    as claude writes one record per content block (recorded tools2 traces: two tool_use records, one id)."""
    text = {"type": "text", "text": "x"}
    recs = [_asst("m1", text), _asst("m1", {"type": "tool_use", "id": "t1"}), _asst("m1", {"type": "tool_use", "id": "t2"}),
            {"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t1"}]}},
            _asst("s1", {"type": "tool_use", "id": "t9"}, side=True), _asst("m2", text)]
    assert tool_use_owner(recs, "t2") is recs[2]
    assert tool_use_owner(recs, "t9") is None and tool_use_owner(recs, "t9", main_thread=False) is recs[4]
    assert tool_use_owner(recs, "nope") is None
    assert response_ids(recs) == ["m1", "m2"]
