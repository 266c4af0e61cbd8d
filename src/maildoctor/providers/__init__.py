"""The provider library: how to point Synapse at Gmail, SES, a local Postfix, ...

Each provider is one YAML file under ``providers/data/`` (facts only: host, port, TLS
mode, what the login looks like, sender rules, and advice keyed by SMTP reply). This
package loads them into frozen :class:`Provider` records, recognises a provider from
``smtp_host`` so ``check``/``probe``/``explain`` can add its hints, and renders a
commented ``email:`` block for ``maildoctor init``.
"""

from __future__ import annotations

import os
from functools import cache

import yaml

from maildoctor.providers.model import Provider, ProviderDataError, TlsMode

__all__ = [
    "Provider",
    "ProviderDataError",
    "TlsMode",
    "find_provider_for_host",
    "get_provider",
    "load_providers",
]


@cache
def _load() -> tuple[Provider, ...]:
    found: list[Provider] = []
    # Plain file access (not importlib.resources, which costs 30 ms to import): `check`
    # loads the library on every run to recognise providers, so its start time matters.
    data_dir = os.path.join(os.path.dirname(__file__), "data")
    for name in sorted(os.listdir(data_dir)):
        if not name.endswith(".yaml"):
            continue
        # Our own data files: libyaml's loader reads them ten times faster.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        with open(os.path.join(data_dir, name), encoding="utf-8") as fh:
            data = yaml.load(fh.read(), Loader=loader)
        if not isinstance(data, dict):
            raise ProviderDataError(f"{name}: not a mapping")
        provider = Provider.from_mapping(data, name)
        if f"{provider.name}.yaml" != name:
            raise ProviderDataError(f"{name}: name is {provider.name!r}")
        found.append(provider)
    return tuple(sorted(found, key=lambda p: p.name))


def load_providers() -> dict[str, Provider]:
    """Every provider in the library, by name, in name order (loaded once per process)."""
    return {p.name: p for p in _load()}


def get_provider(name: str) -> Provider | None:
    return load_providers().get(name.strip().lower())


def find_provider_for_host(host: object, port: object = None) -> Provider | None:
    """The provider whose host patterns match ``smtp_host``, or None.

    ``host`` is taken as written in the config (anything that is not a string matches
    nothing). ``port`` (``smtp_port``) only matters for hosts several entries share, such
    as 127.0.0.1: Proton Bridge is recognised on 1025, a local MTA otherwise.
    """
    if not isinstance(host, str) or not host.strip():
        return None
    port_number = port if type(port) is int else None
    if isinstance(port, str) and port.strip().isdigit():
        port_number = int(port)
    for provider in _load():
        if provider.match_port is not None and provider.matches_host(host, port_number):
            return provider
    for provider in _load():
        if provider.match_port is None and provider.matches_host(host):
            return provider
    return None
