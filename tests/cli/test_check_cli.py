"""``maildoctor check`` from the outside: exit codes, output formats, selection, and that no
input ever produces a traceback or shows the password (``s3cret``) in any form."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from maildoctor.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent.parent
BROKEN = str(ROOT / "examples" / "broken" / "homeserver.yaml")
CLEAN = str(ROOT / "examples" / "clean" / "homeserver.yaml")
PASSWORD = "s3cret"
# The password as it could leak: plain, base64 (with and without padding), AUTH PLAIN blobs.
LEAKS = [PASSWORD, base64.b64encode(PASSWORD.encode()).decode(),
         base64.b64encode(PASSWORD.encode()).decode().rstrip("="),
         base64.b64encode(b"\0synapse@example.org\0" + PASSWORD.encode()).decode()]

WARNING_ONLY = """\
server_name: example.org
public_baseurl: https://matrix.example.org/
email:
  smtp_host: smtp.example.net
  smtp_port: 587
  smtp_user: synapse@example.org
  smtp_pass: 'a-long-app-password'
  require_transport_security: true
  notif_from: "Example <noreply@example.org>"
password_config:
  enabled: false
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["check", *args])


def assert_no_leak(*texts: str) -> None:
    for text in texts:
        for form in LEAKS:
            assert form not in text, f"{form!r} leaked"
        assert "Traceback" not in text


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- exit codes --------------------------------------------------------------------------


def test_broken_example_exits_1_and_names_the_typo() -> None:
    result = run(BROKEN)
    assert result.exit_code == 1, result.output
    assert "smpt_pass" in result.output and "did you mean `smtp_pass`" in result.output
    assert "homeserver.yaml:12:3" in result.output
    assert "AUTHRequiredError: 502" in result.output
    assert "Rename `smpt_pass` to `smtp_pass`" in result.output
    assert_no_leak(result.output)


def test_clean_example_exits_0() -> None:
    result = run(CLEAN)
    assert result.exit_code == 0, result.output
    assert "no email problems" in result.output


def test_warnings_exit_0_unless_strict(tmp_path: Path) -> None:
    f = write(tmp_path / "h.yaml", WARNING_ONLY)
    assert run(f).exit_code == 0
    strict = run("--strict", f)
    assert strict.exit_code == 1
    assert "MD507" in strict.output


@pytest.mark.parametrize("args", [
    ["--select", "MD999"], ["--ignore", "not-a-rule"], ["--synapse-version", "banana"],
    ["--format", "xml"], [],
])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args, *([BROKEN] if args else []))
    assert result.exit_code == 2, result.output
    assert_no_leak(result.output)


def test_unusable_input_exits_2_with_location(tmp_path: Path) -> None:
    f = write(tmp_path / "h.yaml", "email:\n  smtp_host: [oops\n")
    result = run(f)
    assert result.exit_code == 2
    assert f"{f}:3:1" in result.output and "YAML syntax error" in result.output


# --- formats -----------------------------------------------------------------------------


def test_json_structure() -> None:
    result = run("--format", "json", BROKEN)
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["version"] == 1
    assert doc["summary"]["error"] >= 1
    (md101,) = [d for d in doc["diagnostics"] if d["code"] == "MD101"]
    assert set(md101) >= {"code", "name", "severity", "message", "consequence", "fix",
                          "locations"}
    assert md101["name"] == "unknown-email-key" and md101["severity"] == "error"
    assert "AUTHRequiredError" in md101["consequence"]
    assert md101["fix"]["applicability"] in ("safe", "unsafe", "display-only")
    assert md101["locations"] == [{"file": BROKEN, "line": 12, "column": 3,
                                   "path": "email.smpt_pass"}]
    for d in doc["diagnostics"]:
        for loc in d["locations"]:
            assert set(loc) == {"file", "line", "column", "path"}
    assert_no_leak(result.output)


def test_json_for_a_clean_config() -> None:
    result = run("--format", "json", CLEAN)
    assert result.exit_code == 0
    assert json.loads(result.output)["diagnostics"] == []


def test_github_annotations() -> None:
    result = run("--format", "github", BROKEN)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines and all(line.startswith(("::error ", "::warning ", "::notice ")) for line in lines)
    first = next(line for line in lines if "MD101" in line)
    assert first.startswith(f"::error file={BROKEN},line=12,col=3,title=MD101 unknown-email-key::")
    assert "%0ASynapse: " in first and "\n" not in first
    assert_no_leak(result.output)


# --- selection and paths -------------------------------------------------------------------


def codes(result: Result) -> list[str]:
    return [d["code"] for d in json.loads(result.output)["diagnostics"]]


def test_select_and_ignore() -> None:
    # MD6xx depend on the machine (a container says MD620 for 127.0.0.1): not the point here
    found = set(codes(run("--format", "json", "--synapse-python", "none", BROKEN)))
    assert found - {"MD620"} == {"MD101", "MD306"}
    assert codes(run("--format", "json", "--select", "MD1", BROKEN)) == ["MD101"]
    assert codes(run("--format", "json", "--select", "tls-name-is-local", BROKEN)) == ["MD306"]
    assert codes(run("--format", "json", "--ignore", "MD101,MD306,MD6", BROKEN)) == []
    only_warning = run("--ignore", "unknown-email-key", BROKEN)
    assert only_warning.exit_code == 0


