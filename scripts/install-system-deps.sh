#!/usr/bin/env bash
# Debian packages the tests need: a real Postfix with Dovecot SASL, swaks for benchmarks,
# iproute2 and util-linux for the namespace tests; Knot (authoritative DNS for the
# sender-domain zones), nginx (the reverse proxy in front of Synapse), OpenDKIM (Postfix
# signs), Dovecot IMAP, LMTP and Sieve (the round trip's mailbox);
# Prometheus (prometheus, promtool) for the exporter's scrape and alert-rule tests;
# tmux for the terminal tests.
# Installs only what is missing; needs root (CI runs as root).
set -euo pipefail
need=()
command -v postfix >/dev/null 2>&1 || need+=(postfix)
command -v dovecot >/dev/null 2>&1 || need+=(dovecot-core)
command -v swaks   >/dev/null 2>&1 || need+=(swaks)
# `ip` and `unshare` for the network and container namespace tests (tests/host)
command -v ip      >/dev/null 2>&1 || need+=(iproute2)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
# the relay's full-disk (tmpfs in a mount namespace) and read-only queue tests
{ command -v nsenter && command -v setpriv; } >/dev/null 2>&1 || need+=(util-linux)
command -v mount   >/dev/null 2>&1 || need+=(mount)
[ -x /usr/sbin/knotd ]    || need+=(knot)
[ -x /usr/sbin/nginx ]    || need+=(nginx)
[ -x /usr/sbin/opendkim ] || need+=(opendkim)
command -v opendkim-genkey >/dev/null 2>&1 || need+=(opendkim-tools)
[ -x /usr/lib/dovecot/imap ]  || need+=(dovecot-imapd)
# LMTP: Postfix hands the round trip's mail to Dovecot (and Sieve files it as Junk or not)
[ -x /usr/lib/dovecot/lmtp ]  || need+=(dovecot-lmtpd)
[ -x /usr/lib/dovecot/dovecot-lda ] && [ -e /usr/lib/dovecot/modules/lib90_sieve_plugin.so ] \
  || need+=(dovecot-sieve)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need+=(prometheus)
# tmux: a real terminal for the tests of what probe and explain show on a tty
command -v tmux    >/dev/null 2>&1 || need+=(tmux)
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
