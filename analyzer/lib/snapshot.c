/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c — open, validate and snapshot one segment file.
 *
 * The file is written concurrently by a process we must never disturb, and it
 * sits in a shared directory where anyone may have put something else under
 * its name.  So it is read with pread(), never mapped:
 *
 *   - a mapping of a file that another process truncates raises SIGBUS on the
 *     next access; pread() just comes back short, and the snapshot fails with
 *     "truncated while being read";
 *   - a read fault on a shared mapping of a tmpfs hole allocates a page (a
 *     64 MiB segment would become resident and could fill /dev/shm, after
 *     which the traced program dies of SIGBUS); pread() of a hole returns
 *     zeros from the zero page and allocates nothing;
 *   - the tables are walked over their data extents (SEEK_DATA/SEEK_HOLE),
 *     taken per table just before that table is read, so a sparse file that
 *     claims terabytes costs a few lseek() calls, not a pass over every slot.
 *
 * Layout 2 (segment.h) files are a sparse span of up to 1 TiB: only the
 * ranges the header names are read — the chunks of each chunked table, and
 * the heap tables of the heap directory — each checked against the file's
 * size and against every other range first, so that the work and the memory
 * of a snapshot follow what the file really holds, never what it claims.
 * Layout 1 files (one array per table) are still read.
 *
 * Everything the rest of the analyzer sees is a private copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot.h"
#include "segdir.h"
#include "testing.h"

/*
 * Sane bounds, far above what the shim writes: a header beyond them is
 * refused before any table is read.  Layout 1 sized its file to its tables
 * (at most about 12.5 GiB); layout 2 files are a sparse span of at most
 * 1 TiB of which only the ranges the header names are read, so their
 * logical size costs nothing and is only bounded to refuse nonsense.
 */
#define SEG_SIZE_MAX_V1   (64ull << 30)   /* bytes */
#define SEG_SPAN_MAX      (1ull << 44)    /* bytes: 16 TiB */
#define TABLE_CAP_MAX     (1u << 28)      /* entries of one table */
#define ENTRY_SIZE_MAX    (64u << 10)     /* bytes of one entry */
#define CHUNK_SHIFT_MAX   24u             /* first chunk of a table: at most 2^24 entries */
#define SEG_PAGE          4096u           /* v2 tables start on page boundaries */

/* Bytes read per pread() of a table: whole slots, at least one. */
#define CHUNK_BYTES       (256u << 10)

/*
 * A slot whose two copies disagree is read again on its own this many times,
 * and a snapshot re-reads at most SNAP_RETRIES slots in all: a file full of
 * odd sequence numbers (a crashed writer, or a forgery) must not cost minutes.
 */
#define SLOT_RETRIES      16u
#define SNAP_RETRIES      4096u

/*
 * The heap directory is read, then the tables it names, then read again:
 * when a new table was published in between, blocks may have moved where
 * this read had already passed, so the heap is read again, at most this
 * many times in all (the shim replaces its table when it doubles: two
 * replacements during one read means it is growing very fast, and the
 * snapshot says its heap is unsettled instead of trying forever).
 */
#define HEAPDIR_TRIES     4u

/* The most this reader copies of one slot (its own struct sizes). */
#define SLOT_COPY_MAX     1024u
_Static_assert(sizeof(struct lw_stack) <= SLOT_COPY_MAX && sizeof(struct lw_handle) <= SLOT_COPY_MAX &&
	       sizeof(struct lw_module) <= SLOT_COPY_MAX && sizeof(struct lw_badclose) <= SLOT_COPY_MAX &&
	       sizeof(struct lw_alloc) <= SLOT_COPY_MAX && sizeof(struct lw_heapdir) <= SLOT_COPY_MAX,
	       "slot copies fit SLOT_COPY_MAX");

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- where the tables are --------------------------------------------------- */

/*
 * A table as this reader walks it, whatever the layout: extents of
 * consecutive slots in the file.  Layout 1 has one per table; layout 2 one
 * per published chunk (slot `first` of the table is the extent's first) and
 * one per heap table.
 */
struct extent {
	uint64_t off;                   /* file offset of the extent's first slot */
	uint64_t first;                 /* table index of that slot */
	uint64_t n;                     /* slots */
};

struct table {
	const char *name;               /* "stack", "module", ... (messages) */
	uint32_t es;                    /* the writer's entry size */
	uint32_t shift;                 /* v2 chunked tables */
	unsigned next;                  /* extents */
	struct extent ext[LW_CHUNKS_MAX];
	uint64_t cap;                   /* slots over all extents */
};

/* A byte range of the file that one table reads; no two may overlap. */
struct range {
	uint64_t lo, hi;
	const char *name;
};

#define RANGES_MAX (LW_T_NUM * LW_CHUNKS_MAX + 8)

struct layout {
	unsigned version;               /* 1 or 2 */
	uint64_t header_size, file_size;
	struct table t[LW_T_NUM];       /* stacks, modules, handles, badcloses */
	struct table heap;              /* v1: the heap table */
	struct table heap_old, heap_cur;/* v2: as the heap directory names them */
	struct range rg[RANGES_MAX];
	unsigned nrg;
};

static const char *const table_names[LW_T_NUM] = { "stack", "module", "handle", "bad-close" };
static const size_t table_need[LW_T_NUM] = { sizeof(struct lw_stack), sizeof(struct lw_module),
					     sizeof(struct lw_handle), sizeof(struct lw_badclose) };

/*
 * range_add - claim [off, off + bytes) for table `name`, refused when it
 * overlaps a range claimed before: each byte of the file is read for one
 * table at most.
 */
static int range_add(struct layout *L, uint64_t off, uint64_t bytes, const char *name, char *err, size_t errlen)
{
	if (bytes == 0)
		return 0;
	for (unsigned i = 0; i < L->nrg; i++)
		if (off < L->rg[i].hi && L->rg[i].lo < off + bytes) {
			if (L->rg[i].name == name)
				return fail(err, errlen, "%s table chunks overlap", name);
			return fail(err, errlen, "%s and %s tables overlap", L->rg[i].name, name);
		}
	if (L->nrg == RANGES_MAX)
		return fail(err, errlen, "too many tables");
	L->rg[L->nrg++] = (struct range){ off, off + bytes, name };
	return 0;
}

/* entry_check - an entry size this reader can step through. */
static int entry_check(const char *name, uint32_t es, size_t need, char *err, size_t errlen)
{
	if (es < need)
		return fail(err, errlen, "%s table entries are %u bytes, need at least %zu", name, es, need);
	if (es > ENTRY_SIZE_MAX)
		return fail(err, errlen, "%s table entries are %u bytes (at most %u are read)", name, es,
			    ENTRY_SIZE_MAX);
	if (es % 8 != 0)
		return fail(err, errlen, "%s table is misaligned", name);
	return 0;
}

