"""The loader: Synapse's file/directory merge, PyYAML's YAML 1.1, positions, and bad input.

Facts from spec/synapse-email.md section 3: directories give their ``*.yaml`` files sorted,
not recursive; a shallow ``dict.update`` merge, later files win; empty or non-mapping files
are ignored; duplicate keys are last-wins. Bad input must give a ConfigLoadError (with a
location where one exists), never another exception, in bounded time and memory.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maildoctor.config.check import check
from maildoctor.config.load import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    find_config_files,
    load,
    parse_text,
    read_text,
)
from maildoctor.errors import ConfigLoadError


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- Synapse's merge -------------------------------------------------------------------


def test_directory_gives_sorted_yaml_files_only_not_recursive(tmp_path: Path) -> None:
    d = tmp_path / "conf.d"
    d.mkdir()
    write(d / "20-b.yaml", "b: 2\n")
    write(d / "10-a.yaml", "a: 1\n")
    write(d / "15-c.yml", "c: 3\n")
    write(d / "README", "not config\n")
    (d / "sub").mkdir()
    write(d / "sub" / "30-d.yaml", "d: 4\n")
    files, skipped = find_config_files([str(d)])
    assert files == [str(d / "10-a.yaml"), str(d / "20-b.yaml")]
    assert {(Path(s.path).name, s.reason) for s in skipped} == {
        ("15-c.yml", "not-yaml-extension"), ("README", "not-yaml-extension"),
        ("sub", "subdirectory"),
    }
    assert load([str(d)]).merged == {"a": 1, "b": 2}


def test_explicit_file_is_read_whatever_its_extension(tmp_path: Path) -> None:
    f = write(tmp_path / "homeserver.yml", "server_name: example.org\n")
    assert load([f]).merged == {"server_name": "example.org"}


def test_shallow_merge_later_file_wins_whole_top_level_key(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", "server_name: a\nemail:\n  smtp_host: h\n  notif_from: x\n")
    b = write(tmp_path / "b.yaml", "email:\n  smtp_pass: p\nreport_stats: false\n")
    cfg = load([a, b])
    assert cfg.merged == {"server_name": "a", "email": {"smtp_pass": "p"}, "report_stats": False}
    (ov,) = cfg.overrides
    assert (ov.key, ov.earlier.path, ov.later.path) == ("email", a, b)
    # Positions come from the file that won each top-level key.
    assert cfg.node(("email", "smtp_pass")) is not None
    assert cfg.node(("email", "smtp_host")) is None
    node = cfg.node(("server_name",))
    assert node is not None and node.file == a


def test_order_of_paths_decides_the_winner(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", "server_name: a\n")
    b = write(tmp_path / "b.yaml", "server_name: b\n")
    assert load([a, b]).merged["server_name"] == "b"
    assert load([b, a]).merged["server_name"] == "a"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "- a\n- b\n", "42\n",
                                  "just a string\n", "null\n"])
def test_empty_or_non_mapping_file_is_ignored(tmp_path: Path, text: str) -> None:
    good = write(tmp_path / "a.yaml", "server_name: example.org\n")
    odd = write(tmp_path / "b.yaml", text)
    cfg = load([good, odd])
    assert cfg.merged == {"server_name": "example.org"}
    assert [pf.used for pf in cfg.files] == [True, False]
    # ... and check() reports it (MD003) rather than failing (MD109: no email: either).
    assert sorted(d.code for d in check([good, odd]).diagnostics) == ["MD003", "MD109"]


def test_duplicate_keys_last_wins_with_both_positions() -> None:
    pf = parse_text("f.yaml", "email:\n  smtp_host: first\n  smtp_port: 25\n  smtp_host: last\n")
    assert pf.data == {"email": {"smtp_host": "last", "smtp_port": 25}}
    (dup,) = pf.duplicates
    assert dup.path == ("email", "smtp_host")
    assert (dup.first.key_line, dup.first.key_column) == (2, 3)
    assert (dup.later.key_line, dup.later.key_column) == (4, 3)
    assert pf.nodes[("email", "smtp_host")].key_line == 4  # the position of the value used


def test_yaml_11_scalars_as_pyyaml_reads_them() -> None:
    pf = parse_text("f.yaml", "a: yes\nb: on\nc: off\nd: 0123\ne: 0o17\nf: 1_000\ng: 12:30\n"
                              "h: ~\ni: '0123'\nj: Yes\n")
    assert pf.data == {"a": True, "b": True, "c": False, "d": 83, "e": "0o17", "f": 1000,
                       "g": 750, "h": None, "i": "0123", "j": True}
    assert pf.nodes[("d",)].raw == "0123"  # what was written, for messages and fixes
    assert pf.nodes[("i",)].style == "'"


def test_positions_of_keys_and_values() -> None:
    text = ("server_name: example.org\n"
            "email:\n"
            "  smtp_host:   smtp.example.net\n"
            "  subjects:\n"
            "    password_reset: \"Reset\"\n"
            "registrations_require_3pid: [email, msisdn]\n")
    pf = parse_text("f.yaml", text)
    host = pf.nodes[("email", "smtp_host")]
    assert (host.key_line, host.key_column, host.value_line, host.value_column) == (3, 3, 3, 16)
    assert host.raw == "smtp.example.net" and host.style is None
    reset = pf.nodes[("email", "subjects", "password_reset")]
    assert (reset.key_line, reset.key_column, reset.value_column, reset.style) == (5, 5, 21, '"')
    block = pf.nodes[("email",)]
    assert (block.key_line, block.value_line, block.raw) == (2, 3, None)
    second = pf.nodes[("registrations_require_3pid", 1)]
    assert (second.value_line, second.value_column) == (6, 37)


def test_location_points_at_key_or_value(tmp_path: Path) -> None:
    f = write(tmp_path / "h.yaml", "email:\n  smtp_port:  abc\n")
    cfg = load([f])
    key = cfg.location(("email", "smtp_port"))
    value = cfg.location(("email", "smtp_port"), at="value")
    assert key is not None and (key.line, key.column, key.path) == (2, 3, "email.smtp_port")
    assert value is not None and (value.line, value.column) == (2, 15)
    # A missing key falls back to its nearest located ancestor.
    missing = cfg.location(("email", "notif_from"))
    assert missing is not None and (missing.line, missing.column) == (1, 1)


# --- bad input ---------------------------------------------------------------------------


def load_error(tmp_path: Path, data: bytes, name: str = "homeserver.yaml") -> ConfigLoadError:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ConfigLoadError) as info:
        load([str(path)])
    assert info.value.file == str(path)
    return info.value


def test_non_utf8_is_located(tmp_path: Path) -> None:
    err = load_error(tmp_path, b"server_name: x\nemail:\n  app_name: caf\xe9\n")
    assert (err.line, err.column) == (3, 16)
    assert "UTF-8" in err.message and "0xe9" in err.message


def test_binary_file(tmp_path: Path) -> None:
    err = load_error(tmp_path, b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)))
    assert "binary" in err.message


def test_control_character_is_located(tmp_path: Path) -> None:
    err = load_error(tmp_path, b"server_name: x\nemail:\n  app_name: Ma\x1ftrix\n")
    assert (err.line, err.column) == (3, 15)
    assert "U+001F" in err.message


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "h.yaml"
    f.write_bytes(b"\xef\xbb\xbfserver_name: x\n")
    assert load([str(f)]).merged == {"server_name": "x"}


@pytest.mark.parametrize(("text", "line", "column"), [
    ("email:\n  smtp_host: [a\n", 3, 1),
    ("email:\n  smtp_host: x\n smtp_port: 25\n", 3, 2),
    ("email:\n  smtp_pass: @bad\n", 2, 14),
    ("a: 'unterminated\n", 2, 1),
    ("a: b: c\n", 1, 5),
])
def test_yaml_syntax_errors_are_located(tmp_path: Path, text: str, line: int, column: int) -> None:
    err = load_error(tmp_path, text.encode())
    assert "YAML syntax error" in err.message
    assert (err.line, err.column) == (line, column)


def test_tab_indentation_gets_a_hint(tmp_path: Path) -> None:
    err = load_error(tmp_path, b"email:\n\tsmtp_host: smtp.example.net\n")
    assert err.line == 2
    assert "tab" in err.hint.lower() and "spaces" in err.hint


@pytest.mark.parametrize("text", [
    "email:\n  smtp_pass: *s3cret\n",
    "email:\n  smtp_pass: !s3cret x\n",
    "email:\n  smtp_pass: !!int s3cret\n",
    "email:\n  smpt_pass: !!float s3cret\n",
])
def test_parser_errors_never_quote_a_password(tmp_path: Path, text: str) -> None:
    err = load_error(tmp_path, text.encode())
    assert "s3cret" not in str(err) and "s3cret" not in err.hint


def test_alias_bomb_is_refused_fast_and_small(tmp_path: Path) -> None:
    """Billion laughs: 9^10 strings if expanded. Refused in well under a second, no growth."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    lines += ["email:", "  smtp_host: *a9", "  smtp_pass: *a9", "  notif_from: *a9"]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    err = load_error(tmp_path, ("\n".join(lines) + "\n").encode())
    assert time.monotonic() - start < 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB
    assert "alias" in err.message


