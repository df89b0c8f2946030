#!/bin/sh
# The 3 AM incident, replayed: an HTTP API whose get_user_data() forgets to
# give its database connection back to the pool on the "user not found" path.
# Under steady traffic the pool runs dry, latency climbs, 503s appear.  The
# service was started without leakwatch: the on-call engineer attaches it to
# the running process (no restart), asks what the live process holds, then
# restarts with the fix (this time with leakwatch preloaded) and watches
# latency stay flat.
#
# Run through `make demo` (embedded minidb) or `make demo DB=postgres` (a
# throwaway PostgreSQL cluster, the service through libpq).  Needs BUILD set
# to the build directory.  Finishes in well under two minutes; stops every
# process it started and removes its temporary directory, also on Ctrl-C.
#
# Knobs (environment): RATE (req/s, 200), POOL (16), LATENCY_MS (per query,
# 40), MISS_EVERY (one request in N asks for a missing user, 200), IDLE (2s).
set -u

B=${BUILD:-build}
DB=${DB:-minidb}
# DEMO_LANG=python (make demo-python): the service is demo/api.py, the same
# API in Python, the way the incident's service was written
DEMO_LANG=${DEMO_LANG:-c}
if [ "$DEMO_LANG" = python ]; then
	RATE=${RATE:-100}
	MISS_EVERY=${MISS_EVERY:-50}
fi
RATE=${RATE:-200}
POOL=${POOL:-16}
WORKERS=${WORKERS:-16}
LATENCY_MS=${LATENCY_MS:-40}
MISS_EVERY=${MISS_EVERY:-200}
IDLE=${IDLE:-2s}
MAX_SECONDS=40 # the leaky phase stops earlier, when the load balancer gives up

