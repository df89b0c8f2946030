/* SPDX-License-Identifier: MIT */
/*
 * metrics.c — the exporter's model (metrics.h): collection, growth, and the
 * Prometheus / OpenMetrics exposition and the /stacks JSON.
 *
 * A collection builds one report per live segment, exactly as `report PID`
 * does (same verdicts, same idle threshold), keeps what the exposition needs
 * — counts, the top N sites with their symbolized stacks — and frees the
 * report: nothing of a segment stays mapped between collections.
 *
 * Growth is a least-squares slope over the samples of the window (default
 * 5m), so one burst does not look like a trend; the time to exhaustion is
 * the descriptors left under the soft RLIMIT_NOFILE over that slope, and is
 * not exported while descriptors do not grow.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heapgroups.h"
#include "json.h"
#include "metrics.h"
#include "present.h"
#include "report.h"
#include "segdir.h"
#include "site.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void lw_metrics_init(struct lw_metrics *m, const struct lw_metrics_opts *o)
{
	memset(m, 0, sizeof *m);
	m->o = *o;
	if (!m->o.dir)
		m->o.dir = lw_segment_dir();
	if (!m->o.top)
		m->o.top = LW_METRICS_TOP_DEFAULT;
	if (!m->o.window_ns)
		m->o.window_ns = 5ull * 60 * 1000000000ull;
}

static char *dupn(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void sites_free(struct lw_met_site *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < s[i].nframes; k++) {
			free(s[i].frames[k].function);
			free(s[i].frames[k].file);
			free(s[i].frames[k].module);
		}
		free(s[i].frames);
	}
	free(s);
}

static void proc_clear(struct lw_met_proc *p)
{
	sites_free(p->sites, p->nsites);
	p->sites = NULL;
	p->nsites = 0;
	free(p->socks);
	free(p->fdv);
	p->socks = p->fdv = NULL;
	p->nsocks = p->nfdv = 0;
}

void lw_metrics_free(struct lw_metrics *m)
{
	for (size_t i = 0; i < m->nprocs; i++) {
		proc_clear(&m->procs[i]);
		lw_site_graph_free(&m->procs[i].cg);
	}
	free(m->procs);
	m->procs = NULL;
	m->nprocs = 0;
}

/* FNV-1a, 64 bits */
static uint64_t fnv(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return (h ^ 0xff) * 0x100000001b3ull; /* a separator: "ab","c" != "a","bc" */
}

/* sites under construction: merged by id */
struct site_acc {
	struct lw_met_site *v;
	size_t n, cap;
	int oom;
};

