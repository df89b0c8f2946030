/* SPDX-License-Identifier: MIT */
/*
 * render.c — text and JSON output of a report.
 *
 * JSON format (`--format json`), one object per segment, version 1.  Fields
 * are only ever added; consumers should ignore unknown ones.  null means
 * "unknown".  With --kind heap the socket fields (groups, untracked, stale,
 * stale_fds, bad_closes) are left out; with --kind sockets, heap is.
 *
 *   leakwatch       1 (format version)
 *   segment         path of the segment file
 *   pid, ppid       of the traced process image
 *   command         argv joined with spaces (as recorded, may be truncated)
 *   exe             executable path
 *   state           "running" | "exited" | "execed" | "dead" | "disabled" | "starting"
 *                   (dead: gone without an exit record, e.g. killed, or pid reused)
 *   exit_status     exit status when state is "exited" and known, else null
 *   uptime_s        seconds from start to now (live) or to the end of the image
 *   end_time_lower_bound  true when the image is gone without an exit record
 *                   (killed, e.g. SIGKILL): its end is then the latest time the
 *                   shim recorded anything (last_active_ns, the newest record),
 *                   so uptime_s and every age_*_s are lower bounds ("at least"
 *                   in text)
 *   counters        {events, sock_opened, sock_closed, bad_closes, stale_closes,
 *                    heap_allocs, heap_frees, heap_untracked_frees,
 *                    guard_recovered (recording frames left by siglongjmp),
 *                    drops: {handle_full, stack_full, module_full, unwind, busy,
 *                            reentrant, heap_full}}
 *   busy_slots      table slots skipped by this snapshot because a writer held them
 *   missing_stacks  stack ids named by records but absent from the stack table
 *                   (shown as empty stacks)
 *   open_tracked    OPEN entries in the segment (before the kernel join)
 *   kernel_view     {available: bool, error: string|null}  (/proc/PID/fd readable?)
 *   sock_diag       {inet, unix}: where socket states came from, each "sock_diag"
 *                   (NETLINK_SOCK_DIAG), "proc" (/proc/PID/net fallback) or "none";
 *                   null when the kernel was not asked (process gone)
 *   older_than_s    the --older-than filter applied to groups (sockets and heap)
 *   kind            "all" | "sockets" | "heap"  (--kind)
 *   group_by        "open" | "use"  (--by: the stack that keys socket groups)
 *   idle_for_s      the --idle-for threshold the verdicts used
 *   interval_s      --interval: seconds between the two snapshots, else null
 *   groups          [group], sorted by verdict (leak suspects first, then pool, active,
 *                   new, listening), count desc, oldest desc, stack ids; each:
 *     kind            "socket"
 *     count           members
 *     family          "AF_INET" | "AF_INET6" | "AF_UNIX" | ...
 *     type            "SOCK_STREAM" | "SOCK_DGRAM" | ...
 *     origin          how the first member was created: "socket" | "socketpair" |
 *                     "accept" | "dup" | "scm_rights" | "inherited" | "fork"
 *     origins         every origin among the members
 *     endpoint        "ip:port", "[ip6]:port", "/unix/path", "@abstract", "unnamed" or ""
 *     endpoint_role   "peer" (connected: the remote end) | "local" (accepted or
 *                     listening: our address) | "none"
 *     peers           distinct peers when endpoint_role is not "peer" (capped at 16)
 *     peers_total     number of distinct peers before the cap
 *     age_min_s, age_max_s   youngest and oldest member, seconds
 *     states          {"ESTABLISHED": n, ...} kernel states (live processes only)
 *     fds             member file descriptors, ascending
 *     inherited       true: opened before leakwatch loaded (exec, fork parent)
 *     stack_id        creation stack id in the segment (0: none)
 *     stack           [frame], innermost first, shim frames removed; each:
 *       addr            "0x..." address as recorded
 *       function        name or null
 *       file            source file as recorded in DWARF, or null
 *       line            line number or null
 *       module          path of the loaded object, or null
 *       module_offset   "0x..." addr - module load bias
 *       inlined         true: this function was inlined into the next frame
 *       build_id_mismatch  true: the file on disk is not the one that was loaded
 *     verdict         "leak_suspect" | "pool" | "active" | "new" | "listening" for a live
 *                     process (rules at the top of verdict.c); "left_open" when the
 *                     image ended (run: everything still open is a leak)
 *     evidence        what the verdict was decided on:
 *       idle_for_s      threshold
 *       members         = count
 *       idle            members with no I/O for idle_for_s or more
 *       close_wait      members in CLOSE_WAIT
 *       listening       members in LISTEN
 *       young           members younger than idle_for_s
 *       used_recently   members with known I/O within idle_for_s
 *       idle_min_s, idle_max_s   time since the last I/O, over the members (null for
 *                       listening and left_open groups)
 *       idle_source     {kernel, shim, age}: members whose idle time came from tcp_info,
 *                       from the shim's last send-side call, or is their age (never used)
 *       kernel_known    members the kernel described
 *       recv_queue, send_queue   bytes queued, summed over the members
 *       reasons         leak suspects: any of "idle", "close_wait", "growing"
 *       growing         the key group keeps growing (see verdict.c)
 *       key_count       members of the whole key group before the verdict split it
 *       split           this group is a part of a larger key group (the pool split)
 *       stack_opened, stack_closed   totals of the creation stack (--by open)
 *       growth          --interval: {interval_s, count_start, count_end, net, opened,
 *                       closed, opened_per_min, closed_per_min} of the key group
 *                       (opened/closed from the creation stack totals; null with --by
 *                       use); null without --interval
 *     last_use_stack_id   the members' (most common) last-use stack; 0 = never used
 *     last_use_stack  [frame] of it, innermost first ([] when never used)
 *     last_use_share  {count, of}: members whose last-use stack is last_use_stack_id
 *     open_share      {count, of}: members whose creation stack is stack_id (< of only
 *                     with --by use)
 *   untracked       [{fd, inode}] sockets in /proc/PID/fd the shim never recorded
 *   stale           OPEN entries whose fd no longer holds that socket
 *   stale_fds       (only with --all) those fds
 *   bad_closes      [{fd, tid, age_s, kind: "double_close"|"never_opened",
 *                     prev_origin, stack, prev_open_stack, prev_close_stack}]
 *                   (stacks are [] when unknown)
 *   heap            heap blocks still allocated:
 *     mode            "off" | "sampled" | "full"  (off: everything below is 0 / [])
 *     sample_bytes    mean bytes between samples the shim used (sampled mode)
 *     estimated       true in sampled mode: block and byte counts are estimates
 *                     (each sample of s bytes stands for 1/p blocks, p = 1 - exp(-s/sample_bytes))
 *     samples         table entries behind the numbers (= blocks in full mode)
 *     live_blocks, live_bytes       every live block at least older_than_s old
 *     program_blocks, program_bytes of those, class "program" (always given)
 *     leaked_blocks, leaked_bytes   the same once the image has ended (exited, execed,
 *                                   dead): what run --fail-on-leak counts; null while the
 *                                   process runs (its blocks are live, not leaked yet)
 *     system_blocks, system_bytes   of those, class "system"
 *     groups          [heap group], class "program" only unless --all; sorted by
 *                     class, then bytes desc; each:
 *       class           "program" | "system" (kept by libc/ld.so/libstdc++, see heap.c)
 *                       | "unrecorded" (no stack was recorded)
 *       system          class == "system"
 *       count           live blocks
 *       bytes           live bytes (requested sizes)
 *       samples         table entries in the group (text shows "est. from N samples"
 *                       for an estimate from fewer than LW_HEAP_FEW_SAMPLES, 100)
 *       total_allocations      allocations ever made from this stack
 *       total_allocated_bytes  bytes ever allocated from this stack
 *       age_min_s, age_median_s, age_max_s
 *       stack_id        allocation stack id in the segment
 *       stack           [frame] as for sockets, innermost first
 *
 * Folded format (`--format folded`), for flamegraph.pl and speedscope: one
 * line per group, "outermost;...;innermost WEIGHT", frames are function
 * names (C++ demangled) or module+0xOFF, [unknown] for a missing stack
 * ([inherited] for inherited sockets, which have none).
 * Heap groups (weight: live bytes, rounded estimates in sampled mode) unless
 * --kind sockets (socket groups, weight: sockets).  `run` prefixes each line
 * with the process name as the root frame.  ';' inside a name becomes ':'.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "analyzer.h"

#define MAX_FRAMES (LW_STACK_MAX_FRAMES * 4)

static double ns_to_s(uint64_t ns)
{
	return (double)ns / 1e9;
}

static const char *state_word(const struct lw_report *r)
{
	switch (r->live) {
	case LW_LIVE_ALIVE:
		return r->snap.state == LW_STATE_STARTING ? "starting" : "running";
	case LW_LIVE_EXITED: return "exited";
	case LW_LIVE_EXECED: return "execed";
	case LW_LIVE_DEAD: return "dead";
	case LW_LIVE_DISABLED: return "disabled";
	}
	return "unknown";
}

/* Killed without an exit record: the end, and so uptime and every age, is a lower bound. */
static int at_least(const struct lw_report *r)
{
	return lw_snapshot_end_lower_bound(&r->snap, r->live);
}

