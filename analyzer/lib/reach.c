/* SPDX-License-Identifier: MIT */
/*
 * reach.c — memcheck's leak classes for the live heap blocks of a process
 * (see reach.h for the method and its limits).
 *
 * Layout of the work: lw_reach_classify() knows nothing about processes:
 * blocks, ranges of roots, a readv callback.  lw_reach_check() stops the
 * process, works out the roots from /proc/PID/maps and the threads'
 * registers, and calls it.
 */
#include <errno.h>
#include <fcntl.h>
#include <elf.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#include "reach.h"
#include "snapshot.h"
#include "util.h"

/* ---- names ------------------------------------------------------------------------------------ */

const char *lw_reach_name(enum lw_reach c)
{
	switch (c) {
	case LW_REACH_DEFINITE: return "definite";
	case LW_REACH_INDIRECT: return "indirect";
	case LW_REACH_POSSIBLE: return "possible";
	case LW_REACH_REACHABLE: return "reachable";
	default: return "unknown";
	}
}

const char *lw_reach_label(enum lw_reach c)
{
	switch (c) {
	case LW_REACH_DEFINITE: return "definitely lost";
	case LW_REACH_INDIRECT: return "indirectly lost";
	case LW_REACH_POSSIBLE: return "possibly lost";
	case LW_REACH_REACHABLE: return "still reachable";
	default: return "not checked";
	}
}

int lw_reach_kinds_parse(const char *s, unsigned *mask)
{
	if (!s || !*s)
		return -1;
	if (strcmp(s, "all") == 0) {
		*mask = LW_REACH_KINDS_ALL;
		return 0;
	}
	if (strcmp(s, "none") == 0) {
		*mask = 0;
		return 0;
	}
	unsigned m = 0;
	const char *p = s;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		int found = 0;
		for (int c = LW_REACH_DEFINITE; c < LW_REACH_NCLASS; c++) {
			const char *name = lw_reach_name((enum lw_reach)c);
			if (n == strlen(name) && strncmp(p, name, n) == 0) {
				m |= LW_REACH_BIT(c);
				found = 1;
			}
		}
		if (!found)
			return -1;
		if (!e)
			break;
		p = e + 1;
		if (!*p)
			return -1; /* a trailing comma */
	}
	*mask = m;
	return 0;
}

enum lw_reach lw_reach_lookup(const struct lw_reach_result *r, uint64_t ptr, uint64_t ns)
{
	if (!r || !r->nblocks)
		return LW_REACH_UNKNOWN;
	size_t lo = 0, hi = r->nblocks;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->blocks[mid].ptr < ptr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < r->nblocks && r->blocks[lo].ptr == ptr && r->blocks[lo].ns == ns)
		return (enum lw_reach)r->blocks[lo].cls;
	return LW_REACH_UNKNOWN;
}

void lw_reach_free(struct lw_reach_result *r)
{
	if (!r)
		return;
	free(r->blocks);
	memset(r, 0, sizeof *r);
}

/* ---- the classification ----------------------------------------------------------------------- */

/* Blocks are found by the 64 KiB granule an address lies in: a hash of
 * granule -> the blocks [first, last] that overlap it, then a binary search
 * among those.  Most words scanned are not pointers into the heap and miss
 * the hash at once. */
#define GRAN_SHIFT 16

struct gran {
	uint64_t key;                   /* granule + 1; 0: empty */
	size_t first, last;
};

enum { ST_UNREACHED = 0, ST_INDIRECT, ST_POSSIBLE, ST_REACHABLE };

/* glibc: an mmap()ed chunk has IS_MMAPPED (0x2) in its size word */
#define CHUNK_IS_MMAPPED 0x2ull

struct cls_ctx {
	struct lw_reach_block *b;
	size_t n;
	const struct lw_reach_input *in;
	struct gran *g;
	size_t gmask;
	uint64_t lo, hi;                /* [lowest block start, highest block end) */
	unsigned char *content;         /* every block's bytes, in block order */
	uint64_t *coff;                 /* block i's bytes at content + coff[i] */
	uint8_t *state;
	size_t *stack;                  /* the mark stack */
	size_t sp, scap;
	int failed;                     /* no memory for the mark stack */
};

static uint64_t block_end(const struct lw_reach_block *b)
{
	return b->ptr + (b->size ? b->size : 1);
}

static size_t gran_hash(uint64_t key, size_t mask)
{
	key *= 0x9e3779b97f4a7c15ull;
	return (size_t)(key >> 17) & mask;
}

