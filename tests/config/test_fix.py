"""`maildoctor fix`: byte-exact results, idempotence, only flagged lines change, no secrets."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
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
    target = tmp_path / "homeserver.yaml"
    shutil.copy(CORPUS / f"{case}.yaml", target)
    code, out = run("fix", str(target))
    assert code == 0, out
    assert target.read_bytes() == (CORPUS / f"{case}.expected.yaml").read_bytes()
    backup = (tmp_path / "homeserver.yaml.bak").read_bytes()
    assert backup == (CORPUS / f"{case}.yaml").read_bytes()
    again = target.read_bytes()
    code, out = run("fix", str(target))
    assert code == 0 and "nothing to fix" in out
    assert target.read_bytes() == again


def test_seed_example_diff_is_one_line_and_masks_the_password(tmp_path: Path) -> None:
    target = tmp_path / "homeserver.yaml"
    shutil.copy(Path("examples/broken/homeserver.yaml"), target)
    before = target.read_bytes()
    code, out = run("fix", "--diff", str(target))
    assert code == 0
    assert target.read_bytes() == before  # --diff writes nothing
    changed = [ln for ln in out.splitlines()
               if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    assert changed == ["-  smpt_pass: ********", "+  smtp_pass: ********"]
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
