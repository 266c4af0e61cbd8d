#!/usr/bin/env bash
# `make demo`: the seed case from config to diagnosis.
#  1. `maildoctor check` on the bundled broken homeserver.yaml (the smpt_pass typo);
#  2. the built-in test SMTP server started on a free loopback port, offering AUTH PLAIN LOGIN
#     like the server in element-hq/synapse#18037;
#  3. `maildoctor probe` of that config against it: the diagnosis Synapse never gives.
set -u
BIN=${1:-.venv/bin}
EXAMPLE=examples/broken/homeserver.yaml
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say "maildoctor check $EXAMPLE"
"$BIN/maildoctor" check "$EXAMPLE"
echo "(exit status $?)"

"$BIN/maildoctor" testserver --port 0 --mech plain --mech login --ready-file "$work/port" \
    > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port" 2>/dev/null) || { echo "test server did not start:"; cat "$work/server.log"; exit 1; }
# The example points at port 2525; point a copy at the test server's free port.
sed "s/smtp_port: 2525/smtp_port: $port/" "$EXAMPLE" > "$work/homeserver.yaml"

say "maildoctor testserver --mech plain --mech login   # running on 127.0.0.1:$port"
say "maildoctor probe homeserver.yaml   # the example, pointed at port $port"
"$BIN/maildoctor" probe "$work/homeserver.yaml"
echo "(exit status $?)"
printf '\nNext: `maildoctor fix --diff %s` shows the one-line repair; `make test` runs the test suite.\n' "$EXAMPLE"
