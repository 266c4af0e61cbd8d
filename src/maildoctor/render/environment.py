"""Where Synapse runs, in a few lines of text (``check`` and ``probe`` print them).

Every value here came from another process, a file or the resolver, so each is made
printable before it reaches a terminal.
"""

from __future__ import annotations

from collections.abc import Iterator

from maildoctor.config.environment import Environment


def printable(text: object) -> str:
    """``text`` with control and other non-printable characters shown as escapes."""
    from maildoctor.printable import printable as one_sanitizer

    return one_sanitizer(text)


def _versions(env: Environment) -> str:
    inst = env.installation
    assert inst is not None
    parts = [f"{name} {value}" for name, value in (
        ("Twisted", inst.twisted), ("pyOpenSSL", inst.pyopenssl),
        ("OpenSSL", (inst.openssl or "").removeprefix("OpenSSL ")),
        ("Python", inst.python_version)) if value]
    return ", ".join(parts)


def lines(env: Environment | None, version: object) -> Iterator[str]:
    """The installation used (or the places looked at), the trust store, the container."""
    if env is None:
        return
    inst = env.installation
    if inst is not None and not inst.error:
        yield (f"Synapse {printable(inst.synapse)} ({printable(_versions(env))}) at "
               f"{printable(inst.python)} ({printable(inst.found_by)}): checked as Synapse "
               f"{version}")
        store = [p for p in (inst.trust_cafile, inst.trust_capath) if p]
        if store:
            yield (f"  trusted certificates as Synapse's TLS loads them: "
                   f"{printable(', '.join(store))} ({printable(inst.trust_source or '')})")
    elif inst is not None:
        yield (f"Synapse's interpreter {printable(inst.python)}: {printable(inst.error)}; "
               f"checked as Synapse {version}")
    elif env.searched:
        yield (f"no Synapse installation found (looked at {printable(', '.join(env.searched))});"
               f" checked as Synapse {version}; give --synapse-python PATH to use yours")
    for note in env.notes:
        yield f"  note: {printable(note)}"
    if env.container is not None:
        yield (f"maildoctor runs in a {env.container.kind} container "
               f"({printable('; '.join(env.container.evidence))})")


def network_lines(env: Environment | None) -> Iterator[str]:
    """The families routed here and smtp_host's addresses in HostnameEndpoint's order."""
    net = env.network if env is not None else None
    if net is None:
        return
    routed = [f for f, ok in (("IPv4", net.ipv4), ("IPv6", net.ipv6)) if ok]
    loop = [f for f, ok in (("127.0.0.1", net.loopback4), ("::1", net.loopback6)) if ok]
    yield (f"network: this host routes {' and '.join(routed) or 'neither IPv4 nor IPv6'} "
           f"beyond itself; loopback: {', '.join(loop) or 'none'}")
    if net.targets:
        tried = ", ".join(f"{t.address} ({t.family}"
                          f"{'' if t.routable else ', no route: ' + t.error})"
                          for t in net.targets)
        yield f"  {printable(net.host)}: Twisted's HostnameEndpoint tries {printable(tried)}"
    elif net.resolve_error:
        yield f"  {printable(net.host)}: {printable(net.resolve_error)}"