LW="$B/leakwatch"
SHIM="$(cd "$B" && pwd)/libleakwatch.so"
case "$DEMO_LANG:$DB" in
python:minidb) API="demo/api.py" API_FIXED="demo/api.py --fixed" ;;
python:*) echo "demo: the Python service speaks to minidb only (DB=minidb)" >&2; exit 2 ;;
*:minidb) API="$B/demo/api" API_FIXED="$B/demo/api-fixed" ;;
postgres) API="$B/demo/api-pg" API_FIXED="$B/demo/api-pg-fixed" ;;
*) echo "demo: DB must be minidb or postgres, not '$DB'" >&2; exit 2 ;;
esac
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
for f in "$LW" "$SHIM" "${API%% *}" "${API_FIXED%% *}" "$B/demo/loadgen" "$B/demo/minidb"; do
	[ -e "$f" ] || { echo "demo: $f is missing: run it through 'make demo'" >&2; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/leakwatch-demo.XXXXXX") || exit 2
SEG="$tmp/segments"
mkdir "$SEG" || exit 2
export LEAKWATCH_DIR="$SEG" # for the leakwatch commands below; the service gets it too
groups=""                   # process groups started here (each leader's pid)
pg_dir=""
api_pid=""

cleanup() {
	trap - EXIT INT TERM
	for g in $groups; do kill -TERM "-$g" 2>/dev/null; done
	i=0
	for g in $groups; do
		while kill -0 "-$g" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "-$g" 2>/dev/null
	done
	wait 2>/dev/null
	[ -n "$pg_dir" ] && sh demo/pg.sh stop "$pg_dir"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, cleaning up" >&2; exit 130' INT
trap 'exit 143' TERM

# spawn LOG CMD... - start CMD in its own process group (setsid: Ctrl-C reaches
# only this script, which then stops the group), output to LOG; sets $spawned.
spawn() {
	log=$1
	shift
	setsid "$@" >"$log" 2>&1 </dev/null &
	spawned=$!
	groups="$groups $spawned"
}

# stop_group PID - SIGTERM the group, wait for its leader, forget it.
stop_group() {
	kill -TERM "-$1" 2>/dev/null
	wait "$1" 2>/dev/null
	rest=""
	for g in $groups; do [ "$g" = "$1" ] || rest="$rest $g"; done
	groups=$rest
}

# wait_file F SECONDS - until F is non-empty; 1 on timeout
wait_file() {
	i=0
	while [ ! -s "$1" ]; do
		[ $i -ge $(($2 * 10)) ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; }
kv() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p"; }

# Verdicts (--idle-for) came with a newer analyzer; without them the report
# still shows the groups, just without LEAK SUSPECT / POOL headings.
if "$LW" --help 2>&1 | grep -q -- '--idle-for'; then
	REPORT_FLAGS="--kind sockets --idle-for $IDLE"
	HAVE_VERDICTS=1
else
	REPORT_FLAGS="--kind sockets"
	HAVE_VERDICTS=0
fi

# ---- 1. the database --------------------------------------------------------------
say "1. The database ($DB)"
if [ "$DB" = postgres ]; then
	pg_dir="$tmp/pg"
	conninfo=$(sh demo/pg.sh start "$pg_dir" "$LATENCY_MS" 40) || exit 1
	db_port=$(cat "$pg_dir/port")
	echo "PostgreSQL $(cat "$pg_dir/data/PG_VERSION") (throwaway cluster in $pg_dir) listening on" \
		"127.0.0.1:$db_port, max_connections=40, $LATENCY_MS ms per query"
	DB_ARGS="--db"
	DB_VAL=$conninfo
else
	spawn "$tmp/minidb.log" "$B/demo/minidb" --max-conn 40 --latency-ms "$LATENCY_MS" \
		--port-file "$tmp/db.port"
	wait_file "$tmp/db.port" 5 || { echo "demo: minidb did not start" >&2; cat "$tmp/minidb.log" >&2; exit 1; }
	db_port=$(cat "$tmp/db.port")
	cat "$tmp/minidb.log"
	DB_ARGS="--db-port"
	DB_VAL=$db_port
fi

# start_api CMD NAME [PRELOAD] - the service (under the shim when PRELOAD is
# the shim's path); CMD is split into words ("demo/api.py --fixed"); sets
# api_pid, api_port
start_api() {
	rm -f "$tmp/api.port"
	cmd=$1 name=$2 pre=${3:-}
	case "$cmd" in *.py*) cmd="$PY $cmd" ;; esac
	# shellcheck disable=SC2086 # cmd is a command line of words without blanks
	spawn "$tmp/$name.log" env LEAKWATCH_DIR="$SEG" ${pre:+LD_PRELOAD="$pre"} \
		$cmd "$DB_ARGS" "$DB_VAL" --pool "$POOL" --workers "$WORKERS" --checkout-timeout-ms 1000 \
		--port-file "$tmp/api.port"
	api_pid=$spawned
	if ! wait_file "$tmp/api.port" 10; then
		echo "demo: the service did not start" >&2
		cat "$tmp/$name.log" >&2
		exit 1
	fi
	api_port=$(cat "$tmp/api.port")
	cat "$tmp/$name.log"
}

# load NAME [loadgen options] - the traffic, one dashboard line per second
load() {
	name=$1
	shift
	"$B/demo/loadgen" --port "$api_port" --rate "$RATE" --miss-every "$MISS_EVERY" \
		--summary-file "$tmp/$name.sum" "$@"
}

pool_stats() {
	command -v curl >/dev/null 2>&1 || return 0
	printf 'pool: '
	curl -s --max-time 3 "http://127.0.0.1:$api_port/stats" || printf '(no answer)'
	echo
}

# ---- 2. the leaky service under load -------------------------------------------------
say "2. The service (last deploy: get_user_data), started without leakwatch"
show "$API $DB_ARGS ... --pool $POOL &"
start_api "$API" api

say "3. Traffic: $RATE req/s, one request in $MISS_EVERY for a user that does not exist"
load leaky --duration "$MAX_SECONDS" --stop-on-errors 2 &
load_pid=$!

# ---- 3. what the on-call engineer runs -------------------------------------------------
sleep "${ATTACH_AFTER:-5}"
say "4. On call: the pool is draining and nobody wants a restart: attach leakwatch"
show "leakwatch attach $api_pid"
"$LW" attach "$api_pid" || echo "demo: attach failed; the report below has nothing to show" >&2
wait "$load_pid"
pool_stats
say "5. What does the live process hold?"
sleep 2.5 # traffic has stopped: let the leaked connections be idle for longer than --idle-for
show "leakwatch ps"
"$LW" ps
show "leakwatch report $api_pid $REPORT_FLAGS"
# shellcheck disable=SC2086 # REPORT_FLAGS is a list of options
"$LW" report "$api_pid" $REPORT_FLAGS | tee "$tmp/leaky.report"
leaky_pid=$api_pid
stop_group "$api_pid"
leaky_seconds=$(kv "$tmp/leaky.sum" seconds | cut -d. -f1)
[ "${leaky_seconds:-0}" -ge 10 ] 2>/dev/null || leaky_seconds=10

# ---- 4. the fix ------------------------------------------------------------------------------
say "6. The fix: give the connection back on the not-found path; restart (leakwatch preloaded this time), same traffic"
show "LEAKWATCH_DIR=$SEG LD_PRELOAD=$SHIM $API_FIXED $DB_ARGS ... --pool $POOL &"
start_api "$API_FIXED" api-fixed "$SHIM"
load fixed --duration "$leaky_seconds"
pool_stats
sleep 2.5
show "leakwatch report $api_pid $REPORT_FLAGS"
# shellcheck disable=SC2086 # REPORT_FLAGS is a list of options
"$LW" report "$api_pid" $REPORT_FLAGS | tee "$tmp/fixed.report"
stop_group "$api_pid"
api_pid=""

# ---- 5. summary ------------------------------------------------------------------------------
say "Summary"
suspects() { grep -c '^LEAK SUSPECT' "$1"; }
# the first frame of the suspect's last-use stack in the service's own code,
# above its database helpers
culprit=$(awk '
	/^LEAK SUSPECT/ { s = 1; next }
	s && /^[A-Z]/ { exit }
	s && /^  last used at/ { u = 1; sub(/^  last used at/, "") }
	s && /^  [a-z]/ { u = 0 }
	u && NF >= 2 && $1 !~ /^(db_|Connection\.|Pool\.)/ && $2 ~ /^demo\// { print $1 " (" $2 ")"; exit }
' "$tmp/leaky.report")
printf 'leaky build (pid %s): %s requests in %ss, %s answered 503, %s missing users;\n' \
	"$leaky_pid" "$(kv "$tmp/leaky.sum" sent)" "$(kv "$tmp/leaky.sum" seconds)" \
	"$(kv "$tmp/leaky.sum" s5xx)" "$(kv "$tmp/leaky.sum" not_found)"
printf '  p99 latency %s ms in the first seconds, %s ms at worst\n' \
	"$(kv "$tmp/leaky.sum" p99_first_ms)" "$(kv "$tmp/leaky.sum" p99_max_ms)"
if [ "$HAVE_VERDICTS" = 1 ]; then
	printf '  leakwatch: %s leak suspect group(s), %s connections never given back to the pool;\n' \
		"$(suspects "$tmp/leaky.report")" \
		"$(awk '/^LEAK SUSPECT/ { n += $3 } END { print n + 0 }' "$tmp/leaky.report")"
	printf '  last used at %s\n' "${culprit:-?}"
fi
printf 'fixed build: %s requests in %ss, %s answered 503; p99 %s ms at worst\n' \
	"$(kv "$tmp/fixed.sum" sent)" "$(kv "$tmp/fixed.sum" seconds)" \
	"$(kv "$tmp/fixed.sum" s5xx)" "$(kv "$tmp/fixed.sum" p99_max_ms)"
if [ "$HAVE_VERDICTS" = 1 ]; then
	printf '  leakwatch: %s leak suspect group(s)\n' "$(suspects "$tmp/fixed.report")"
fi
echo "The runbook for this incident: docs/runbook.md"
fixed_errors=$(kv "$tmp/fixed.sum" s5xx)
[ "${fixed_errors:-1}" = 0 ] && { [ "$HAVE_VERDICTS" = 0 ] || [ "$(suspects "$tmp/fixed.report")" = 0 ]; }
