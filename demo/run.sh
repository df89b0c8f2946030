#!/bin/sh
# The 3 AM incident, small: a service leaks database connections from
# get_user_data(); leakwatch names the function and line, live and in CI.
# Run through `make demo`.  Stops everything it started, also on Ctrl-C.
set -u

B=${BUILD:-build}
LW="$B/leakwatch"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/leakwatch-demo.XXXXXX") || exit 2
db_pid=""
api_pid=""

cleanup() {
	[ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null
	[ -n "$db_pid" ] && kill "$db_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# 1. the database
"$B/demo/minidb" --max-conn 100 --port-file "$tmp/port" >"$tmp/minidb.log" 2>&1 &
db_pid=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$tmp/port" ] || { echo "demo: minidb did not start" >&2; cat "$tmp/minidb.log" >&2; exit 2; }
port=$(cat "$tmp/port")
echo "minidb (the database) listening on 127.0.0.1:$port"

# 2. the service, live, under the shim; report while it runs
say "The service runs with leakwatch preloaded; 200 requests later we ask what it holds"
echo "\$ LD_PRELOAD=$B/libleakwatch.so $B/demo/api --db-port $port --requests 200 &"
mkdir -p "$tmp/segments"
LEAKWATCH_DIR="$tmp/segments" LD_PRELOAD="$B/libleakwatch.so" \
	"$B/demo/api" --db-port "$port" --requests 200 --hold-seconds 60 >"$tmp/api.log" 2>&1 &
api_pid=$!
i=0
while ! grep -q handled "$tmp/api.log" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
cat "$tmp/api.log"
sleep 1
echo "\$ leakwatch report $api_pid"
LEAKWATCH_DIR="$tmp/segments" "$LW" report "$api_pid"
kill "$api_pid" 2>/dev/null; wait "$api_pid" 2>/dev/null; api_pid=""

# 3. the same check in CI
say "In CI: leakwatch run --fail-on-leak fails the build"
echo "\$ leakwatch run --fail-on-leak -- $B/demo/api --db-port $port --requests 50"
"$LW" run --fail-on-leak -- "$B/demo/api" --db-port "$port" --requests 50
echo "exit status: $? (1 = leaks found)"

say "After the fix (conn closed on the cache-miss path): nothing to report"
echo "\$ leakwatch run --fail-on-leak -- $B/demo/api-fixed --db-port $port --requests 50"
"$LW" run --fail-on-leak -- "$B/demo/api-fixed" --db-port "$port" --requests 50
rc=$?
echo "exit status: $rc"
[ $rc -eq 0 ]
