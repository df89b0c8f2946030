/* SPDX-License-Identifier: MIT */
/* fab.c — segments fabricated for the analyzer tests (see fab.h). */
#include "fab.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fixtures.h"
#include "render.h"
#include "report.h"

uint64_t fab_align(uint64_t v)
{
	return (v + 63) & ~(uint64_t)63;
}

uint64_t fab_page(uint64_t v)
{
	return (v + 4095) & ~(uint64_t)4095;
}

uint64_t fab_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const uint32_t fab_sizes[LW_T_NUM] = { sizeof(struct lw_stack), sizeof(struct lw_module),
					      sizeof(struct lw_handle), sizeof(struct lw_badclose) };

static struct lw_table *fab_table(struct lw_header *h, unsigned t)
{
	struct lw_table *tabs[LW_T_NUM] = { &h->stacks, &h->modules, &h->handles, &h->badcloses };
	return tabs[t];
}

/* Layout 1, as shims before growable segments placed their tables: in
 * order after the header, each 64-byte aligned. */
static uint64_t fab_layout_v1(struct lw_header *h, const struct fab_spec *sp)
{
	uint64_t off = LW_HEADER_SIZE;
	for (unsigned t = 0; t <= LW_T_NUM; t++) {
		struct lw_table *d = t < LW_T_NUM ? fab_table(h, t) : &h->heap;
		uint32_t es = t < LW_T_NUM ? (sp->es[t] ? sp->es[t] : fab_sizes[t])
					   : (sp->heap_es ? sp->heap_es : sizeof(struct lw_alloc));
		off = fab_align(off);
		d->offset = off;
		d->capacity = t < LW_T_NUM ? sp->n[t] : sp->nallocs;
		d->entry_size = es;
		off += (uint64_t)d->capacity * es;
	}
	return fab_align(off);
}

/* Layout 2: chunk k of every table, then chunk k + 1 of every table, ...
 * (the order a shim growing all its tables at once creates them in), page
 * aligned, then the heap table. */
static uint64_t fab_layout_v2(struct lw_header *h, const struct fab_spec *sp)
{
	uint32_t count[LW_T_NUM] = { 0 };
	uint64_t off = LW_HEADER_SIZE;
	for (unsigned t = 0; t < LW_T_NUM; t++) {
		struct lw_table *d = fab_table(h, t);
		uint32_t shift = sp->shift[t] ? sp->shift[t] : FAB_SHIFT;
		while (lw_chunk_first(shift, count[t]) < sp->n[t])
			count[t]++;
		h->chunks[t].shift = shift;
		h->chunks[t].count = count[t];
		d->offset = 0;
		d->entry_size = sp->es[t] ? sp->es[t] : fab_sizes[t];
		d->capacity = (uint32_t)lw_chunk_first(shift, count[t]);
	}
	for (unsigned k = 0; k < LW_CHUNKS_MAX; k++)
		for (unsigned t = 0; t < LW_T_NUM; t++)
			if (k < count[t]) {
				h->chunks[t].off[k] = off;
				off += lw_chunk_bytes(h->chunks[t].shift, k, fab_table(h, t)->entry_size);
			}
	h->heap.entry_size = sp->heap_es ? sp->heap_es : sizeof(struct lw_alloc);
	h->heap.capacity = sp->nallocs;
	h->heapdir.seq = 2;
	h->heapdir.gen = 1;
	if (sp->nallocs) {
		h->heapdir.cur_off = off;
		h->heapdir.cur_cap = sp->nallocs;
		off += fab_page((uint64_t)sp->nallocs * h->heap.entry_size);
	}
	return off;
}

void fab_init_spec(struct fab *f, const struct fab_spec *sp)
{
	struct lw_header tables;
	memset(&tables, 0, sizeof tables);
	memset(f, 0, sizeof *f);
	f->v1 = sp->v1;
	f->size = (size_t)(sp->v1 ? fab_layout_v1(&tables, sp) : fab_layout_v2(&tables, sp));
	f->mem = calloc(1, f->size);
	if (!f->mem)
		abort();
	f->hdr = (struct lw_header *)(void *)f->mem;
	struct lw_header *h = f->hdr;
	memcpy(h, &tables, sizeof *h);
	h->magic = LW_MAGIC;
	h->version = sp->v1 ? 1 : LW_VERSION;
	h->compat_version = sp->v1 ? 1 : LW_COMPAT_VERSION;
	h->header_size = LW_HEADER_SIZE;
	h->total_size = f->size;
	h->pid = lw_dead_pid();   /* names no process */
	h->ppid = 1;
	h->uid = getuid();
	h->state = LW_STATE_RUNNING;
	h->start_monotonic_ns = 1000000000ull;
	h->start_realtime_ns = 1700000000ull * 1000000000ull;
	snprintf(h->exe, sizeof h->exe, "/usr/bin/fake");
	snprintf(h->cmdline, sizeof h->cmdline, "fake --serve");
	h->stack_depth = 32;
	h->heap_mode = sp->heap_mode;
	h->sample_bytes = sp->sample_bytes;
	if (!sp->v1)
		h->reserved_bytes = f->size;
}