/* extent_check - n slots of es bytes at off lie after the header and inside the file. */
static int extent_check(const struct layout *L, const char *name, const char *what, uint64_t off, uint64_t n,
			uint32_t es, uint64_t align, char *err, size_t errlen)
{
	if (off % align != 0)
		return fail(err, errlen, "%s table%s is misaligned", name, what);
	if (off < L->header_size || off > L->file_size)
		return fail(err, errlen, "%s table%s offset %llu is outside the file", name, what,
			    (unsigned long long)off);
	uint64_t bytes = n * es; /* n <= 2^44, es <= 2^16: no overflow */
	if (bytes > L->file_size - off)
		return fail(err, errlen, "%s table%s (%llu bytes at %llu) runs past the end of the file", name, what,
			    (unsigned long long)bytes, (unsigned long long)off);
	return 0;
}

/*
 * v1: a table is usable when it lies entirely after the header and inside
 * the file, within the sane bounds, is aligned and its entries are at least
 * as large as what this reader copies.
 */
static int table_v1(struct layout *L, struct table *t, const struct lw_table *d, const char *name, size_t need,
		    char *err, size_t errlen)
{
	memset(t, 0, sizeof *t);
	t->name = name;
	t->es = d->entry_size;
	if (d->capacity == 0)
		return 0;
	if (d->capacity > TABLE_CAP_MAX)
		return fail(err, errlen, "%s table claims %u entries (at most %u are read)", name, d->capacity,
			    TABLE_CAP_MAX);
	if (entry_check(name, d->entry_size, need, err, errlen) ||
	    extent_check(L, name, "", d->offset, d->capacity, d->entry_size, 8, err, errlen))
		return -1;
	t->ext[0] = (struct extent){ d->offset, 0, d->capacity };
	t->next = 1;
	t->cap = d->capacity;
	return 0;
}

/*
 * chunk_add - chunk k of v2 table t at off: in the file, page aligned, not
 * overlapping anything else read.
 */
static int chunk_add(struct layout *L, struct table *t, unsigned k, uint64_t off, char *err, size_t errlen)
{
	char what[32];
	uint64_t n = lw_chunk_entries(t->shift, k);
	snprintf(what, sizeof what, " chunk %u", k);
	if (extent_check(L, t->name, what, off, n, t->es, SEG_PAGE, err, errlen) ||
	    range_add(L, off, n * t->es, t->name, err, errlen))
		return -1;
	t->ext[k] = (struct extent){ off, lw_chunk_first(t->shift, k), n };
	t->next = k + 1;
	t->cap = lw_chunk_first(t->shift, k + 1);
	return 0;
}

/* ---- reading --------------------------------------------------------------- */

struct rd {
	int fd;
	uint64_t size;                  /* st_size when opened */
	int shrunk;                     /* a pread() ended before size: truncated under us */
	int io_errno;                   /* a pread() failed */
	int no_seek_data;               /* the filesystem has no SEEK_DATA: all is data */
	unsigned retries_left;          /* SNAP_RETRIES budget */
	unsigned char *a, *b;           /* two copies of one chunk */
	size_t cap;                     /* bytes in each */
	/* growing arrays of the snapshot: their capacities */
	size_t stack_cap, handle_cap, alloc_cap, module_cap;
	/* bad closes as found, with their ring slot; ordered oldest first afterwards */
	struct ring_entry { uint64_t pos; struct lw_badclose b; } *ring;
	size_t nring, ring_cap;
	struct layout L;
};