static struct lw_met_site *site_add(struct site_acc *a, struct lw_report *r, const struct lw_site_graph *cg,
				    enum lw_met_res res, const char *kind, const char *endpoint, const char *verdict,
				    uint32_t stack_id)
{
	struct lw_frame f[LW_PRESENT_MAX_FRAMES];
	size_t n = lw_present_stack(r, stack_id, f, LW_PRESENT_MAX_FRAMES);
	uint64_t h = 0xcbf29ce484222325ull;
	static const char *const resname[] = { "socket", "fd", "heap" };
	h = fnv(h, resname[res]);
	h = fnv(h, kind);
	h = fnv(h, endpoint);
	for (size_t i = 0; i < n; i++) {
		char buf[64];
		if (f[i].function) {
			h = fnv(h, f[i].function);
			h = fnv(h, f[i].file);
			snprintf(buf, sizeof buf, "%d", f[i].line);
		} else {
			const char *m = f[i].module ? strrchr(f[i].module, '/') : NULL;
			h = fnv(h, m ? m + 1 : f[i].module);
			snprintf(buf, sizeof buf, "%llx", (unsigned long long)f[i].module_off);
		}
		h = fnv(h, buf);
	}
	char id[LW_METRICS_SITE_ID];
	snprintf(id, sizeof id, "%012llx", (unsigned long long)(h & 0xffffffffffffull));
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].id, id) == 0)
			return &a->v[i];
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		struct lw_met_site *v = realloc(a->v, cap * sizeof *v);
		if (!v) {
			a->oom = 1;
			return NULL;
		}
		a->v = v;
		a->cap = cap;
	}
	struct lw_met_site *s = &a->v[a->n++];
	memset(s, 0, sizeof *s);
	memcpy(s->id, id, sizeof id);
	s->res = res;
	snprintf(s->kind, sizeof s->kind, "%s", kind);
	snprintf(s->endpoint, sizeof s->endpoint, "%s", endpoint ? endpoint : "");
	lw_present_scrub(s->endpoint);
	snprintf(s->verdict, sizeof s->verdict, "%s", verdict);
	s->frames = n ? calloc(n, sizeof *s->frames) : NULL;
	if (n && !s->frames) {
		a->oom = 1;
		a->n--;
		return NULL;
	}
	s->nframes = n;
	for (size_t i = 0; i < n; i++) {
		s->frames[i].function = dupn(f[i].function);
		s->frames[i].file = dupn(f[i].file);
		s->frames[i].module = dupn(f[i].module);
		s->frames[i].line = f[i].line;
		s->frames[i].python = f[i].python;
		s->frames[i].module_off = f[i].module_off;
	}
	const struct lw_frame *pick = lw_site_pick(cg, f, n);
	s->site_frame = pick ? (size_t)(pick - f) : n;
	return s;
}

static int site_cmp(const void *pa, const void *pb)
{
	const struct lw_met_site *a = pa, *b = pb;
	if (a->res != b->res)
		return a->res < b->res ? -1 : 1;
	double ka = a->res == LW_MET_HEAP ? a->bytes : a->count, kb = b->res == LW_MET_HEAP ? b->bytes : b->count;
	if (ka != kb)
		return ka > kb ? -1 : 1;
	return strcmp(a->id, b->id);
}

/* Keep the top N of each resource; the rest becomes one "other" row each. */
static void sites_cut(struct site_acc *a, size_t top)
{
	if (a->n)
		qsort(a->v, a->n, sizeof *a->v, site_cmp);
	struct lw_met_site other[LW_MET_NRES];
	int have[LW_MET_NRES] = { 0 };
	size_t kept = 0, rank = 0;
	for (size_t i = 0; i < a->n; i++) {
		struct lw_met_site *s = &a->v[i];
		rank = (i > 0 && a->v[i - 1].res == s->res) ? rank + 1 : 0;
		if (rank < top) {
			a->v[kept++] = *s;
			continue;
		}
		if (!have[s->res]) {
			memset(&other[s->res], 0, sizeof other[s->res]);
			snprintf(other[s->res].id, sizeof other[s->res].id, "other");
			other[s->res].res = s->res;
			snprintf(other[s->res].verdict, sizeof other[s->res].verdict, "%s", s->verdict);
			have[s->res] = 1;
		}
		other[s->res].count += s->count;
		other[s->res].bytes += s->bytes;
		if (s->oldest_ns > other[s->res].oldest_ns)
			other[s->res].oldest_ns = s->oldest_ns;
		for (size_t k = 0; k < s->nframes; k++) {
			free(s->frames[k].function);
			free(s->frames[k].file);
			free(s->frames[k].module);
		}
		free(s->frames);
	}
	a->n = kept;
	for (int r = 0; r < LW_MET_NRES; r++)
		if (have[r] && a->n < a->cap)
			a->v[a->n++] = other[r];
}

static void count_add(struct lw_met_count **v, size_t *n, const char *kind, const char *verdict, double add)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i].kind, kind) == 0 && strcmp((*v)[i].verdict, verdict) == 0) {
			(*v)[i].n += add;
			return;
		}
	struct lw_met_count *nv = realloc(*v, (*n + 1) * sizeof **v);
	if (!nv)
		return;
	*v = nv;
	snprintf(nv[*n].kind, sizeof nv[*n].kind, "%s", kind);
	snprintf(nv[*n].verdict, sizeof nv[*n].verdict, "%s", verdict);
	nv[*n].n = add;
	(*n)++;
}