/*
 * A RUNNING segment for a pid that does not exist, with empty tables and a
 * heap table of nallocs slots (0: heap tracking off).
 */
void fab_init_heap(struct fab *f, uint32_t nstacks, uint32_t nmodules, uint32_t nhandles,
		   uint32_t nbadcloses, uint32_t nallocs, uint32_t heap_mode, uint64_t sample_bytes)
{
	struct fab_spec sp = { .n = { nstacks, nmodules, nhandles, nbadcloses }, .nallocs = nallocs,
			       .heap_mode = heap_mode, .sample_bytes = sample_bytes };
	fab_init_spec(f, &sp);
}

void fab_init_v1(struct fab *f, uint32_t nstacks, uint32_t nmodules, uint32_t nhandles,
		 uint32_t nbadcloses, uint32_t nallocs, uint32_t heap_mode, uint64_t sample_bytes)
{
	struct fab_spec sp = { .n = { nstacks, nmodules, nhandles, nbadcloses }, .nallocs = nallocs,
			       .heap_mode = heap_mode, .sample_bytes = sample_bytes, .v1 = 1 };
	fab_init_spec(f, &sp);
}

/* A RUNNING segment for a pid that does not exist, with empty tables, heap tracking off. */
void fab_init(struct fab *f, uint32_t nstacks, uint32_t nmodules, uint32_t nhandles,
	      uint32_t nbadcloses)
{
	fab_init_heap(f, nstacks, nmodules, nhandles, nbadcloses, 0, LW_HEAP_OFF, 0);
}

void fab_free(struct fab *f)
{
	free(f->mem);
	f->mem = NULL;
}

uint64_t fab_chunk_off(const struct fab *f, unsigned t, unsigned k)
{
	const struct lw_chunks *c = &f->hdr->chunks[t];
	return f->v1 || k >= c->count ? 0 : c->off[k];
}

void *fab_slot(struct fab *f, unsigned t, size_t i)
{
	const struct lw_table *d = fab_table(f->hdr, t);
	uint64_t off;
	if (f->v1) {
		if (i >= d->capacity)
			abort();
		off = d->offset + (uint64_t)i * d->entry_size;
	} else {
		uint64_t within;
		unsigned k = lw_chunk_of(f->hdr->chunks[t].shift, i, &within);
		if (k >= f->hdr->chunks[t].count)
			abort();
		off = f->hdr->chunks[t].off[k] + within * d->entry_size;
	}
	if (off + d->entry_size > f->size)
		abort();
	return f->mem + off;
}

static struct lw_alloc *fab_heap_at(struct fab *f, uint64_t off, uint64_t cap, size_t i)
{
	if (i >= cap || off + (i + 1) * f->hdr->heap.entry_size > f->size)
		abort();
	return (struct lw_alloc *)(void *)(f->mem + off + i * f->hdr->heap.entry_size);
}

struct lw_alloc *fab_heap_slot(struct fab *f, size_t i)
{
	if (f->v1)
		return fab_heap_at(f, f->hdr->heap.offset, f->hdr->heap.capacity, i);
	return fab_heap_at(f, f->hdr->heapdir.cur_off, f->hdr->heapdir.cur_cap, i);
}

struct lw_alloc *fab_old_slot(struct fab *f, size_t i)
{
	return fab_heap_at(f, f->hdr->heapdir.old_off, f->hdr->heapdir.old_cap, i);
}