static int index_build(struct cls_ctx *c)
{
	size_t want = 0;
	for (size_t i = 0; i < c->n; i++)
		want += (size_t)(((block_end(&c->b[i]) - 1) >> GRAN_SHIFT) - (c->b[i].ptr >> GRAN_SHIFT) + 1);
	size_t cap = 16;
	while (cap < want * 2)
		cap <<= 1;
	c->g = calloc(cap, sizeof *c->g);
	if (!c->g)
		return -1;
	c->gmask = cap - 1;
	c->lo = c->n ? c->b[0].ptr : 0;
	c->hi = 0;
	for (size_t i = 0; i < c->n; i++) {
		uint64_t end = block_end(&c->b[i]);
		if (end > c->hi)
			c->hi = end;
		for (uint64_t gr = c->b[i].ptr >> GRAN_SHIFT; gr <= (end - 1) >> GRAN_SHIFT; gr++) {
			size_t h = gran_hash(gr + 1, c->gmask);
			while (c->g[h].key && c->g[h].key != gr + 1)
				h = (h + 1) & c->gmask;
			if (!c->g[h].key) {
				c->g[h].key = gr + 1;
				c->g[h].first = i;
			}
			c->g[h].last = i; /* blocks come in address order */
		}
	}
	return 0;
}