def test_repeated_c_and_directories(tmp_path: Path) -> None:
    d = tmp_path / "conf.d"
    d.mkdir()
    write(d / "10-email.yaml", "server_name: example.org\nemail:\n  smtp_host: smtp.example.net\n"
                               "  notif_from: \"Example <noreply@example.org>\"\n")
    write(d / "20-secret.yaml", "email:\n  smtp_pass: 's3cret'\n")
    extra = write(tmp_path / "extra.yaml", "public_baseurl: https://matrix.example.org/\n")
    result = run("--format", "json", "-c", str(d), "-c", extra)
    doc = json.loads(result.output)
    assert doc["files"] == [str(d / "10-email.yaml"), str(d / "20-secret.yaml"), extra]
    assert "MD002" in codes(result) and "MD502" not in codes(result)
    assert result.exit_code == 1
    # Positional paths come after the -c ones, in order.
    mixed = run("--format", "json", "-c", str(d), extra)
    assert json.loads(mixed.output)["files"] == doc["files"]
    assert_no_leak(result.output, mixed.output)


def test_synapse_version_121_flags_tlsname(tmp_path: Path) -> None:
    f = write(tmp_path / "h.yaml", WARNING_ONLY.replace("password_config:\n  enabled: false\n",
                                                       "  tlsname: smtp.example.net\n"))
    assert run(f).exit_code == 0
    old = run("--synapse-version", "1.121", "--format", "json", f)
    assert old.exit_code == 1
    (finding,) = json.loads(old.output)["diagnostics"]
    assert finding["code"] == "MD103" and "1.122" in finding["message"]


# --- secrets and bad input -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_password_never_shown_in_any_format(fmt: str, tmp_path: Path) -> None:
    cases = [
        BROKEN,
        write(tmp_path / "num.yaml", WARNING_ONLY.replace("'a-long-app-password'", "123456")),
        write(tmp_path / "next-line.yaml", WARNING_ONLY.replace(
            "'a-long-app-password'", "\n    s3cret").replace("  smtp_user: synapse@example.org\n",
                                                             "")),
        write(tmp_path / "next-line-num.yaml", WARNING_ONLY.replace(
            "'a-long-app-password'", "\n    123456")),
        write(tmp_path / "hash.yaml", WARNING_ONLY.replace("'a-long-app-password'", "s3cret #x")),
        write(tmp_path / "dq.yaml", WARNING_ONLY.replace("'a-long-app-password'", '"s3cret\\t"')),
        write(tmp_path / "syn.yaml", WARNING_ONLY.replace("smtp_pass: 'a-long-app-password'",
                                                          "password: s3cret")),
    ]
    for path in cases:
        result = run("--format", fmt, path)
        assert result.exit_code in (0, 1), result.output
        assert_no_leak(result.output)
        assert "123456" not in result.output


@pytest.mark.parametrize("line", ["smtp_pass: @s3cret", "smtp_pass: *s3cret",
                                  "smtp_pass: !s3cret x", "smtp_pass: `s3cret",
                                  "smtp_pass: !!int s3cret", "smtp_pass: 's3cret",
                                  "smpt_pass: %s3cret"])
def test_password_masked_on_yaml_errors(line: str, tmp_path: Path) -> None:
    f = write(tmp_path / "h.yaml", f"server_name: x\nemail:\n  smtp_user: u\n  {line}\n")
    result = run(f)
    assert result.exit_code == 2
    assert "maildoctor:" in result.output
    assert_no_leak(result.output)


