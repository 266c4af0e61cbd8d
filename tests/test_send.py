"""`maildoctor send`: each kind through both engines to the test server; refusal on errors."""

from __future__ import annotations

import email
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from maildoctor.cli.main import cli

KINDS = ("test", "password-reset", "registration", "add-threepid", "already-in-use",
         "notification")


def _config(tmp_path: Path, port: int, **extra: str) -> Path:
    lines = ["server_name: example.org", "public_baseurl: https://matrix.example.org/",
             "email:", "  smtp_host: 127.0.0.1", f"  smtp_port: {port}",
             "  smtp_user: synapse@example.org", "  smtp_pass: 's3cret'",
             "  notif_from: 'Your Friendly %(app)s homeserver <noreply@example.org>'",
             *(f"  {k}: {v}" for k, v in extra.items())]
    path = tmp_path / "homeserver.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("engine", ["native", "synapse"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_delivered(kind: str, engine: str, tmp_path: Path,
                                smtp_server: Any) -> None:
    server = smtp_server()
    cfg = _config(tmp_path, server.port)
    result = CliRunner().invoke(cli, ["send", str(cfg), "--to", "alice@example.org",
                                      "--kind", kind, "--engine", engine, "--timeout", "10"])
    assert result.exit_code == 0, result.output
    assert "Message-ID: <" in result.output
    got = server.wait_for_messages(1)[0]
    msg = email.message_from_bytes(got.raw if hasattr(got, "raw") else got.data)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.get_payload()] == ["text/plain", "text/html"]
    assert msg["Auto-Submitted"] == "auto-generated"
    assert ("List-Unsubscribe" in msg) == (kind == "notification")
    assert "s3cret" not in result.output


def test_refuses_a_config_with_errors_and_says_why(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["send", "examples/broken/homeserver.yaml",
                                      "--to", "a@example.org"])
    assert result.exit_code == 1
    assert "MD101" in result.output and "smpt_pass" in result.output
    assert result.output.rstrip().splitlines()[-1] == \
        "next: run `maildoctor check examples/broken/homeserver.yaml` for the details and fixes"


def test_dry_run_writes_the_eml(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 2525)
    out = tmp_path / "mail.eml"
    result = CliRunner().invoke(cli, ["send", str(cfg), "--to", "alice@example.org",
                                      "--kind", "password-reset", "--dry-run", "--output",
                                      str(out)])
    assert result.exit_code == 0, result.output
    msg = email.message_from_bytes(out.read_bytes())
    assert msg["Subject"] == "[example.org] Password reset"
    assert list(msg.keys())[:4] == ["Content-Type", "MIME-Version", "Subject", "From"]


def test_synapse_engine_reports_the_hang(tmp_path: Path, smtp_server: Any) -> None:
    server = smtp_server(tls="implicit")  # TLS from the first byte, force_tls not set
    cfg = _config(tmp_path, server.port)
    result = CliRunner().invoke(cli, ["send", str(cfg), "--to", "alice@example.org",
                                      "--engine", "synapse", "--watchdog", "2"])
    assert result.exit_code == 1
    assert "Synapse would hang" in result.output


def test_native_engine_names_the_cause(tmp_path: Path, smtp_server: Any) -> None:
    server = smtp_server(replies={"mail": "553 5.7.1 <noreply@example.org>: Sender address "
                                          "rejected: not owned by user"})
    cfg = _config(tmp_path, server.port)
    result = CliRunner().invoke(cli, ["send", str(cfg), "--to", "alice@example.org"])
    assert result.exit_code == 1
    assert "553" in result.output


def test_send_reads_the_cause_table_for_a_sender_refused_at_rcpt(tmp_path: Path,
                                                                 smtp_server: Any) -> None:
    """Postfix's sender rule answers RCPT: send names notif_from, as probe does."""
    server = smtp_server(replies={"rcpt": "553 5.7.1 <noreply@example.org>: Sender address "
                                          "rejected: not owned by user synapse@example.org"})
    cfg = _config(tmp_path, server.port)
    result = CliRunner().invoke(cli, ["send", str(cfg), "--to", "alice@example.org"])
    assert result.exit_code == 1
    assert "what the reply blames: sender" in result.output
    assert "notif_from" in result.output.split("fix:", 1)[1]


def test_native_engine_prints_the_queue_id_reply(tmp_path: Path, smtp_server: Any) -> None:
    server = smtp_server()
    cfg = _config(tmp_path, server.port)
    result = CliRunner().invoke(cli, ["send", str(cfg), "--to", "alice@example.org"])
    assert result.exit_code == 0, result.output
    (line,) = [ln for ln in result.output.splitlines() if "server's reply:" in ln]
    assert line.split("server's reply: ", 1)[1].startswith("250")
    assert "next:" not in result.output