static uint64_t uptime_ns(const struct lw_report *r)
{
	return r->now_ns > r->snap.hdr.start_monotonic_ns ? r->now_ns - r->snap.hdr.start_monotonic_ns : 0;
}

/* ---- JSON --------------------------------------------------------------- */

/* Length of a valid UTF-8 sequence at s, or 0 (so invalid bytes become U+FFFD). */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1f; }
	else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0f; }
	else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07; }
	else return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void lw_json_string(FILE *out, const char *s)
{
	if (!s) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			fputc('\\', out);
			fputc(c, out);
			p++;
		} else if (c == '\n') {
			fputs("\\n", out);
			p++;
		} else if (c == '\t') {
			fputs("\\t", out);
			p++;
		} else if (c == '\r') {
			fputs("\\r", out);
			p++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c);
			p++;
		} else {
			size_t n = utf8_len(p);
			if (n == 0) {
				fputs("\\ufffd", out);
				p++;
			} else {
				fwrite(p, 1, n, out);
				p += n;
			}
		}
	}
	fputc('"', out);
}

static void json_hex(FILE *out, uint64_t v)
{
	fprintf(out, "\"0x%llx\"", (unsigned long long)v);
}

static void json_stack(FILE *out, struct lw_report *r, uint32_t stack_id)
{
	struct lw_frame frames[MAX_FRAMES];
	size_t n = 0;
	const struct lw_snap_stack *st = lw_snapshot_stack(&r->snap, stack_id);
	if (st)
		n = lw_symbolize_stack(r->sym, st->frames, st->depth, frames, MAX_FRAMES);
	fputc('[', out);
	for (size_t i = 0; i < n; i++) {
		const struct lw_frame *f = &frames[i];
		fputs(i ? ",{\"addr\":" : "{\"addr\":", out);
		json_hex(out, f->addr);
		fputs(",\"function\":", out);
		lw_json_string(out, f->function);
		fputs(",\"file\":", out);
		lw_json_string(out, f->file);
		if (f->line > 0)
			fprintf(out, ",\"line\":%d", f->line);
		else
			fputs(",\"line\":null", out);
		fputs(",\"module\":", out);
		lw_json_string(out, f->module);
		fputs(",\"module_offset\":", out);
		if (f->module)
			json_hex(out, f->module_off);
		else
			fputs("null", out);
		fprintf(out, ",\"inlined\":%s,\"build_id_mismatch\":%s}", f->inlined ? "true" : "false",
			f->buildid_mismatch ? "true" : "false");
	}
	fputc(']', out);
}

static const char *role_name(enum lw_endpoint_role role)
{
	return role == LW_EP_PEER ? "peer" : role == LW_EP_LOCAL ? "local" : "none";
}

static void json_evidence(FILE *out, const struct lw_group *g)
{
	const struct lw_evidence *e = &g->ev;
	int live = g->verdict != LW_V_LEFT_OPEN;
	fprintf(out, "{\"idle_for_s\":%.3f,\"members\":%zu,\"idle\":%zu,\"close_wait\":%zu,\"listening\":%zu,"
		"\"young\":%zu,\"used_recently\":%zu,\"idle_min_s\":",
		ns_to_s(e->idle_for_ns), g->count, e->idle, e->close_wait, e->listening, e->young,
		e->used_recently);
	if (live && g->verdict != LW_V_LISTENING)
		fprintf(out, "%.3f,\"idle_max_s\":%.3f", ns_to_s(e->idle_min_ns), ns_to_s(e->idle_max_ns));
	else
		fputs("null,\"idle_max_s\":null", out);
	fprintf(out, ",\"idle_source\":{\"kernel\":%zu,\"shim\":%zu,\"age\":%zu},\"kernel_known\":%zu,"
		"\"recv_queue\":%llu,\"send_queue\":%llu,\"reasons\":[",
		e->idle_kernel, e->idle_shim, e->idle_age, e->kernel_known, (unsigned long long)e->rqueue,
		(unsigned long long)e->wqueue);
	int first = 1;
	static const struct { unsigned bit; const char *name; } rs[] = {
		{ LW_REASON_IDLE, "idle" }, { LW_REASON_CLOSE_WAIT, "close_wait" }, { LW_REASON_GROWING, "growing" },
	};
	for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++)
		if (e->reasons & rs[i].bit) {
			fprintf(out, "%s\"%s\"", first ? "" : ",", rs[i].name);
			first = 0;
		}
	fprintf(out, "],\"growing\":%s,\"key_count\":%zu,\"split\":%s,\"stack_opened\":%llu,"
		"\"stack_closed\":%llu,\"growth\":",
		e->growing ? "true" : "false", e->key_count, g->split ? "true" : "false",
		(unsigned long long)e->stack_opened, (unsigned long long)e->stack_closed);
	if (!e->have_interval) {
		fputs("null}", out);
		return;
	}
	double min = (double)e->interval_ns / 60e9;
	fprintf(out, "{\"interval_s\":%.3f,\"count_start\":%zu,\"count_end\":%zu,\"net\":%lld",
		ns_to_s(e->interval_ns), e->count_start, e->count_end,
		(long long)e->count_end - (long long)e->count_start);
	if (g->by == LW_BY_OPEN && min > 0)
		fprintf(out, ",\"opened\":%llu,\"closed\":%llu,\"opened_per_min\":%.3f,\"closed_per_min\":%.3f}}",
			(unsigned long long)e->opened, (unsigned long long)e->closed, (double)e->opened / min,
			(double)e->closed / min);
	else
		fputs(",\"opened\":null,\"closed\":null,\"opened_per_min\":null,\"closed_per_min\":null}}", out);
}

