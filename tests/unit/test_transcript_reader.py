"""TranscriptReader: offsets, partial lines, truncation."""

import json

from claude_bridge_tmux.follow.transcript import TranscriptReader, encode_project_dir


def test_partial_lines_are_kept_until_complete(tmp_path):
    p = tmp_path / "t.jsonl"
    r = TranscriptReader(p)
    assert r.read_new() == []
    a = json.dumps({"uuid": "a"}).encode()
    b = json.dumps({"uuid": "b", "text": "ü"}).encode()
    p.write_bytes(a + b"\n" + b[:5])
    assert [x["uuid"] for x in r.read_new()] == ["a"]
    with open(p, "ab") as f:
        f.write(b[5:] + b"\n")
    assert [x["uuid"] for x in r.read_new()] == ["b"]
    assert r.read_new() == []


def test_truncation_restarts_from_zero(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"uuid":"a"}\n{"uuid":"b"}\n')
    r = TranscriptReader(p)
    assert len(r.read_new()) == 2
    p.write_text('{"uuid":"c"}\n')
    assert [x["uuid"] for x in r.read_new()] == ["c"]
    assert r.restarted


def test_garbage_lines_are_skipped(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_bytes(b'not json\n{"uuid":"ok"}\n\n')
    assert [x["uuid"] for x in TranscriptReader(p).read_new()] == ["ok"]


def test_project_dir_encoding_matches_cli():
    # docs/cli-behaviour.md §6
    assert encode_project_dir("/home/user/probe/my.dir_x y-z@1") == "-home-user-probe-my-dir-x-y-z-1"
