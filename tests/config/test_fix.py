"""`maildoctor fix`: byte-exact results, idempotence, only flagged lines change, no secrets."""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maildoctor.cli.main import cli
from maildoctor.config.check import check
from maildoctor.config.fix import plan, write

CORPUS = Path(__file__).parent.parent / "fix_corpus"
CASES = sorted(p.name[: -len(".expected.yaml")] for p in CORPUS.glob("*.expected.yaml"))


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("case", CASES)
def test_fix_corpus_is_byte_exact_and_idempotent(case: str, tmp_path: Path) -> None:
    """Cases named ``unsafe-*`` need ``--unsafe-fixes``; without it they stay as they are."""
    flags = ["--unsafe-fixes"] if case.startswith("unsafe-") else []
    target = tmp_path / "homeserver.yaml"
    shutil.copy(CORPUS / f"{case}.yaml", target)
    if flags:
        run("fix", str(target))
        assert target.read_bytes() == (CORPUS / f"{case}.yaml").read_bytes()
    diff_code, diff_out = run("fix", "--diff", *flags, str(target))
    code, out = run("fix", *flags, str(target))
    assert code == 0 == diff_code, out
    assert target.read_bytes() == (CORPUS / f"{case}.expected.yaml").read_bytes()
    secret = str(yaml.safe_load(target.read_text())["email"].get("smtp_pass", "\0"))
    assert secret not in out and secret not in diff_out
    backup = (tmp_path / "homeserver.yaml.bak").read_bytes()
    assert backup == (CORPUS / f"{case}.yaml").read_bytes()
    again = target.read_bytes()
    code, out = run("fix", *flags, str(target))
    assert code == 0 and "nothing to fix" in out
    assert target.read_bytes() == again
    assert not (tmp_path / "homeserver.yaml.bak.1").exists()


def test_seed_example_diff_is_one_line_and_masks_the_password(tmp_path: Path) -> None:
    target = tmp_path / "homeserver.yaml"
    shutil.copy(Path("examples/broken/homeserver.yaml"), target)
    before = target.read_bytes()
    code, out = run("fix", "--diff", str(target))
    assert code == 0
    assert target.read_bytes() == before  # --diff writes nothing
    changed = [ln for ln in out.splitlines()
               if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    assert changed == ['-  smpt_pass: "********"', '+  smtp_pass: "********"']
    assert "s3cret" not in out and base64.b64encode(b"s3cret").decode() not in out
    code, out = run("fix", str(target))
    assert code == 0
    code, out = run("check", str(target))
    assert code == 0, out


def test_refuses_when_file_changed_since_read(tmp_path: Path) -> None:
    target = tmp_path / "homeserver.yaml"
    shutil.copy(CORPUS / "seed-typo.yaml", target)
    result = check([str(target)])
    fixes = plan(result.config, result.diagnostics)
    target.write_text(target.read_text() + "# edited meanwhile\n")
    from maildoctor.config.fix import FixError

    with pytest.raises(FixError, match="changed since it was read"):
        write(fixes[0])
    assert target.read_text().endswith("# edited meanwhile\n")


def test_unsafe_fixes_need_the_flag(tmp_path: Path) -> None:
    target = tmp_path / "homeserver.yaml"
    target.write_text(
        "server_name: example.org\npublic_baseurl: https://m.example.org/\n"
        "email:\n  smtp_host: smtp.example.org\n  smtp_port: 465\n"
        "  notif_from: 'M <n@example.org>'\n"
    )
    code, out = run("fix", str(target))
    assert code == 1 and "force_tls" not in target.read_text()
    code, out = run("fix", "--unsafe-fixes", str(target))
    assert code == 0, out
    assert "  force_tls: true\n" in target.read_text()


KEYS = ["smtp_host: smtp.example.org", "smtp_port: 587", "smtp_user: u@example.org",
        "notif_from: 'M <n@example.org>'", "app_name: Matrix", "enable_notifs: false"]
TYPOS = {"smpt_pass": "smtp_pass", "smtp_password": "smtp_pass", "notif_form": "notif_from",
         "smpt_host": "smtp_host"}


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    others=st.lists(st.sampled_from(KEYS), unique=True, max_size=5),
    typo=st.sampled_from(sorted(TYPOS)),
    position=st.integers(0, 5),
    indent=st.sampled_from([2, 4]),
    comments=st.lists(st.sampled_from(["# a comment", "  # indented", ""]), max_size=3),
)
def test_fix_changes_only_the_flagged_line(tmp_path_factory: pytest.TempPathFactory,
                                           others: list[str], typo: str, position: int,
                                           indent: int, comments: list[str]) -> None:
    target = TYPOS[typo]
    others = [k for k in others if not k.startswith(target + ":")]
    body = [" " * indent + k for k in others]
    body.insert(min(position, len(body)), " " * indent + f"{typo}: 'v4lue'  # keep me")
    lines = ["server_name: example.org", *comments, "email:", *body, "report_stats: false"]
    path = tmp_path_factory.mktemp("fx") / "hs.yaml"
    path.write_text("\n".join(lines) + "\n")
    run("fix", str(path))
    after = path.read_text().splitlines()
    assert len(after) == len(lines)
    diffs = [(a, b) for a, b in zip(lines, after, strict=True) if a != b]
    assert diffs == [(" " * indent + f"{typo}: 'v4lue'  # keep me",
                      " " * indent + f"{target}: 'v4lue'  # keep me")]
    snapshot = path.read_text()
    run("fix", str(path))
    assert path.read_text() == snapshot


