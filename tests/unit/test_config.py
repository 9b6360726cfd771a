"""CLAUDE_BRIDGE_* variables: typed, defaults, and one-line errors for malformed values."""

from __future__ import annotations

import pytest

from claude_bridge_tmux.config import BridgeConfig, ConfigError


def test_defaults():
    c = BridgeConfig.from_env({})
    assert (c.timeout_s, c.keep_logs, c.pool, c.submit, c.debug, c.trace) == (3600.0, 50, "auto", None, False, None)


@pytest.mark.parametrize("env,field,value", [
    ({"CLAUDE_BRIDGE_TIMEOUT": "2.5"}, "timeout_s", 2.5),
    ({"CLAUDE_BRIDGE_TIMEOUT": ""}, "timeout_s", 3600.0),
    ({"CLAUDE_BRIDGE_KEEP_LOGS": "0"}, "keep_logs", 0),
    ({"CLAUDE_BRIDGE_POOL": "0"}, "pool", "off"),
    ({"CLAUDE_BRIDGE_POOL": "On"}, "pool", "require"),
    ({"CLAUDE_BRIDGE_POOL": "start"}, "pool", "start"),
    ({"CLAUDE_BRIDGE_SUBMIT": "paste"}, "submit", "paste"),
    ({"CLAUDE_BRIDGE_DEBUG": "1"}, "debug", True),
    ({"CLAUDE_BRIDGE_DEBUG": "0"}, "debug", False),
    ({"CLAUDE_BRIDGE_TRACE": "/tmp/t"}, "trace", "/tmp/t"),
])
def test_values(env, field, value):
    assert getattr(BridgeConfig.from_env(env), field) == value


@pytest.mark.parametrize("env,needle", [
    ({"CLAUDE_BRIDGE_TIMEOUT": "soon"}, "CLAUDE_BRIDGE_TIMEOUT must be a number of seconds > 0, not 'soon'"),
    ({"CLAUDE_BRIDGE_TIMEOUT": "-1"}, "CLAUDE_BRIDGE_TIMEOUT"),
    ({"CLAUDE_BRIDGE_TIMEOUT": "nan"}, "CLAUDE_BRIDGE_TIMEOUT"),
    ({"CLAUDE_BRIDGE_KEEP_LOGS": "many"}, "CLAUDE_BRIDGE_KEEP_LOGS"),
    ({"CLAUDE_BRIDGE_SUBMIT": "type"}, "CLAUDE_BRIDGE_SUBMIT must be paste or launch"),
    ({"CLAUDE_BRIDGE_POOL": "maybe"}, "CLAUDE_BRIDGE_POOL"),
])
def test_malformed_values_are_one_line_usage_errors(env, needle):
    with pytest.raises(ConfigError) as e:
        BridgeConfig.from_env(env)
    assert needle in e.value.message and "\n" not in e.value.message
    assert e.value.message.startswith("claude-bridge: ") and e.value.exit_code == 2


def test_cli_reports_a_malformed_variable_in_one_line(monkeypatch, capsys):
    from claude_bridge_tmux.cli.main import main
    monkeypatch.setenv("CLAUDE_BRIDGE_POOL", "sometimes")
    assert main(["-p", "hello"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CLAUDE_BRIDGE_POOL" in err