BAD_INPUTS: dict[str, bytes] = {
    "non-utf8": b"email:\n  app_name: caf\xe9\n",
    "binary": bytes(range(256)) * 4,
    "syntax": b"email:\n  smtp_host: [oops\n",
    "tabs": b"email:\n\tsmtp_host: x\n",
    "control": b"email:\n  app_name: a\x01b\n",
    "deep": b"[" * 5000 + b"]" * 5000,
    "bomb": ("a: &a [x, x, x, x, x, x, x, x, x]\n"
             + "".join(f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                       for p, n in zip("abcdefgh", "bcdefghi", strict=True))
             + "email:\n  smtp_host: *i\n").encode(),
    "bad-timestamp": b"email:\n  smtp_host: !!timestamp x\n",
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_exits_2_without_traceback(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(BAD_INPUTS[name])
    result = run(str(path))
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert str(path) in result.output
    assert_no_leak(result.output)


@pytest.mark.parametrize("kind", ["missing", "directory-without-yaml", "empty", "list"])
def test_odd_paths(kind: str, tmp_path: Path) -> None:
    if kind == "missing":
        target, want = str(tmp_path / "nope.yaml"), 2
    elif kind == "directory-without-yaml":
        write(tmp_path / "homeserver.yml", "server_name: x\n")
        target, want = str(tmp_path), 2
    elif kind == "empty":
        target, want = write(tmp_path / "empty.yaml", ""), 0
    else:
        target, want = write(tmp_path / "list.yaml", "- a\n"), 0
    result = run(target)
    assert result.exit_code == want, result.output
    assert_no_leak(result.output)
    if want == 0:
        assert "MD003" in result.output


# --- a real process ------------------------------------------------------------------------


def maildoctor(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "maildoctor", *args], capture_output=True,
                          text=True, timeout=60, env=env, check=False)


def test_subprocess_broken_example() -> None:
    proc = maildoctor("check", BROKEN)
    assert proc.returncode == 1
    assert "did you mean `smtp_pass`" in proc.stdout
    assert "\x1b[" not in proc.stdout  # not a terminal: no colour codes
    assert_no_leak(proc.stdout, proc.stderr)


def test_subprocess_clean_and_json() -> None:
    assert maildoctor("check", CLEAN).returncode == 0
    proc = maildoctor("check", "--format", "json", BROKEN)
    assert proc.returncode == 1 and json.loads(proc.stdout)["version"] == 1


def test_subprocess_bad_input_goes_to_stderr(tmp_path: Path) -> None:
    f = write(tmp_path / "h.yaml", "server_name: x\nemail:\n  smtp_pass: @s3cret\n")
    proc = maildoctor("check", f)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert f"{f}:3:14" in proc.stderr
    assert_no_leak(proc.stdout, proc.stderr)


def test_subprocess_bad_selector() -> None:
    proc = maildoctor("check", "--select", "MD999", BROKEN)
    assert proc.returncode == 2 and "MD999" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_colour_only_when_asked_or_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = run(BROKEN)  # CliRunner's output is not a terminal
    assert "\x1b[" not in plain.output
    coloured = run("--color", BROKEN)
    assert "\x1b[" in coloured.output and "smpt_pass" in coloured.output
    assert_no_leak(coloured.output)
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[" in run(BROKEN).output
    assert "\x1b[" not in run("--no-color", BROKEN).output
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR")
    assert "\x1b[" not in run(BROKEN).output
    # Same words either way.
    assert plain.output.replace(" ", "")[:200] == re.sub(
        r"\x1b\[[0-9;]*m", "", coloured.output).replace(" ", "")[:200]


# What `check` must not import: it runs in every pre-commit hook and CI job, and each of
# these costs it milliseconds to tens of milliseconds (templates, the probe's and the sender's
# libraries, asyncio and ssl, terminal output, the Synapse-exact engine, round-trip editing,
# the host's requirement parser when no Synapse is installed, the installed distributions'
# metadata, logging, the services' packages). A module set, not a timing: a top-level import
# that drags one of these back in fails here whatever the machine's speed.
NOT_ON_THE_CHECK_PATH = ("rich", "aiosmtplib", "aiosmtpd", "jinja2", "cryptography", "twisted",
                         "OpenSSL", "ruamel", "concurrent.futures", "packaging", "dns", "dkim",
                         "asyncio", "ssl", "subprocess", "logging", "importlib.metadata",
                         "email.message", "email.mime", "prometheus_client", "http",
                         "sqlite3", "maildoctor.smtp", "maildoctor.synapse",
                         "maildoctor.doctor", "maildoctor.diagnose", "maildoctor.mailer",
                         "maildoctor.roundtrip", "maildoctor.relay", "maildoctor.exporter")
# SARIF carries the safe fixes as replacements, computed by `fix`'s planner, which edits
# the YAML with ruamel (comments and layout kept): that one is its due.
SARIF_NEEDS = ("ruamel",)


def imported_by_check(*args: str) -> list[str]:
    """The modules of NOT_ON_THE_CHECK_PATH that running ``check ARGS`` (in a fresh
    interpreter, in-process CLI) leaves in ``sys.modules``."""
    code = ("import json, sys\nfrom maildoctor.cli.main import main\n"
            f"try:\n    main(['check', *{list(args)!r}])\n"
            "except SystemExit as exc:\n    assert exc.code == 1, exc.code\n"
            "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120, env={**os.environ, "NO_COLOR": "1"})
    loaded = json.loads(proc.stderr.strip().splitlines()[-1])
    return sorted({h for m in loaded for h in NOT_ON_THE_CHECK_PATH
                   if m == h or m.startswith(h + ".")})


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif"])
def test_check_imports_only_what_it_needs(fmt: str) -> None:
    expected = sorted(SARIF_NEEDS) if fmt == "sarif" else []
    assert imported_by_check(BROKEN, "--format", fmt, "--synapse-python", "none") == expected


def test_check_looking_for_synapse_imports_only_what_it_needs() -> None:
    # The default looks in the usual places for Synapse's interpreter (none on this
    # machine, or one that is asked in a subprocess: then subprocess is due).
    found = imported_by_check(BROKEN)
    assert set(found) <= {"subprocess"}, found
