#!/bin/sh
# leakwatch benchmarks: wall-time ratios against the same workload without
# leakwatch, measured interleaved in the same run (median of ROUNDS).
# Run through `make bench`.  Environment: BUILD (build dir), ROUNDS (default
# 9), PAIR_ROUNDS (default 21: the short one-CPU workloads below, whose
# rounds vary by +-3%).
set -u
B=${BUILD:-build}
ROUNDS=${ROUNDS:-9}
PAIR_ROUNDS=${PAIR_ROUNDS:-21}
SHIM="$(cd "$B" && pwd)/libleakwatch.so"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/leakwatch-bench.XXXXXX") || exit 2
# Segments go where they go by default, a tmpfs (/dev/shm) when there is
# one: on a disk filesystem the first touch of each page reads the file.
segroot=${TMPDIR:-/tmp}
[ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] && [ -w /dev/shm ] && segroot=/dev/shm
segdir=$(mktemp -d "$segroot/leakwatch-bench-seg.XXXXXX") || exit 2
trap 'rm -rf "$tmp" "$segdir"' EXIT INT TERM
ln -s "$segdir" "$tmp/seg"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
# pratio A B: median over rounds of A[i]/B[i] — each round's runs are
# back to back, so a paired ratio cancels the machine's slow drifts.
pratio() { paste "$1" "$2" | awk '{print $1 / $2}' | median | awk '{printf "%.2f", $1}'; }
# one_cpu CMD...: run with every thread and child on one CPU (the last), so
# that a figure is the CPU a request costs, not where the scheduler put the
# threads that hand work to each other (on two CPUs such runs vary 2x)
cpu=$(($(nproc 2>/dev/null || echo 1) - 1))
one_cpu() { if command -v taskset >/dev/null 2>&1; then taskset -c "$cpu" "$@"; else "$@"; fi; }
# pair NAME CMD...: ROUNDS interleaved runs of CMD without and with the shim
# (default configuration: heap sampled), elapsed seconds in $tmp/NAME.base
# and $tmp/NAME.lw.  The order alternates from round to round (without
# first, then with first): a run leaves state behind that slows the next
# (socket churn leaves 10,000 TIME_WAIT sockets, which the next run's port
# searches walk), and with a fixed order that cost falls on one side
# (measured: second/first of two native churn runs, median 1.01).
pair() {
	name=$1
	shift
	: >"$tmp/$name.base"; : >"$tmp/$name.lw"
	i=0
	while [ $i -lt "$PAIR_ROUNDS" ]; do
		if [ $((i % 2)) -eq 0 ]; then
			one_cpu "$@" >>"$tmp/$name.base"
			LEAKWATCH_DIR="$tmp/seg" LD_PRELOAD="$SHIM" one_cpu "$@" >>"$tmp/$name.lw"
		else
			LEAKWATCH_DIR="$tmp/seg" LD_PRELOAD="$SHIM" one_cpu "$@" >>"$tmp/$name.lw"
			one_cpu "$@" >>"$tmp/$name.base"
		fi
		rm -f "$tmp"/seg/*
		i=$((i + 1))
	done
}
# pair_print NAME LABEL TARGET: the medians and the paired ratio
pair_print() {
	printf '%-34s %8ss\n' "without leakwatch (median)" "$(median <"$tmp/$1.base")"
	printf '%-34s %8ss  ratio %sx  (target <= %s)\n' "$2" "$(median <"$tmp/$1.lw")" \
		"$(pratio "$tmp/$1.lw" "$tmp/$1.base")" "$3"
}

W="$B/bench/heap_workload"
ARGS="2 2000000 4096"
echo "ratios: median over rounds of (run with / run without), the two run back to back"
echo "leakwatch heap benchmark: $W $ARGS (2 threads, 2M malloc/free steps each,"
echo "ring of 4096 live blocks per thread, call chains 8-12 frames deep), $ROUNDS rounds"

have_heaptrack=0
command -v heaptrack >/dev/null 2>&1 && have_heaptrack=1

: >"$tmp/base"; : >"$tmp/sampled"; : >"$tmp/full"; : >"$tmp/heaptrack"
i=0
while [ $i -lt "$ROUNDS" ]; do
	"$W" $ARGS >>"$tmp/base"
	LEAKWATCH_DIR="$tmp/seg" LEAKWATCH_HEAP=sampled LD_PRELOAD="$SHIM" "$W" $ARGS >>"$tmp/sampled"
	LEAKWATCH_DIR="$tmp/seg" LEAKWATCH_HEAP=full LD_PRELOAD="$SHIM" "$W" $ARGS >>"$tmp/full"
	if [ $have_heaptrack -eq 1 ]; then
		# heaptrack's own wrapper: the workload prints its time on stdout
		heaptrack -o "$tmp/ht.$i" "$W" $ARGS 2>/dev/null | grep -E '^[0-9.]+$' >>"$tmp/heaptrack"
		rm -f "$tmp"/ht.*
	fi
	rm -f "$tmp"/seg/*
	i=$((i + 1))
done
base=$(median <"$tmp/base")
sampled=$(median <"$tmp/sampled")
full=$(median <"$tmp/full")
printf '%-34s %8ss\n' "without leakwatch (median)" "$base"
printf '%-34s %8ss  ratio %sx  (target <= 1.10x)\n' "LEAKWATCH_HEAP=sampled" "$sampled" "$(pratio "$tmp/sampled" "$tmp/base")"
printf '%-34s %8ss  ratio %sx  (target <= 3.00x)\n' "LEAKWATCH_HEAP=full" "$full" "$(pratio "$tmp/full" "$tmp/base")"
if [ $have_heaptrack -eq 1 ] && [ -s "$tmp/heaptrack" ]; then
	ht=$(median <"$tmp/heaptrack")
	printf '%-34s %8ss  ratio %sx; heaptrack / leakwatch full = %sx  (target >= 5x)\n' \
		"heaptrack" "$ht" "$(pratio "$tmp/heaptrack" "$tmp/base")" "$(pratio "$tmp/heaptrack" "$tmp/full")"
else
	echo "heaptrack: not installed, comparison skipped (apt-get install heaptrack)"
fi

# Round trips over loopback: every write/send lands on a tracked socket and
# records a last-use stack.  Default shim configuration (heap sampled).  On
# one CPU, like the other socket workloads: on two, where the scheduler
# puts the two ends of each connection moves rounds by 2x.
R="$B/bench/rtt_workload"
RARGS="2 40000"
echo "leakwatch round-trip benchmark: $R $RARGS (2 connections, 40000 64-byte"
echo "request/response round trips each over loopback), one CPU, $PAIR_ROUNDS rounds (order alternating)"
pair rtt "$R" $RARGS
pair_print rtt "with leakwatch (last-use tracking)" 1.05x
echo

# Connection churn: every socket, connect and close (and the listener's
# accept and close) is recorded with its stack, addresses and inode.
C="$B/bench/churn_workload"
CARGS=10000
echo "leakwatch socket churn benchmark: $C $CARGS ($CARGS socket+connect+close to a"
echo "loopback listener whose thread accepts and closes), one CPU, $PAIR_ROUNDS rounds (order alternating)"
pair churn "$C" $CARGS
pair_print churn "with leakwatch (socket churn)" 1.05x

# Files: open+fstat+close of one small file; every open and close is recorded
# (kind, path, creation stack), the fstat is not hooked.
O="$B/bench/open_workload"
OARGS=200000
echo "leakwatch file open benchmark: $O $OARGS ($OARGS open+fstat+close of a small file), $PAIR_ROUNDS rounds"
pair open "$O" $OARGS
pair_print open "with leakwatch (file open/close)" 1.10x
echo

# A proxy over keepalive connections: four send-side calls per request, each
# a last-use stack; the reads are not hooked.
P="$B/bench/proxy_workload"
PARGS="2 10000"
echo "leakwatch proxy benchmark: $P $PARGS (2 client -> proxy -> upstream chains, 10000"
echo "64-byte requests each over keepalive loopback connections), one CPU, $PAIR_ROUNDS rounds (order alternating)"
pair proxy "$P" $PARGS
pair_print proxy "with leakwatch (last-use, proxy)" 1.05x
echo

# Fork per connection: the server accepts, forks a child that allocates a
# few KiB, reads the request, sends the reply and _exits; the server waits.
# The client is untraced.
F="$B/bench/fork_workload"
FARGS=1000
echo "leakwatch fork benchmark: $F $FARGS ($FARGS accept + fork + child recv/send/malloc/_exit"
echo "+ wait rounds, the client untraced), one CPU, $PAIR_ROUNDS rounds (order alternating)"
pair fork "$F" $FARGS
pair_print fork "with leakwatch (fork per conn.)" 1.15x
echo

# Segment cost of live tracked blocks: resident bytes of the segment file
# (tmpfs pages actually allocated: header, every table) per live recorded
# block, full mode, the ring (2 threads x $1 blocks) filled first, churned
# by 200000 replacements per thread and kept allocated at exit.  The heap
# table grows with the live count; from 100K live blocks on it must cost
# at most 64 bytes per block (2 slots of 32 B).
# On /dev/shm when it is a tmpfs (other filesystems allocate ahead of use,
# which st_blocks counts).
sdir="$tmp/seg"
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
	sdir=$(mktemp -d /dev/shm/leakwatch-bench-seg.XXXXXX) || exit 2
	trap 'rm -rf "$tmp" "$sdir"' EXIT INT TERM
fi
seg_cost() {
	rm -f "$sdir"/leakwatch.*
	env LEAKWATCH_DIR="$sdir" LEAKWATCH_HEAP=full LEAKWATCH_BUDGET=0 LD_PRELOAD="$SHIM" \
		"$W" 2 200000 "$1" keep >/dev/null
	seg=$(ls "$sdir"/leakwatch.* | head -1)
	"$B/leakwatch" report "$seg" --format json --kind heap >"$tmp/seg.json"
	live=$(sed -n 's/.*"live_blocks":\([0-9]*\).*/\1/p' "$tmp/seg.json" | head -1)
	dropped=$(sed -n 's/.*"heap_full":\([0-9]*\).*/\1/p' "$tmp/seg.json" | head -1)
	blocks=$(stat -c %b "$seg"); bsize=$(stat -c %B "$seg")
	awk -v b="$blocks" -v s="$bsize" -v l="$live" -v d="${dropped:-0}" 'BEGIN {
		printf "segment bytes per live tracked block: %6.1f  (%d live blocks, %s dropped, resident %.1f MiB; target <= 64)\n",
		       b * s / l, l, d, b * s / 1048576 }'
}
for ring in 50000 200000 500000; do
	seg_cost $ring