/* The block that contains address v (the start of a zero-size block), or -1. */
static long block_find(const struct cls_ctx *c, uint64_t v)
{
	if (v < c->lo || v >= c->hi)
		return -1;
	uint64_t key = (v >> GRAN_SHIFT) + 1;
	size_t h = gran_hash(key, c->gmask);
	while (c->g[h].key != key) {
		if (!c->g[h].key)
			return -1;
		h = (h + 1) & c->gmask;
	}
	size_t lo = c->g[h].first, hi = c->g[h].last + 1;
	while (lo < hi) { /* the last block starting at or below v */
		size_t mid = lo + (hi - lo) / 2;
		if (c->b[mid].ptr <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == c->g[h].first)
		return -1;
	const struct lw_reach_block *b = &c->b[lo - 1];
	if (v < block_end(b))
		return (long)(lo - 1);
	return -1;
}

static uint64_t word_at(const struct cls_ctx *c, size_t i, uint64_t off)
{
	uint64_t w;
	memcpy(&w, c->content + c->coff[i] + off, sizeof w);
	return w;
}

static int in_ranges(const struct lw_reach_range *r, size_t n, uint64_t v)
{
	for (size_t i = 0; i < n; i++)
		if (v >= r[i].start && v < r[i].end)
			return 1;
	return 0;
}

/* memcheck's heuristic_reachedness(): does interior pointer v into block i
 * look like one of the layouts that legitimately point inside?  1..4, or 0. */
static int heuristic(const struct cls_ctx *c, size_t i, uint64_t v)
{
	const struct lw_reach_block *b = &c->b[i];
	unsigned set = c->in->heuristics;
	uint64_t off = v - b->ptr;
	/* std::string (libstdc++ pre-C++11 ABI): {length, capacity, refcount} then chars */
	if ((set & LW_REACH_HEUR_STDSTRING) && off == 24 && b->size >= 24) {
		uint64_t cap = word_at(c, i, 8);
		if (24 + cap + 1 == b->size && word_at(c, i, 0) <= cap)
			return 1;
	}
	/* a 64-bit length, then that many bytes */
	if ((set & LW_REACH_HEUR_LENGTH64) && off == 8 && b->size >= 8) {
		uint64_t len = word_at(c, i, 0);
		if (len > 0 && b->size - 8 == len)
			return 2;
	}
	/* new[] of objects with a destructor: the element count, then the elements */
	if ((set & LW_REACH_HEUR_NEWARRAY) && off == 8 && b->size >= 8) {
		uint64_t nr = word_at(c, i, 0);
		if (nr > 0 && (b->size - 8) % nr == 0)
			return 3;
	}
	/* a pointer to a secondary base: vtable pointers at the start and at v */
	if ((set & LW_REACH_HEUR_MULTIPLE) && c->in->nvtables && (off & 7) == 0 && off + 8 <= b->size) {
		uint64_t inner = word_at(c, i, off), first = word_at(c, i, 0);
		if ((inner & 7) == 0 && inner >= 4096 && (first & 7) == 0 && first >= 4096 &&
		    in_ranges(c->in->vtables, c->in->nvtables, inner) &&
		    in_ranges(c->in->vtables, c->in->nvtables, first))
			return 4;
	}
	return 0;
}

static void push(struct cls_ctx *c, size_t i)
{
	if (c->sp == c->scap) {
		size_t ncap = c->scap ? c->scap * 2 : 1024;
		size_t *ns = realloc(c->stack, ncap * sizeof *ns);
		if (!ns) {
			c->failed = 1;
			return;
		}
		c->stack = ns;
		c->scap = ncap;
	}
	c->stack[c->sp++] = i;
}

/* A word found: in phase 1 (clique == -1) from a root or a marked block
 * (prior_definite: that block, or the root, is reached by start pointers);
 * in phase 2 from the lost block `clique` leads. */
static void found(struct cls_ctx *c, uint64_t v, int prior_definite, long clique)
{
	long j = block_find(c, v);
	if (j < 0)
		return;
	struct lw_reach_block *b = &c->b[j];
	if (clique >= 0) {
		if (c->state[j] == ST_UNREACHED && j != clique) {
			c->state[j] = ST_INDIRECT;
			push(c, (size_t)j);
		}
		return;
	}
	if (c->state[j] == ST_REACHABLE) {
		if (b->heuristic && v == b->ptr && prior_definite)
			b->heuristic = 0;
		return;
	}
	if (c->in->glibc_chunks && v != b->ptr) {
		uint64_t sz;
		memcpy(&sz, c->content + c->coff[j] - 8, sizeof sz);
		if (!(sz & CHUNK_IS_MMAPPED) && v == b->ptr - 16 + (sz & ~7ull))
			return; /* malloc's pointer to the next chunk */
	}
	int h = v == b->ptr ? 0 : heuristic(c, (size_t)j, v);
	if (prior_definite && (v == b->ptr || h)) {
		c->state[j] = ST_REACHABLE;
		b->heuristic = (uint8_t)h;
		push(c, (size_t)j);
	} else if (c->state[j] == ST_UNREACHED) {
		c->state[j] = ST_POSSIBLE;
		push(c, (size_t)j);
	}
}

/* Every aligned word of buf, which holds the bytes at remote address addr. */
static void scan(struct cls_ctx *c, const unsigned char *buf, uint64_t addr, size_t len, int prior_definite,
		 long clique)
{
	size_t skip = (size_t)((8 - (addr & 7)) & 7);
	if (len < skip)
		return;
	for (size_t o = skip; o + 8 <= len; o += 8) {
		uint64_t v;
		memcpy(&v, buf + o, sizeof v);
		if (v >= c->lo && v < c->hi)
			found(c, v, prior_definite, clique);
	}
}

static void drain(struct cls_ctx *c, long clique)
{
	while (c->sp && !c->failed) {
		size_t i = c->stack[--c->sp];
		int prior = c->state[i] != ST_POSSIBLE;
		scan(c, c->content + c->coff[i], c->b[i].ptr, (size_t)c->b[i].size, prior, clique);
	}
}

#define READ_BATCH 1024u
#define ROOT_CHUNK (1u << 20)

/* Copy every block's bytes into c->content. */
static int contents_read(struct cls_ctx *c, struct lw_reach_stats *st, char *err, size_t errlen)
{
	uint64_t total = 0;
	c->coff = malloc((c->n ? c->n : 1) * sizeof *c->coff);
	if (!c->coff)
		goto nomem;
	uint64_t pre = c->in->glibc_chunks ? 8 : 0; /* the chunk's size word */
	for (size_t i = 0; i < c->n; i++) {
		c->coff[i] = total + pre;
		total += c->b[i].size + pre;
	}
	if (total > SIZE_MAX - 16)
		goto nomem;
	c->content = malloc((size_t)total + 16);
	if (!c->content)
		goto nomem;
	struct iovec lv[READ_BATCH], rv[READ_BATCH];
	size_t k = 0;
	for (size_t i = 0; i < c->n; i++) {
		if (!c->b[i].size && !pre)
			continue;
		lv[k] = (struct iovec){ c->content + c->coff[i] - pre, (size_t)(c->b[i].size + pre) };
		rv[k] = (struct iovec){ (void *)(uintptr_t)(c->b[i].ptr - pre), (size_t)(c->b[i].size + pre) };
		if (++k == READ_BATCH || i + 1 == c->n) {
			long bad = c->in->readv(c->in->ctx, lv, rv, k);
			if (bad < 0) {
				snprintf(err, errlen, "cannot read the process's memory: %s", strerror(errno));
				return -1;
			}
			st->unreadable += (size_t)bad;
			k = 0;
		}
	}
	if (k) {
		long bad = c->in->readv(c->in->ctx, lv, rv, k);
		if (bad < 0) {
			snprintf(err, errlen, "cannot read the process's memory: %s", strerror(errno));
			return -1;
		}
		st->unreadable += (size_t)bad;
	}
	st->block_bytes = total;
	return 0;
nomem:
	snprintf(err, errlen, "not enough memory to copy %zu heap blocks", c->n);
	return -1;
}

int lw_reach_classify(struct lw_reach_block *blocks, size_t n, const struct lw_reach_input *in,
		      struct lw_reach_stats *st, char *err, size_t errlen)
{
	struct lw_reach_stats local = { 0 };
	if (!st)
		st = &local;
	memset(st, 0, sizeof *st);
	struct cls_ctx c = { .b = blocks, .n = n, .in = in };
	unsigned char *chunk = NULL;
	int rc = -1;
	for (size_t i = 0; i < n; i++) {
		blocks[i].cls = LW_REACH_UNKNOWN;
		blocks[i].heuristic = 0;
	}
	if (n == 0)
		return 0;
	c.state = calloc(n, 1);
	chunk = malloc(ROOT_CHUNK);
	if (!c.state || !chunk || index_build(&c) < 0) {
		snprintf(err, errlen, "not enough memory to classify %zu heap blocks", n);
		goto out;
	}
	if (contents_read(&c, st, err, errlen) < 0)
		goto out;

	/* phase 1: from the roots */
	for (size_t i = 0; i < in->nwords && !c.failed; i++) {
		if (in->words[i] >= c.lo && in->words[i] < c.hi)
			found(&c, in->words[i], 1, -1);
		drain(&c, -1);
	}
	for (size_t r = 0; r < in->nroots && !c.failed; r++) {
		uint64_t a = in->roots[r].start;
		while (a < in->roots[r].end && !c.failed) {
			size_t len = (size_t)(in->roots[r].end - a < ROOT_CHUNK ? in->roots[r].end - a : ROOT_CHUNK);
			struct iovec lv = { chunk, len }, rv = { (void *)(uintptr_t)a, len };
			long bad = in->readv(in->ctx, &lv, &rv, 1);
			if (bad < 0) {
				snprintf(err, errlen, "cannot read the process's memory: %s", strerror(errno));
				goto out;
			}
			if (bad == 0)
				scan(&c, chunk, a, len, 1, -1);
			else
				st->unreadable++;
			st->root_bytes += len;
			a += len;
			drain(&c, -1);
		}
	}
	st->nroots = in->nroots;
	/* phase 2: what is left is lost; each lost block not reached from another
	 * leads the blocks only it reaches */
	for (size_t i = 0; i < n && !c.failed; i++) {
		if (c.state[i] != ST_UNREACHED)
			continue;
		push(&c, i);
		drain(&c, (long)i);
	}
	if (c.failed) {
		snprintf(err, errlen, "not enough memory to classify %zu heap blocks", n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		static const uint8_t map[] = { [ST_UNREACHED] = LW_REACH_DEFINITE, [ST_INDIRECT] = LW_REACH_INDIRECT,
					       [ST_POSSIBLE] = LW_REACH_POSSIBLE, [ST_REACHABLE] = LW_REACH_REACHABLE };
		blocks[i].cls = map[c.state[i]];
		if (blocks[i].cls != LW_REACH_REACHABLE)
			blocks[i].heuristic = 0;
	}
	rc = 0;
out:
	free(chunk);
	free(c.state);
	free(c.g);
	free(c.content);
	free(c.coff);
	free(c.stack);
	return rc;
}

/* ---- a live process --------------------------------------------------------------------------- */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct thread {
	pid_t tid;
	int sig;                        /* a signal that stopped it, delivered at detach */
	int attached;
	uint64_t sp;
	uint64_t tp;                    /* thread pointer (x86-64 fs_base): its TCB */
	uint64_t regs[64];
	size_t nregs;
};

struct world {
	pid_t pid;
	struct thread *t;
	size_t n, cap;
	int reaped, reaped_status;
};

static int world_has(const struct world *w, pid_t tid)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->t[i].tid == tid)
			return 1;
	return 0;
}

