#!/usr/bin/env bash
# Debian packages the tests need: a real Postfix with Dovecot SASL, swaks for benchmarks,
# iproute2 and util-linux for the namespace tests.
# Installs only what is missing; needs root (CI runs as root).
set -euo pipefail
need=()
command -v postfix >/dev/null 2>&1 || need+=(postfix)
command -v dovecot >/dev/null 2>&1 || need+=(dovecot-core)
command -v swaks   >/dev/null 2>&1 || need+=(swaks)
# `ip` and `unshare` for the network and container namespace tests (tests/host)
command -v ip      >/dev/null 2>&1 || need+=(iproute2)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "maildoctor tests need these Debian packages: ${need[*]}" >&2
  echo "install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing ${need[*]} (apt)..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