static void json_verdict(FILE *out, struct lw_report *r, const struct lw_group *g)
{
	fprintf(out, ",\"verdict\":\"%s\",\"evidence\":", lw_verdict_name(g->verdict));
	json_evidence(out, g);
	fprintf(out, ",\"last_use_stack_id\":%u,\"last_use_stack\":", g->use_stack_id);
	json_stack(out, r, g->use_stack_id);
	fprintf(out, ",\"last_use_share\":{\"count\":%zu,\"of\":%zu},\"open_share\":{\"count\":%zu,\"of\":%zu}",
		g->use_share, g->count, g->open_share, g->count);
}

static void json_group(FILE *out, struct lw_report *r, const struct lw_group *g)
{
	fprintf(out, "{\"kind\":\"socket\",\"count\":%zu,\"family\":\"%s\",\"type\":\"%s\",\"origin\":\"%s\"",
		g->count, lw_family_name(g->family), lw_type_name(g->type), lw_origin_name(g->origin));
	fputs(",\"origins\":[", out);
	int first = 1;
	for (unsigned o = 0; o < LW_ORIGIN_MAX; o++)
		if (g->origin_mask & (1u << o)) {
			fprintf(out, "%s\"%s\"", first ? "" : ",", lw_origin_name(o));
			first = 0;
		}
	fputs("],\"endpoint\":", out);
	lw_json_string(out, g->endpoint);
	fprintf(out, ",\"endpoint_role\":\"%s\",\"peers\":[", role_name(g->role));
	for (size_t i = 0; i < g->npeers; i++) {
		if (i)
			fputc(',', out);
		lw_json_string(out, g->peers[i]);
	}
	fprintf(out, "],\"peers_total\":%zu,\"age_min_s\":%.3f,\"age_max_s\":%.3f,\"states\":{",
		g->npeers_total, ns_to_s(g->age_min_ns), ns_to_s(g->age_max_ns));
	for (size_t i = 0; i < g->nstates; i++) {
		if (i)
			fputc(',', out);
		lw_json_string(out, g->states[i].name);
		fprintf(out, ":%zu", g->states[i].n);
	}
	fputs("},\"fds\":[", out);
	for (size_t i = 0; i < g->nfds; i++)
		fprintf(out, "%s%d", i ? "," : "", g->fds[i]);
	fprintf(out, "],\"inherited\":%s,\"stack_id\":%u,\"stack\":", g->inherited ? "true" : "false",
		g->stack_id);
	json_stack(out, r, g->stack_id);
	json_verdict(out, r, g);
	fputc('}', out);
}

static void json_counters(FILE *out, const struct lw_snapshot *s)
{
	const uint64_t *c = s->counters;
	fprintf(out,
		"{\"events\":%llu,\"sock_opened\":%llu,\"sock_closed\":%llu,\"bad_closes\":%llu,"
		"\"stale_closes\":%llu,\"heap_allocs\":%llu,\"heap_frees\":%llu,"
		"\"heap_untracked_frees\":%llu,\"guard_recovered\":%llu,\"drops\":{\"handle_full\":%llu,\"stack_full\":%llu,"
		"\"module_full\":%llu,\"unwind\":%llu,\"busy\":%llu,\"reentrant\":%llu,"
		"\"heap_full\":%llu}}",
		(unsigned long long)c[LW_CTR_EVENTS], (unsigned long long)c[LW_CTR_SOCK_OPENED],
		(unsigned long long)c[LW_CTR_SOCK_CLOSED], (unsigned long long)c[LW_CTR_BAD_CLOSES],
		(unsigned long long)c[LW_CTR_STALE_CLOSES], (unsigned long long)c[LW_CTR_HEAP_ALLOCS],
		(unsigned long long)c[LW_CTR_HEAP_FREES], (unsigned long long)c[LW_CTR_HEAP_UNTRACKED_FREES],
		(unsigned long long)c[LW_CTR_GUARD_RECOVERED], (unsigned long long)c[LW_CTR_DROP_HANDLE_FULL],
		(unsigned long long)c[LW_CTR_DROP_STACK_FULL], (unsigned long long)c[LW_CTR_DROP_MODULE_FULL],
		(unsigned long long)c[LW_CTR_DROP_UNWIND], (unsigned long long)c[LW_CTR_DROP_BUSY],
		(unsigned long long)c[LW_CTR_DROP_REENTRANT], (unsigned long long)c[LW_CTR_DROP_HEAP_FULL]);
}

/* Estimates are rounded: "count":1000, never "count":999.9999. */
static void json_count(FILE *out, double v)
{
	fprintf(out, "%.0f", v < 0 ? 0.0 : round(v));
}

static int heap_group_shown(const struct lw_report *r, const struct lw_heap_group *g)
{
	return g->cls == LW_HEAP_PROGRAM || r->opts.all;
}

static void json_heap_group(FILE *out, struct lw_report *r, const struct lw_heap_group *g)
{
	fprintf(out, "{\"class\":\"%s\",\"system\":%s,\"count\":", lw_heap_class_name(g->cls),
		g->cls == LW_HEAP_SYSTEM ? "true" : "false");
	json_count(out, g->blocks);
	fputs(",\"bytes\":", out);
	json_count(out, g->bytes);
	fprintf(out, ",\"samples\":%zu,\"total_allocations\":", g->samples);
	json_count(out, g->total_allocs);
	fputs(",\"total_allocated_bytes\":", out);
	json_count(out, g->total_bytes);
	fprintf(out, ",\"age_min_s\":%.3f,\"age_median_s\":%.3f,\"age_max_s\":%.3f,\"stack_id\":%u,\"stack\":",
		ns_to_s(g->age_min_ns), ns_to_s(g->age_median_ns), ns_to_s(g->age_max_ns), g->stack_id);
	json_stack(out, r, g->stack_id);
	fputc('}', out);
}

static void json_sockets(FILE *out, struct lw_report *r);

