"""``claude-bridge doctor``: can a run work on this machine, and if not, what to do about it.

One ``Check`` per concern, each ``ok`` / ``warn`` / ``fail`` / ``skip`` with a one-line detail and, for
every problem, a concrete fix.  ``doctor`` exits 0 only when no check failed (warnings do not stop a
run).  Checks:

* ``tmux``      the binary (``CLAUDE_BRIDGE_TMUX`` or PATH), its version, and that a private server
                starts and stops here;
* ``claude``    the CLI the bridge would drive (``CLAUDE_BRIDGE_CLAUDE_BIN`` or PATH, never the shim)
                and its version;
* ``flags``     whether this bridge ships the option table of that exact version;
* ``config``    claude's global config (onboarding done, or seedable: readable JSON, writable);
* ``login``     where claude would get credentials from: an API key / token variable, an
                ``apiKeyHelper`` setting, a cloud-provider switch, an OAuth credentials file, a stored
                key.  Only presence is checked: no credential value is read or printed;
* ``root``      bypass permission modes as root need ``IS_SANDBOX=1``;
* ``runtime``   the private runtime directory (0700, ours, writable, short enough for sockets);
* ``state``     the state directory (run logs);
* ``panes``     live panes and leftovers of dead runs (``claude-bridge gc``);
* ``pool``      a running pool daemon, when pool mode is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# AF_UNIX sun_path is 108 bytes on Linux, 104 on macOS; a run's socket is <runtime>/<run dir>/tmux.sock
SOCKET_PATH_MAX = 104
RUN_SOCKET_SUFFIX = len("/pane-4194304-abcdefgh/tmux.sock")
TMUX_TESTED = (3, 0)


@dataclass
class Check:
    name: str
    status: str          # ok | warn | fail | skip
    detail: str
    fix: str | None = None


def _which(name: str, env: dict[str, str]) -> str | None:
    return shutil.which(name, path=env.get("PATH") or os.defpath)


def _version_tuple(text: str) -> tuple[int, ...]:
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else ()


# -- checks --------------------------------------------------------------------------------------
def check_tmux(env: dict[str, str], scratch: Path | None) -> Check:
    explicit = env.get("CLAUDE_BRIDGE_TMUX")
    tmux = explicit or _which("tmux", env)
    if explicit and not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
        return Check("tmux", "fail", f"CLAUDE_BRIDGE_TMUX={explicit} is not an executable file",
                     "point CLAUDE_BRIDGE_TMUX at the tmux binary, or unset it to use tmux from PATH")
    if not tmux:
        return Check("tmux", "fail", "tmux is not installed (not on PATH)",
                     "install tmux: apt-get install tmux (Debian/Ubuntu), dnf install tmux, brew install tmux")
    try:
        out = subprocess.run([tmux, "-V"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        version = out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check("tmux", "fail", f"{tmux} -V failed: {e}", "reinstall tmux")
    vt = _version_tuple(version)
    started = _tmux_smoke(tmux, scratch)
    if started is not None:
        return Check("tmux", "fail", f"{version} at {tmux}, but a private server does not start: {started}",
                     "check that tmux works for this user (`tmux -S /tmp/x new-session -d true`); "
                     "set CLAUDE_BRIDGE_RUNTIME_DIR to a short, local, writable path")
    if vt and vt < TMUX_TESTED:
        return Check("tmux", "warn", f"{version} at {tmux}: older than 3.0, untested",
                     "upgrade tmux to 3.0 or later")
    return Check("tmux", "ok", f"{version} at {tmux}; a private server starts")


def _tmux_smoke(tmux: str, scratch: Path | None) -> str | None:
    """Start and kill a private tmux server; None when it worked, else the reason."""
    base = tempfile.mkdtemp(prefix="doctor-", dir=str(scratch) if scratch else None)
    sock = os.path.join(base, "t.sock")
    try:
        res = subprocess.run([tmux, "-S", sock, "-f", os.devnull, "new-session", "-d", "-s", "doctor", "sleep 30"],
                             capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL,
                             env={k: v for k, v in os.environ.items() if not k.startswith("TMUX")})
        if res.returncode != 0:
            return (res.stderr.strip() or f"exit {res.returncode}").splitlines()[0]
        return None
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    finally:
        subprocess.run([tmux, "-S", sock, "kill-server"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)


def check_claude(env: dict[str, str]) -> tuple[Check, str | None, str | None]:
    from claude_bridge_tmux.invocation.plan import UsageError, claude_version, find_claude, is_shim
    explicit = env.get("CLAUDE_BRIDGE_CLAUDE_BIN")
    binary = find_claude(env)
    if binary is None:
        if explicit:
            return (Check("claude", "fail", f"CLAUDE_BRIDGE_CLAUDE_BIN={explicit} is not an executable",
                          "point CLAUDE_BRIDGE_CLAUDE_BIN at the real claude binary, or unset it"), None, None)
        return (Check("claude", "fail", "the Claude Code CLI is not on PATH (the claude-bridge shim does not count)",
                      "install it (npm install -g @anthropic-ai/claude-code, or scripts/install-claude VERSION) "
                      "or set CLAUDE_BRIDGE_CLAUDE_BIN=/path/to/claude"), None, None)
    if is_shim(binary):
        return (Check("claude", "fail", f"{binary} is the claude-bridge shim, not claude",
                      "set CLAUDE_BRIDGE_CLAUDE_BIN to the real claude binary"), binary, None)
    try:
        version = claude_version(binary)
    except UsageError as e:
        return Check("claude", "fail", e.message.removeprefix("claude-bridge: "),
                     f"reinstall Claude Code, or check that `{binary} --version` works"), binary, None
    return Check("claude", "ok", f"Claude Code {version} at {binary}"), binary, version


def check_flags(version: str | None) -> Check:
    from claude_bridge_tmux.invocation import flags as flagmod
    known = flagmod.known_versions()
    if version is None:
        return Check("flags", "skip", f"no claude to match (tables for {', '.join(known)})")
    if version in known:
        return Check("flags", "ok", f"option table for {version} is bundled")
    derived = flagmod.derived_table(version)
    if derived is not None:
        from claude_bridge_tmux.invocation.derive import load_derived
        raw = load_derived(None, version) or {}
        added = raw.get("added") or []
        return Check("flags", "warn",
                     f"claude {version} is not pinned: its option table was derived from its --help over "
                     f"{raw.get('derived_from', '?')}'s ({len(added)} new option(s), refused until reviewed"
                     f"{': --' + ', --'.join(added) if added else ''}); output shapes, prices and behaviour "
                     f"facts are {raw.get('derived_from', '?')}'s",
                     f"use a pinned claude ({', '.join(known)}), or pin {version} with scripts/add-cli-version "
                     "in a claude-bridge checkout")
    nearest = flagmod.load_table(version).version
    return Check("flags", "warn",
                 f"no option table for claude {version}; argv is parsed with {nearest}'s "
                 "(options added or changed since may be refused or mis-parsed)",
                 f"use a supported claude ({', '.join(known)}), or pin it with scripts/add-cli-version "
                 "in a claude-bridge checkout")


def check_config(env: dict[str, str]) -> Check:
    from claude_bridge_tmux.host.preseed import PreseedError, global_config_path, read_config
    path = global_config_path(env)
    try:
        cfg = read_config(path)
    except PreseedError as e:
        return Check("config", "fail", str(e), f"repair {path} (it must be a JSON object) or move it away")
    if not path.exists():
        parent = path.parent
        if parent.is_dir() and os.access(parent, os.W_OK):
            return Check("config", "ok", f"{path} does not exist yet; the bridge seeds onboarding on the first run")
        return Check("config", "fail", f"{path} does not exist and {parent} is not writable",
                     f"create {parent} writable for this user, or set HOME / CLAUDE_CONFIG_DIR")
    if not os.access(path, os.W_OK):
        ok = cfg.get("hasCompletedOnboarding") is True
        return Check("config", "ok" if ok else "fail",
                     f"{path} is read-only" + (" (onboarding already done)" if ok else " and onboarding is not done"),
                     None if ok else f"make {path} writable for this user")
    state = "onboarding done" if cfg.get("hasCompletedOnboarding") else "onboarding not done yet: seeded on the first run"
    return Check("config", "ok", f"{path}: {state}")


def _settings_files(env: dict[str, str], cwd: str) -> list[Path]:
    from claude_bridge_tmux.host.preseed import config_dir
    cfg = config_dir(env)
    files = [cfg / "settings.json", cfg / "settings.local.json",
             Path(cwd) / ".claude" / "settings.json", Path(cwd) / ".claude" / "settings.local.json"]
    if sys.platform == "darwin":
        files.append(Path("/Library/Application Support/ClaudeCode/managed-settings.json"))
    else:
        files.append(Path("/etc/claude-code/managed-settings.json"))
    return files


def login_sources(env: dict[str, str], cwd: str) -> list[str]:
    """Where claude could authenticate from (names only; values are never read)."""
    from claude_bridge_tmux.host.preseed import PreseedError, config_dir, global_config_path, read_config
    found = [f"${k}" for k in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN") if env.get(k)]
    found += [f"${k} (cloud provider)" for k in ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX",
                                                  "CLAUDE_CODE_USE_FOUNDRY") if env.get(k) not in (None, "", "0")]
    for f in _settings_files(env, cwd):
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("apiKeyHelper"):
            found.append(f"apiKeyHelper in {f}")
    creds = config_dir(env) / ".credentials.json"
    if creds.exists():
        found.append(f"OAuth credentials file {creds}")
    try:
        if "primaryApiKey" in read_config(global_config_path(env)):
            found.append(f"an API key stored by /login in {global_config_path(env)}")
    except PreseedError:
        pass
    return found


def check_login(env: dict[str, str], cwd: str) -> Check:
    found = login_sources(env, cwd)
    if found:
        return Check("login", "ok", "credentials available from " + "; ".join(found))
    if sys.platform == "darwin":
        return Check("login", "warn", "no API key variable, apiKeyHelper or credentials file; "
                     "a /login in the macOS Keychain cannot be checked from here",
                     "if runs fail with 'Please run /login', run `claude` once and /login, or export ANTHROPIC_API_KEY")
    return Check("login", "fail", "claude has no credentials here: no ANTHROPIC_API_KEY / ANTHROPIC_AUTH_TOKEN / "
                 "CLAUDE_CODE_OAUTH_TOKEN, no apiKeyHelper setting, no ~/.claude/.credentials.json",
                 "run `claude` once and /login (same HOME as the bridge), or export ANTHROPIC_API_KEY")


def check_root(env: dict[str, str], uid: int | None = None) -> Check:
    uid = os.getuid() if uid is None else uid
    if uid != 0:
        return Check("root", "ok", "not running as root")
    if env.get("IS_SANDBOX") == "1" or env.get("CLAUDE_CODE_BUBBLEWRAP"):
        return Check("root", "ok", "root inside a declared sandbox (IS_SANDBOX=1): bypass modes allowed")
    return Check("root", "warn", "running as root: claude refuses --dangerously-skip-permissions and "
                 "bypassPermissions here (so does the bridge)",
                 "inside a container or VM, export IS_SANDBOX=1; otherwise run as a normal user")


def _private_dir_check(name: str, getter, env: dict[str, str], *, sockets: bool) -> tuple[Check, Path | None]:
    from claude_bridge_tmux.host.paths import UnsafeDirectoryError
    var = "CLAUDE_BRIDGE_RUNTIME_DIR" if sockets else "CLAUDE_BRIDGE_STATE_DIR"
    try:
        path = getter(env)
    except UnsafeDirectoryError as e:
        return Check(name, "fail", str(e), f"remove it or set {var} to a directory of your own"), None
    except OSError as e:
        return Check(name, "fail", f"cannot create it: {e}", f"set {var} to a writable directory"), None
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".doctor-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return Check(name, "fail", f"{path} is not writable: {e.strerror}", f"set {var} to a writable directory"), None
    mode = oct(path.stat().st_mode & 0o777)[2:]
    if sockets and len(str(path)) + RUN_SOCKET_SUFFIX > SOCKET_PATH_MAX:
        return Check(name, "fail", f"{path} is too long for tmux sockets inside it "
                     f"({len(str(path)) + RUN_SOCKET_SUFFIX} > {SOCKET_PATH_MAX} bytes)",
                     f"set {var} to a short path, e.g. /tmp/cb-{os.getuid()}"), None
    return Check(name, "ok", f"{path} (mode {mode}, private, writable)"), path


def check_panes(runtime: Path | None) -> Check:
    if runtime is None:
        return Check("panes", "skip", "no runtime directory")
    from claude_bridge_tmux.ops.gc import orphaned_dirs
    from claude_bridge_tmux.ops.registry import live_entries
    live = live_entries(runtime)
    orphans = orphaned_dirs(runtime)
    kinds: dict[str, int] = {}
    for e in live:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    detail = f"{len(live)} live pane(s)" + (f" ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})" if kinds else "")
    if orphans:
        return Check("panes", "warn", f"{detail}; {len(orphans)} left behind by dead runs",
                     "run `claude-bridge gc`")
    return Check("panes", "ok", detail + "; nothing left behind by dead runs")


def check_pool(env: dict[str, str]) -> Check:
    try:
        from claude_bridge_tmux import pool as pool_pkg
        from claude_bridge_tmux.pool import client as pool_client
    except ImportError:
        return Check("pool", "skip", "pool mode is not part of this installation")
    status_fn = getattr(pool_pkg, "status", None) or getattr(pool_client, "status", None)
    try:
        if callable(status_fn):
            reply = status_fn(env)
        elif callable(getattr(pool_client, "request", None)):
            reply = pool_client.request(env, {"op": "status"}, timeout=2.0)
        else:
            return Check("pool", "skip", "pool mode exposes no status")
    except Exception as e:  # noqa: BLE001 - a broken daemon is a finding, not a crash
        return Check("pool", "warn", f"the pool daemon did not answer a status request: {e}",
                     "claude-bridge pool stop, then start it again")
    if not reply or reply.get("running") is False:
        return Check("pool", "ok", "no pool daemon running (calls run cold)")
    panes = reply.get("panes") or []
    states: dict[str, int] = {}
    for p in panes:
        states[str(p.get("state"))] = states.get(str(p.get("state")), 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no panes"
    return Check("pool", "ok", f"pool daemon pid {reply.get('pid')} running: {len(panes)} pane(s) ({summary})")


# -- driver --------------------------------------------------------------------------------------
def run_checks(env: dict[str, str] | None = None, cwd: str | None = None) -> list[Check]:
    env = dict(os.environ if env is None else env)
    cwd = cwd or os.getcwd()
    from claude_bridge_tmux.host.paths import runtime_dir, state_dir
    runtime_check, runtime = _private_dir_check("runtime", runtime_dir, env, sockets=True)
    state_check, _ = _private_dir_check("state", state_dir, env, sockets=False)
    claude_check, _binary, version = check_claude(env)
    return [
        check_tmux(env, runtime),
        claude_check,
        check_flags(version),
        check_config(env),
        check_login(env, cwd),
        check_root(env),
        runtime_check,
        state_check,
        check_panes(runtime),
        check_pool(env),
    ]


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        tag = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}[c.status]
        line = f"{tag}  {c.name:<{width}}  {c.detail}"
        if c.fix:
            line += f" -- fix: {c.fix}"
        lines.append(line)
    return "\n".join(lines)


def doctor(env: dict[str, str] | None = None, cwd: str | None = None, *, as_json: bool = False) -> tuple[str, int]:
    """Run every check; return ``(output, exit code)``: 0 when no check failed, else 1."""
    t0 = time.monotonic()
    checks = run_checks(env, cwd)
    ok = not any(c.status == "fail" for c in checks)
    if as_json:
        out = json.dumps({"ok": ok, "elapsed_ms": round((time.monotonic() - t0) * 1000, 1),
                          "checks": [asdict(c) for c in checks]}, indent=2)
    else:
        verdict = "a run can work here" if ok else "a run cannot work here until the FAIL lines are fixed"
        out = render(checks) + f"\n{'ok' if ok else 'FAIL'}: {verdict}"
    return out, 0 if ok else 1