def test_small_aliases_are_fine(tmp_path: Path) -> None:
    f = write(tmp_path / "h.yaml", "base: &b {smtp_host: h, smtp_port: 587}\nemail:\n  <<: *b\n"
                                   "  notif_from: a@example.org\n")
    cfg = load([f])
    assert cfg.merged["email"] == {"smtp_host": "h", "smtp_port": 587,
                                   "notif_from": "a@example.org"}


@pytest.mark.parametrize("text", [
    "[" * 10_000 + "]" * 10_000,
    "a:\n" + "".join(" " * (2 * i) + f"k{i}:\n" for i in range(1, MAX_DEPTH + 50)),
    "{a: " * (MAX_DEPTH + 5) + "1" + "}" * (MAX_DEPTH + 5),
])
def test_very_deep_nesting_is_refused(tmp_path: Path, text: str) -> None:
    start = time.monotonic()
    err = load_error(tmp_path, text.encode())
    assert "nesting" in err.message
    assert time.monotonic() - start < 5


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:
        fh.write(b"server_name: x\n")
        fh.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ConfigLoadError) as info:
        read_text(str(path))
    assert f"{MAX_FILE_BYTES:,}" in info.value.message


def test_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    filler = "#" * 99 + "\n"
    head = "server_name: x\n"
    path.write_text(head + filler * ((MAX_FILE_BYTES - len(head)) // len(filler)))
    assert os.path.getsize(path) <= MAX_FILE_BYTES
    assert load([str(path)]).merged == {"server_name": "x"}


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigLoadError) as info:
        load([str(tmp_path / "nope.yaml")])
    assert info.value.file == str(tmp_path / "nope.yaml") and "no such file" in info.value.message


def test_directory_read_as_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigLoadError) as info:
        read_text(str(tmp_path))
    assert "directory" in info.value.message