# --- how the file is written: owner, mode, symlinks, backups --------------------------------

SEED = CORPUS / "seed-typo.yaml"
SEED_FIXED = CORPUS / "seed-typo.expected.yaml"
IS_ROOT = os.geteuid() == 0


def test_fix_keeps_the_mode_of_file_and_backup(tmp_path: Path) -> None:
    target = tmp_path / "homeserver.yaml"
    shutil.copy(SEED, target)
    os.chmod(target, 0o640)
    code, out = run("fix", str(target))
    assert code == 0, out
    assert target.read_bytes() == SEED_FIXED.read_bytes()
    for path in (target, tmp_path / "homeserver.yaml.bak"):
        assert path.stat().st_mode & 0o7777 == 0o640, path


@pytest.mark.skipif(not IS_ROOT, reason="only root can give a file to uid 991 (CI runs as root)")
def test_sudo_fix_leaves_the_file_to_synapse_uid_991(tmp_path: Path) -> None:
    target = tmp_path / "homeserver.yaml"
    shutil.copy(SEED, target)
    os.chown(target, 991, 991)
    os.chmod(target, 0o600)
    code, out = run("fix", str(target))
    assert code == 0, out
    assert target.read_bytes() == SEED_FIXED.read_bytes()
    for path in (target, tmp_path / "homeserver.yaml.bak"):
        st = path.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (991, 991, 0o600), path


