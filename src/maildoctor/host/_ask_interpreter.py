"""Run by *Synapse's* interpreter (never imported by maildoctor): print what it has installed.

maildoctor must not import Synapse (or its Twisted) into its own process: they are other
versions, maybe another Python, and importing Synapse is seconds of work with side effects.
So this file is executed as a script by the interpreter Synapse runs under, in a subprocess
bounded in time (:mod:`maildoctor.host.installation`). It uses the standard library only,
reads the installed distributions' metadata without importing them, and prints one JSON
object on stdout. Anything it cannot find is ``null``, never an exception.

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
import ssl
import sys
from importlib import metadata

DISTRIBUTIONS = ("matrix-synapse", "twisted", "pyopenssl", "cryptography", "service-identity")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
    except Exception:  # a broken dist-info: report it as missing rather than crash
        return None


def _requires(name: str) -> list[str]:
    try:
        return list(metadata.requires(name) or [])
    except Exception:
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


def main() -> None:
    paths = ssl.get_default_verify_paths()
    report = {
        "executable": sys.executable,
        "prefix": sys.prefix,
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in DISTRIBUTIONS},
        "requires": _requires("matrix-synapse"),
        "installed": {},
        "markers": _markers(),
        "python_ssl": {"openssl": ssl.OPENSSL_VERSION, "cafile": paths.cafile,
                       "capath": paths.capath},
        "twisted_trust": _twisted_trust(),
    }
    installed: dict[str, str | None] = {}
    for line in _requires("matrix-synapse"):
        match = _NAME.match(str(line))
        if match:
            installed[match.group(1)] = _version(match.group(1))
    report["installed"] = installed
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