static void json_heap(FILE *out, struct lw_report *r)
{
	const struct lw_heap *h = &r->heap;
	double live_blocks = 0, live_bytes = 0;
	for (int c = 0; c < LW_HEAP_NCLASS; c++) {
		live_blocks += h->blocks[c];
		live_bytes += h->bytes[c];
	}
	fprintf(out, "{\"mode\":\"%s\",\"sample_bytes\":%llu,\"estimated\":%s,\"samples\":%zu,\"live_blocks\":",
		lw_heap_mode_name(h->mode), (unsigned long long)h->sample_bytes,
		h->estimated ? "true" : "false", h->nsamples);
	json_count(out, live_blocks);
	fputs(",\"live_bytes\":", out);
	json_count(out, live_bytes);
	fputs(",\"program_blocks\":", out);
	json_count(out, h->blocks[LW_HEAP_PROGRAM]);
	fputs(",\"program_bytes\":", out);
	json_count(out, h->bytes[LW_HEAP_PROGRAM]);
	/* A block of a running process is live, not leaked: it may still be freed. */
	if (lw_report_ended(r)) {
		fputs(",\"leaked_blocks\":", out);
		json_count(out, h->blocks[LW_HEAP_PROGRAM]);
		fputs(",\"leaked_bytes\":", out);
		json_count(out, h->bytes[LW_HEAP_PROGRAM]);
	} else {
		fputs(",\"leaked_blocks\":null,\"leaked_bytes\":null", out);
	}
	fputs(",\"system_blocks\":", out);
	json_count(out, h->blocks[LW_HEAP_SYSTEM]);
	fputs(",\"system_bytes\":", out);
	json_count(out, h->bytes[LW_HEAP_SYSTEM]);
	fputs(",\"groups\":[", out);
	int first = 1;
	for (size_t i = 0; i < h->ngroups; i++) {
		if (!heap_group_shown(r, &h->groups[i]))
			continue;
		if (!first)
			fputc(',', out);
		json_heap_group(out, r, &h->groups[i]);
		first = 0;
	}
	fputs("]}", out);
}

int lw_render_json(FILE *out, struct lw_report *r)
{
	const struct lw_snapshot *s = &r->snap;
	fputs("{\"leakwatch\":1,\"segment\":", out);
	lw_json_string(out, s->path);
	fprintf(out, ",\"pid\":%d,\"ppid\":%d,\"command\":", s->hdr.pid, s->hdr.ppid);
	lw_json_string(out, s->hdr.cmdline);
	fputs(",\"exe\":", out);
	lw_json_string(out, s->hdr.exe);
	fprintf(out, ",\"state\":\"%s\",\"exit_status\":", state_word(r));
	if (r->live == LW_LIVE_EXITED && s->hdr.exit_known)
		fprintf(out, "%d", s->hdr.exit_status);
	else
		fputs("null", out);
	fprintf(out, ",\"uptime_s\":%.3f,\"end_time_lower_bound\":%s,\"counters\":", ns_to_s(uptime_ns(r)),
		at_least(r) ? "true" : "false");
	json_counters(out, s);
	fprintf(out, ",\"busy_slots\":%zu,\"missing_stacks\":%zu,\"open_tracked\":%zu,\"kernel_view\":{\"available\":%s,\"error\":",
		s->busy, s->missing_stacks, lw_snapshot_open_count(s), r->join.fd_ok ? "true" : "false");
	if (r->join.fd_ok || r->join.pid <= 0)
		fputs("null", out);
	else
		lw_json_string(out, strerror(r->join.fd_errno));
	fprintf(out, "},\"sock_diag\":");
	if (r->join.diag_loaded)
		fprintf(out, "{\"inet\":\"%s\",\"unix\":\"%s\"}", lw_sockdiag_source_name(r->join.diag.source_inet),
			lw_sockdiag_source_name(r->join.diag.source_unix));
	else
		fputs("null", out);
	fprintf(out, ",\"older_than_s\":%.3f,\"kind\":\"%s\"", ns_to_s(r->opts.older_than_ns),
		lw_kind_name(r->opts.kind));
	fprintf(out, ",\"group_by\":\"%s\",\"idle_for_s\":%.3f,\"interval_s\":", lw_group_by_name(r->opts.by),
		ns_to_s(r->opts.idle_for_ns ? r->opts.idle_for_ns : LW_IDLE_FOR_DEFAULT_NS));
	if (r->have_prev)
		fprintf(out, "%.3f", ns_to_s(r->now_ns > r->prev_now_ns ? r->now_ns - r->prev_now_ns : 0));
	else
		fputs("null", out);
	if (lw_kind_sockets(r->opts.kind))
		json_sockets(out, r);
	if (lw_kind_heap(r->opts.kind)) {
		fputs(",\"heap\":", out);
		json_heap(out, r);
	}
	fputc('}', out);
	return ferror(out) ? -1 : 0;
}

static void json_sockets(FILE *out, struct lw_report *r)
{
	const struct lw_snapshot *s = &r->snap;
	fputs(",\"groups\":[", out);
	for (size_t i = 0; i < r->grouping.ngroups; i++) {
		if (i)
			fputc(',', out);
		json_group(out, r, &r->grouping.groups[i]);
	}
	fputs("],\"untracked\":[", out);
	for (size_t i = 0; i < r->join.nuntracked; i++)
		fprintf(out, "%s{\"fd\":%d,\"inode\":%llu}", i ? "," : "", r->join.untracked[i].fd,
			(unsigned long long)r->join.untracked[i].inode);
	fprintf(out, "],\"stale\":%zu", r->join.nstale);
	if (r->opts.all) {
		fputs(",\"stale_fds\":[", out);
		int first = 1;
		for (size_t i = 0; i < s->nhandles; i++)
			if (s->handles[i].h.state == LW_H_OPEN && !lw_join_valid(&r->join, s, i)) {
				fprintf(out, "%s%d", first ? "" : ",", s->handles[i].fd);
				first = 0;
			}
		fputc(']', out);
	}
	fputs(",\"bad_closes\":[", out);
	for (size_t i = 0; i < s->nbadcloses; i++) {
		const struct lw_badclose *b = &s->badcloses[i];
		uint64_t age = r->now_ns > b->ns ? r->now_ns - b->ns : 0;
		fprintf(out, "%s{\"fd\":%d,\"tid\":%d,\"age_s\":%.3f,\"kind\":\"%s\",\"prev_origin\":\"%s\",\"stack\":",
			i ? "," : "", b->fd, b->tid, ns_to_s(age),
			b->prev_state == LW_H_CLOSED ? "double_close" : "never_opened",
			lw_origin_name(b->prev_origin));
		json_stack(out, r, b->stack_id);
		fputs(",\"prev_open_stack\":", out);
		json_stack(out, r, b->prev_open_stack_id);
		fputs(",\"prev_close_stack\":", out);
		json_stack(out, r, b->prev_close_stack_id);
		fputc('}', out);
	}
	fputc(']', out);
}

/* ---- text --------------------------------------------------------------- */

/* Recorded strings come from another process: never let them drive the terminal. */
static void text_safe(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, out);
}

