#!/bin/sh
# A throwaway PostgreSQL cluster for the demo and its tests.
#
#   sh demo/pg.sh start DIR [LATENCY_MS] [MAX_CONNECTIONS]
#       initdb into DIR/data (DIR must not exist; its parent must), start the
#       server on 127.0.0.1 at a free port with its unix socket in DIR, seed
#       the demo schema, write the port to DIR/port and print the libpq
#       connection string.  Exit 0, or 1 with the server log on stderr.
#   sh demo/pg.sh stop DIR
#       stop that server (immediate shutdown, then SIGKILL if it lingers).
#       Leaves DIR for the caller to remove.
#   sh demo/pg.sh check
#       exit 0 when the server binaries (initdb, pg_ctl) and psql are installed.
#
# As root the server runs as the unprivileged user "postgres" (or "nobody"):
# PostgreSQL refuses to run as root.  DIR's parent is then made traversable
# (mode 0711) so that user can reach DIR.
# The schema: users(id 1..1000, name 'user-<id>') and the functions
# user_name(id) (NULL for a missing user) and order_count(id), each taking
# LATENCY_MS (default 40) like a query on a busy database.
set -u

pg_bindir() {
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r) \
		 "$(pg_config --bindir 2>/dev/null)"; do
		[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
	done
	return 1
}

os_user() {
	if [ "$(id -u)" -ne 0 ]; then
		id -un
	elif id postgres >/dev/null 2>&1; then
		echo postgres
	else
		echo nobody
	fi
}

as_user() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "$(os_user)" -- "$@"
	else
		"$@"
	fi
}

rand_port() {
	echo $((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
}

cmd=${1:-}
case "$cmd" in
check)
	bin=$(pg_bindir) || exit 1
	[ -x "$bin/psql" ] || command -v psql >/dev/null 2>&1
	;;
start)
	dir=${2:?usage: pg.sh start DIR [LATENCY_MS] [MAX_CONNECTIONS]}
	lat=${3:-40}
	maxconn=${4:-40}
	bin=$(pg_bindir) || { echo "pg.sh: PostgreSQL server binaries (initdb) not found" >&2; exit 1; }
	psql=$bin/psql
	[ -x "$psql" ] || psql=psql
	user=$(os_user)
	mkdir "$dir" || exit 1
	if [ "$(id -u)" -eq 0 ]; then
		chmod 0711 "$(dirname "$dir")"
		chown "$user" "$dir"
	fi
	# --no-sync: a throwaway cluster need not survive a power cut
	if ! as_user "$bin/initdb" -D "$dir/data" -U leakwatch --auth=trust -E UTF8 --no-sync \
		>"$dir/initdb.log" 2>&1; then
		echo "pg.sh: initdb failed:" >&2
		cat "$dir/initdb.log" >&2
		exit 1
	fi
	started=""
	for _ in 1 2 3 4 5; do
		port=$(rand_port)
		if as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
			-o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir \
			    -c max_connections=$maxconn -c fsync=off -c shared_buffers=16MB" \
			start >/dev/null 2>&1; then
			started=$port
			break
		fi
		# a port already taken is the usual reason: try another
	done
	if [ -z "$started" ]; then
		echo "pg.sh: the server did not start:" >&2
		cat "$dir/server.log" >&2
		exit 1
	fi
	echo "$port" >"$dir/port"
	sleep_s=$(awk "BEGIN { printf \"%.3f\", $lat / 1000 }")
	if ! "$psql" -X -q -v ON_ERROR_STOP=1 \
		"host=127.0.0.1 port=$port user=leakwatch dbname=postgres" >"$dir/seed.log" 2>&1 <<EOF
CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO users SELECT g, 'user-' || g FROM generate_series(1, 1000) AS g;
CREATE FUNCTION user_name(uid int) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
	PERFORM pg_sleep($sleep_s);
	RETURN (SELECT name FROM users WHERE id = uid);
END \$\$;
CREATE FUNCTION order_count(uid int) RETURNS int LANGUAGE plpgsql AS \$\$
BEGIN
	PERFORM pg_sleep($sleep_s);
	RETURN (uid * 7) % 13;
END \$\$;
EOF
	then
		echo "pg.sh: seeding the schema failed:" >&2
		cat "$dir/seed.log" >&2
		exit 1
	fi
	echo "host=127.0.0.1 port=$port user=leakwatch dbname=postgres connect_timeout=5"
	;;
stop)
	dir=${2:?usage: pg.sh stop DIR}
	[ -f "$dir/data/postmaster.pid" ] || exit 0
	pid=$(head -n 1 "$dir/data/postmaster.pid")
	bin=$(pg_bindir) && as_user "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop \
		>/dev/null 2>&1
	# pg_ctl could not (or the user could not run it): the postmaster goes
	# anyway, and its backends follow it when they see it gone.
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
	fi
	exit 0
	;;
*)
	echo "usage: sh demo/pg.sh start DIR [LATENCY_MS] [MAX_CONNECTIONS] | stop DIR | check" >&2
	exit 2
	;;
esac
