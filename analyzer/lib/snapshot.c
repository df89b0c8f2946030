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

/*
 * Sane bounds, far above what the shim writes (its largest segment, every
 * table at its configurable maximum, is about 12.5 GiB): a header beyond them
 * is refused before anything else is read.
 */
#define SEG_SIZE_MAX      (64ull << 30)   /* bytes */
#define TABLE_CAP_MAX     (1u << 28)      /* entries of one table */
#define ENTRY_SIZE_MAX    (64u << 10)     /* bytes of one entry */

/* Bytes read per pread() of a table: whole slots, at least one. */
#define CHUNK_BYTES       (256u << 10)

/*
 * A slot whose two copies disagree is read again on its own this many times,
 * and a snapshot re-reads at most SNAP_RETRIES slots in all: a file full of
 * odd sequence numbers (a crashed writer, or a forgery) must not cost minutes.
 */
#define SLOT_RETRIES      16u
#define SNAP_RETRIES      4096u

/* The most this reader copies of one slot (its own struct sizes). */
#define SLOT_COPY_MAX     1024u
_Static_assert(sizeof(struct lw_stack) <= SLOT_COPY_MAX && sizeof(struct lw_handle) <= SLOT_COPY_MAX &&
	       sizeof(struct lw_module) <= SLOT_COPY_MAX && sizeof(struct lw_badclose) <= SLOT_COPY_MAX &&
	       sizeof(struct lw_alloc) <= SLOT_COPY_MAX, "slot copies fit SLOT_COPY_MAX");

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
	size_t stack_cap, handle_cap, alloc_cap;
	/* bad-close ring by slot, ordered oldest first afterwards */
	struct lw_badclose *ring;
	unsigned char *ring_ok;
	size_t modules_max;             /* s->modules has room for this many */
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
 * slot_stable - a consistent copy of len bytes of slot i of t into out,
 * starting from the chunk copies a and b.  Returns 1 when consistent, 0 when
 * the slot never was (busy), -1 on a read error.
 */
static int slot_stable(struct rd *r, const struct lw_table *t, size_t i, const unsigned char *a,
		       const unsigned char *b, void *out, size_t len)
{
	if (!(seq_of(a) & 1u) && memcmp(a, b, len) == 0) {
		memcpy(out, a, len);
		return 1;
	}
	unsigned char x[SLOT_COPY_MAX], y[SLOT_COPY_MAX];
	if (len > sizeof x)
		return 0;
	uint64_t off = t->offset + (uint64_t)i * t->entry_size;
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
 * A table visitor: slot i, its two chunk copies.  Returns 0, or -1 to stop
 * (out of memory, or a read error recorded in r).
 */
typedef int (*slot_fn)(struct lw_snapshot *s, struct rd *r, const struct lw_table *t, size_t i,
		       const unsigned char *a, const unsigned char *b);

/*
 * table_scan - visit slots [0, nslots) of t that lie (at least partly) in
 * data, reading each data extent in chunks of whole slots, twice.  Holes are
 * skipped without being read: a slot in a hole was never written.  The
 * extents are looked up now, not when the file was opened, so what a writer
 * put there in between is seen.  Returns 0, or -1 (error in r, or fn's).
 */
static int table_scan(struct lw_snapshot *s, struct rd *r, const struct lw_table *t, size_t nslots, slot_fn fn)
{
	if (nslots == 0)
		return 0;
	size_t es = t->entry_size;
	uint64_t start = t->offset, end = t->offset + (uint64_t)nslots * es;
	uint64_t pos = start, from, to;
	size_t per = r->cap / es;
	while (next_data(r, pos, end, &from, &to)) {
		size_t first = (size_t)((from - start) / es);
		size_t last = (size_t)((to - start + es - 1) / es);
		if (last > nslots)
			last = nslots;
		for (size_t i = first; i < last;) {
			size_t n = min_size(last - i, per);
			uint64_t off = start + (uint64_t)i * es;
			if (rd_pread(r, r->a, n * es, off) || rd_pread(r, r->b, n * es, off))
				return -1;
			for (size_t k = 0; k < n; k++)
				if (fn(s, r, t, i + k, r->a + k * es, r->b + k * es) < 0)
					return -1;
			i += n;
		}
		pos = start + (uint64_t)last * es;
	}
	return 0;
}

/* ---- validation ------------------------------------------------------------ */

/*
 * A table is usable when it lies entirely after the header and inside the
 * file, within the sane bounds, is aligned and its entries are at least as
 * large as what this reader copies.
 */
static int table_check(const struct lw_table *t, const char *name, size_t need,
		       uint64_t header_size, uint64_t file_size, char *err, size_t errlen)
{
	if (t->capacity == 0)
		return 0;
	if (t->capacity > TABLE_CAP_MAX)
		return fail(err, errlen, "%s table claims %u entries (at most %u are read)", name,
			    t->capacity, TABLE_CAP_MAX);
	if (t->entry_size < need)
		return fail(err, errlen, "%s table entries are %u bytes, need at least %zu",
			    name, t->entry_size, need);
	if (t->entry_size > ENTRY_SIZE_MAX)
		return fail(err, errlen, "%s table entries are %u bytes (at most %u are read)", name,
			    t->entry_size, ENTRY_SIZE_MAX);
	if (t->offset % 8 != 0 || t->entry_size % 8 != 0)
		return fail(err, errlen, "%s table is misaligned", name);
	if (t->offset < header_size || t->offset > file_size)
		return fail(err, errlen, "%s table offset %llu is outside the file", name,
			    (unsigned long long)t->offset);
	uint64_t bytes = (uint64_t)t->capacity * t->entry_size; /* no overflow: 32x32 bits */
	if (bytes > file_size - t->offset)
		return fail(err, errlen, "%s table (%llu bytes at %llu) runs past the end of the file",
			    name, (unsigned long long)bytes, (unsigned long long)t->offset);
	return 0;
}

/* Tables may not overlap: each byte of the file is read for one table at most. */
static int tables_disjoint(const struct lw_table *const *t, const char *const *names, size_t n,
			   char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = i + 1; k < n; k++) {
			if (!t[i]->capacity || !t[k]->capacity)
				continue;
			uint64_t ie = t[i]->offset + (uint64_t)t[i]->capacity * t[i]->entry_size;
			uint64_t ke = t[k]->offset + (uint64_t)t[k]->capacity * t[k]->entry_size;
			if (t[i]->offset < ke && t[k]->offset < ie)
				return fail(err, errlen, "%s and %s tables overlap", names[i], names[k]);
		}
	return 0;
}