def test_directory_without_yaml_files(tmp_path: Path) -> None:
    write(tmp_path / "homeserver.yml", "server_name: x\n")
    with pytest.raises(ConfigLoadError) as info:
        load([str(tmp_path)])
    assert ".yaml" in info.value.message


def test_no_paths() -> None:
    with pytest.raises(ConfigLoadError):
        load([])


def test_unreadable_file(tmp_path: Path) -> None:
    """chmod 000: an error for normal users; root (as in CI) reads it, like Synapse would."""
    f = tmp_path / "secret.yaml"
    f.write_text("server_name: x\n")
    f.chmod(0)
    try:
        if os.geteuid() == 0:
            assert load([str(f)]).merged == {"server_name": "x"}
        else:
            with pytest.raises(ConfigLoadError) as info:
                load([str(f)])
            assert "cannot read" in info.value.message
    finally:
        f.chmod(0o600)


# --- Hypothesis -------------------------------------------------------------------------


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text_only_ever_raises_config_load_error(text: str) -> None:
    try:
        pf = parse_text("fuzz.yaml", text)
    except ConfigLoadError:
        return
    assert pf.used == isinstance(pf.data, dict)


yaml_alphabet = st.sampled_from(list("abc:-[]{}#&*!|>'\"%@`?,\n\t 01yYnN~.\\"))


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=yaml_alphabet, max_size=200))
def test_yaml_shaped_text_only_ever_raises_config_load_error(text: str) -> None:
    try:
        parse_text("fuzz.yaml", text)
    except ConfigLoadError:
        pass


keys = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1,
               max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False, allow_infinity=False, width=32),
                    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=12)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(data, dict):
        for k, v in data.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(first=st.dictionaries(keys, values, min_size=1, max_size=5),
       second=st.dictionaries(keys, values, max_size=5))
def test_generated_mappings_round_trip(tmp_path: Path, first: dict[str, Any],
                                       second: dict[str, Any]) -> None:
    a = write(tmp_path / "a.yaml", yaml.safe_dump(first))
    b = write(tmp_path / "b.yaml", yaml.safe_dump(second))
    cfg = load([a, b])
    expected = {**first, **second}
    assert cfg.merged == expected
    for path in _paths(expected):
        node = cfg.node(path)
        assert node is not None, path
        assert node.file == (b if path[0] in second else a)
        assert node.key_line >= 1 and node.value_line >= node.key_line


def test_yaml_error_on_a_password_line_hints_at_quoting(tmp_path: Path) -> None:
    path = write(tmp_path / "hs.yaml", "server_name: x\nemail:\n  smtp_pass: @s3cret\n")
    with pytest.raises(ConfigLoadError) as info:
        load([path])
    assert "single quotes" in info.value.hint
    assert "s3cret" not in str(info.value) + info.value.hint
