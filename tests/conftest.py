"""Shared test setup. Infrastructure fixtures (test SMTP server, Postfix, Synapse) live in
tests/infra/ as pytest plugins, one module per piece of infrastructure."""

import importlib.util

pytest_plugins = [
    name
    for name in (
        "tests.infra.smtp_fixtures",
        "tests.infra.postfix",
        "tests.infra.synapse",
        "tests.infra.knot",
        "tests.infra.bad_dns",
        "tests.infra.mailbox",
        "tests.infra.nginx",
        "tests.infra.prometheus",
    )
    if importlib.util.find_spec(name) is not None
]