void fab_heap_old(struct fab *f, uint32_t cap)
{
	uint64_t off = fab_page(f->size), bytes = fab_page((uint64_t)cap * f->hdr->heap.entry_size);
	if (f->v1)
		abort();
	unsigned char *m = realloc(f->mem, off + bytes);
	if (!m)
		abort();
	memset(m + f->size, 0, off + bytes - f->size);
	f->mem = m;
	f->hdr = (struct lw_header *)(void *)m;
	f->size = off + bytes;
	f->hdr->total_size = f->span > f->size ? f->span : f->size;
	f->hdr->reserved_bytes = f->size;
	f->hdr->heapdir.old_off = off;
	f->hdr->heapdir.old_cap = cap;
}

void fab_span(struct fab *f, uint64_t span)
{
	f->span = span;
	f->hdr->total_size = span;
}

/* Store a ready stack in slot id-1 and return id. */
uint32_t fab_stack(struct fab *f, uint32_t id, const uint64_t *frames, size_t n)
{
	struct lw_stack *s = fab_slot(f, LW_T_STACKS, id - 1);
	s->seq = 2;
	s->depth = (uint16_t)n;
	memcpy(s->frames, frames, n * sizeof *frames);
	return id;
}

/* Per-stack heap totals of stack id. */
void fab_stack_heap(struct fab *f, uint32_t id, uint64_t allocs, uint64_t frees, uint64_t bytes)
{
	struct lw_stack *s = fab_slot(f, LW_T_STACKS, id - 1);
	s->heap_allocs = allocs;
	s->heap_frees = frees;
	s->heap_bytes = bytes;
}

static struct lw_alloc *fab_alloc_fill(struct lw_alloc *a, uint64_t ptr, uint64_t size, uint64_t ns,
				       uint32_t stack_id)
{
	a->seq = 2;
	a->ptr = ptr;
	a->size = size;
	a->ns = ns;
	a->stack_id = stack_id;
	return a;
}

/* A live heap block in heap slot i (a ready, even seq). */
struct lw_alloc *fab_alloc(struct fab *f, size_t i, uint64_t ptr, uint64_t size, uint64_t ns,
			   uint32_t stack_id)
{
	return fab_alloc_fill(fab_heap_slot(f, i), ptr, size, ns, stack_id);
}

struct lw_alloc *fab_alloc_old(struct fab *f, size_t i, uint64_t ptr, uint64_t size, uint64_t ns,
			       uint32_t stack_id)
{
	return fab_alloc_fill(fab_old_slot(f, i), ptr, size, ns, stack_id);
}

struct lw_module *fab_module(struct fab *f, const char *path, uint64_t base,
			     uint64_t start, uint64_t end, uint32_t flags)
{
	uint32_t i = f->hdr->modules.used++;
	struct lw_module *m = fab_slot(f, LW_T_MODULES, i);
	m->seq = 2;
	m->flags = flags;
	m->base = base;
	m->start = start;
	m->end = end;
	snprintf(m->path, sizeof m->path, "%.*s", (int)sizeof m->path - 1, path);
	return m;
}

void fab_addr_in(struct lw_addr *a, const char *ip, uint16_t port)
{
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	inet_pton(AF_INET, ip, &sin.sin_addr);
	memcpy(a->data, &sin, sizeof sin);
	a->len = sizeof sin;
}