def test_synapse_engine_says_where_to_find_the_queue_id(tmp_path: Path,
                                                        smtp_server: Any) -> None:
    """Twisted's result carries no final reply: unless the engine captures it (an
    ``EngineResult.reply`` field), say so and where to look instead."""
    from dataclasses import fields

    from maildoctor.synapse.engine.twisted_engine import EngineResult

    server = smtp_server()
    cfg = _config(tmp_path, server.port)
    result = CliRunner().invoke(cli, ["send", str(cfg), "--to", "alice@example.org",
                                      "--engine", "synapse", "--watchdog", "10"])
    assert result.exit_code == 0, result.output
    (line,) = [ln for ln in result.output.splitlines() if "server's reply:" in ln]
    if "reply" in {f.name for f in fields(EngineResult)}:
        assert line.split("server's reply: ", 1)[1].startswith("250")
    else:
        assert "Message-ID" in line and "--engine native" in line


def test_failed_send_ends_with_the_next_step(tmp_path: Path, smtp_server: Any) -> None:
    server = smtp_server(replies={"mail": "553 5.7.1 Sender address rejected"})
    cfg = _config(tmp_path, server.port)
    result = CliRunner().invoke(cli, ["send", str(cfg), "--to", "alice@example.org"])
    assert result.exit_code == 1
    assert result.output.rstrip().splitlines()[-1] == \
        f"next: run `maildoctor probe {cfg}` for the cause"


def test_json_has_a_version_and_the_next_step(tmp_path: Path, smtp_server: Any) -> None:
    import json

    server = smtp_server(replies={"mail": "553 5.7.1 Sender address rejected"})
    cfg = _config(tmp_path, server.port)
    failed = CliRunner().invoke(cli, ["send", "-c", str(cfg), "--to", "alice@example.org",
                                      "--format", "json"])
    assert failed.exit_code == 1
    data = json.loads(failed.output)
    assert data["version"] == 1 and data["sent"] is False
    assert data["next_step"] == f"run `maildoctor probe {cfg}` for the cause"
    built = CliRunner().invoke(cli, ["send", str(cfg), "--to", "alice@example.org",
                                     "--dry-run", "--format", "json"])
    assert built.exit_code == 0
    assert json.loads(built.output)["version"] == 1


def test_a_password_cut_at_hash_is_a_warning_and_send_goes_ahead(tmp_path: Path,
                                                                 smtp_server: Any) -> None:
    """Issue 10 item 5: `smtp_pass: s3cret #with comment` is read as `s3cret`, which may be
    what was meant: check warns with both readings (lengths, never the text) and send runs."""
    server = smtp_server()
    cfg = _config(tmp_path, server.port)
    cfg.write_text(cfg.read_text().replace("smtp_pass: 's3cret'",
                                           "smtp_pass: s3cret #with comment"))
    checked = CliRunner().invoke(cli, ["check", str(cfg)])
    assert checked.exit_code == 0, checked.output
    assert "warning[MD204]" in checked.output
    assert "the 6 characters before ` #`" in checked.output
    assert "the 20 characters up to the end of the line" in checked.output
    assert "s3cret" not in checked.output and "with comment" not in checked.output
    sent = CliRunner().invoke(cli, ["send", str(cfg), "--to", "alice@example.org",
                                    "--timeout", "10"])
    assert sent.exit_code == 0, sent.output
    assert len(server.wait_for_messages(1)) == 1


def test_native_login_is_twisteds_and_a_235_at_once_is_a_login(tmp_path: Path,
                                                                smtp_server: Any) -> None:
    """Issue 10 item 12: send said "refused the credentials ... (235 ok)" against a server
    that accepts AUTH LOGIN at once, while probe passed: aiosmtplib's LOGIN sends the user
    name with the command (Twisted never does) and takes only 334 for an answer."""
    server = smtp_server(mechanisms=("LOGIN",), replies={"auth": "235 2.7.0 ok"})
    cfg = _config(tmp_path, server.port)
    result = CliRunner().invoke(cli, ["send", str(cfg), "--to", "alice@example.org",
                                      "--timeout", "10"])
    assert result.exit_code == 0, result.output
    assert "refused" not in result.output
    from maildoctor.testing.journal import EventKind

    auth = [e.detail for e in server.events if e.kind is EventKind.COMMAND
            and e.detail.upper().startswith("AUTH")]
    assert auth and all(d.strip().upper() == "AUTH LOGIN" for d in auth), auth
