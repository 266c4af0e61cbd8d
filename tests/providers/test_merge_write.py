"""`init --merge` writes like `fix`: through symlinks, keeping owner and mode, never
overwriting an earlier backup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from maildoctor.cli.init import command as init_command
from maildoctor.config.merge_block import MergeError, merge_email_block

ORIGINAL = 'server_name: "example.org"   # keep\nreport_stats: false\n'
BLOCK = "email:\n  smtp_host: smtp.example.org\n  notif_from: 'M <n@example.org>'\n"
IS_ROOT = os.geteuid() == 0


def _merge(path: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(init_command, ["--provider", "exim-relay", "--merge", str(path),
                                               *extra])
    return result.exit_code, result.output


def test_merge_keeps_mode_and_never_overwrites_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text(ORIGINAL)
    os.chmod(path, 0o640)
    (tmp_path / "homeserver.yaml.bak").write_text("older\n")
    code, out = _merge(path)
    assert code == 0, out
    assert path.stat().st_mode & 0o7777 == 0o640
    assert (tmp_path / "homeserver.yaml.bak").read_text() == "older\n"
    first_backup = tmp_path / "homeserver.yaml.bak.1"
    assert first_backup.read_text() == ORIGINAL
    assert first_backup.stat().st_mode & 0o7777 == 0o640
    assert str(first_backup) in out
    merged_once = path.read_text()
    code, out = _merge(path, "--force")
    assert code == 0, out
    assert first_backup.read_text() == ORIGINAL
    assert (tmp_path / "homeserver.yaml.bak.2").read_text() == merged_once


@pytest.mark.skipif(not IS_ROOT, reason="only root can give a file to uid 991 (CI runs as root)")
def test_sudo_merge_leaves_the_file_to_synapse_uid_991(tmp_path: Path) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text(ORIGINAL)
    os.chown(path, 991, 991)
    os.chmod(path, 0o600)
    result = merge_email_block(str(path), BLOCK)
    assert result.backup == str(path) + ".bak"
    for p in (path, Path(result.backup)):
        st = p.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (991, 991, 0o600), p
    assert yaml.safe_load(path.read_text())["email"]["smtp_host"] == "smtp.example.org"


def test_merge_writes_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "hs.yaml"
    real.write_text(ORIGINAL)
    link = tmp_path / "homeserver.yaml"
    link.symlink_to(real)
    result = merge_email_block(str(link), BLOCK)
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text() == ORIGINAL + "\n" + BLOCK
    assert result.backup == str(real) + ".bak"
    assert Path(result.backup).read_text() == ORIGINAL
    assert not list(tmp_path.glob(".maildoctor-*")) and not list(real.parent.glob(".maildoctor-*"))


def test_merge_into_a_new_file_through_a_dangling_symlink_creates_the_target(
        tmp_path: Path) -> None:
    link = tmp_path / "homeserver.yaml"
    link.symlink_to(tmp_path / "target.yaml")
    result = merge_email_block(str(link), BLOCK)
    assert result.backup is None and link.is_symlink()
    assert (tmp_path / "target.yaml").read_text() == BLOCK
    assert (tmp_path / "target.yaml").stat().st_mode & 0o777 == 0o600


def test_merge_refuses_when_the_directory_is_gone(tmp_path: Path) -> None:
    with pytest.raises(MergeError, match="cannot write"):
        merge_email_block(str(tmp_path / "no-such-dir" / "hs.yaml"), BLOCK)