void fab_addr_un(struct lw_addr *a, const char *path)
{
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	memcpy(a->data, &sun, sizeof sun);
	a->len = (uint16_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

/* An OPEN TCP handle at fd, opened age_s seconds before `now` on the header clock. */
struct lw_handle *fab_handle(struct fab *f, int fd, uint16_t origin, uint32_t stack_id,
			     uint64_t open_ns)
{
	struct lw_handle *h = fab_slot(f, LW_T_HANDLES, (size_t)fd);
	if (f->hdr->handles.used < (uint32_t)fd + 1)
		f->hdr->handles.used = (uint32_t)fd + 1; /* the shim's high-water mark */
	h->seq = 2;
	h->state = LW_H_OPEN;
	h->origin = origin;
	h->family = AF_INET;
	h->type = SOCK_STREAM;
	h->stack_id = stack_id;
	h->tid = 4243;
	h->inode = 100000 + (uint64_t)fd;
	h->open_ns = open_ns;
	h->dup_of = -1;
	return h;
}

/* Per-stack socket totals of stack id (opened/closed ever, as the shim counts them). */
void fab_stack_socks(struct fab *f, uint32_t id, uint64_t opened, uint64_t closed)
{
	struct lw_stack *s = fab_slot(f, LW_T_STACKS, id - 1);
	s->sock_opened = opened;
	s->sock_closed = closed;
}

/* The most recent send-side call on h: stack and time (0/0 = never used). */
void fab_use(struct lw_handle *h, uint32_t stack_id, uint64_t ns)
{
	h->last_use_stack_id = stack_id;
	h->last_use_ns = ns;
}

/*
 * Fabricated kernel evidence: a TCP socket (inode) in kernel state st
 * (1 ESTABLISHED, 8 CLOSE_WAIT, 10 LISTEN) whose last data went both ways
 * idle_ms ago (UINT32_MAX: no tcp_info), with queue sums rq/wq.
 */
void fab_kernel_tcp(struct lw_sockdiag *d, uint64_t inode, unsigned st, uint32_t idle_ms,
		    uint32_t rq, uint32_t wq)
{
	static const char *const names[] = { [1] = "ESTABLISHED", [8] = "CLOSE_WAIT", [10] = "LISTEN" };
	struct lw_sockinfo k;
	memset(&k, 0, sizeof k);
	k.inode = inode;
	k.family = AF_INET;
	k.protocol = IPPROTO_TCP;
	k.state = (uint8_t)st;
	snprintf(k.state_name, sizeof k.state_name, "%s", st < 11 && names[st] ? names[st] : "OTHER");
	k.source = LW_SD_NETLINK;
	k.has_queues = 1;
	k.rqueue = rq;
	k.wqueue = wq;
	if (idle_ms != UINT32_MAX && st != 10) {
		k.has_tcpinfo = 1;
		k.last_data_sent_ms = idle_ms;
		k.last_data_recv_ms = idle_ms;
	}
	if (lw_sockdiag_add(d, &k) < 0)
		abort();
}

/* fab_verdict - group snapshot s by `by` with kernel evidence d (consumed; may be
 * NULL) and decide verdicts as a live process at now_ns. prev/prev_s: --interval. */
int fab_verdict(struct lw_grouping *g, const struct lw_snapshot *s, struct lw_sockdiag *d,
		uint64_t now_ns, uint64_t idle_for_ns, enum lw_group_by by,
			      const struct lw_snapshot *prev_s, uint64_t prev_now_ns)
{
	struct lw_join j;
	struct lw_grouping prev;
	memset(&prev, 0, sizeof prev);
	if (lw_join_proc(&j, s, 0) < 0)
		return -1;
	if (d)
		lw_join_set_sockdiag(&j, d);
	int rc = lw_group_build_by(g, s, &j, now_ns, 0, 0, by);
	struct lw_verdict_opts vo = { .now_ns = now_ns, .idle_for_ns = idle_for_ns, .snap = s };
	if (rc == 0 && prev_s) {
		rc = lw_group_build_by(&prev, prev_s, NULL, prev_now_ns, 0, 0, by);
		vo.prev = &prev;
		vo.prev_snap = prev_s;
		vo.interval_ns = now_ns - prev_now_ns;
	}
	if (rc == 0)
		rc = lw_verdict_apply(g, &vo);
	lw_grouping_free(&prev);
	lw_join_free(&j);
	return rc;
}

struct lw_badclose *fab_badclose(struct fab *f, int fd, uint32_t stack_id)
{
	uint32_t n = f->hdr->badcloses.used++;
	struct lw_badclose *b = fab_slot(f, LW_T_BADCLOSES, n % f->hdr->badcloses.capacity);
	memset(b, 0, sizeof *b);
	b->seq = 2;
	b->fd = fd;
	b->tid = 4243;
	b->stack_id = stack_id;
	return b;
}

/* Write the fabricated segment to dir/name; returns the path in out. */
void fab_write(const struct fab *f, const char *dir, const char *name, char *out, size_t len)
{
	if ((size_t)snprintf(out, len, "%s/%s", dir, name) >= len)
		abort();
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	size_t done = 0;
	while (done < f->size) {
		ssize_t w = write(fd, f->mem + done, f->size - done);
		if (w <= 0)
			abort();
		done += (size_t)w;
	}
	if (f->span > f->size && ftruncate(fd, (off_t)f->span) != 0)
		abort();
	close(fd);
}

const char *fab_segname(void)
{
	static char name[32];
	snprintf(name, sizeof name, "leakwatch.%d", lw_dead_pid());
	return name;
}

char *render_report(struct lw_report *r, int how, const char *root)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	int rc = how == 0 ? lw_render_text(m, r) : how == 1 ? lw_render_json(m, r) : lw_render_folded(m, r, root);
	cr_assert_eq(rc, 0);
	fclose(m);
	return buf;
}