/* Wait for tid's stop after PTRACE_INTERRUPT: 1 stopped, 0 gone, -1 timed out. */
static int stop_wait(struct world *w, struct thread *t)
{
	uint64_t deadline = mono_ns() + 5000000000ull;
	for (;;) {
		int st;
		pid_t r = waitpid(t->tid, &st, __WALL | WNOHANG);
		if (r == t->tid) {
			if (WIFSTOPPED(st)) {
				int event = st >> 16;
				int sig = WSTOPSIG(st);
				/* an interrupt or group stop is event-stop; a plain stop
				 * is a signal on its way to the thread: delivered at detach */
				t->sig = event == PTRACE_EVENT_STOP || sig == SIGTRAP ? 0 : sig;
				return 1;
			}
			if (t->tid == w->pid) {
				w->reaped = 1;
				w->reaped_status = st;
			}
			return 0;
		}
		if (r < 0 && errno != EINTR)
			return 0;
		if (mono_ns() > deadline)
			return -1;
		struct timespec ms = { 0, 200000 };
		nanosleep(&ms, NULL);
	}
}

static void world_resume(struct world *w)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->t[i].attached)
			(void)ptrace(PTRACE_DETACH, w->t[i].tid, NULL, (void *)(uintptr_t)w->t[i].sig);
	free(w->t);
	w->t = NULL;
	w->n = w->cap = 0;
}