def test_fix_writes_through_a_symlink_and_keeps_the_link(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    real = secrets / "hs.yaml"
    shutil.copy(SEED, real)
    os.chmod(real, 0o600)
    link = tmp_path / "homeserver.yaml"
    link.symlink_to(Path("secrets") / "hs.yaml")  # relative, as Docker setups often have
    code, out = run("fix", str(link))
    assert code == 0, out
    assert link.is_symlink() and os.readlink(link) == os.path.join("secrets", "hs.yaml")
    assert real.read_bytes() == SEED_FIXED.read_bytes()
    assert real.stat().st_mode & 0o7777 == 0o600
    # The backup sits next to the file it copies, and the output says where.
    assert (secrets / "hs.yaml.bak").read_bytes() == SEED.read_bytes()
    assert not (tmp_path / "homeserver.yaml.bak").exists()
    assert str(secrets / "hs.yaml.bak") in out
    assert not list(secrets.glob(".maildoctor-*")) and not list(tmp_path.glob(".maildoctor-*"))


def test_backups_are_never_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "homeserver.yaml"
    shutil.copy(SEED, target)
    (tmp_path / "homeserver.yaml.bak").write_text("an older backup\n")
    code, out = run("fix", str(target))
    assert code == 0, out
    assert (tmp_path / "homeserver.yaml.bak").read_text() == "an older backup\n"
    assert (tmp_path / "homeserver.yaml.bak.1").read_bytes() == SEED.read_bytes()
    assert "backup of the original: " + str(tmp_path / "homeserver.yaml.bak.1") in out
    assert "are kept" in out
    # The typo comes back; the second run keeps both earlier backups.
    target.write_text(target.read_text().replace("smtp_pass", "smpt_pass"))
    second = target.read_bytes()
    code, out = run("fix", str(target))
    assert code == 0, out
    assert (tmp_path / "homeserver.yaml.bak.1").read_bytes() == SEED.read_bytes()
    assert (tmp_path / "homeserver.yaml.bak.2").read_bytes() == second
    assert target.read_bytes() == SEED_FIXED.read_bytes()


# --- --diff: the same exit status as fix, and no hidden change -------------------------------

LEFT_OVER = """\
server_name: example.org
report_stats: false
public_baseurl: https://matrix.example.org/
smtp_host: mail.example.org
email:
  smtp_port: "587"
  smtp_pass: 123456
  notif_from: "Matrix"
  force_tls: "no"
  smtp_port: 25
"""
NOTHING_FIXABLE = LEFT_OVER.replace("  smtp_pass: 123456\n", "").replace(
    'force_tls: "no"', "force_tls: true").replace("smtp_host: mail.example.org\n", "")
DIFF_CASES = {
    **{name: (CORPUS / f"{name}.yaml").read_text() for name in CASES},
    "errors-left": LEFT_OVER,
    "nothing-fixable": NOTHING_FIXABLE,
}


@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe"])
@pytest.mark.parametrize("name", sorted(DIFF_CASES))
def test_diff_exits_as_fix_would(name: str, unsafe: bool, tmp_path: Path) -> None:
    flags = ["--unsafe-fixes"] if unsafe else []
    for sub in ("diff", "fix"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "homeserver.yaml").write_text(DIFF_CASES[name])
    shown = tmp_path / "diff" / "homeserver.yaml"
    diff_code, diff_out = run("fix", "--diff", *flags, str(shown))
    assert shown.read_text() == DIFF_CASES[name]  # --diff writes nothing
    fix_code, fix_out = run("fix", *flags, str(tmp_path / "fix" / "homeserver.yaml"))
    assert diff_code == fix_code, (diff_out, fix_out)
    assert bool(re.search(r"\d+ errors? would be left", diff_out)) == (fix_code == 1)


def test_errors_left_case_really_has_errors_left() -> None:
    # Guards the parity test above: both exit statuses occur in it.
    assert "errors-left" in DIFF_CASES and "seed-typo" in DIFF_CASES


def test_diff_shows_the_quotes_added_to_a_password_but_never_the_password(
        tmp_path: Path) -> None:
    target = tmp_path / "homeserver.yaml"
    shutil.copy(CORPUS / "numeric-password.yaml", target)
    code, out = run("fix", "--diff", str(target))
    assert code == 0, out
    changed = [ln for ln in out.splitlines()
               if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    assert changed == ["-  smtp_pass: ********", "+  smtp_pass: '********'"]
    assert "0123456" not in out and "42798" not in out.replace("octal number 42798", "")


def test_diff_masks_a_password_written_below_its_key() -> None:
    from maildoctor.cli.fix import masked_diff

    old = ("email:\n  smtp_pass:\n    's3cret'\n  password: |\n    hunter2\n\n    more\n"
           "  smpt_host: x\n")
    new = old.replace("smpt_host", "smtp_host")
    out = masked_diff("hs.yaml", old, new)
    assert "s3cret" not in out and "hunter2" not in out and "more" not in out
    assert "-  smpt_host: x" in out and "+  smtp_host: x" in out
    assert "    ********" in out


def test_a_changed_line_shows_even_when_both_sides_mask_alike() -> None:
    from maildoctor.cli.fix import masked_diff

    out = masked_diff("hs.yaml", "email:\n  smtp_pass: 'old1'\n", "email:\n  smtp_pass: 'new2'\n")
    assert "-  smtp_pass: '********'" in out and "+  smtp_pass: '********'" in out
    assert "old1" not in out and "new2" not in out


# --- duplicate keys ----------------------------------------------------------------------------

DUPLICATED_TYPO = """\
server_name: example.org
public_baseurl: https://m.example.org/
email:
  smtp_host: smtp.example.org
  smtp_port: 587
  smpt_pass: "a1b2c3"
  smtp_user: u
  smpt_pass: "d4e5f6"
  enable_tls: "false"
  notif_from: "M <n@example.org>"
"""


def test_a_duplicate_key_blocks_only_the_fixes_that_touch_it(tmp_path: Path) -> None:
    target = tmp_path / "homeserver.yaml"
    target.write_text(DUPLICATED_TYPO)
    code, out = run("fix", str(target))
    assert code == 1
    assert target.read_text() == DUPLICATED_TYPO.replace('"false"', "false")
    not_fixed = [ln for ln in out.splitlines() if ln.startswith("not fixed:")]
    assert len(not_fixed) == 1
    assert not_fixed[0].endswith(
        "(fix MD001 (duplicate key email.smpt_pass, lines 6 and 8) first)")
    assert "a1b2c3" not in out and "d4e5f6" not in out


def test_each_not_fixed_line_is_printed_once(tmp_path: Path) -> None:
    target = tmp_path / "homeserver.yaml"
    target.write_text(LEFT_OVER)
    code, out = run("fix", "--unsafe-fixes", str(target), "-c", str(target))
    lines = [ln for ln in out.splitlines() if ln.startswith("not fixed:")]
    assert code == 1 and lines and len(lines) == len(set(lines))
    assert "DuplicateKeyError" not in out


# --- MD004: renaming a .yml is advice, never applied --------------------------------------------

def test_yml_rename_is_display_only_and_warns_about_its_email_block(tmp_path: Path) -> None:
    from maildoctor.diagnostics import Applicability

    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "50-email.yaml").write_text(
        "server_name: example.org\nemail:\n  smtp_host: smtp.example.org\n"
        "  notif_from: 'M <n@example.org>'\n")
    (conf / "60-extra.yml").write_text("email:\n  smtp_pass: 'x1y2'\n")
    (conf / "70-other.yml").write_text("report_stats: false\n")
    found = {Path(d.location.file).name: d for d in check([str(conf)]).diagnostics
             if d.code == "MD004" and d.location}
    extra, other = found["60-extra.yml"], found["70-other.yml"]
    for d in (extra, other):
        assert d.fix is not None and d.fix.applicability is Applicability.DISPLAY_ONLY
        assert d.fix.edits == ()
    assert extra.fix is not None and "replace the whole email: block" in extra.fix.message
    assert str(conf / "50-email.yaml") in extra.fix.message
    assert other.fix is not None and "email" not in other.fix.message
    run("fix", "--unsafe-fixes", str(conf))
    assert (conf / "60-extra.yml").exists() and not (conf / "60-extra.yaml").exists()


def test_diff_of_a_file_given_twice_exits_as_fix_would(tmp_path: Path) -> None:
    target = tmp_path / "homeserver.yaml"
    shutil.copy(SEED, target)
    diff_code, out = run("fix", "--diff", str(target), "-c", str(target))
    assert diff_code == 0, out
    fix_code, out = run("fix", str(target), "-c", str(target))
    assert fix_code == 0, out
    assert target.read_bytes() == SEED_FIXED.read_bytes()


def test_a_crlf_file_keeps_its_line_endings(tmp_path: Path) -> None:
    target = tmp_path / "homeserver.yaml"
    target.write_bytes(SEED.read_bytes().replace(b"\n", b"\r\n"))
    code, out = run("fix", str(target))
    assert code == 0, out
    assert target.read_bytes() == SEED_FIXED.read_bytes().replace(b"\n", b"\r\n")


@pytest.mark.skipif(not IS_ROOT, reason="needs root to set up a file owned by another user")
def test_a_user_who_cannot_keep_the_owner_gets_nothing_written() -> None:
    import tempfile

    # pytest's tmp_path sits in a root-only directory; `nobody` needs one it can reach.
    tmp = Path(tempfile.mkdtemp(prefix="maildoctor-owner-"))
    try:
        _write_as_nobody(tmp)
    finally:
        shutil.rmtree(tmp)


def _write_as_nobody(tmp_path: Path) -> None:
    from maildoctor.config.fix import FixError, file_digest, replace_file

    os.chmod(tmp_path, 0o777)
    target = tmp_path / "homeserver.yaml"
    shutil.copy(SEED, target)
    os.chown(target, 991, 991)
    os.chmod(target, 0o666)  # writable by anyone, but owned by 991
    digest = file_digest(str(target))
    pid = os.fork()
    if pid == 0:  # the child becomes `nobody` and tries to write
        status = 5
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            replace_file(str(target), "server_name: x\n", digest)
            status = 0
        except FixError as exc:
            status = 3 if "cannot keep the file's owner 991:991" in str(exc) else 4
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 3
    assert target.read_bytes() == SEED.read_bytes()
    st = target.stat()
    assert (st.st_uid, st.st_gid) == (991, 991)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["homeserver.yaml"]