done
rm -rf "$sdir"

# ---- report of a big heap (analyzer side) -------------------------------------------
# `leakwatch report` of a layout 2 segment holding 1M live heap blocks (full
# mode) from 64 allocation stacks, fabricated by bench/fab_heap_segment (a
# 1 TiB sparse span, a 2M-slot heap table filled as the shim fills it), on
# /dev/shm when it is a tmpfs.  Median of 5 runs of each report.
echo
FAB="$B/bench/fab_heap_segment"
rdir="$tmp"
[ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] && rdir=$(mktemp -d /dev/shm/leakwatch-bench.XXXXXX)
trap 'rm -rf "$tmp" "$rdir" "$segdir"' EXIT INT TERM
rseg="$rdir/leakwatch-bench-1m"
"$FAB" "$rseg" 1000000 64 >/dev/null || exit 2
report_time() { # $@: report options; prints the median wall time in seconds
	: >"$tmp/rt"
	for _ in 1 2 3 4 5; do
		t0=$(date +%s%N)
		"$B/leakwatch" report "$rseg" "$@" >/dev/null || echo "leakwatch report failed" >&2
		t1=$(date +%s%N)
		awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", (b - a) / 1e9}' >>"$tmp/rt"
	done
	median <"$tmp/rt"
}
echo "report of 1M live blocks: $(report_time --kind heap) s (target < 1 s; report SEG --kind heap, 64 stacks)"
echo "report of 1M live blocks: $(report_time) s (target < 1 s; report SEG, the default report)"
rm -f "$rseg"