static int world_stop(struct world *w, char *err, size_t errlen)
{
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/task", (int)w->pid);
	for (int round = 0; round < 1000; round++) {
		DIR *d = opendir(dir);
		if (!d) {
			snprintf(err, errlen, "pid %d is gone", (int)w->pid);
			return -1;
		}
		int added = 0;
		struct dirent *e;
		while ((e = readdir(d))) {
			char *end;
			long tid = strtol(e->d_name, &end, 10);
			if (*end || tid <= 0 || world_has(w, (pid_t)tid))
				continue;
			if (w->n == w->cap) {
				size_t ncap = w->cap ? w->cap * 2 : 16;
				struct thread *nt = realloc(w->t, ncap * sizeof *nt);
				if (!nt) {
					closedir(d);
					snprintf(err, errlen, "not enough memory");
					return -1;
				}
				w->t = nt;
				w->cap = ncap;
			}
			struct thread *t = &w->t[w->n++];
			memset(t, 0, sizeof *t);
			t->tid = (pid_t)tid;
			added = 1;
			if (ptrace(PTRACE_SEIZE, t->tid, NULL, NULL) != 0) {
				if (errno == ESRCH)
					continue; /* exited meanwhile */
				int e2 = errno;
				closedir(d);
				snprintf(err, errlen, "cannot stop pid %d with ptrace: %s%s", (int)w->pid, strerror(e2),
					 e2 == EPERM ? " (another user's process, or kernel.yama.ptrace_scope forbids it)" : "");
				return -1;
			}
			t->attached = 1;
			if (ptrace(PTRACE_INTERRUPT, t->tid, NULL, NULL) != 0) {
				t->attached = errno != ESRCH;
				continue;
			}
			int s = stop_wait(w, t);
			if (s <= 0) {
				if (s < 0) {
					closedir(d);
					snprintf(err, errlen, "thread %d of pid %d did not stop", (int)t->tid, (int)w->pid);
					return -1;
				}
				t->attached = 0;
			}
		}
		closedir(d);
		if (!added)
			return 0;
	}
	snprintf(err, errlen, "pid %d keeps creating threads", (int)w->pid);
	return -1;
}

static void regs_read(struct thread *t)
{
	t->nregs = 0;
#if defined(__x86_64__) || defined(__aarch64__)
#if defined(__x86_64__)
	struct user_regs_struct r;
#else
	struct user_pt_regs r;
#endif
	struct iovec iov = { &r, sizeof r };
	if (ptrace(PTRACE_GETREGSET, t->tid, (void *)(uintptr_t)NT_PRSTATUS, &iov) != 0)
		return;
#if defined(__x86_64__)
	t->sp = r.rsp;
	t->tp = r.fs_base;
#else
	t->sp = r.sp;
#endif
	size_t n = iov.iov_len / sizeof(uint64_t);
	if (n > sizeof t->regs / sizeof t->regs[0])
		n = sizeof t->regs / sizeof t->regs[0];
	memcpy(t->regs, &r, n * sizeof(uint64_t));
	t->nregs = n;
#endif
}

/* The reader: process_vm_readv, /proc/PID/mem where it fails. */
struct proc_reader {
	pid_t pid;
	int memfd;
};