static const char *proto_name(const struct lw_group *g, char *buf, size_t len)
{
	int inet = g->family == AF_INET || g->family == AF_INET6;
	if (inet && g->type == SOCK_STREAM)
		snprintf(buf, len, g->family == AF_INET6 ? "TCP6" : "TCP");
	else if (inet && g->type == SOCK_DGRAM)
		snprintf(buf, len, g->family == AF_INET6 ? "UDP6" : "UDP");
	else if (g->family == AF_UNIX)
		snprintf(buf, len, "UNIX/%s",
			 g->type == SOCK_STREAM ? "stream" : g->type == SOCK_DGRAM ? "dgram" :
			 g->type == SOCK_SEQPACKET ? "seqpacket" : "other");
	else
		snprintf(buf, len, "%s/%s", lw_family_name(g->family) + 3, lw_type_name(g->type) + 5);
	return buf;
}

/* "TCP -> 1.2.3.4:5432", "TCP accepted on 0.0.0.0:80", "UDP on 0.0.0.0:53", "UNIX/stream". */
static void group_describe(const struct lw_group *g, char *buf, size_t len)
{
	char proto[32];
	proto_name(g, proto, sizeof proto);
	if (g->role == LW_EP_PEER)
		snprintf(buf, len, "%s -> %s", proto, g->endpoint);
	else if (g->role == LW_EP_LOCAL)
		snprintf(buf, len, "%s %s %s", proto,
			 g->origin == LW_ORIGIN_ACCEPT ? "accepted on" : "on", g->endpoint);
	else
		snprintf(buf, len, "%s (no address)", proto);
	/* The endpoint came from the target: scrub control characters. */
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* DWARF paths are absolute; relative to the current directory they read better. */
static const char *path_short(const char *path, const char *cwd)
{
	size_t n = strlen(cwd);
	if (n > 1 && strncmp(path, cwd, n) == 0 && path[n] == '/')
		return path + n + 1;
	return path;
}

/* The stack under a group: "  LABEL  frame" with the label padded to lw columns. */
static int runtime_frame(const char *fn)
{
	static const char *const names[] = { "_start", "__libc_start_main", "__libc_start_call_main",
					     "start_thread", "__clone3", "__clone", "clone", "clone3" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(fn, names[i]))
			return 1;
	return 0;
}

static void text_stack_sfx(FILE *out, struct lw_report *r, uint32_t stack_id, const char *label, int lw,
			   const char *cwd, const char *suffix)
{
	struct lw_frame frames[MAX_FRAMES];
	size_t n = 0;
	const struct lw_snap_stack *st = lw_snapshot_stack(&r->snap, stack_id);
	if (st)
		n = lw_symbolize_stack(r->sym, st->frames, st->depth, frames, MAX_FRAMES);
	if (n == 0) {
		fprintf(out, "  %-*s (no stack recorded)%s\n", lw, label, suffix);
		return;
	}
	/* The C runtime's frames below main() or a thread's start routine say
	 * nothing at 3 AM: the text report stops there (JSON keeps them). */
	while (n > 1 && frames[n - 1].function && runtime_frame(frames[n - 1].function))
		n--;
	int width = 0;
	for (size_t i = 0; i < n; i++) {
		int w = frames[i].function ? (int)strlen(frames[i].function) : 0;
		if (w > width)
			width = w;
	}
	if (width > 40)
		width = 40;
	for (size_t i = 0; i < n; i++) {
		const struct lw_frame *f = &frames[i];
		char loc[LW_PATH_MAX + 32];
		fprintf(out, "  %-*s ", lw, i == 0 ? label : "");
		if (!f->function) {
			text_safe(out, lw_frame_format_location(f, loc, sizeof loc));
		} else {
			int len = (int)strlen(f->function);
			text_safe(out, f->function);
			if (f->file) {
				fprintf(out, "%*s  ", len < width ? width - len : 0, "");
				text_safe(out, path_short(f->file, cwd));
				if (f->line > 0)
					fprintf(out, ":%d", f->line);
			} else {
				fprintf(out, "%*s  ", len < width ? width - len : 0, "");
				text_safe(out, lw_frame_format_location(f, loc, sizeof loc));
			}
		}
		if (f->inlined)
			fputs("  [inlined]", out);
		if (f->buildid_mismatch)
			fputs("  (build-id mismatch)", out);
		if (i == 0)
			fputs(suffix, out);
		fputc('\n', out);
	}
}

static void text_stack_w(FILE *out, struct lw_report *r, uint32_t stack_id, const char *label, int lw,
			 const char *cwd)
{
	text_stack_sfx(out, r, stack_id, label, lw, cwd, "");
}

static void text_stack(FILE *out, struct lw_report *r, uint32_t stack_id, const char *label,
		       const char *cwd)
{
	text_stack_w(out, r, stack_id, label, 11, cwd);
}

static void text_fds(FILE *out, const struct lw_group *g)
{
	const size_t shown = 16;
	fputs("  fds        ", out);
	for (size_t i = 0; i < g->nfds && i < shown; i++)
		fprintf(out, "%s%d", i ? " " : "", g->fds[i]);
	if (g->nfds > shown)
		fprintf(out, " ... (%zu more)", g->nfds - shown);
	fputc('\n', out);
}

/* "97/97" */
static char *share_fmt(size_t n, size_t of, char *buf, size_t len)
{
	snprintf(buf, len, "%zu/%zu", n, of);
	return buf;
}

static void text_opened(FILE *out, struct lw_report *r, const struct lw_group *g, const char *cwd)
{
	char sfx[64] = "", sh[48];
	if (g->inherited) {
		fputs("  opened       before leakwatch loaded (inherited across exec or fork)\n", out);
		return;
	}
	if (g->open_share < g->count)
		snprintf(sfx, sizeof sfx, "  (%s)", share_fmt(g->open_share, g->count, sh, sizeof sh));
	text_stack_sfx(out, r, g->stack_id, "opened at", 12, cwd, sfx);
}

static void text_last_used(FILE *out, struct lw_report *r, const struct lw_group *g, const char *cwd)
{
	char sfx[64] = "", sh[48];
	if (g->use_share < g->count)
		snprintf(sfx, sizeof sfx, "  (%s)", share_fmt(g->use_share, g->count, sh, sizeof sh));
	if (g->use_stack_id == 0)
		fprintf(out, "  %-12s never (nothing sent since opened)%s\n", "last used at", sfx);
	else
		text_stack_sfx(out, r, g->use_stack_id, "last used at", 12, cwd, sfx);
}

/* One line of evidence under a live group: what the verdict was decided on. */
static void text_evidence(FILE *out, const struct lw_group *g)
{
	const struct lw_evidence *e = &g->ev;
	char a[32], b[32], c[32];
	fputs("  evidence    ", out);
	if (g->verdict == LW_V_LISTENING) {
		fprintf(out, "listening");
		if (e->kernel_known)
			fprintf(out, " (kernel)");
	} else {
		lw_duration_format(e->idle_min_ns, a, sizeof a);
		lw_duration_format(e->idle_max_ns, b, sizeof b);
		fprintf(out, "idle %s", a);
		if (e->idle_min_ns / 1000000 != e->idle_max_ns / 1000000)
			fprintf(out, "..%s", b);
		fprintf(out, " (");
		int any = 0;
		if (e->idle_kernel)
			any = fprintf(out, "kernel %zu", e->idle_kernel) > 0;
		if (e->idle_shim)
			any = fprintf(out, "%sshim %zu", any ? ", " : "", e->idle_shim) > 0;
		if (e->idle_age)
			fprintf(out, "%snever used %zu", any ? ", " : "", e->idle_age);
		fprintf(out, "), %zu/%zu idle > %s", e->idle, g->count,
			lw_duration_format(e->idle_for_ns, c, sizeof c));
		if (e->close_wait)
			fprintf(out, ", %zu in CLOSE_WAIT", e->close_wait);
		if (e->kernel_known)
			fprintf(out, ", recv-q %llu B, send-q %llu B", (unsigned long long)e->rqueue,
				(unsigned long long)e->wqueue);
	}
	if (e->have_interval) {
		double min = (double)e->interval_ns / 60e9;
		lw_duration_format(e->interval_ns, a, sizeof a);
		fprintf(out, "; over %s: %zu -> %zu open (%+lld)", a, e->count_start, e->count_end,
			(long long)e->count_end - (long long)e->count_start);
		if (g->by == LW_BY_OPEN && min > 0)
			fprintf(out, ", %.1f/min opened, %.1f/min closed", (double)e->opened / min,
				(double)e->closed / min);
	} else if (e->growing) {
		fprintf(out, "; growing: idle members opened over %s",
			lw_duration_format(g->age_max_ns - g->age_min_ns, a, sizeof a));
	}
	if (g->split)
		fprintf(out, "; %zu of %zu opened here", g->count, e->key_count);
	fputc('\n', out);
}

static const char *const verdict_words[] = {
	[LW_V_LEFT_OPEN] = "left open", [LW_V_LEAK_SUSPECT] = "leak suspect", [LW_V_POOL] = "pool",
	[LW_V_ACTIVE] = "active", [LW_V_NEW] = "new", [LW_V_LISTENING] = "listening",
};

static void text_group(FILE *out, struct lw_report *r, const struct lw_group *g, int cw, int dw,
		       const char *cwd)
{
	char desc[LW_ENDPOINT_MAX + 64], a1[32], a2[32], d[32];
	int live = g->verdict != LW_V_LEFT_OPEN;
	group_describe(g, desc, sizeof desc);
	lw_duration_format(g->age_min_ns, a1, sizeof a1);
	lw_duration_format(g->age_max_ns, a2, sizeof a2);
	const char *al = at_least(r) ? "at least " : "";
	if (live)
		fprintf(out, "%-12s  %*zu  %-*s  age %s%s", lw_verdict_title(g->verdict), cw, g->count, dw, desc, al,
			a1);
	else
		fprintf(out, "%-9s  %*zu  %-*s  age %s%s", g->inherited ? "INHERITED" : "SOCKETS", cw, g->count,
			dw, desc, al, a1);
	if (g->age_min_ns / 1000000 != g->age_max_ns / 1000000)
		fprintf(out, "..%s", a2);
	if (g->verdict == LW_V_LEAK_SUSPECT) {
		if (g->ev.idle)
			fprintf(out, ", idle > %s (%zu/%zu)", lw_duration_format(g->ev.idle_for_ns, d, sizeof d),
				g->ev.idle, g->count);
		if (g->ev.close_wait)
			fprintf(out, ", CLOSE_WAIT (%zu/%zu)", g->ev.close_wait, g->count);
	} else if (live && g->verdict != LW_V_LISTENING) {
		fprintf(out, ", last I/O %s ago", lw_duration_format(g->ev.idle_min_ns, d, sizeof d));
	}
	for (size_t i = 0; i < g->nstates; i++)
		fprintf(out, "%s%s %zu", i ? ", " : "   ", g->states[i].name, g->states[i].n);
	fputc('\n', out);
	if (live)
		text_evidence(out, g);
	if (g->origin_mask & ~((1u << LW_ORIGIN_SOCKET) | (1u << LW_ORIGIN_ACCEPT))) {
		fputs("  via       ", out);
		for (unsigned o = 0; o < LW_ORIGIN_MAX; o++)
			if (g->origin_mask & (1u << o))
				fprintf(out, " %s", lw_origin_name(o));
		fputc('\n', out);
	}
	text_fds(out, g);
	if (g->npeers_total > 0) {
		fputs("  peers     ", out);
		for (size_t i = 0; i < g->npeers && i < 4; i++) {
			fputc(' ', out);
			text_safe(out, g->peers[i]);
		}
		if (g->npeers_total > 4)
			fprintf(out, " ... (%zu distinct)", g->npeers_total);
		fputc('\n', out);
	}
	/* Sockets nobody ever wrote to say nothing new about last use once the image is gone. */
	int show_use = live || g->use_stack_id != 0 || g->use_share < g->count;
	/* The culprit of a leak inside a pool is who used it last, not who opened it. */
	int use_first = g->by == LW_BY_USE || (g->verdict == LW_V_LEAK_SUSPECT && g->use_stack_id != 0);
	if (use_first) {
		text_last_used(out, r, g, cwd);
		text_opened(out, r, g, cwd);
	} else {
		text_opened(out, r, g, cwd);
		if (show_use && g->verdict != LW_V_LISTENING)
			text_last_used(out, r, g, cwd);
	}
}

static void text_badclose(FILE *out, struct lw_report *r, const struct lw_badclose *b, const char *cwd)
{
	char age[32];
	lw_duration_format(r->now_ns > b->ns ? r->now_ns - b->ns : 0, age, sizeof age);
	if (b->prev_state == LW_H_CLOSED)
		fprintf(out, "BAD CLOSE  fd %d closed twice by tid %d, %s ago\n", b->fd, b->tid, age);
	else
		fprintf(out, "BAD CLOSE  fd %d closed by tid %d but was not open, %s ago\n", b->fd, b->tid,
			age);
	text_stack(out, r, b->stack_id, "closed at", cwd);
	if (b->prev_close_stack_id)
		text_stack(out, r, b->prev_close_stack_id, "previously", cwd);
	if (b->prev_open_stack_id)
		text_stack(out, r, b->prev_open_stack_id, "opened at", cwd);
}

static void text_drops(FILE *out, const struct lw_report *r)
{
	static const struct { enum lw_counter c; const char *what; } drops[] = {
		{ LW_CTR_DROP_HANDLE_FULL, "fd beyond handle table" },
		{ LW_CTR_DROP_STACK_FULL, "stack table full" },
		{ LW_CTR_DROP_MODULE_FULL, "module table full" },
		{ LW_CTR_DROP_UNWIND, "unwind failed" },
		{ LW_CTR_DROP_BUSY, "slot busy" },
		{ LW_CTR_DROP_REENTRANT, "re-entrant hook" },
		{ LW_CTR_DROP_HEAP_FULL, "heap table full" },
	};
	int any = 0;
	for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
		uint64_t v = r->snap.counters[drops[i].c];
		if (!v)
			continue;
		fprintf(out, "%s%s %llu", any ? ", " : "DROPPED    events the shim could not record: ",
			drops[i].what, (unsigned long long)v);
		any = 1;
	}
	if (any)
		fputc('\n', out);
	if (r->snap.busy)
		fprintf(out, "BUSY       %zu slot(s) skipped: a writer held them during the snapshot\n",
			r->snap.busy);
	if (r->snap.missing_stacks)
		fprintf(out, "MISSING    %zu stack reference(s) not in the stack table (no stack recorded)\n",
			r->snap.missing_stacks);
}