/* rd_pread - exactly len bytes at off, or -1 (shrunk or io_errno set). */
static int rd_pread(struct rd *r, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(r->fd, (unsigned char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r->io_errno = errno;
			return -1;
		}
		if (n == 0) {
			r->shrunk = 1;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/*
 * chunks_read - the chunk list of table `id` as it is now.  The shim writes
 * off[k] and then publishes count = k + 1 (release); one pread() gives no
 * order between the two words, so count is read first and the offsets by a
 * second pread(), strictly after it.  Returns 0, or -1 (read error in r).
 */
static int chunks_read(struct rd *r, unsigned id, struct lw_chunks *c)
{
	uint64_t base = offsetof(struct lw_header, chunks) + (uint64_t)id * sizeof *c;
	memset(c, 0, sizeof *c);
	if (rd_pread(r, c, offsetof(struct lw_chunks, off), base))
		return -1;
	uint32_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
	if (n > LW_CHUNKS_MAX)
		n = LW_CHUNKS_MAX; /* refused by the caller, which sees the full count */
	return n ? rd_pread(r, c->off, n * sizeof c->off[0], base + offsetof(struct lw_chunks, off)) : 0;
}

/* table_v2 - table `id` from its chunk list c (the first look: nothing published yet). */
static int table_v2(struct layout *L, unsigned id, uint32_t es, const struct lw_chunks *c, char *err,
		    size_t errlen)
{
	struct table *t = &L->t[id];
	const char *name = table_names[id];
	uint32_t count = atomic_load_explicit(&c->count, memory_order_relaxed);
	memset(t, 0, sizeof *t);
	t->name = name;
	t->es = es;
	t->shift = c->shift;
	if (count == 0)
		return 0;
	if (count > LW_CHUNKS_MAX)
		return fail(err, errlen, "%s table claims %u chunks (at most %u)", name, count, LW_CHUNKS_MAX);
	if (c->shift > CHUNK_SHIFT_MAX)
		return fail(err, errlen, "%s table chunk shift %u is out of range (at most %u)", name, c->shift,
			    CHUNK_SHIFT_MAX);
	uint64_t total = lw_chunk_first(c->shift, count);
	if (total > TABLE_CAP_MAX)
		return fail(err, errlen, "%s table claims %llu entries (at most %u are read)", name,
			    (unsigned long long)total, TABLE_CAP_MAX);
	if (entry_check(name, es, table_need[id], err, errlen))
		return -1;
	for (unsigned k = 0; k < count; k++)
		if (chunk_add(L, t, k, c->off[k], err, errlen))
			return -1;
	return 0;
}

/*
 * next_data - the first data range [*from, *to) at or after pos, clipped to
 * end.  Returns 0 when the rest up to end is a hole.  A filesystem without
 * SEEK_DATA (EINVAL) is read as if all of it were data.
 */
static int next_data(struct rd *r, uint64_t pos, uint64_t end, uint64_t *from, uint64_t *to)
{
	if (pos >= end)
		return 0;
	if (!r->no_seek_data) {
		off_t d = lseek(r->fd, (off_t)pos, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			return 0;
		if (d >= 0) {
			if ((uint64_t)d >= end)
				return 0;
			off_t h = lseek(r->fd, d, SEEK_HOLE);
			*from = (uint64_t)d;
			*to = h < 0 || (uint64_t)h > end ? end : (uint64_t)h;
			if (*to <= *from)
				*to = end;
			return 1;
		}
		r->no_seek_data = 1;
	}
	*from = pos;
	*to = end;
	return 1;
}

static uint32_t seq_of(const unsigned char *slot)
{
	uint32_t v;
	memcpy(&v, slot, sizeof v);
	return v;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * The seqlock over pread().  The reader protocol of segment.h (load seq,
 * copy, load seq again) needs loads in program order; the kernel's copy
 * gives no such order inside one pread().  Instead every slot is read twice,
 * the second copy strictly after the first (two system calls), and a copy
 * counts when its seq is even and both copies agree on every byte: a writer
 * that was inside the slot during either copy leaves seq odd in one of them
 * or a byte that differs.  (Aligned 4- and 8-byte words are not torn by the
 * kernel's copy routines on x86-64 and arm64, which the seq word and the
 * monotonic counters rely on.)
 *
 * slot_stable - a consistent copy of len bytes of the slot at file offset
 * off into out, starting from the chunk copies a and b (NULL: read them
 * here).  Returns 1 when consistent, 0 when the slot never was (busy), -1 on
 * a read error.
 */
static int slot_stable(struct rd *r, uint64_t off, const unsigned char *a, const unsigned char *b, void *out,
		       size_t len)
{
	if (a && b && !(seq_of(a) & 1u) && memcmp(a, b, len) == 0) {
		memcpy(out, a, len);
		return 1;
	}
	unsigned char x[SLOT_COPY_MAX], y[SLOT_COPY_MAX];
	if (len > sizeof x)
		return 0;
	for (unsigned tries = 0; tries < SLOT_RETRIES && r->retries_left > 0; tries++) {
		r->retries_left--;
		if (rd_pread(r, x, len, off) || rd_pread(r, y, len, off))
			return -1;
		if (!(seq_of(x) & 1u) && memcmp(x, y, len) == 0) {
			memcpy(out, x, len);
			return 1;
		}
	}
	return 0;
}

/*
 * A table visitor: the slot with table index idx at file offset off, its two
 * chunk copies.  Returns 0, or -1 to stop (out of memory, or a read error
 * recorded in r).
 */
typedef int (*slot_fn)(struct lw_snapshot *s, struct rd *r, const struct table *t, uint64_t idx, uint64_t off,
		       const unsigned char *a, const unsigned char *b);

/*
 * extent_scan - visit the n slots of extent x that lie (at least partly) in
 * data, reading each data range in chunks of whole slots, twice.  Holes are
 * skipped without being read: a slot in a hole was never written.  The
 * ranges are looked up now, not when the file was opened, so what a writer
 * put there in between is seen.  Returns 0, or -1 (error in r, or fn's).
 */
static int extent_scan(struct lw_snapshot *s, struct rd *r, const struct table *t, const struct extent *x,
		       uint64_t n, slot_fn fn)
{
	uint64_t es = t->es;
	uint64_t start = x->off, end = x->off + n * es;
	uint64_t pos = start, from, to;
	uint64_t per = r->cap / es;
	while (next_data(r, pos, end, &from, &to)) {
		uint64_t first = (from - start) / es;
		uint64_t last = min_u64((to - start + es - 1) / es, n);
		for (uint64_t i = first; i < last;) {
			uint64_t k = min_u64(last - i, per);
			uint64_t off = start + i * es;
			if (rd_pread(r, r->a, (size_t)(k * es), off) || rd_pread(r, r->b, (size_t)(k * es), off))
				return -1;
			for (uint64_t j = 0; j < k; j++)
				if (fn(s, r, t, x->first + i + j, off + j * es, r->a + j * es, r->b + j * es) < 0)
					return -1;
			i += k;
		}
		pos = start + last * es;
	}
	return 0;
}

/* table_scan - visit the slots of t with table index below nslots, extent by extent. */
static int table_scan(struct lw_snapshot *s, struct rd *r, const struct table *t, uint64_t nslots, slot_fn fn)
{
	for (unsigned e = 0; e < t->next; e++) {
		const struct extent *x = &t->ext[e];
		if (x->first >= nslots)
			break;
		if (extent_scan(s, r, t, x, min_u64(x->n, nslots - x->first), fn))
			return -1;
	}
	return 0;
}

/* table_slot_off - file offset of slot idx of t; 0 when no published extent holds it. */
static uint64_t table_slot_off(const struct table *t, uint64_t idx)
{
	for (unsigned e = 0; e < t->next; e++)
		if (idx >= t->ext[e].first && idx - t->ext[e].first < t->ext[e].n)
			return t->ext[e].off + (idx - t->ext[e].first) * t->es;
	return 0;
}

/*
 * chunks_refresh - v2: chunks of table `id` published since the layout was
 * read are added (each validated like the first ones), so that a table read
 * after its referrers (stacks, modules) holds every entry they name.
 * Published chunks never move: a list that changed otherwise is refused.
 * Returns 0, -1 (read error in r) or -2 (refused, err set).
 */
static int chunks_refresh(struct rd *r, unsigned id, char *err, size_t errlen)
{
	struct layout *L = &r->L;
	struct table *t = &L->t[id];
	struct lw_chunks c;
	if (L->version < 2)
		return 0;
	if (chunks_read(r, id, &c))
		return -1;
	uint32_t count = atomic_load_explicit(&c.count, memory_order_relaxed);
	if (count <= t->next)
		return 0; /* nothing new (the shim never unpublishes) */
	int bad = count > LW_CHUNKS_MAX || (t->next && c.shift != t->shift);
	for (unsigned k = 0; !bad && k < t->next; k++)
		bad = c.off[k] != t->ext[k].off;
	if (bad)
		return fail(err, errlen, "%s table changed while being read (refused)", t->name), -2;
	if (t->next == 0) {
		/* the first chunk published since: validate it as the layout would */
		if (table_v2(L, id, t->es, &c, err, errlen))
			return -2;
		return 0;
	}
	if (lw_chunk_first(t->shift, count) > TABLE_CAP_MAX)
		return fail(err, errlen, "%s table claims %llu entries (at most %u are read)", t->name,
			    (unsigned long long)lw_chunk_first(t->shift, count), TABLE_CAP_MAX), -2;
	for (unsigned k = t->next; k < count; k++)
		if (chunk_add(L, t, k, c.off[k], err, errlen))
			return -2;
	return 0;
}

/* ---- the tables, referrers first ---------------------------------------------- */

/*
 * Stack slots are write-once (0 -> 1 -> 2): only seq, hash, depth and the
 * frames are compared; the counters after them are monotonic totals that
 * change all the time, taken from the later copy.
 */
static int stack_add(struct lw_snapshot *s, size_t *cap, uint64_t idx, const unsigned char *slot,
		     const unsigned char *later, size_t entry_size)
{
	uint16_t depth;
	memcpy(&depth, slot + offsetof(struct lw_stack, depth), sizeof depth);
	if (depth > LW_STACK_MAX_FRAMES)
		depth = LW_STACK_MAX_FRAMES;
	if (s->nstacks == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct lw_snap_stack *ns = realloc(s->stacks, ncap * sizeof *ns);
		if (!ns)
			return -1;
		s->stacks = ns;
		*cap = ncap;
	}
	struct lw_snap_stack *o = &s->stacks[s->nstacks++];
	memset(o, 0, sizeof *o);
	o->id = (uint32_t)idx + 1;
	o->depth = depth;
	memcpy(o->frames, slot + offsetof(struct lw_stack, frames), depth * sizeof o->frames[0]);
	if (entry_size >= sizeof(struct lw_stack)) {
		struct lw_stack c;
		memcpy(&c.sock_opened, later + offsetof(struct lw_stack, sock_opened),
		       sizeof(struct lw_stack) - offsetof(struct lw_stack, sock_opened));
		o->sock_opened = c.sock_opened;
		o->sock_closed = c.sock_closed;
		o->uses = c.uses;
		o->heap_allocs = c.heap_allocs;
		o->heap_frees = c.heap_frees;
		o->heap_bytes = c.heap_bytes;
	}
	return 0;
}

static int stack_visit(struct lw_snapshot *s, struct rd *r, const struct table *t, uint64_t idx, uint64_t off,
		       const unsigned char *a, const unsigned char *b)
{
	if (seq_of(a) != 2)
		return 0; /* empty, or still being filled: nothing can refer to it yet */
	/* the whole write-once part, whatever the depth: frames past it stay zero */
	unsigned char copy[sizeof(struct lw_stack)];
	int rc = slot_stable(r, off, a, b, copy, offsetof(struct lw_stack, pad));
	if (rc < 0)
		return -1;
	if (rc == 0 || seq_of(copy) != 2) {
		s->busy++;
		return 0;
	}
	return stack_add(s, &r->stack_cap, idx, copy, b, t->es);
}

static int handle_visit(struct lw_snapshot *s, struct rd *r, const struct table *t, uint64_t idx, uint64_t off,
			const unsigned char *a, const unsigned char *b)
{
	if (seq_of(a) == 0 && seq_of(b) == 0)
		return 0; /* never written */
	struct lw_handle h;
	memset(&h, 0, sizeof h);
	int rc = slot_stable(r, off, a, b, &h, min_size(t->es, sizeof h));
	if (rc < 0)
		return -1;
	if (rc == 0) {
		s->busy++;
		return 0;
	}
	if (h.state != LW_H_OPEN && h.state != LW_H_CLOSED)
		return 0;
	/* The reader rule of segment.h: a kind this reader does not know is
	 * some descriptor all the same; a path never runs past its space. */
	if (h.kind >= LW_FD_KIND_MAX)
		h.kind = LW_FD_OTHER;
	if (h.kind != LW_FD_SOCKET && h.path.len > LW_FDPATH_MAX)
		h.path.len = LW_FDPATH_MAX;
	if (s->nhandles == r->handle_cap) {
		size_t ncap = r->handle_cap ? r->handle_cap * 2 : 64;
		struct lw_snap_handle *nh = realloc(s->handles, ncap * sizeof *nh);
		if (!nh)
			return -1;
		s->handles = nh;
		r->handle_cap = ncap;
	}
	s->handles[s->nhandles].fd = (int)idx;
	s->handles[s->nhandles].h = h;
	s->nhandles++;
	return 0;
}

/*
 * The heap table is an open-addressed hash keyed by ptr and can hold millions
 * of slots, most of them empty or tombstones: only slots whose ptr looks live
 * in either copy are checked.
 */
static int alloc_visit(struct lw_snapshot *s, struct rd *r, const struct table *t, uint64_t idx, uint64_t off,
		       const unsigned char *a, const unsigned char *b)
{
	(void)idx;
	uint64_t pa, pb;
	memcpy(&pa, a + offsetof(struct lw_alloc, ptr), sizeof pa);
	memcpy(&pb, b + offsetof(struct lw_alloc, ptr), sizeof pb);
	if (pa <= LW_ALLOC_TOMBSTONE && pb <= LW_ALLOC_TOMBSTONE)
		return 0;
	struct lw_alloc al;
	memset(&al, 0, sizeof al);
	int rc = slot_stable(r, off, a, b, &al, min_size(t->es, sizeof al));
	if (rc < 0)
		return -1;
	if (rc == 0) {
		s->busy++;
		return 0;
	}
	/* seq 0 was never written by the protocol */
	if (al.seq == 0 || al.ptr <= LW_ALLOC_TOMBSTONE)
		return 0;
	if (s->nallocs == r->alloc_cap) {
		size_t ncap = r->alloc_cap ? r->alloc_cap * 2 : 256;
		struct lw_snap_alloc *na = realloc(s->allocs, ncap * sizeof *na);
		if (!na)
			return -1;
		s->allocs = na;
		r->alloc_cap = ncap;
	}
	struct lw_snap_alloc *o = &s->allocs[s->nallocs++];
	o->ptr = al.ptr;
	o->size = al.size;
	o->ns = al.ns;
	o->stack_id = al.stack_id;
	o->reserved = 0;
	return 0;
}

static int badclose_visit(struct lw_snapshot *s, struct rd *r, const struct table *t, uint64_t idx, uint64_t off,
			  const unsigned char *a, const unsigned char *b)
{
	if (seq_of(a) == 0 && seq_of(b) == 0)
		return 0;
	struct lw_badclose bc;
	memset(&bc, 0, sizeof bc);
	int rc = slot_stable(r, off, a, b, &bc, min_size(t->es, sizeof bc));
	if (rc < 0)
		return -1;
	if (rc == 0) {
		s->busy++;
		return 0;
	}
	if (bc.seq == 0)
		return 0;
	if (r->nring == r->ring_cap) {
		size_t ncap = r->ring_cap ? r->ring_cap * 2 : 16;
		struct ring_entry *nr = realloc(r->ring, ncap * sizeof *nr);
		if (!nr)
			return -1;
		r->ring = nr;
		r->ring_cap = ncap;
	}
	r->ring[r->nring].pos = idx;
	r->ring[r->nring].b = bc;
	r->nring++;
	return 0;
}

static int module_visit(struct lw_snapshot *s, struct rd *r, const struct table *t, uint64_t idx, uint64_t off,
			const unsigned char *a, const unsigned char *b)
{
	(void)idx;
	struct lw_module m;
	memset(&m, 0, sizeof m);
	int rc = slot_stable(r, off, a, b, &m, min_size(t->es, sizeof m));
	if (rc < 0)
		return -1;
	if (rc == 0) {
		s->busy++;
		return 0;
	}
	if (m.seq == 0) /* reserved by `used` but not written yet */
		return 0;
	m.path[LW_PATH_MAX - 1] = '\0';
	if (m.build_id_len > LW_BUILD_ID_MAX)
		m.build_id_len = 0;
	if (s->nmodules == r->module_cap) {
		size_t ncap = r->module_cap ? r->module_cap * 2 : 32;
		struct lw_module *nm = realloc(s->modules, ncap * sizeof *nm);
		if (!nm)
			return -1;
		s->modules = nm;
		r->module_cap = ncap;
	}
	s->modules[s->nmodules++] = m;
	return 0;
}

/* used_now - a table's `used` cursor as it is now (the header is live too). */
static int used_now(struct rd *r, size_t table_off, uint32_t *used)
{
	return rd_pread(r, used, sizeof *used, table_off + offsetof(struct lw_table, used));
}

/* Bad closes by ring position counted from the oldest entry kept (arg: {start, cap}). */
static int ring_cmp(const void *a, const void *b, void *arg)
{
	const struct ring_entry *x = a, *y = b;
	const uint64_t *sc = arg;
	uint64_t i = (x->pos + sc[1] - sc[0]) % sc[1];
	uint64_t k = (y->pos + sc[1] - sc[0]) % sc[1];
	return (i > k) - (i < k);
}

/*
 * Bad closes: `used` counts every append; the ring keeps the last `cap` of
 * them (v2: cap is the capacity of the published chunks), so the oldest
 * entry is at used % cap once the ring has wrapped.
 */
static int copy_badcloses(struct lw_snapshot *s, struct rd *r)
{
	const struct table *t = &r->L.t[LW_T_BADCLOSES];
	if (t->cap == 0)
		return 0;
	uint32_t used;
	if (used_now(r, offsetof(struct lw_header, badcloses), &used))
		return -1;
	uint64_t n = min_u64(used, t->cap);
	if (n == 0)
		return 0;
	if (table_scan(s, r, t, n, badclose_visit))
		return -1;
	if (r->nring == 0)
		return 0;
	s->badcloses = calloc(r->nring, sizeof *s->badcloses);
	if (!s->badcloses)
		return -1;
	uint64_t sc[2] = { used < t->cap ? 0 : used % t->cap, t->cap };
	qsort_r(r->ring, r->nring, sizeof *r->ring, ring_cmp, sc);
	for (size_t k = 0; k < r->nring; k++)
		s->badcloses[s->nbadcloses++] = r->ring[k].b;
	return 0;
}

static int copy_modules(struct lw_snapshot *s, struct rd *r)
{
	const struct table *t = &r->L.t[LW_T_MODULES];
	uint32_t used;
	if (t->cap == 0)
		return 0;
	if (used_now(r, offsetof(struct lw_header, modules), &used))
		return -1;
	return table_scan(s, r, t, min_u64(used, t->cap), module_visit);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static int stack_cmp(const void *a, const void *b)
{
	const struct lw_snap_stack *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

static int handle_cmp(const void *a, const void *b)
{
	const struct lw_snap_handle *x = a, *y = b;
	return (x->fd > y->fd) - (x->fd < y->fd);
}

/*
 * Every stack id the copied records name should be in the stack table: the
 * shim publishes a stack before any record that refers to it, and the stack
 * table is read after the records.  A referenced slot not found is read once
 * more on its own (pread of a hole allocates nothing); what is still missing
 * is counted in s->missing_stacks and shown as an unknown stack.
 */
struct idlist {
	uint32_t *v;
	size_t n, cap;
	const uint8_t *present;         /* bit per stack id up to max_id: in the snapshot */
	uint32_t max_id;
};

/* want - remember a referenced stack id not in the snapshot; 0 or -1 (no memory). */
static int want(struct idlist *l, const struct lw_snapshot *s, uint32_t id)
{
	if (id == 0)
		return 0;
	if (l->present ? id <= l->max_id && (l->present[id / 8] >> (id % 8) & 1) : lw_snapshot_stack(s, id) != NULL)
		return 0;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		uint32_t *nv = realloc(l->v, ncap * sizeof *nv);
		if (!nv)
			return -1;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = id;
	return 0;
}

static int stacks_resolve(struct lw_snapshot *s, struct rd *r)
{
	const struct table *t = &r->L.t[LW_T_STACKS];
	struct idlist l = { 0 };
	int bad = 0;
	/* a million heap blocks name their stacks: look them up by bit, not by search (the
	 * bitmap follows the highest id actually read, at most TABLE_CAP_MAX bits) */
	uint8_t *present = NULL;
	if (s->nstacks && (present = calloc(s->stacks[s->nstacks - 1].id / 8 + 1, 1)) != NULL) {
		for (size_t i = 0; i < s->nstacks; i++)
			present[s->stacks[i].id / 8] |= (uint8_t)(1u << (s->stacks[i].id % 8));
		l.present = present;
		l.max_id = s->stacks[s->nstacks - 1].id;
	}
	for (size_t i = 0; i < s->nhandles; i++) {
		const struct lw_handle *h = &s->handles[i].h;
		bad |= want(&l, s, h->stack_id) | want(&l, s, h->connect_stack_id) |
		       want(&l, s, h->last_use_stack_id) | want(&l, s, h->close_stack_id);
	}
	for (size_t i = 0; i < s->nbadcloses; i++)
		bad |= want(&l, s, s->badcloses[i].stack_id) | want(&l, s, s->badcloses[i].prev_open_stack_id) |
		       want(&l, s, s->badcloses[i].prev_close_stack_id);
	for (size_t i = 0; i < s->nallocs; i++)
		bad |= want(&l, s, s->allocs[i].stack_id);
	free(present);
	uint32_t *ids = l.v;
	size_t n = l.n;
	if (bad) {
		free(ids);
		return -1;
	}
	if (n == 0)
		return 0;
	qsort(ids, n, sizeof *ids, u32_cmp);
	size_t before = s->nstacks;
	unsigned char a[sizeof(struct lw_stack)], b[sizeof(struct lw_stack)];
	size_t len = min_size(t->es, sizeof a);
	for (size_t k = 0; k < n; k++) {
		if (k && ids[k] == ids[k - 1]) {
			s->missing_stacks += !lw_snapshot_stack(s, ids[k]);
			continue;
		}
		uint64_t off = table_slot_off(t, (uint64_t)ids[k] - 1);
		if (off) {
			if (rd_pread(r, a, len, off) || rd_pread(r, b, len, off) ||
			    stack_visit(s, r, t, ids[k] - 1, off, a, b) < 0) {
				free(ids);
				return -1;
			}
			if (s->nstacks > before) {
				/* keep the table sorted for the lookups below */
				qsort(s->stacks, s->nstacks, sizeof *s->stacks, stack_cmp);
				before = s->nstacks;
			}
		}
		s->missing_stacks += !lw_snapshot_stack(s, ids[k]);
	}
	free(ids);
	return 0;
}

/* ---- the heap: the directory, then the tables it names ---------------------------- */

/*
 * heap_tables - the heap tables directory d names, validated like every
 * other table (the ranges claimed for an earlier try are given back first).
 */
static int heap_tables(struct rd *r, unsigned nrg, const struct lw_heapdir *d, uint32_t es, char *err,
		       size_t errlen)
{
	struct layout *L = &r->L;
	static const char old_name[] = "replaced heap";
	struct table *tab[2] = { &L->heap_old, &L->heap_cur };
	const char *names[2] = { old_name, "heap" };
	const uint64_t off[2] = { d->old_off, d->cur_off }, cap[2] = { d->old_cap, d->cur_cap };
	L->nrg = nrg;
	for (int i = 0; i < 2; i++) {
		struct table *t = tab[i];
		memset(t, 0, sizeof *t);
		t->name = names[i];
		t->es = es;
		if (cap[i] == 0)
			continue;
		if (cap[i] > TABLE_CAP_MAX)
			return fail(err, errlen, "%s table claims %llu entries (at most %u are read)", names[i],
				    (unsigned long long)cap[i], TABLE_CAP_MAX);
		if (entry_check("heap", es, sizeof(struct lw_alloc), err, errlen) ||
		    extent_check(L, names[i], "", off[i], cap[i], es, SEG_PAGE, err, errlen) ||
		    range_add(L, off[i], cap[i] * es, names[i], err, errlen))
			return -1;
		t->ext[0] = (struct extent){ off[i], 0, cap[i] };
		t->next = 1;
		t->cap = cap[i];
	}
	return 0;
}

/* Test seam (testing.h): between the reads of the replaced and the current heap table. */
void (*lw_snapshot_heap_read_hook)(void);

static uint64_t ptr_hash(uint64_t p)
{
	return (p >> 4) * 0x9e3779b97f4a7c15ull;
}

/*
 * allocs_dedupe - a block seen in both heap tables (the instant of its move,
 * or a freed address reused in the new table) is kept once, as the current
 * table has it: allocs[0, nold) came from the table being replaced.
 * Returns 0, or -1 (no memory).
 */
static int allocs_dedupe(struct lw_snapshot *s, size_t nold)
{
	if (nold == 0 || nold == s->nallocs)
		return 0;
	unsigned bits = 4;
	while ((1ull << bits) < 2 * (uint64_t)nold)
		bits++;
	uint64_t mask = (1ull << bits) - 1;
	size_t *slot = calloc((size_t)mask + 1, sizeof *slot); /* old index + 1 */
	if (!slot)
		return -1;
	for (size_t i = 0; i < nold; i++) {
		uint64_t h = ptr_hash(s->allocs[i].ptr) >> (64 - bits);
		while (slot[h])
			h = (h + 1) & mask;
		slot[h] = i + 1;
	}
	for (size_t i = nold; i < s->nallocs; i++) {
		uint64_t p = s->allocs[i].ptr;
		for (uint64_t h = ptr_hash(p) >> (64 - bits); slot[h]; h = (h + 1) & mask)
			if (s->allocs[slot[h] - 1].ptr == p)
				s->allocs[slot[h] - 1].ptr = 0;
	}
	free(slot);
	size_t k = 0;
	for (size_t i = 0; i < s->nallocs; i++)
		if (s->allocs[i].ptr)
			s->allocs[k++] = s->allocs[i];
	s->nallocs = k;
	return 0;
}

/*
 * copy_heap - the live heap blocks.  v2 (segment.h): the directory names the
 * current table and, while the shim moves blocks out of it, the replaced
 * one; old is read first, then cur, then the directory again: if a new
 * table was published meanwhile, blocks may have moved behind this read,
 * and the heap is read again (HEAPDIR_TRIES).  A directory that stays busy
 * or keeps changing is never waited for: s->heap_unsettled says so.
 * Returns 0, -1 (read error, or no memory) or -2 (refused, err set).
 */
static int copy_heap(struct lw_snapshot *s, struct rd *r, char *err, size_t errlen)
{
	struct layout *L = &r->L;
	if (s->hdr.heap_mode == LW_HEAP_OFF)
		return 0;
	if (L->version < 2)
		return table_scan(s, r, &L->heap, L->heap.cap, alloc_visit);
	const uint64_t dir_off = offsetof(struct lw_header, heapdir);
	const uint32_t es = s->hdr.heap.entry_size;
	const unsigned nrg = L->nrg;
	const size_t busy = s->busy;
	struct lw_heapdir d, now;
	int rc = slot_stable(r, dir_off, NULL, NULL, &d, sizeof d);
	if (rc <= 0) {
		s->heap_unsettled = rc == 0;
		return rc;
	}
	for (unsigned tries = 1;; tries++) {
		s->nallocs = 0;
		s->busy = busy;
		if (heap_tables(r, nrg, &d, es, err, errlen))
			return -2;
		if (table_scan(s, r, &L->heap_old, L->heap_old.cap, alloc_visit))
			return -1;
		size_t nold = s->nallocs;
		if (lw_snapshot_heap_read_hook)
			lw_snapshot_heap_read_hook();
		if (table_scan(s, r, &L->heap_cur, L->heap_cur.cap, alloc_visit))
			return -1;
		rc = slot_stable(r, dir_off, NULL, NULL, &now, sizeof now);
		if (rc < 0)
			return -1;
		/* the old table retired meanwhile is fine: every block was in cur by then */
		int same = rc == 1 && now.gen == d.gen && now.cur_off == d.cur_off && now.cur_cap == d.cur_cap;
		if (same || rc == 0 || tries == HEAPDIR_TRIES) {
			s->heap_unsettled = !same;
			return allocs_dedupe(s, nold);
		}
		d = now;
	}
}

/* ---- the snapshot ----------------------------------------------------------- */

/*
 * layout_read - where the tables are: v1 from the header copy h, v2 from
 * the chunk lists as they are now (read in publication order) and the
 * entry sizes of h.  Returns 0, -1 (read error) or -2 (refused, err set).
 */
static int layout_read(struct rd *r, const struct lw_header *h, char *err, size_t errlen)
{
	struct layout *L = &r->L;
	memset(L, 0, sizeof *L);
	L->header_size = h->header_size;
	L->file_size = r->size;
	L->version = h->version >= 2 ? 2 : 1;
	const struct lw_table *d[LW_T_NUM] = { &h->stacks, &h->modules, &h->handles, &h->badcloses };
	if (L->version == 1) {
		for (unsigned i = 0; i < LW_T_NUM; i++)
			if (table_v1(L, &L->t[i], d[i], table_names[i], table_need[i], err, errlen) ||
			    range_add(L, L->t[i].ext[0].off, L->t[i].cap * L->t[i].es, table_names[i], err, errlen))
				return -2;
		if (table_v1(L, &L->heap, &h->heap, "heap", sizeof(struct lw_alloc), err, errlen) ||
		    range_add(L, L->heap.ext[0].off, L->heap.cap * L->heap.es, "heap", err, errlen))
			return -2;
		return 0;
	}
	for (unsigned i = 0; i < LW_T_NUM; i++) {
		struct lw_chunks c;
		if (chunks_read(r, i, &c))
			return -1;
		if (table_v2(L, i, d[i]->entry_size, &c, err, errlen))
			return -2;
	}
	return 0;
}

/* Header checks, on our private copy of the header. */
static int header_check(const struct lw_header *h, uint64_t file_size, char *err, size_t errlen)
{
	if (h->magic != LW_MAGIC)
		return fail(err, errlen, "not a leakwatch segment");
	if (h->compat_version > LW_VERSION)
		return fail(err, errlen, "newer layout (version %u, this leakwatch reads up to %u)",
			    h->version, LW_VERSION);
	if (h->header_size < sizeof(struct lw_header) || h->header_size > file_size)
		return fail(err, errlen, "bad header size %u", h->header_size);
	if (h->total_size != file_size)
		return fail(err, errlen, "truncated: header says %llu bytes, file has %llu",
			    (unsigned long long)h->total_size, (unsigned long long)file_size);
	/* layout 1 sized the file to its tables: more is a forgery */
	if (h->version < 2 && file_size > SEG_SIZE_MAX_V1)
		return fail(err, errlen, "claims %llu GiB (more than the %llu GiB a layout 1 segment can be; refused)",
			    (unsigned long long)(file_size >> 30), (unsigned long long)(SEG_SIZE_MAX_V1 >> 30));
	/* A mode this reader does not know would be misread as full tracking. */
	if (h->heap_mode > LW_HEAP_FULL)
		return fail(err, errlen, "unknown heap mode %u", h->heap_mode);
	return 0;
}

/*
 * Who vouches for the file.  Anyone can create "leakwatch.<pid>" in a shared
 * directory before or after the real one goes: a segment for pid P is
 * believed only when its header says P (the name's pid, when it has one) and
 * the file belongs to root or to the user process P runs as.  A file whose
 * process is gone is believed only when it is the invoker's or root's, or
 * (LW_SNAP_GONE_ANY_OWNER, `clean` as root) just to see that it is gone.
 */
static int trust_check(const struct lw_snapshot *s, const char *path, uint32_t file_uid, unsigned flags,
		       char *err, size_t errlen)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	int archived, name_pid = lw_segment_name_pid(base, &archived);
	if (name_pid > 0 && s->hdr.pid != name_pid)
		return fail(err, errlen, "header says pid %d, the file name says %d (refused)", s->hdr.pid,
			    name_pid);
	if (s->hdr.pid <= 0)
		return fail(err, errlen, "bad pid %d in the header", s->hdr.pid);
	if (file_uid == 0)
		return 0;
	uint64_t ticks;
	uint32_t ruid, euid;
	if (lw_proc_start_ticks(s->hdr.pid, &ticks) == 0 && lw_start_ticks_match(&s->hdr, ticks) &&
	    lw_proc_uids(s->hdr.pid, &ruid, &euid) == 0) {
		if (file_uid != ruid && file_uid != euid)
			return fail(err, errlen, "owned by uid %u, but process %d runs as uid %u (refused)",
				    (unsigned)file_uid, s->hdr.pid, (unsigned)euid);
		return 0;
	}
	if (file_uid == (uint32_t)getuid() || (flags & LW_SNAP_GONE_ANY_OWNER))
		return 0;
	return fail(err, errlen, "owned by uid %u and process %d is gone: nothing vouches for it (refused)",
		    (unsigned)file_uid, s->hdr.pid);
}

static int snapshot_read(struct lw_snapshot *s, struct rd *r, const char *path, uint32_t file_uid,
			 unsigned flags, char *err, size_t errlen)
{
	struct lw_header *h = &s->hdr;
	int rc;
	if (rd_pread(r, h, sizeof *h, 0))
		return -1;
	if (header_check(h, r->size, err, errlen))
		return -2;
	if ((rc = layout_read(r, h, err, errlen)) != 0)
		return rc;
	h->exe[LW_PATH_MAX - 1] = '\0';
	h->cmdline[LW_CMDLINE_MAX - 1] = '\0';
	if (trust_check(s, path, file_uid, flags, err, errlen))
		return -2;
	s->layout = r->L.version;
	s->state = atomic_load_explicit(&h->state, memory_order_relaxed);
	s->incomplete = r->L.version >= 2 ? atomic_load_explicit(&h->incomplete, memory_order_relaxed) : 0;
	for (size_t i = 0; i < LW_CTR_MAX; i++)
		s->counters[i] = atomic_load_explicit(&h->counters[i], memory_order_relaxed);
	if (flags & LW_SNAP_HEADER_ONLY)
		return 0;

	size_t need = CHUNK_BYTES;
	for (size_t i = 0; i < LW_T_NUM; i++)
		if (r->L.t[i].es > need)
			need = r->L.t[i].es;
	if (h->heap.entry_size > need && h->heap.entry_size <= ENTRY_SIZE_MAX)
		need = h->heap.entry_size;
	r->a = malloc(need);
	r->b = malloc(need);
	r->cap = need;
	if (!r->a || !r->b)
		return -3;

	/*
	 * Referrers before referents: entries that name a stack, then stacks, then
	 * the modules their addresses lie in.  The shim publishes a stack before
	 * any entry that refers to it and a module before its code runs, and
	 * removes neither, so every id and address copied is found in the tables
	 * copied after it — each table's extents (v2: its published chunks) are
	 * taken when its turn comes.
	 */
	const struct table *ht = &r->L.t[LW_T_HANDLES];
	uint64_t nhandles = ht->cap;
	uint32_t used;
	if (r->L.version >= 2) { /* v2 scans up to the highest fd + 1 the shim saw */
		if (used_now(r, offsetof(struct lw_header, handles), &used))
			return -1;
		nhandles = min_u64(used, ht->cap);
	}
	if (table_scan(s, r, ht, nhandles, handle_visit) || copy_badcloses(s, r))
		return r->shrunk || r->io_errno ? -1 : -3;
	if ((rc = copy_heap(s, r, err, errlen)) != 0)
		return rc == -2 ? -2 : r->shrunk || r->io_errno ? -1 : -3;
	if ((rc = chunks_refresh(r, LW_T_STACKS, err, errlen)) != 0)
		return rc;
	if (table_scan(s, r, &r->L.t[LW_T_STACKS], r->L.t[LW_T_STACKS].cap, stack_visit))
		return r->shrunk || r->io_errno ? -1 : -3;
	if (s->nstacks)
		qsort(s->stacks, s->nstacks, sizeof *s->stacks, stack_cmp);
	if (stacks_resolve(s, r))
		return r->shrunk || r->io_errno ? -1 : -3;
	if ((rc = chunks_refresh(r, LW_T_MODULES, err, errlen)) != 0)
		return rc;
	if (copy_modules(s, r))
		return r->shrunk || r->io_errno ? -1 : -3;
	if (s->nhandles)
		qsort(s->handles, s->nhandles, sizeof *s->handles, handle_cmp);
	return 0;
}

int lw_snapshot_open(struct lw_snapshot *s, const char *path, char *err, size_t errlen)
{
	return lw_snapshot_open_flags(s, path, 0, err, errlen);
}

int lw_snapshot_open_flags(struct lw_snapshot *s, const char *path, unsigned flags, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	snprintf(s->path, sizeof s->path, "%s", path);

	/* O_NONBLOCK: a FIFO under a segment's name must not hang us in open(). */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			return fail(err, errlen, "is a symbolic link (refused)");
		return fail(err, errlen, "%s", strerror(errno));
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return fail(err, errlen, "%s", strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, errlen, "not a regular file");
	}
	/* Someone else's segment could be crafted to mislead us; root may read any. */
	if (getuid() != 0 && st.st_uid != getuid()) {
		close(fd);
		return fail(err, errlen, "owned by uid %u", (unsigned)st.st_uid);
	}
	if ((uint64_t)st.st_size < sizeof(struct lw_header)) {
		uint64_t magic = 0;
		ssize_t got = pread(fd, &magic, sizeof magic, 0);
		close(fd);
		/* /etc/passwd is "not a segment", not a "truncated" one. */
		if (got == (ssize_t)sizeof magic && magic != LW_MAGIC)
			return fail(err, errlen, "not a leakwatch segment");
		if (st.st_size == 0)
			return fail(err, errlen, "truncated (empty file)");
		return fail(err, errlen, "truncated (%lld bytes, a header alone is %zu)",
			    (long long)st.st_size, sizeof(struct lw_header));
	}
	/* fstat's size: for a sparse segment the logical size, which is what the header names */
	if ((uint64_t)st.st_size > SEG_SPAN_MAX) {
		uint64_t magic = 0;
		ssize_t got = pread(fd, &magic, sizeof magic, 0);
		close(fd);
		if (got == (ssize_t)sizeof magic && magic != LW_MAGIC)
			return fail(err, errlen, "not a leakwatch segment");
		return fail(err, errlen, "claims %llu GiB (more than the %llu GiB a segment can be; refused)",
			    (unsigned long long)((uint64_t)st.st_size >> 30),
			    (unsigned long long)(SEG_SPAN_MAX >> 30));
	}
	s->mtime = st.st_mtim;
	s->file_uid = st.st_uid;
	s->file_dev = (uint64_t)st.st_dev;
	s->file_ino = (uint64_t)st.st_ino;
	s->file_bytes = (uint64_t)st.st_blocks * 512u;

	struct rd r = { .fd = fd, .size = (uint64_t)st.st_size, .retries_left = SNAP_RETRIES };
	int rc = snapshot_read(s, &r, path, st.st_uid, flags, err, errlen);
	free(r.a);
	free(r.b);
	free(r.ring);
	/* a file that changed size under us is not the one we validated */
	if (rc == 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size != r.size) {
		r.shrunk = 1;
		rc = -1;
	}
	if (rc == -1 && (r.shrunk || !r.io_errno)) {
		off_t now = lseek(fd, 0, SEEK_END);
		fail(err, errlen, "truncated while being read (%llu bytes, now %lld)",
		     (unsigned long long)r.size, (long long)now);
	} else if (rc == -1) {
		fail(err, errlen, "read: %s", strerror(r.io_errno));
	} else if (rc == -3) {
		fail(err, errlen, "out of memory");
	}
	close(fd);
	if (rc < 0) {
		lw_snapshot_free(s);
		snprintf(s->path, sizeof s->path, "%s", path);
		return -1;
	}
	return 0;
}

void lw_snapshot_free(struct lw_snapshot *s)
{
	free(s->stacks);
	free(s->modules);
	free(s->handles);
	free(s->badcloses);
	free(s->allocs);
	s->stacks = NULL;
	s->modules = NULL;
	s->handles = NULL;
	s->badcloses = NULL;
	s->allocs = NULL;
	s->nstacks = s->nmodules = s->nhandles = s->nbadcloses = s->nallocs = 0;
	s->missing_stacks = 0;
	s->heap_unsettled = 0;
}
const struct lw_snap_stack *lw_snapshot_stack(const struct lw_snapshot *s, uint32_t id)
{
	size_t lo = 0, hi = s->nstacks;
	if (id == 0)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->stacks[mid].id == id)
			return &s->stacks[mid];
		if (s->stacks[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct lw_snap_handle *lw_snapshot_handle(const struct lw_snapshot *s, int fd)
{
	size_t lo = 0, hi = s->nhandles;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->handles[mid].fd == fd)
			return &s->handles[mid];
		if (s->handles[mid].fd < fd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

size_t lw_snapshot_open_count(const struct lw_snapshot *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->nhandles; i++)
		if (s->handles[i].h.state == LW_H_OPEN && s->handles[i].h.kind == LW_FD_SOCKET)
			n++;
	return n;
}

size_t lw_snapshot_open_fds(const struct lw_snapshot *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->nhandles; i++)
		if (s->handles[i].h.state == LW_H_OPEN && s->handles[i].h.kind != LW_FD_SOCKET)
			n++;
	return n;
}

int lw_snapshot_is_incomplete(const struct lw_snapshot *s)
{
	return s->incomplete != 0 || s->counters[LW_CTR_DROP_RESERVE] > 0;
}