static long proc_readv(void *ctx, const struct iovec *local, const struct iovec *remote, size_t n)
{
	struct proc_reader *pr = ctx;
	size_t want = 0;
	for (size_t i = 0; i < n; i++)
		want += local[i].iov_len;
	ssize_t got = process_vm_readv(pr->pid, local, (unsigned long)n, remote, (unsigned long)n, 0);
	if (got >= 0 && (size_t)got == want)
		return 0;
	long bad = 0;
	for (size_t i = 0; i < n; i++) { /* one by one: which failed? */
		got = process_vm_readv(pr->pid, &local[i], 1, &remote[i], 1, 0);
		if (got >= 0 && (size_t)got == local[i].iov_len)
			continue;
		if (pr->memfd >= 0) {
			got = pread(pr->memfd, local[i].iov_base, local[i].iov_len,
				    (off_t)(uintptr_t)remote[i].iov_base);
			if (got >= 0 && (size_t)got == local[i].iov_len)
				continue;
		}
		memset(local[i].iov_base, 0, local[i].iov_len);
		bad++;
	}
	return bad;
}

struct vma {
	uint64_t start, end;
	char perms[5];
	char path[256];
};

static int maps_read(pid_t pid, struct vma **out, size_t *nout)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/maps", (int)pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	struct vma *v = NULL;
	size_t n = 0, cap = 0;
	char line[4096 + 256];
	while (fgets(line, sizeof line, f)) {
		struct vma m = { 0 };
		unsigned long long s, e, off, ino;
		unsigned dmaj, dmin;
		int pos = 0;
		if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu %n", &s, &e, m.perms, &off, &dmaj, &dmin, &ino, &pos) < 7)
			continue;
		m.start = s;
		m.end = e;
		char *path = line + pos;
		path[strcspn(path, "\n")] = '\0';
		snprintf(m.path, sizeof m.path, "%s", path);
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct vma *nv = realloc(v, ncap * sizeof *nv);
			if (!nv) {
				free(v);
				fclose(f);
				return -1;
			}
			v = nv;
			cap = ncap;
		}
		v[n++] = m;
	}
	fclose(f);
	*out = v;
	*nout = n;
	return 0;
}

static const char *base_of(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

struct ranges {
	struct lw_reach_range *v;
	size_t n, cap;
};

static int ranges_add(struct ranges *r, uint64_t s, uint64_t e)
{
	if (s >= e)
		return 0;
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 64;
		struct lw_reach_range *nv = realloc(r->v, ncap * sizeof *nv);
		if (!nv)
			return -1;
		r->v = nv;
		r->cap = ncap;
	}
	r->v[r->n++] = (struct lw_reach_range){ s, e };
	return 0;
}

/* glibc: a non-main arena's heaps are aligned to HEAP_MAX_SIZE (64 MiB on 64-bit) */
#define ARENA_HEAP_ALIGN (64ull << 20)

static int cmp_block(const void *a, const void *b)
{
	const struct lw_reach_block *x = a, *y = b;
	return x->ptr < y->ptr ? -1 : x->ptr > y->ptr;
}

/* first block with ptr >= a */
static size_t block_lower(const struct lw_reach_block *b, size_t n, uint64_t a)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b[mid].ptr < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * A thread stack glibc keeps for reuse after its thread ended: an anonymous
 * mapping right above a PROT_NONE guard, with a TCB (tcbhead_t: tcb and
 * self pointing at itself) near its top, and no live thread's stack pointer
 * or TCB in it.  memcheck saw that thread's stack pointer go back up as it
 * returned, and scans only what lies above where it started: the thread
 * descriptor (and its TLS, which here is not told apart from stale frames).
 * Returns the TCB's address, or 0.
 */
static uint64_t dead_thread_stack(const struct vma *m, const struct vma *prev, const struct world *w,
			     struct proc_reader *pr)
{
	if (m->path[0] || !prev || prev->end != m->start || strcmp(prev->perms, "---p") != 0 || prev->path[0])
		return 0;
	for (size_t i = 0; i < w->n; i++)
		if (w->t[i].attached && ((w->t[i].sp >= m->start && w->t[i].sp < m->end) ||
					 (w->t[i].tp >= m->start && w->t[i].tp < m->end)))
			return 0;
	size_t len = (size_t)(m->end - m->start < 65536 ? m->end - m->start : 65536);
	uint64_t base = m->end - len;
	uint64_t *buf = malloc(len);
	if (!buf)
		return 0;
	struct iovec lv = { buf, len }, rv = { (void *)(uintptr_t)base, len };
	uint64_t tcb = 0;
	if (proc_readv(pr, &lv, &rv, 1) == 0)
		for (size_t k = 0; k + 2 < len / 8 && !tcb; k++)
			if (buf[k] == base + k * 8 && buf[k + 2] == buf[k])
				tcb = buf[k];
	free(buf);
	return tcb;
}