# ---- Python frames (issue 14) ----------------------------------------------------------
# The same Python workload under the shim (sampled heap) with and without
# Python frames (LEAKWATCH_PYTHON=1 / 0), interleaved, on one CPU; the
# loop's own time as the script measures it.  Against the run without
# leakwatch too, for scale.
PY=/usr/bin/python3
if [ -x "$PY" ]; then
	pair_py() { # NAME SCRIPT ARG
		name=$1
		: >"$tmp/$name.base"; : >"$tmp/$name.lw"; : >"$tmp/$name.none"
		i=0
		while [ $i -lt "$PAIR_ROUNDS" ]; do
			if [ $((i % 2)) -eq 0 ]; then
				LEAKWATCH_DIR="$tmp/seg" LEAKWATCH_PYTHON=0 LD_PRELOAD="$SHIM" one_cpu "$PY" "$2" "$3" >>"$tmp/$name.base"
				LEAKWATCH_DIR="$tmp/seg" LEAKWATCH_PYTHON=1 LD_PRELOAD="$SHIM" one_cpu "$PY" "$2" "$3" >>"$tmp/$name.lw"
			else
				LEAKWATCH_DIR="$tmp/seg" LEAKWATCH_PYTHON=1 LD_PRELOAD="$SHIM" one_cpu "$PY" "$2" "$3" >>"$tmp/$name.lw"
				LEAKWATCH_DIR="$tmp/seg" LEAKWATCH_PYTHON=0 LD_PRELOAD="$SHIM" one_cpu "$PY" "$2" "$3" >>"$tmp/$name.base"
			fi
			one_cpu "$PY" "$2" "$3" >>"$tmp/$name.none"
			rm -f "$tmp"/seg/*
			i=$((i + 1))
		done
		printf '%-34s %8ss\n' "without leakwatch (median)" "$(median <"$tmp/$name.none")"
		printf '%-34s %8ss  ratio %sx to no leakwatch\n' "leakwatch, C frames only" "$(median <"$tmp/$name.base")" \
			"$(pratio "$tmp/$name.base" "$tmp/$name.none")"
		printf '%-34s %8ss  ratio %sx to C frames only  (target <= 1.10x)\n' "leakwatch with Python frames" \
			"$(median <"$tmp/$name.lw")" "$(pratio "$tmp/$name.lw" "$tmp/$name.base")"
	}
	echo
	echo "leakwatch Python socket churn: $PY bench/py_churn.py 4000 (create_connection+send+close"
	echo "from three Python frames), one CPU, $PAIR_ROUNDS rounds"
	pair_py pychurn bench/py_churn.py 4000
	echo
	echo "leakwatch Python allocations: $PY bench/py_alloc.py 200000 (dicts, lists, 1-29 KiB bytes"
	echo "made and dropped), heap sampled, one CPU, $PAIR_ROUNDS rounds"
	pair_py pyalloc bench/py_alloc.py 200000
fi
