#!/usr/bin/env bash
# Debian packages the tests need: a real Postfix with Dovecot SASL, swaks for benchmarks, and
# Prometheus (prometheus, promtool) for the exporter's scrape and alert-rule tests.
# Installs only what is missing; needs root (CI runs as root).
set -euo pipefail
need=()
command -v postfix >/dev/null 2>&1 || need+=(postfix)
command -v dovecot >/dev/null 2>&1 || need+=(dovecot-core)
command -v swaks   >/dev/null 2>&1 || need+=(swaks)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need+=(prometheus)
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
