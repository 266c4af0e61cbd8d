"""Run by *Synapse's* interpreter (never imported by maildoctor): print what it has installed.

maildoctor must not import Synapse (or its Twisted) into its own process: they are other
versions, maybe another Python, and importing Synapse is seconds of work with side effects.
So this file is executed as a script by the interpreter Synapse runs under, in a subprocess
bounded in time (:mod:`maildoctor.host.installation`). It uses the standard library only,
reads the installed distributions' metadata files without importing them, and prints one
JSON object on stdout. Anything it cannot find is ``null``, never an exception.

The only import beyond the standard library is pyOpenSSL's module, to read which OpenSSL
Twisted's TLS uses and where that OpenSSL looks for trusted certificates: that is the store
Synapse verifies an SMTP server's certificate against (Twisted's ``platformTrust()`` calls
pyOpenSSL's ``set_default_verify_paths``), and it can differ from Python's own ``ssl``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys

DISTRIBUTIONS = ("matrix-synapse", "twisted", "pyopenssl", "cryptography", "service-identity")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_META = (".dist-info", ".egg-info")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions() -> dict[str, tuple[str, str]]:
    """normalised name -> (version, metadata directory), the first on ``sys.path`` winning,
    as importlib.metadata resolves them. Read from directory names (``name-version.dist-info``)
    rather than through importlib.metadata, which costs more than the rest of this script."""
    found: dict[str, tuple[str, str]] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for item in names:
            if not item.endswith(_META):
                continue
            stem = item.rsplit(".", 1)[0]
            parts = stem.split("-")
            if len(parts) < 2:
                continue
            name = _normal(parts[0])
            if name not in found:
                found[name] = (parts[1], os.path.join(entry or ".", item))
    return found


def _requires(directory: str | None) -> list[str]:
    """The ``Requires-Dist`` lines of one distribution's metadata file."""
    if directory is None:
        return []
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(directory, filename), encoding="utf-8",
                      errors="replace") as fh:
                text = fh.read(1 << 20)
        except OSError:
            continue
        head = text.split("\n\n", 1)[0]  # the headers end at the first blank line
        return [line.split(":", 1)[1].strip() for line in head.splitlines()
                if line.lower().startswith("requires-dist:")]
    return []


def _markers() -> dict[str, str]:
    """PEP 508 marker variables of this interpreter (what packaging's default_environment
    computes, rebuilt here because the target may not have packaging)."""
    info = sys.implementation.version
    implementation = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        implementation += info.releaselevel[0] + str(info.serial)
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": implementation,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def _twisted_trust() -> dict[str, object]:
    """The OpenSSL behind pyOpenSSL and its default verify paths, as pyOpenSSL uses them."""
    out: dict[str, object] = {"openssl": None, "cafile": None, "capath": None,
                              "fallback": False}
    try:
        from OpenSSL import SSL  # pyOpenSSL: small, and what Twisted's TLS is built on
    except Exception:
        return out
    try:
        out["openssl"] = SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode("ascii", "replace")
    except Exception:
        pass
    env_file, env_dir = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if env_file is not None or env_dir is not None:
        out.update(cafile=env_file, capath=env_dir, source="SSL_CERT_FILE/SSL_CERT_DIR")
        return out
    try:
        lib, ffi = SSL._lib, SSL._ffi  # type: ignore[attr-defined]
        default_file = ffi.string(lib.X509_get_default_cert_file()).decode()
        default_dir = ffi.string(lib.X509_get_default_cert_dir()).decode()
    except Exception:
        return out
    out.update(cafile=default_file, capath=default_dir, source="OpenSSL defaults")
    files = getattr(SSL, "_CERTIFICATE_FILE_LOCATIONS", [])
    dirs = getattr(SSL, "_CERTIFICATE_PATH_LOCATIONS", [])
    wheel_dir = getattr(SSL, "_CRYPTOGRAPHY_MANYLINUX_CA_DIR", b"").decode()
    wheel_file = getattr(SSL, "_CRYPTOGRAPHY_MANYLINUX_CA_FILE", b"").decode()
    if (default_dir, default_file) == (wheel_dir, wheel_file):
        # cryptography's wheel bundles an OpenSSL whose compiled-in paths do not exist on
        # the host; pyOpenSSL then loads the first system bundle it finds.
        out.update(cafile=next((f for f in files if os.path.isfile(f)), None),
                   capath=next((d for d in dirs if os.path.isdir(d)), None),
                   fallback=True, source="pyOpenSSL's fallback list")
    return out


def _python_ssl() -> dict[str, object]:
    import ssl  # only when pyOpenSSL could not answer: it costs as much as the rest

    paths = ssl.get_default_verify_paths()
    return {"openssl": ssl.OPENSSL_VERSION, "cafile": paths.cafile, "capath": paths.capath}


def main() -> None:
    dists = installed_distributions()
    synapse = dists.get("matrix-synapse")
    requires = _requires(synapse[1] if synapse else None)
    installed: dict[str, str | None] = {}
    for line in requires:
        match = _NAME.match(line)
        if match:
            hit = dists.get(_normal(match.group(1)))
            installed[match.group(1)] = hit[0] if hit else None
    trust = _twisted_trust()
    report = {
        "executable": sys.executable,
        "prefix": sys.prefix,
        "python": platform.python_version(),
        "versions": {name: (dists[name][0] if name in dists else None)
                     for name in DISTRIBUTIONS},
        "requires": requires,
        "installed": installed,
        "markers": _markers(),
        "python_ssl": _python_ssl() if trust.get("openssl") is None else {},
        "twisted_trust": trust,
    }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