static void text_summary(FILE *out, const struct lw_report *r)
{
	const struct lw_snapshot *s = &r->snap;
	char up[32];
	lw_duration_format(uptime_ns(r), up, sizeof up);
	fprintf(out, "leakwatch: pid %d (", s->hdr.pid);
	text_safe(out, s->hdr.cmdline[0] ? s->hdr.cmdline : s->hdr.exe);
	fprintf(out, ") %s", state_word(r));
	if (r->live == LW_LIVE_EXITED && s->hdr.exit_known)
		fprintf(out, " with status %d", s->hdr.exit_status);
	fprintf(out, ", %s%s %s", r->live == LW_LIVE_ALIVE ? "up" : "ran", at_least(r) ? " at least" : "", up);
	int socks = lw_kind_sockets(r->opts.kind);
	int heap = lw_kind_heap(r->opts.kind) && r->heap.mode != LW_HEAP_OFF;
	if (socks) {
		fprintf(out, ", %zu open socket%s tracked", lw_snapshot_open_count(s),
			lw_snapshot_open_count(s) == 1 ? "" : "s");
		if (r->join.fd_ok)
			fprintf(out, ", %zu untracked", r->join.nuntracked);
		if (r->join.nstale)
			fprintf(out, ", %zu stale", r->join.nstale);
	}
	if (heap)
		fprintf(out, ", %zu live heap block%s recorded%s", s->nallocs, s->nallocs == 1 ? "" : "s",
			r->heap.estimated ? " (sampled)" : "");
	fputc('\n', out);
	if (lw_kind_heap(r->opts.kind) && !socks && r->heap.mode == LW_HEAP_OFF)
		fprintf(out, "note: heap tracking was off in this process: no heap data\n");
	if (r->join.pid > 0 && !r->join.fd_ok)
		fprintf(out, "note: cannot read /proc/%d/fd (%s); showing the segment alone\n", r->join.pid,
			strerror(r->join.fd_errno));
	/* the "below" notes only make sense when something is below */
	if ((!socks || r->grouping.ngroups == 0) && (!heap || r->heap.ngroups == 0))
		goto notes_done;
	const char *what = socks && heap ? "sockets and heap blocks" : heap ? "heap blocks" : "sockets";
	const char *open_word = socks && heap ? "open or allocated" : socks ? "open" : "allocated";
	if (r->live == LW_LIVE_EXECED)
		fprintf(out, "note: this image was replaced by execve(); %s below were %s at exec\n", what,
			open_word);
	else if (r->live == LW_LIVE_DEAD)
		fprintf(out, "note: the process is gone without an exit record (killed?); %s below were %s at the end\n",
			what, open_word);
	else if (r->live == LW_LIVE_EXITED)
		fprintf(out, "note: %s below were still %s at exit\n", what, open_word);
notes_done:
	if (!r->sym)
		fprintf(out, "note: symbolization unavailable (libdw); frames shown as module+offset\n");
}

