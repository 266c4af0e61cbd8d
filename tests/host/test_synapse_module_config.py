"""The Synapse module's own pieces, without a Synapse: its config and the -c arguments."""

from __future__ import annotations

import pytest

from maildoctor.synapse_module import MailDoctor, ModuleConfig, config_paths_from_argv


@pytest.mark.parametrize(("argv", "paths"), [
    (["homeserver", "-c", "a.yaml", "--config-path", "conf.d", "-cb.yaml",
      "--config-path=c.yaml", "--generate-keys"], ("a.yaml", "conf.d", "b.yaml", "c.yaml")),
    (["synapse.app.homeserver", "--keys-directory", "/data"], ()),
    (["synapse.app.homeserver", "-c"], ()),
])
def test_config_paths_come_from_synapses_arguments(argv: list[str],
                                                   paths: tuple[str, ...]) -> None:
    assert config_paths_from_argv(argv) == paths


def test_defaults_and_durations() -> None:
    assert MailDoctor.parse_config(None) == ModuleConfig()
    parsed = MailDoctor.parse_config({"probe_interval": "6h", "timeout": 5, "delay": "30s",
                                      "config_paths": ["/etc/matrix-synapse/homeserver.yaml"]})
    assert (parsed.probe_interval, parsed.timeout, parsed.delay) == (21600.0, 5.0, 30.0)
    assert parsed.config_paths == ("/etc/matrix-synapse/homeserver.yaml",)
    assert MailDoctor.parse_config({"probe_interval": 0}).probe_interval is None


@pytest.mark.parametrize(("config", "words"), [
    ({"probe_interval": "often"}, "not a duration"),
    ({"probe_interval": 5}, "at least 60"),
    ({"timeout": 0}, "between 0.1 and 300"),
    ({"config_paths": "homeserver.yaml"}, "a list"),
    ({"probe_intervall": "1h"}, "unknown maildoctor option(s) probe_intervall"),
    ({"delay": True}, "number of seconds"),
])
def test_bad_config_is_refused_with_the_key_named(config: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        MailDoctor.parse_config(config)


def test_the_constructor_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    """A config path that does not exist: one ERROR line, no exception, no probe thread."""
    MailDoctor(ModuleConfig(config_paths=("/nonexistent/homeserver.yaml",), probe=False),
               api=None)
    errors = [r for r in caplog.records if r.name == "maildoctor" and r.levelname == "ERROR"]
    assert len(errors) == 1 and "startup check failed" in errors[0].getMessage()