/* ---- the tables, referrers first ---------------------------------------------- */

/*
 * Stack slots are write-once (0 -> 1 -> 2): only seq, hash, depth and the
 * frames are compared; the counters after them are monotonic totals that
 * change all the time, taken from the later copy.
 */
static int stack_add(struct lw_snapshot *s, size_t *cap, size_t i, const unsigned char *slot,
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
	o->id = (uint32_t)i + 1;
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

static int stack_visit(struct lw_snapshot *s, struct rd *r, const struct lw_table *t, size_t i,
		       const unsigned char *a, const unsigned char *b)
{
	if (seq_of(a) != 2)
		return 0; /* empty, or still being filled: nothing can refer to it yet */
	/* the whole write-once part, whatever the depth: frames past it stay zero */
	unsigned char copy[sizeof(struct lw_stack)];
	int rc = slot_stable(r, t, i, a, b, copy, offsetof(struct lw_stack, pad));
	if (rc < 0)
		return -1;
	if (rc == 0 || seq_of(copy) != 2) {
		s->busy++;
		return 0;
	}
	return stack_add(s, &r->stack_cap, i, copy, b, t->entry_size);
}

static int handle_visit(struct lw_snapshot *s, struct rd *r, const struct lw_table *t, size_t i,
			const unsigned char *a, const unsigned char *b)
{
	if (seq_of(a) == 0 && seq_of(b) == 0)
		return 0; /* never written */
	struct lw_handle h;
	memset(&h, 0, sizeof h);
	int rc = slot_stable(r, t, i, a, b, &h, min_size(t->entry_size, sizeof h));
	if (rc < 0)
		return -1;
	if (rc == 0) {
		s->busy++;
		return 0;
	}
	if (h.state != LW_H_OPEN && h.state != LW_H_CLOSED)
		return 0;
	if (s->nhandles == r->handle_cap) {
		size_t ncap = r->handle_cap ? r->handle_cap * 2 : 64;
		struct lw_snap_handle *nh = realloc(s->handles, ncap * sizeof *nh);
		if (!nh)
			return -1;
		s->handles = nh;
		r->handle_cap = ncap;
	}
	s->handles[s->nhandles].fd = (int)i;
	s->handles[s->nhandles].h = h;
	s->nhandles++;
	return 0;
}

/*
 * The heap table is an open-addressed hash keyed by ptr and can hold millions
 * of slots, most of them empty or tombstones: only slots whose ptr looks live
 * in either copy are checked.
 */
static int alloc_visit(struct lw_snapshot *s, struct rd *r, const struct lw_table *t, size_t i,
		       const unsigned char *a, const unsigned char *b)
{
	uint64_t pa, pb;
	memcpy(&pa, a + offsetof(struct lw_alloc, ptr), sizeof pa);
	memcpy(&pb, b + offsetof(struct lw_alloc, ptr), sizeof pb);
	if (pa <= LW_ALLOC_TOMBSTONE && pb <= LW_ALLOC_TOMBSTONE)
		return 0;
	struct lw_alloc al;
	memset(&al, 0, sizeof al);
	int rc = slot_stable(r, t, i, a, b, &al, min_size(t->entry_size, sizeof al));
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

static int badclose_visit(struct lw_snapshot *s, struct rd *r, const struct lw_table *t, size_t i,
			  const unsigned char *a, const unsigned char *b)
{
	if (seq_of(a) == 0 && seq_of(b) == 0)
		return 0;
	struct lw_badclose bc;
	memset(&bc, 0, sizeof bc);
	int rc = slot_stable(r, t, i, a, b, &bc, min_size(t->entry_size, sizeof bc));
	if (rc < 0)
		return -1;
	if (rc == 0) {
		s->busy++;
		return 0;
	}
	if (bc.seq == 0)
		return 0;
	r->ring[i] = bc;
	r->ring_ok[i] = 1;
	return 0;
}

static int module_visit(struct lw_snapshot *s, struct rd *r, const struct lw_table *t, size_t i,
			const unsigned char *a, const unsigned char *b)
{
	if (s->nmodules >= r->modules_max)
		return 0;
	struct lw_module *m = &s->modules[s->nmodules];
	memset(m, 0, sizeof *m);
	int rc = slot_stable(r, t, i, a, b, m, min_size(t->entry_size, sizeof *m));
	if (rc < 0)
		return -1;
	if (rc == 0) {
		s->busy++;
		return 0;
	}
	if (m->seq == 0) /* reserved by `used` but not written yet */
		return 0;
	m->path[LW_PATH_MAX - 1] = '\0';
	if (m->build_id_len > LW_BUILD_ID_MAX)
		m->build_id_len = 0;
	s->nmodules++;
	return 0;
}

/* used_now - a table's `used` cursor as it is now (the header is live too). */
static int used_now(struct rd *r, size_t table_off, uint32_t *used)
{
	return rd_pread(r, used, sizeof *used, table_off + offsetof(struct lw_table, used));
}

static int copy_badcloses(struct lw_snapshot *s, struct rd *r, const struct lw_table *t)
{
	if (t->capacity == 0)
		return 0;
	uint32_t used;
	if (used_now(r, offsetof(struct lw_header, badcloses), &used))
		return -1;
	/* `used` counts every append; the ring keeps the last `capacity` of them. */
	size_t n = used < t->capacity ? used : t->capacity;
	size_t start = used < t->capacity ? 0 : used % t->capacity;
	if (n == 0)
		return 0;
	r->ring = calloc(t->capacity, sizeof *r->ring);
	r->ring_ok = calloc(t->capacity, 1);
	s->badcloses = calloc(n, sizeof *s->badcloses);
	int rc = -1;
	if (r->ring && r->ring_ok && s->badcloses && table_scan(s, r, t, t->capacity, badclose_visit) == 0) {
		for (size_t k = 0; k < n; k++) {
			size_t i = (start + k) % t->capacity;
			if (r->ring_ok[i])
				s->badcloses[s->nbadcloses++] = r->ring[i];
		}
		rc = 0;
	}
	free(r->ring);
	free(r->ring_ok);
	r->ring = NULL;
	r->ring_ok = NULL;
	return rc;
}

static int copy_modules(struct lw_snapshot *s, struct rd *r, const struct lw_table *t)
{
	uint32_t used;
	if (t->capacity == 0)
		return 0;
	if (used_now(r, offsetof(struct lw_header, modules), &used))
		return -1;
	if (used > t->capacity)
		used = t->capacity;
	if (used == 0)
		return 0;
	s->modules = calloc(used, sizeof *s->modules);
	if (!s->modules)
		return -1;
	r->modules_max = used;
	return table_scan(s, r, t, used, module_visit);
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
};

/* want - remember a referenced stack id not in the snapshot; 0 or -1 (no memory). */
static int want(struct idlist *l, const struct lw_snapshot *s, uint32_t id)
{
	if (id == 0 || lw_snapshot_stack(s, id))
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

static int stacks_resolve(struct lw_snapshot *s, struct rd *r, const struct lw_table *t)
{
	struct idlist l = { 0 };
	int bad = 0;
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
	size_t len = min_size(t->entry_size, sizeof a);
	for (size_t k = 0; k < n; k++) {
		if (k && ids[k] == ids[k - 1]) {
			s->missing_stacks += !lw_snapshot_stack(s, ids[k]);
			continue;
		}
		if (ids[k] <= t->capacity) {
			uint64_t off = t->offset + (uint64_t)(ids[k] - 1) * t->entry_size;
			if (rd_pread(r, a, len, off) || rd_pread(r, b, len, off)) {
				free(ids);
				return -1;
			}
			if (stack_visit(s, r, t, ids[k] - 1, a, b) < 0) {
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

/* ---- the snapshot ----------------------------------------------------------- */

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
	const struct lw_table *t[5] = { &h->stacks, &h->modules, &h->handles, &h->badcloses, &h->heap };
	static const char *const names[5] = { "stack", "module", "handle", "bad-close", "heap" };
	static const size_t need[5] = { sizeof(struct lw_stack), sizeof(struct lw_module),
					sizeof(struct lw_handle), sizeof(struct lw_badclose),
					sizeof(struct lw_alloc) };
	for (size_t i = 0; i < 5; i++)
		if (table_check(t[i], names[i], need[i], h->header_size, file_size, err, errlen))
			return -1;
	if (tables_disjoint(t, names, 5, err, errlen))
		return -1;
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
	if (lw_proc_start_ticks(s->hdr.pid, &ticks) == 0 && ticks == s->hdr.proc_start_ticks &&
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
	if (rd_pread(r, h, sizeof *h, 0))
		return -1;
	if (header_check(h, r->size, err, errlen))
		return -2;
	h->exe[LW_PATH_MAX - 1] = '\0';
	h->cmdline[LW_CMDLINE_MAX - 1] = '\0';
	if (trust_check(s, path, file_uid, flags, err, errlen))
		return -2;
	s->state = atomic_load_explicit(&h->state, memory_order_relaxed);
	for (size_t i = 0; i < LW_CTR_MAX; i++)
		s->counters[i] = atomic_load_explicit(&h->counters[i], memory_order_relaxed);

	size_t need = CHUNK_BYTES;
	const struct lw_table *t[5] = { &h->stacks, &h->modules, &h->handles, &h->badcloses, &h->heap };
	for (size_t i = 0; i < 5; i++)
		if (t[i]->capacity && t[i]->entry_size > need)
			need = t[i]->entry_size;
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
	 * copied after it — each table's extents are taken when its turn comes.
	 */
	if (table_scan(s, r, &h->handles, h->handles.capacity, handle_visit) ||
	    copy_badcloses(s, r, &h->badcloses) ||
	    (h->heap_mode != LW_HEAP_OFF && table_scan(s, r, &h->heap, h->heap.capacity, alloc_visit)) ||
	    table_scan(s, r, &h->stacks, h->stacks.capacity, stack_visit))
		return r->shrunk || r->io_errno ? -1 : -3;
	if (s->nstacks)
		qsort(s->stacks, s->nstacks, sizeof *s->stacks, stack_cmp);
	if (stacks_resolve(s, r, &h->stacks) || copy_modules(s, r, &h->modules))
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
	if ((uint64_t)st.st_size > SEG_SIZE_MAX) {
		uint64_t magic = 0;
		ssize_t got = pread(fd, &magic, sizeof magic, 0);
		close(fd);
		if (got == (ssize_t)sizeof magic && magic != LW_MAGIC)
			return fail(err, errlen, "not a leakwatch segment");
		return fail(err, errlen, "claims %llu GiB (more than the %llu GiB a segment can be; refused)",
			    (unsigned long long)((uint64_t)st.st_size >> 30),
			    (unsigned long long)(SEG_SIZE_MAX >> 30));
	}
	s->mtime = st.st_mtim;
	s->file_uid = st.st_uid;
	s->file_dev = (uint64_t)st.st_dev;
	s->file_ino = (uint64_t)st.st_ino;

	struct rd r = { .fd = fd, .size = (uint64_t)st.st_size, .retries_left = SNAP_RETRIES };
	int rc = snapshot_read(s, &r, path, st.st_uid, flags, err, errlen);
	free(r.a);
	free(r.b);
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
		if (s->handles[i].h.state == LW_H_OPEN)
			n++;
	return n;
}