/*
 * The roots of one mapping: all of it, except the malloc heap, the shim's
 * own memory, a dead thread's cached stack and the part of a live stack
 * below its thread's stack pointer.
 */
static int vma_roots(const struct vma *m, const struct vma *prev, const struct lw_reach_block *b, size_t n,
		     const struct world *w, const struct lw_snapshot *s, struct proc_reader *pr, struct ranges *roots)
{
	if (m->perms[0] != 'r' || m->perms[1] != 'w')
		return 0;
	const char *path = m->path, *base = base_of(path);
	if (strncmp(path, "[heap]", 6) == 0 || strncmp(path, "[vvar", 5) == 0 || strncmp(path, "[vsyscall", 9) == 0)
		return 0;
	if (strncmp(path, "/dev/", 5) == 0 && strncmp(path, "/dev/shm/", 9) != 0 && strncmp(path, "/dev/zero", 9) != 0)
		return 0; /* a device's memory is not the program's data (memcheck skips it too) */
	if (strncmp(base, LW_SEGMENT_PREFIX, strlen(LW_SEGMENT_PREFIX)) == 0 || strncmp(base, "libleakwatch", 12) == 0)
		return 0;
	for (size_t i = 0; i < s->nmodules; i++) /* the shim's .bss is anonymous */
		if (strcmp(base_of(s->modules[i].path), "libleakwatch.so") == 0 && m->start >= s->modules[i].start &&
		    m->end <= s->modules[i].end)
			return 0;
	uint64_t start = m->start, end = m->end;
	uint64_t tcb = dead_thread_stack(m, prev, w, pr);
	if (tcb)
		return ranges_add(roots, tcb, end);
	if (path[0] == '\0' && s->hdr.mem_tag) {
		uint64_t tag[3];
		struct iovec lv = { tag, sizeof tag }, rv = { (void *)(uintptr_t)start, sizeof tag };
		if (proc_readv(pr, &lv, &rv, 1) == 0 && tag[0] == s->hdr.mem_tag &&
		    tag[1] == (s->hdr.mem_tag ^ LW_MEM_TAG_XOR))
			start = tag[2] < end - start ? start + tag[2] : end;
	}
	for (size_t i = 0; i < w->n; i++) /* a stack: from its stack pointer up */
		if (w->t[i].attached && w->t[i].nregs && w->t[i].sp >= start && w->t[i].sp < end)
			start = w->t[i].sp - 128 > start ? w->t[i].sp - 128 : start;
	/* malloc's memory: a block in an arena heap takes the rest of the
	 * mapping from the heap's aligned start; an mmap()ed one only itself */
	uint64_t cut = end;
	struct ranges holes = { 0 };
	for (size_t i = block_lower(b, n, start); i < n && b[i].ptr < end; i++) {
		uint64_t chunk = b[i].ptr - 16, sz = 0;
		if ((chunk & 4095) == 0) {
			struct iovec lv = { &sz, sizeof sz }, rv = { (void *)(uintptr_t)(b[i].ptr - 8), sizeof sz };
			if (proc_readv(pr, &lv, &rv, 1) != 0)
				sz = 0;
		}
		if ((sz & CHUNK_IS_MMAPPED) && (sz & ~7ull) >= b[i].size) {
			if (ranges_add(&holes, chunk, chunk + (sz & ~7ull)) < 0) {
				free(holes.v);
				return -1;
			}
			continue;
		}
		uint64_t heap = b[i].ptr & ~(ARENA_HEAP_ALIGN - 1);
		cut = heap > start ? heap : start;
		break;
	}
	uint64_t a = start;
	for (size_t i = 0; i < holes.n && a < cut; i++) {
		if (holes.v[i].start > a && ranges_add(roots, a, holes.v[i].start < cut ? holes.v[i].start : cut) < 0) {
			free(holes.v);
			return -1;
		}
		if (holes.v[i].end > a)
			a = holes.v[i].end;
	}
	free(holes.v);
	return a < cut ? ranges_add(roots, a, cut) : 0;
}