static const char *heap_tag(enum lw_heap_class c)
{
	switch (c) {
	case LW_HEAP_PROGRAM: return "HEAP";
	case LW_HEAP_SYSTEM: return "SYSTEM";
	case LW_HEAP_UNRECORDED: return "NO STACK";
	case LW_HEAP_NCLASS: break;
	}
	return "HEAP";
}

/* "1000", "~1000": estimates carry a tilde. */
static char *heap_num(const struct lw_heap *h, double v, char *buf, size_t len)
{
	snprintf(buf, len, "%s%.0f", h->estimated ? "~" : "", v < 0 ? 0.0 : round(v));
	return buf;
}

static char *heap_bytes(const struct lw_heap *h, double v, char *buf, size_t len)
{
	char b[32];
	snprintf(buf, len, "%s%s", h->estimated ? "~" : "", lw_bytes_format(v, b, sizeof b));
	return buf;
}

static void text_heap_group(FILE *out, struct lw_report *r, const struct lw_heap_group *g, int tw, int cw,
			    const char *cwd)
{
	const struct lw_heap *h = &r->heap;
	char n[48], b[48], t[48], a1[32], a2[32], med[32];
	heap_num(h, g->blocks, n, sizeof n);
	heap_bytes(h, g->bytes, b, sizeof b);
	heap_bytes(h, g->total_bytes, t, sizeof t);
	lw_duration_format(g->age_min_ns, a1, sizeof a1);
	lw_duration_format(g->age_max_ns, a2, sizeof a2);
	lw_duration_format(g->age_median_ns, med, sizeof med);
	/* An estimate from few samples is a guess: say how few (1/sqrt(samples) relative error). */
	char est[48] = "";
	if (h->estimated && g->samples < LW_HEAP_FEW_SAMPLES)
		snprintf(est, sizeof est, " (est. from %zu sample%s)", g->samples, g->samples == 1 ? "" : "s");
	fprintf(out, "%-*s %*s block%s  %s live%s  (allocated %s total)  age %s%s", tw, heap_tag(g->cls), cw, n,
		round(g->blocks) == 1 ? " " : "s", b, est, t, at_least(r) ? "at least " : "", a1);
	if (g->age_min_ns / 1000000 != g->age_max_ns / 1000000)
		fprintf(out, "..%s, median %s", a2, med);
	fputc('\n', out);
	text_stack_w(out, r, g->stack_id, "allocated at", 13, cwd);
}

