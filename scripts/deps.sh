#!/bin/sh
# Make sure the build dependencies are present.
# As root: installs the missing Debian packages (apt-get update once, then
# apt-get install).  Otherwise: prints the exact command to run and exits 1.
# With --check it never installs: it prints that command and exits 1.
# Usage: scripts/deps.sh [--check] [extra-debian-package ...]
set -eu

check_only=0
if [ "${1:-}" = "--check" ]; then
	check_only=1
	shift
fi
missing=""

have_pc() { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$1"; }

have_pc libdw      || missing="$missing libdw-dev libelf-dev"
have_pc criterion  || missing="$missing libcriterion-dev"
have_pc ncursesw   || missing="$missing libncurses-dev"
have_pc libmicrohttpd || missing="$missing libmicrohttpd-dev"
have_pc libpq      || missing="$missing libpq-dev"
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
command -v g++ >/dev/null 2>&1 || missing="$missing g++"
# used by the tests: real programs run under the shim
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
# the reference the reachability classes are checked against
command -v valgrind >/dev/null 2>&1 || missing="$missing valgrind"
# the exporter's tests scrape it with a real Prometheus and check its rules with promtool
command -v prometheus >/dev/null 2>&1 || missing="$missing prometheus"
/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null || missing="$missing python3-prometheus-client"
# the server report --pg is tested against (demo/pg.sh starts a throwaway cluster)
sh "$(dirname "$0")/../demo/pg.sh" check || missing="$missing postgresql"
# the install suite renders and lints the man pages
command -v groff >/dev/null 2>&1 || missing="$missing groff-base"
{ command -v man && command -v lexgrog; } >/dev/null 2>&1 || missing="$missing man-db"
command -v mandoc >/dev/null 2>&1 || missing="$missing mandoc"
# top's full screen is tested in tmux (TERM=screen: ncurses-base has it)
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

[ -z "$missing" ] && exit 0

# shellcheck disable=SC2086
set -- $missing
cmd="apt-get install -y $*"
if [ "$check_only" -eq 1 ] || [ "$(id -u)" -ne 0 ]; then
	echo "leakwatch: missing build dependencies:$missing" >&2
	echo "leakwatch: install them with \`make deps\` as root, or run as root:  apt-get update && $cmd" >&2
	exit 1
fi
echo "leakwatch: installing build dependencies:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "$@" >&2