/* lower-case protocol word for a label: "tcp", "tcp6", "udp", "unix", ... */
static void proto_label(const struct lw_group *g, char *buf, size_t len)
{
	lw_present_proto(g, LW_DESCRIBE_SHORT, buf, len);
	for (char *c = buf; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
}

/* Fill p from one report (the previous sites and counts released first). */
static int proc_fill(struct lw_met_proc *p, struct lw_report *r, size_t top)
{
	proc_clear(p);
	lw_site_graph_update(&p->cg, r);
	struct site_acc a = { 0 };
	p->suspects[LW_MET_SOCKET] = p->suspects[LW_MET_FD] = p->suspects[LW_MET_HEAP] = 0;
	for (size_t i = 0; i < r->grouping.ngroups; i++) {
		const struct lw_group *g = &r->grouping.groups[i];
		char proto[32];
		proto_label(g, proto, sizeof proto);
		const char *verdict = g->inherited ? "inherited" : g->supp ? "suppressed" : lw_verdict_name(g->verdict);
		count_add(&p->socks, &p->nsocks, proto, verdict, (double)g->count);
		if (g->inherited || g->supp || (g->verdict != LW_V_LEAK_SUSPECT && g->verdict != LW_V_LEFT_OPEN))
			continue;
		p->suspects[LW_MET_SOCKET] += (double)g->count;
		char kind[32];
		lw_present_proto(g, LW_DESCRIBE_SHORT, kind, sizeof kind);
		uint32_t st = lw_present_use_first(g) && g->use_stack_id ? g->use_stack_id : g->stack_id;
		struct lw_met_site *s = site_add(&a, r, &p->cg, LW_MET_SOCKET, kind, g->endpoint, verdict, st);
		if (s) {
			s->count += (double)g->count;
			if (g->age_max_ns > s->oldest_ns)
				s->oldest_ns = g->age_max_ns;
		}
	}
	for (size_t i = 0; i < r->fds.ngroups; i++) {
		const struct lw_fd_group *g = &r->fds.groups[i];
		const char *kind = lw_fd_kind_name(lw_fd_group_kind(g));
		const char *verdict = g->inherited ? "inherited" : g->supp ? "suppressed" : lw_fd_verdict_name(g->verdict);
		count_add(&p->fdv, &p->nfdv, kind, verdict, (double)g->count);
		if (g->inherited || g->supp || g->verdict == LW_FDV_OPEN)
			continue;
		p->suspects[LW_MET_FD] += (double)g->count;
		struct lw_met_site *s = site_add(&a, r, &p->cg, LW_MET_FD, kind, "", verdict, g->stack_id);
		if (s) {
			s->count += (double)g->count;
			if (g->age_max_ns > s->oldest_ns)
				s->oldest_ns = g->age_max_ns;
		}
	}
	p->heap_on = r->heap.mode != LW_HEAP_OFF;
	p->heap_estimated = r->heap.estimated;
	lw_present_heap_totals(&r->heap, &p->heap_blocks, &p->heap_bytes);
	for (size_t i = 0; i < r->heap.ngroups; i++) {
		const struct lw_heap_group *g = &r->heap.groups[i];
		if (g->cls != LW_HEAP_PROGRAM)
			continue;
		struct lw_met_site *s = site_add(&a, r, &p->cg, LW_MET_HEAP, "heap", "", "live", g->stack_id);
		if (s) {
			s->count += g->blocks;
			s->bytes += g->bytes;
			if (g->age_max_ns > s->oldest_ns)
				s->oldest_ns = g->age_max_ns;
		}
	}
	sites_cut(&a, top);
	p->sites = a.v;
	p->nsites = a.n;
	/* every descriptor by kind, without the per-fd list */
	p->fd = r->fd_usage;
	p->fd.fds = NULL;
	p->fd.nfds = 0;
	p->gc_closed = (double)(r->gc_sockets + r->gc_fds);
	p->incomplete = r->snap.incomplete != 0;
	return a.oom ? -1 : 0;
}

static void hist_push(struct lw_met_proc *p, const struct lw_met_sample *s)
{
	if (p->nhist < LW_METRICS_HISTORY) {
		p->hist[(p->hist_head + p->nhist) % LW_METRICS_HISTORY] = *s;
		p->nhist++;
	} else {
		p->hist[p->hist_head] = *s;
		p->hist_head = (p->hist_head + 1) % LW_METRICS_HISTORY;
	}
}

double lw_metrics_growth(const struct lw_met_proc *p, int sel, uint64_t window_ns, int *ok)
{
	*ok = 0;
	if (!p->nhist)
		return 0;
	const struct lw_met_sample *last = &p->hist[(p->hist_head + p->nhist - 1) % LW_METRICS_HISTORY];
	double sx = 0, sy = 0, sxx = 0, sxy = 0, n = 0, t0 = 0, t1 = 0;
	for (size_t i = 0; i < p->nhist; i++) {
		const struct lw_met_sample *s = &p->hist[(p->hist_head + i) % LW_METRICS_HISTORY];
		if (last->t_ns - s->t_ns > window_ns)
			continue;
		double x = -(double)(last->t_ns - s->t_ns) / 1e9; /* seconds before the last */
		double y = sel == 0 ? s->fds : sel == 1 ? s->suspects : s->heap_bytes;
		if (n == 0)
			t0 = x;
		t1 = x;
		sx += x, sy += y, sxx += x * x, sxy += x * y, n++;
	}
	double d = n * sxx - sx * sx;
	if (n < 2 || t1 - t0 < 1.0 || d <= 0)
		return 0;
	*ok = 1;
	return (n * sxy - sx * sy) / d;
}

int lw_metrics_collect(struct lw_metrics *m, char *err, size_t errlen)
{
	uint64_t t0 = mono_ns();
	struct lw_segref *refs = NULL;
	int n = lw_segments_list(m->o.dir, &refs, err, errlen);
	if (n < 0)
		return -1;
	m->collections++;
	m->segment_errors = 0;
	for (int i = 0; i < n; i++) {
		uint64_t ticks;
		if (refs[i].archived || lw_proc_start_ticks(refs[i].pid, &ticks) < 0)
			continue; /* an image that ended: nothing live to export */
		struct lw_report r;
		struct lw_report_opts ro = { .kind = LW_KIND_ALL, .format = LW_FMT_TEXT, .idle_for_ns = m->o.idle_for_ns };
		char rerr[256];
		if (lw_report_build(&r, refs[i].path, &ro, rerr, sizeof rerr) < 0) {
			m->segment_errors++;
			continue;
		}
		if (r.live != LW_LIVE_ALIVE) {
			lw_report_free(&r);
			continue;
		}
		struct lw_met_proc *p = NULL;
		for (size_t k = 0; k < m->nprocs; k++)
			if (m->procs[k].pid == r.snap.hdr.pid && m->procs[k].start_ticks == r.snap.hdr.proc_start_ticks)
				p = &m->procs[k];
		if (!p) {
			struct lw_met_proc *v = realloc(m->procs, (m->nprocs + 1) * sizeof *v);
			if (!v) {
				lw_report_free(&r);
				m->segment_errors++;
				continue;
			}
			m->procs = v;
			p = &m->procs[m->nprocs++];
			memset(p, 0, sizeof *p);
			p->pid = r.snap.hdr.pid;
			p->start_ticks = r.snap.hdr.proc_start_ticks;
		}
		lw_report_process_name(&r, p->comm, sizeof p->comm);
		p->start_time_s = (double)r.snap.hdr.start_realtime_ns / 1e9;
		p->seen = m->collections;
		if (proc_fill(p, &r, m->o.top) < 0)
			m->segment_errors++;
		struct lw_met_sample s = { .t_ns = mono_ns(), .fds = p->fd.ok ? (double)p->fd.open : 0,
					   .suspects = p->suspects[LW_MET_SOCKET] + p->suspects[LW_MET_FD],
					   .heap_bytes = p->heap_bytes };
		hist_push(p, &s);
		lw_report_free(&r);
	}
	free(refs);
	/* processes not seen this time are gone */
	size_t k = 0;
	for (size_t i = 0; i < m->nprocs; i++) {
		if (m->procs[i].seen == m->collections) {
			if (k != i)
				m->procs[k] = m->procs[i];
			k++;
		} else {
			proc_clear(&m->procs[i]);
			lw_site_graph_free(&m->procs[i].cg);
		}
	}
	m->nprocs = k;
	m->segment_errors_total += (double)m->segment_errors;
	m->now_ns = mono_ns();
	m->last_duration_s = (double)(m->now_ns - t0) / 1e9;
	return 0;
}

/* --- exposition -------------------------------------------------------- */

/* a label value: backslash, double quote and newline escaped */
static void label_val(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '"')
			fputs("\\\"", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void num(FILE *out, double v)
{
	if (isnan(v))
		fputs("NaN", out);
	else if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", out);
	else if (v == floor(v) && fabs(v) < 1e15)
		fprintf(out, "%.0f", v);
	else
		fprintf(out, "%.15g", v);
}

static void proc_labels(FILE *out, const struct lw_met_proc *p)
{
	fprintf(out, "pid=\"%d\",comm=\"", p->pid);
	label_val(out, p->comm);
	fputc('"', out);
}

static void sample(FILE *out, const char *name, const struct lw_met_proc *p, const char *extra, double v)
{
	fprintf(out, "%s{", name);
	proc_labels(out, p);
	if (extra)
		fputs(extra, out);
	fputs("} ", out);
	num(out, v);
	fputc('\n', out);
}

static const char *const res_label[] = { "socket", "fd", "heap" };

void lw_metrics_render(FILE *out, const struct lw_metrics *m, int om)
{
	char extra[512];
	family(out, "leakwatch_processes", "gauge", "Traced processes alive in the segment directory.");
	fprintf(out, "leakwatch_processes %zu\n", m->nprocs);
	if (om) {
		family(out, "leakwatch_collections", "counter", "Collections made since the exporter started.");
		fprintf(out, "leakwatch_collections_total %lu\n", m->collections);
		family(out, "leakwatch_segment_errors", "counter", "Segments that could not be read, over every collection.");
		fputs("leakwatch_segment_errors_total ", out);
	} else {
		family(out, "leakwatch_collections_total", "counter", "Collections made since the exporter started.");
		fprintf(out, "leakwatch_collections_total %lu\n", m->collections);
		family(out, "leakwatch_segment_errors_total", "counter",
		       "Segments that could not be read, over every collection.");
		fputs("leakwatch_segment_errors_total ", out);
	}
	num(out, m->segment_errors_total);
	fputc('\n', out);
	family(out, "leakwatch_collection_duration_seconds", "gauge", "How long the last collection took.");
	fputs("leakwatch_collection_duration_seconds ", out);
	num(out, m->last_duration_s);
	fputc('\n', out);

	family(out, "leakwatch_process_start_time_seconds", "gauge", "When the traced process started (Unix time).");
	for (size_t i = 0; i < m->nprocs; i++)
		sample(out, "leakwatch_process_start_time_seconds", &m->procs[i], NULL, m->procs[i].start_time_s);

	family(out, "leakwatch_open_sockets", "gauge",
	       "Open sockets the shim recorded, by protocol and verdict (as leakwatch report judges them).");
	for (size_t i = 0; i < m->nprocs; i++)
		for (size_t k = 0; k < m->procs[i].nsocks; k++) {
			const struct lw_met_count *c = &m->procs[i].socks[k];
			snprintf(extra, sizeof extra, ",proto=\"%s\",verdict=\"%s\"", c->kind, c->verdict);
			sample(out, "leakwatch_open_sockets", &m->procs[i], extra, c->n);
		}
	family(out, "leakwatch_open_traced_descriptors", "gauge",
	       "Open descriptors other than sockets the shim recorded, by kind and verdict.");
	for (size_t i = 0; i < m->nprocs; i++)
		for (size_t k = 0; k < m->procs[i].nfdv; k++) {
			const struct lw_met_count *c = &m->procs[i].fdv[k];
			snprintf(extra, sizeof extra, ",kind=\"%s\",verdict=\"%s\"", c->kind, c->verdict);
			sample(out, "leakwatch_open_traced_descriptors", &m->procs[i], extra, c->n);
		}
	family(out, "leakwatch_open_descriptors", "gauge",
	       "Every open descriptor of the process by kind, as /proc/PID/fd shows them.");
	for (size_t i = 0; i < m->nprocs; i++) {
		const struct lw_met_proc *p = &m->procs[i];
		if (!p->fd.ok)
			continue;
		for (int k = 0; k < LW_FDK_N; k++) {
			if (!p->fd.by_kind[k])
				continue;
			snprintf(extra, sizeof extra, ",kind=\"%s\"", lw_fdk_name((enum lw_fdk)k));
			sample(out, "leakwatch_open_descriptors", p, extra, (double)p->fd.by_kind[k]);
		}
	}
	family(out, "leakwatch_descriptor_limit", "gauge", "The process's soft RLIMIT_NOFILE (absent: unlimited).");
	for (size_t i = 0; i < m->nprocs; i++) {
		const struct lw_met_proc *p = &m->procs[i];
		if (p->fd.limit_ok && p->fd.soft != LW_FD_UNLIMITED)
			sample(out, "leakwatch_descriptor_limit", p, NULL, (double)p->fd.soft);
	}
	family(out, "leakwatch_leak_suspects", "gauge",
	       "Sockets and descriptors judged leak suspects, by resource and site (leakwatch_site_info names it; "
	       "\"other\": the sites past the top N; \"none\": 0 when there is no suspect).");
	for (size_t i = 0; i < m->nprocs; i++) {
		const struct lw_met_proc *p = &m->procs[i];
		for (size_t k = 0; k < p->nsites; k++) {
			const struct lw_met_site *s = &p->sites[k];
			if (s->res == LW_MET_HEAP)
				continue;
			snprintf(extra, sizeof extra, ",resource=\"%s\",site=\"%s\"", res_label[s->res], s->id);
			sample(out, "leakwatch_leak_suspects", p, extra, s->count);
		}
		/* a zero for each resource without suspects, so "no leak" is a value, not an absence */
		for (int res = LW_MET_SOCKET; res <= LW_MET_FD; res++)
			if (p->suspects[res] == 0) {
				snprintf(extra, sizeof extra, ",resource=\"%s\",site=\"none\"", res_label[res]);
				sample(out, "leakwatch_leak_suspects", p, extra, 0);
			}
	}
	family(out, "leakwatch_leak_suspect_oldest_seconds", "gauge", "Age of the oldest leak suspect of a site.");
	for (size_t i = 0; i < m->nprocs; i++) {
		const struct lw_met_proc *p = &m->procs[i];
		for (size_t k = 0; k < p->nsites; k++) {
			const struct lw_met_site *s = &p->sites[k];
			if (s->res == LW_MET_HEAP)
				continue;
			snprintf(extra, sizeof extra, ",resource=\"%s\",site=\"%s\"", res_label[s->res], s->id);
			sample(out, "leakwatch_leak_suspect_oldest_seconds", p, extra, (double)s->oldest_ns / 1e9);
		}
	}
	family(out, "leakwatch_heap_live_bytes", "gauge",
	       "Live heap bytes the shim recorded (every class; an estimate in sampled mode).");
	for (size_t i = 0; i < m->nprocs; i++)
		if (m->procs[i].heap_on)
			sample(out, "leakwatch_heap_live_bytes", &m->procs[i], NULL, m->procs[i].heap_bytes);
	family(out, "leakwatch_heap_live_blocks", "gauge",
	       "Live heap blocks the shim recorded (every class; an estimate in sampled mode).");
	for (size_t i = 0; i < m->nprocs; i++)
		if (m->procs[i].heap_on)
			sample(out, "leakwatch_heap_live_blocks", &m->procs[i], NULL, m->procs[i].heap_blocks);
	family(out, "leakwatch_heap_site_live_bytes", "gauge",
	       "Live heap bytes the program allocated from a site (top N sites, then \"other\").");
	for (size_t i = 0; i < m->nprocs; i++) {
		const struct lw_met_proc *p = &m->procs[i];
		for (size_t k = 0; k < p->nsites; k++)
			if (p->sites[k].res == LW_MET_HEAP) {
				snprintf(extra, sizeof extra, ",site=\"%s\"", p->sites[k].id);
				sample(out, "leakwatch_heap_site_live_bytes", p, extra, p->sites[k].bytes);
			}
	}
	family(out, "leakwatch_gc_closed_descriptors", "gauge",
	       "Descriptors a Python program dropped and its garbage collector closed (recorded ones).");
	for (size_t i = 0; i < m->nprocs; i++)
		if (m->procs[i].gc_closed > 0)
			sample(out, "leakwatch_gc_closed_descriptors", &m->procs[i], NULL, m->procs[i].gc_closed);
	family(out, "leakwatch_descriptors_growth_per_second", "gauge",
	       "Open descriptors' least-squares slope over the exporter's window.");
	family(out, "leakwatch_leak_suspects_growth_per_second", "gauge",
	       "Leak suspects' least-squares slope over the exporter's window.");
	family(out, "leakwatch_heap_growth_bytes_per_second", "gauge",
	       "Live heap bytes' least-squares slope over the exporter's window.");
	family(out, "leakwatch_descriptors_exhaustion_seconds", "gauge",
	       "Estimated time until the soft descriptor limit is reached at the current growth (absent: not growing).");
	for (size_t i = 0; i < m->nprocs; i++) {
		const struct lw_met_proc *p = &m->procs[i];
		int ok;
		double g = lw_metrics_growth(p, 0, m->o.window_ns, &ok);
		if (ok && p->fd.ok)
			sample(out, "leakwatch_descriptors_growth_per_second", p, NULL, g);
		if (ok && p->fd.ok && g > 1e-9 && p->fd.limit_ok && p->fd.soft != LW_FD_UNLIMITED) {
			double left = (double)p->fd.soft - (double)p->fd.open;
			sample(out, "leakwatch_descriptors_exhaustion_seconds", p, NULL, left > 0 ? left / g : 0);
		}
		double gs = lw_metrics_growth(p, 1, m->o.window_ns, &ok);
		if (ok)
			sample(out, "leakwatch_leak_suspects_growth_per_second", p, NULL, gs);
		double gh = lw_metrics_growth(p, 2, m->o.window_ns, &ok);
		if (ok && p->heap_on)
			sample(out, "leakwatch_heap_growth_bytes_per_second", p, NULL, gh);
	}
	/* info: what a site id stands for */
	if (om)
		family(out, "leakwatch_site", "info", "What a site id names: the frame in the program's own code, and the endpoint.");
	else
		family(out, "leakwatch_site_info", "gauge",
		       "What a site id names: the frame in the program's own code, and the endpoint (always 1).");
	for (size_t i = 0; i < m->nprocs; i++) {
		const struct lw_met_proc *p = &m->procs[i];
		for (size_t k = 0; k < p->nsites; k++) {
			const struct lw_met_site *s = &p->sites[k];
			if (!s->nframes)
				continue;
			const struct lw_met_frame *f = s->site_frame < s->nframes ? &s->frames[s->site_frame] : NULL;
			fputs("leakwatch_site_info{", out);
			proc_labels(out, p);
			fprintf(out, ",resource=\"%s\",site=\"%s\",kind=\"", res_label[s->res], s->id);
			label_val(out, s->kind);
			fputs("\",function=\"", out);
			label_val(out, f && f->function ? f->function : "?");
			fputs("\",file=\"", out);
			label_val(out, f && f->file ? f->file : "");
			fprintf(out, "\",line=\"%d\",endpoint=\"", f ? f->line : 0);
			label_val(out, s->endpoint);
			fputs("\"} 1\n", out);
		}
	}
	family(out, "leakwatch_segment_incomplete", "gauge",
	       "1 when a process's segment stopped growing (filesystem full or budget reached): counts are lower bounds.");
	for (size_t i = 0; i < m->nprocs; i++)
		sample(out, "leakwatch_segment_incomplete", &m->procs[i], NULL, m->procs[i].incomplete);
	if (om)
		fputs("# EOF\n", out);
}

void lw_metrics_render_stacks(FILE *out, const struct lw_metrics *m)
{
	struct lw_json j;
	lw_json_init(&j, out);
	lw_json_begin_object(&j, NULL);
	lw_json_begin_array(&j, "processes");
	for (size_t i = 0; i < m->nprocs; i++) {
		const struct lw_met_proc *p = &m->procs[i];
		lw_json_begin_object(&j, NULL);
		lw_json_int(&j, "pid", p->pid);
		lw_json_str(&j, "comm", p->comm);
		lw_json_begin_array(&j, "sites");
		for (size_t k = 0; k < p->nsites; k++) {
			const struct lw_met_site *s = &p->sites[k];
			lw_json_begin_object(&j, NULL);
			lw_json_str(&j, "site", s->id);
			lw_json_str(&j, "resource", res_label[s->res]);
			lw_json_str(&j, "kind", s->kind[0] ? s->kind : NULL);
			lw_json_str(&j, "verdict", s->verdict);
			lw_json_str(&j, "endpoint", s->endpoint[0] ? s->endpoint : NULL);
			lw_json_count(&j, "count", s->count);
			if (s->res == LW_MET_HEAP)
				lw_json_count(&j, "bytes", s->bytes);
			lw_json_seconds(&j, "oldest_seconds", s->oldest_ns);
			if (s->site_frame < s->nframes)
				lw_json_int(&j, "site_frame", (long long)s->site_frame);
			else
				lw_json_null(&j, "site_frame");
			lw_json_begin_array(&j, "stack");
			for (size_t f = 0; f < s->nframes; f++) {
				const struct lw_met_frame *fr = &s->frames[f];
				lw_json_begin_object(&j, NULL);
				lw_json_str(&j, "function", fr->function);
				lw_json_str(&j, "file", fr->file);
				if (fr->line > 0)
					lw_json_int(&j, "line", fr->line);
				else
					lw_json_null(&j, "line");
				lw_json_str(&j, "module", fr->module);
				if (fr->python)
					lw_json_int(&j, "python", 1);
				lw_json_end_object(&j);
			}
			lw_json_end_array(&j);
			lw_json_end_object(&j);
		}
		lw_json_end_array(&j);
		lw_json_end_object(&j);
	}
	lw_json_end_array(&j);
	lw_json_end_object(&j);
	fputc('\n', out);
}