int lw_reach_check(pid_t pid, const char *segpath, struct lw_reach_result *r, int *reaped, int *reaped_status,
		   char *err, size_t errlen)
{
	memset(r, 0, sizeof *r);
	if (reaped)
		*reaped = 0;
	struct world w = { .pid = pid };
	struct lw_snapshot s;
	memset(&s, 0, sizeof s);
	struct vma *maps = NULL;
	size_t nmaps = 0;
	struct ranges roots = { 0 }, vt = { 0 };
	uint64_t *words = NULL;
	struct proc_reader pr = { .pid = pid, .memfd = -1 };
	int rc = -1;

	uint64_t t0 = mono_ns();
	if (world_stop(&w, err, errlen) < 0)
		goto out;
	if (lw_snapshot_open(&s, segpath, err, errlen) < 0)
		goto out;
	if (s.hdr.pid != pid) {
		snprintf(err, errlen, "%s is not the segment of pid %d", segpath, (int)pid);
		goto out;
	}
	if (s.hdr.heap_mode == LW_HEAP_OFF) {
		snprintf(err, errlen, "pid %d: heap tracking is off (LEAKWATCH_HEAP=off)", (int)pid);
		goto out;
	}
	r->pid = pid;
	r->image_ns = s.hdr.start_monotonic_ns;
	r->sampled = s.hdr.heap_mode == LW_HEAP_SAMPLED;
	r->blocks = malloc((s.nallocs ? s.nallocs : 1) * sizeof *r->blocks);
	if (!r->blocks) {
		snprintf(err, errlen, "not enough memory for %zu heap blocks", s.nallocs);
		goto out;
	}
	for (size_t i = 0; i < s.nallocs; i++)
		r->blocks[i] = (struct lw_reach_block){ .ptr = s.allocs[i].ptr, .size = s.allocs[i].size,
							.ns = s.allocs[i].ns };
	qsort(r->blocks, s.nallocs, sizeof *r->blocks, cmp_block);
	/* no two blocks overlap in a real heap; a stale record would: the newer wins */
	size_t n = 0;
	for (size_t i = 0; i < s.nallocs; i++) {
		if (n && block_end(&r->blocks[n - 1]) > r->blocks[i].ptr) {
			if (r->blocks[i].ns >= r->blocks[n - 1].ns)
				r->blocks[n - 1] = r->blocks[i];
			continue;
		}
		r->blocks[n++] = r->blocks[i];
	}
	r->nblocks = n;

	char mp[64];
	snprintf(mp, sizeof mp, "/proc/%d/mem", (int)pid);
	pr.memfd = open(mp, O_RDONLY | O_CLOEXEC);
	size_t nw = 0;
	for (size_t i = 0; i < w.n; i++)
		if (w.t[i].attached) {
			regs_read(&w.t[i]);
			nw += w.t[i].nregs;
			r->stats.threads++;
		}
	words = malloc((nw ? nw : 1) * sizeof *words);
	if (!words || maps_read(pid, &maps, &nmaps) < 0) {
		snprintf(err, errlen, "cannot read /proc/%d/maps: %s", (int)pid, strerror(errno));
		goto out;
	}
	nw = 0;
	for (size_t i = 0; i < w.n; i++)
		for (size_t k = 0; k < w.t[i].nregs; k++)
			words[nw++] = w.t[i].regs[k];
	for (size_t i = 0; i < nmaps; i++) {
		if (vma_roots(&maps[i], i ? &maps[i - 1] : NULL, r->blocks, n, &w, &s, &pr, &roots) < 0) {
			snprintf(err, errlen, "not enough memory");
			goto out;
		}
		/* read-only data of a loaded object: where vtables live */
		if (maps[i].perms[0] == 'r' && maps[i].perms[1] != 'w' && maps[i].perms[2] != 'x' && maps[i].path[0] == '/' &&
		    ranges_add(&vt, maps[i].start, maps[i].end) < 0) {
			snprintf(err, errlen, "not enough memory");
			goto out;
		}
	}
	struct lw_reach_input in = { .readv = proc_readv, .ctx = &pr, .roots = roots.v, .nroots = roots.n,
				     .words = words, .nwords = nw, .vtables = vt.v, .nvtables = vt.n,
				     .heuristics = LW_REACH_HEUR_ALL, .glibc_chunks = 1 };
	size_t threads = r->stats.threads;
	if (lw_reach_classify(r->blocks, n, &in, &r->stats, err, errlen) < 0)
		goto out;
	r->stats.threads = threads;
	r->pause_ns = mono_ns() - t0;
	rc = 0;
out:
	world_resume(&w);
	if (reaped && w.reaped) {
		*reaped = 1;
		if (reaped_status)
			*reaped_status = w.reaped_status;
	}
	if (pr.memfd >= 0)
		close(pr.memfd);
	lw_snapshot_free(&s);
	free(maps);
	free(roots.v);
	free(vt.v);
	free(words);
	if (rc < 0)
		lw_reach_free(r);
	return rc;
}