static void text_heap(FILE *out, struct lw_report *r, const char *cwd)
{
	const struct lw_heap *h = &r->heap;
	char n[48], b[48], d[32];
	if (h->estimated)
		fprintf(out, "heap: sampled, one sample per %s allocated on average; numbers marked ~ are estimates\n",
			lw_bytes_format((double)h->sample_bytes, b, sizeof b));
	int tw = 8, cw = 1;
	for (size_t i = 0; i < h->ngroups; i++) {
		const struct lw_heap_group *g = &h->groups[i];
		if (!heap_group_shown(r, g))
			continue;
		int w = (int)strlen(heap_num(h, g->blocks, n, sizeof n));
		if (w > cw)
			cw = w;
		if ((int)strlen(heap_tag(g->cls)) > tw)
			tw = (int)strlen(heap_tag(g->cls));
	}
	if (h->blocks[LW_HEAP_PROGRAM] <= 0) {
		if (r->opts.older_than_ns)
			fprintf(out, "no live heap blocks older than %s allocated by the program\n",
				lw_duration_format(r->opts.older_than_ns, d, sizeof d));
		else
			fprintf(out, "no live heap blocks allocated by the program\n");
	}
	for (size_t i = 0; i < h->ngroups; i++)
		if (heap_group_shown(r, &h->groups[i]))
			text_heap_group(out, r, &h->groups[i], tw, cw, cwd);
	if (!r->opts.all) {
		double hb = 0, hn = 0;
		size_t sites = 0;
		for (size_t i = 0; i < h->ngroups; i++)
			if (!heap_group_shown(r, &h->groups[i])) {
				hb += h->groups[i].bytes;
				hn += h->groups[i].blocks;
				sites++;
			}
		if (sites)
			fprintf(out, "(%s block%s, %s not counted: kept by the C/C++ runtime or without a stack; --all shows them)\n",
				heap_num(h, hn, n, sizeof n), round(hn) == 1 ? "" : "s",
				heap_bytes(h, hb, b, sizeof b));
	}
}

static void text_sockets(FILE *out, struct lw_report *r, const char *cwd)
{
	const struct lw_grouping *g = &r->grouping;
	int cw = 1, dw = 0;
	for (size_t i = 0; i < g->ngroups; i++) {
		char desc[LW_ENDPOINT_MAX + 64], num[32];
		group_describe(&g->groups[i], desc, sizeof desc);
		int n = snprintf(num, sizeof num, "%zu", g->groups[i].count);
		if (n > cw)
			cw = n;
		if ((int)strlen(desc) > dw)
			dw = (int)strlen(desc);
	}
	if (dw > 48)
		dw = 48;
	if (g->ngroups && !lw_report_ended(r)) {
		size_t nv[LW_V_LISTENING + 1] = { 0 };
		for (size_t i = 0; i < g->ngroups; i++)
			nv[g->groups[i].verdict] += g->groups[i].count;
		char d[32];
		fprintf(out, "sockets by verdict (idle > %s, grouped by %s stack):",
			lw_duration_format(r->opts.idle_for_ns ? r->opts.idle_for_ns : LW_IDLE_FOR_DEFAULT_NS, d,
					   sizeof d),
			r->opts.by == LW_BY_USE ? "last-use" : "creation");
		int first = 1;
		for (int v = LW_V_LEAK_SUSPECT; v <= LW_V_LISTENING; v++)
			if (nv[v]) {
				fprintf(out, "%s %zu %s", first ? "" : ",", nv[v], verdict_words[v]);
				first = 0;
			}
		fputc('\n', out);
	}
	if (g->nleaked == 0) {
		char d[32];
		if (r->opts.older_than_ns)
			fprintf(out, "no open sockets older than %s created under leakwatch\n",
				lw_duration_format(r->opts.older_than_ns, d, sizeof d));
		else
			fprintf(out, "no open sockets created under leakwatch\n");
	}
	for (size_t i = 0; i < g->ngroups; i++)
		text_group(out, r, &g->groups[i], cw, dw, cwd);

	if (r->join.nuntracked) {
		fprintf(out, "UNTRACKED  %zu socket%s the shim never saw:", r->join.nuntracked,
			r->join.nuntracked == 1 ? "" : "s");
		for (size_t i = 0; i < r->join.nuntracked && i < 16; i++)
			fprintf(out, " fd %d (inode %llu)%s", r->join.untracked[i].fd,
				(unsigned long long)r->join.untracked[i].inode,
				i + 1 < r->join.nuntracked && i < 15 ? "," : "");
		if (r->join.nuntracked > 16)
			fprintf(out, " ...");
		fputc('\n', out);
	}
	if (r->opts.all && r->join.nstale) {
		fprintf(out, "STALE      %zu entr%s no longer match /proc/%d/fd (closed where no hook saw it):",
			r->join.nstale, r->join.nstale == 1 ? "y" : "ies", r->join.pid);
		for (size_t i = 0; i < r->snap.nhandles; i++)
			if (r->snap.handles[i].h.state == LW_H_OPEN && !lw_join_valid(&r->join, &r->snap, i))
				fprintf(out, " fd %d", r->snap.handles[i].fd);
		fputc('\n', out);
	}
	for (size_t i = 0; i < r->snap.nbadcloses; i++)
		text_badclose(out, r, &r->snap.badcloses[i], cwd);
}

int lw_render_text(FILE *out, struct lw_report *r)
{
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		cwd[0] = '\0';
	text_summary(out, r);
	if (lw_kind_sockets(r->opts.kind))
		text_sockets(out, r, cwd);
	if (lw_kind_heap(r->opts.kind) && r->heap.mode != LW_HEAP_OFF)
		text_heap(out, r, cwd);
	text_drops(out, r);
	return ferror(out) ? -1 : 0;
}

/* ---- folded ------------------------------------------------------------- */

/* A frame in a folded line: ';' separates frames and the last ' ' the weight. */
static void folded_name(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		fputc(*p == ';' ? ':' : *p < 0x20 || *p == 0x7f ? '?' : *p, out);
}

static void folded_line(FILE *out, struct lw_report *r, const char *root, uint32_t stack_id,
			const char *missing, unsigned long long weight)
{
	struct lw_frame frames[MAX_FRAMES];
	size_t n = 0;
	const struct lw_snap_stack *st = lw_snapshot_stack(&r->snap, stack_id);
	if (st)
		n = lw_symbolize_stack(r->sym, st->frames, st->depth, frames, MAX_FRAMES);
	int first = 1;
	if (root) {
		folded_name(out, root);
		first = 0;
	}
	if (n == 0) {
		if (!first)
			fputc(';', out);
		fputs(missing, out);
		first = 0;
	}
	/* Frames are innermost first; folded stacks start at the root. */
	for (size_t i = n; i-- > 0;) {
		char loc[LW_PATH_MAX + 32];
		const struct lw_frame *f = &frames[i];
		if (!first)
			fputc(';', out);
		folded_name(out, f->function ? f->function : lw_frame_format_location(f, loc, sizeof loc));
		first = 0;
	}
	fprintf(out, " %llu\n", weight);
}

int lw_render_folded(FILE *out, struct lw_report *r, const char *root)
{
	if (r->opts.kind == LW_KIND_SOCKETS) {
		for (size_t i = 0; i < r->grouping.ngroups; i++) {
			const struct lw_group *g = &r->grouping.groups[i];
			folded_line(out, r, root, g->inherited ? 0 : g->stack_id,
				    g->inherited ? "[inherited]" : "[unknown]", (unsigned long long)g->count);
		}
		return ferror(out) ? -1 : 0;
	}
	for (size_t i = 0; i < r->heap.ngroups; i++) {
		const struct lw_heap_group *g = &r->heap.groups[i];
		if (!heap_group_shown(r, g))
			continue;
		double w = round(g->bytes);
		folded_line(out, r, root, g->stack_id, "[unknown]", w > 0 ? (unsigned long long)w : 0);
	}
	return ferror(out) ? -1 : 0;
}
