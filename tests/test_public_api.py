"""The public API: every name in __all__ resolves, __all__ is sorted, imports stay lazy."""

import subprocess
import sys

import maildoctor


def test_all_names_resolve_and_are_sorted() -> None:
    assert maildoctor.__all__ == sorted(maildoctor.__all__)
    for name in maildoctor.__all__:
        assert getattr(maildoctor, name) is not None, name


def test_import_is_lazy() -> None:
    code = ("import sys, maildoctor; heavy = [m for m in ('aiosmtplib', 'twisted', 'rich', "
            "'jinja2', 'cryptography') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_check_and_probe_through_the_api(tmp_path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    server = smtp_server()
    cfg = tmp_path / "homeserver.yaml"
    cfg.write_text("server_name: example.org\npublic_baseurl: https://m.example.org/\n"
                   f"email:\n  smtp_host: 127.0.0.1\n  smtp_port: {server.port}\n"
                   "  notif_from: 'M <noreply@example.org>'\n")
    assert not maildoctor.check([str(cfg)]).has_errors
    run = maildoctor.probe([str(cfg)], maildoctor.ProbeOptions(timeout=3))
    assert run.diagnosis.ok and run.outcome.kind == "ok"


def test_config_paths_keep_command_line_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`check main.yaml -c conf.d` merges main.yaml first, as Synapse's -c order would."""
    import json

    from click.testing import CliRunner

    from maildoctor.cli.main import cli

    (tmp_path / "conf.d").mkdir()
    main = tmp_path / "main.yaml"
    main.write_text("server_name: x\nemail:\n  smtp_host: a\n  notif_from: 'a <a@b.c>'\n")
    (tmp_path / "conf.d" / "50.yaml").write_text("email:\n  enable_notifs: true\n")
    for args, first in (([str(main), "-c", str(tmp_path / "conf.d")], str(main)),
                        (["-c", str(tmp_path / "conf.d"), str(main)], None)):
        out = CliRunner().invoke(cli, ["check", "--format", "json", *args])
        files = json.loads(out.output)["files"]
        if first:
            assert files[0] == first
        else:
            assert files[-1] == str(main)
