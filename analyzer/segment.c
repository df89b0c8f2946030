/* SPDX-License-Identifier: MIT */
/*
 * segment.c — open, validate and snapshot one segment file.
 *
 * The file is written concurrently by a process we must never disturb, so the
 * mapping is read-only and every mutable slot is copied with lw_seq_read().
 * Everything the rest of the analyzer sees is a private copy: the mapping is
 * gone before lw_snapshot_open() returns, so a segment that is truncated or
 * unlinked later cannot fault the report.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analyzer.h"

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

/*
 * A table is usable when it lies entirely after the header and inside the
 * file, is aligned (the seq words are read atomically) and its entries are at
 * least as large as what this reader copies.
 */
static int table_check(const struct lw_table *t, const char *name, size_t need,
		       uint64_t header_size, uint64_t file_size, char *err, size_t errlen)
{
	if (t->capacity == 0)
		return 0;
	if (t->entry_size < need)
		return fail(err, errlen, "%s table entries are %u bytes, need at least %zu",
			    name, t->entry_size, need);
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

static const unsigned char *slot_at(const unsigned char *base, const struct lw_table *t, size_t i)
{
	return base + t->offset + (uint64_t)i * t->entry_size;
}

/*
 * Holes.  A segment is a sparse tmpfs file, and a read fault on a shared
 * mapping of a tmpfs hole *allocates* a zero page: scanning every slot would
 * make a 64 MiB segment resident and could fill /dev/shm (after which the
 * traced program dies of SIGBUS when it touches a new page).  So the data
 * extents are taken with SEEK_DATA/SEEK_HOLE before mapping, and slots that
 * lie in a hole — never written, hence empty — are skipped without being
 * touched.  A page the writer fills after that look is simply not in this
 * snapshot.
 */
static unsigned char *g_present;   /* one byte per page: 1 = data */
static size_t g_npages;
static size_t g_page;

static void extents_load(int fd, uint64_t size)
{
	g_page = (size_t)sysconf(_SC_PAGESIZE);
	g_npages = (size_t)((size + g_page - 1) / g_page);
	free(g_present);
	g_present = calloc(g_npages ? g_npages : 1, 1);
	if (!g_present)
		return;
	off_t off = 0;
	for (;;) {
		off_t data = lseek(fd, off, SEEK_DATA);
		if (data < 0)
			break; /* ENXIO: no data after off */
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			hole = (off_t)size;
		for (size_t p = (size_t)data / g_page; p < g_npages && (off_t)(p * g_page) < hole; p++)
			g_present[p] = 1;
		if ((uint64_t)hole >= size)
			break;
		off = hole;
	}
	if (off == 0 && lseek(fd, 0, SEEK_DATA) < 0 && errno != ENXIO) /* no SEEK_DATA here */
		memset(g_present, 1, g_npages);
}

static void extents_free(void)
{
	free(g_present);
	g_present = NULL;
	g_npages = 0;
}

/* slot_present - every page of [slot, slot + len) holds data (or we cannot tell). */
static int slot_present(const unsigned char *base, const unsigned char *slot, size_t len)
{
	if (!g_present)
		return 1;
	size_t first = (size_t)(slot - base) / g_page, last = (size_t)(slot - base + len - 1) / g_page;
	for (size_t p = first; p <= last && p < g_npages; p++)
		if (!g_present[p])
			return 0;
	return 1;
}

static uint32_t slot_seq(const unsigned char *slot)
{
	return atomic_load_explicit((const _Atomic uint32_t *)(const void *)slot,
				    memory_order_acquire);
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/*
 * Stack slots are write-once (0 -> 1 -> 2): a slot seen at 2 is final.  One
 * pass with a growing array: a count-then-copy pass would stop early when
 * stacks appear in between and lose ones it had counted.
 */
static int copy_stacks(struct lw_snapshot *s, const unsigned char *base, const struct lw_table *t)
{
	size_t cap = 0;
	struct lw_stack tmp;
	for (size_t i = 0; i < t->capacity; i++) {
		const unsigned char *slot = slot_at(base, t, i);
		/*
		 * A 640-byte stack slot may straddle pages, and the writer touches
		 * only what it fills: seq, hash and depth frames, plus the counters
		 * if anything counted into them.  Check each part's pages apart.
		 */
		if (!slot_present(base, slot, offsetof(struct lw_stack, frames)) || slot_seq(slot) != 2)
			continue;
		uint16_t depth = ((const struct lw_stack *)(const void *)slot)->depth;
		if (depth > LW_STACK_MAX_FRAMES)
			depth = LW_STACK_MAX_FRAMES;
		size_t used = offsetof(struct lw_stack, frames) + depth * sizeof(uint64_t);
		if (!slot_present(base, slot, used))
			continue;
		int counted = t->entry_size >= sizeof(struct lw_stack) &&
			      slot_present(base, slot + offsetof(struct lw_stack, sock_opened),
					   sizeof(struct lw_stack) - offsetof(struct lw_stack, sock_opened));
		if (s->nstacks == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct lw_snap_stack *ns = realloc(s->stacks, ncap * sizeof *ns);
			if (!ns)
				return -1;
			s->stacks = ns;
			cap = ncap;
		}
		memset(&tmp, 0, sizeof tmp);
		memcpy(&tmp, slot, used);
		struct lw_snap_stack *o = &s->stacks[s->nstacks++];
		memset(o, 0, sizeof *o);
		o->id = (uint32_t)i + 1;
		o->depth = depth;
		memcpy(o->frames, tmp.frames, o->depth * sizeof o->frames[0]);
		if (!counted)
			continue; /* the counters' page is a hole: all zero */
		const struct lw_stack *live = (const struct lw_stack *)(const void *)slot;
		o->sock_opened = atomic_load_explicit(&live->sock_opened, memory_order_relaxed);
		o->sock_closed = atomic_load_explicit(&live->sock_closed, memory_order_relaxed);
		o->uses = atomic_load_explicit(&live->uses, memory_order_relaxed);
		o->heap_allocs = atomic_load_explicit(&live->heap_allocs, memory_order_relaxed);
		o->heap_frees = atomic_load_explicit(&live->heap_frees, memory_order_relaxed);
		o->heap_bytes = atomic_load_explicit(&live->heap_bytes, memory_order_relaxed);
	}
	return 0;
}

static int copy_modules(struct lw_snapshot *s, const unsigned char *base, const struct lw_table *t)
{
	uint32_t used = atomic_load_explicit(&t->used, memory_order_acquire);
	if (used > t->capacity)
		used = t->capacity;
	if (used == 0)
		return 0;
	s->modules = calloc(used, sizeof *s->modules);
	if (!s->modules)
		return -1;
	for (size_t i = 0; i < used; i++) {
		struct lw_module *m = &s->modules[s->nmodules];
		memset(m, 0, sizeof *m);
		if (!lw_seq_read(slot_at(base, t, i), m, min_size(t->entry_size, sizeof *m))) {
			s->busy++;
			continue;
		}
		if (m->seq == 0)    /* reserved by `used` but not written yet */
			continue;
		m->path[LW_PATH_MAX - 1] = '\0';
		if (m->build_id_len > LW_BUILD_ID_MAX)
			m->build_id_len = 0;
		s->nmodules++;
	}
	return 0;
}

static int copy_handles(struct lw_snapshot *s, const unsigned char *base, const struct lw_table *t)
{
	size_t cap = 0;
	struct lw_handle h;
	for (size_t i = 0; i < t->capacity; i++) {
		const unsigned char *slot = slot_at(base, t, i);
		/* seq 0: never written; skipping it keeps untouched pages cheap. */
		if (!slot_present(base, slot, t->entry_size) || slot_seq(slot) == 0)
			continue;
		memset(&h, 0, sizeof h);
		if (!lw_seq_read(slot, &h, min_size(t->entry_size, sizeof h))) {
			s->busy++;
			continue;
		}
		if (h.state != LW_H_OPEN && h.state != LW_H_CLOSED)
			continue;
		if (s->nhandles == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct lw_snap_handle *nh = realloc(s->handles, ncap * sizeof *nh);
			if (!nh)
				return -1;
			s->handles = nh;
			cap = ncap;
		}
		s->handles[s->nhandles].fd = (int)i;
		s->handles[s->nhandles].h = h;
		s->nhandles++;
	}
	return 0;
}

static int copy_badcloses(struct lw_snapshot *s, const unsigned char *base, const struct lw_table *t)
{
	if (t->capacity == 0)
		return 0;
	/* `used` counts every append; the ring keeps the last `capacity` of them. */
	uint32_t used = atomic_load_explicit(&t->used, memory_order_acquire);
	size_t n = used < t->capacity ? used : t->capacity;
	size_t start = used < t->capacity ? 0 : used % t->capacity;
	if (n == 0)
		return 0;
	s->badcloses = calloc(n, sizeof *s->badcloses);
	if (!s->badcloses)
		return -1;
	for (size_t k = 0; k < n; k++) {
		size_t i = (start + k) % t->capacity;
		struct lw_badclose *b = &s->badcloses[s->nbadcloses];
		memset(b, 0, sizeof *b);
		if (!lw_seq_read(slot_at(base, t, i), b, min_size(t->entry_size, sizeof *b))) {
			s->busy++;
			continue;
		}
		if (b->seq == 0 || (b->seq & 1u))
			continue;
		s->nbadcloses++;
	}
	return 0;
}

/*
 * The heap table is an open-addressed hash keyed by ptr and can hold millions
 * of slots, most of them empty or tombstones: one pass, and only slots whose
 * ptr looks live get the seqlock copy.  The cheap peek may race with a writer;
 * it only decides whether to look closer, and the copy decides what counts.
 * A slot that stays odd (a writer inside) is counted as busy, never waited for.
 */
static int copy_allocs(struct lw_snapshot *s, const unsigned char *base, const struct lw_table *t)
{
	size_t cap = 0;
	struct lw_alloc a;
	for (size_t i = 0; i < t->capacity; i++) {
		const unsigned char *slot = slot_at(base, t, i);
		if (!slot_present(base, slot, t->entry_size))
			continue;
		uint64_t ptr = __atomic_load_n((const uint64_t *)(const void *)(slot + offsetof(struct lw_alloc, ptr)),
					       __ATOMIC_RELAXED);
		if (ptr <= LW_ALLOC_TOMBSTONE)
			continue;
		memset(&a, 0, sizeof a);
		if (!lw_seq_read(slot, &a, min_size(t->entry_size, sizeof a))) {
			s->busy++;
			continue;
		}
		/* seq 0 was never written by the protocol; the ptr may have changed under the peek. */
		if (a.seq == 0 || a.ptr <= LW_ALLOC_TOMBSTONE)
			continue;
		if (s->nallocs == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct lw_snap_alloc *na = realloc(s->allocs, ncap * sizeof *na);
			if (!na)
				return -1;
			s->allocs = na;
			cap = ncap;
		}
		struct lw_snap_alloc *o = &s->allocs[s->nallocs++];
		o->ptr = a.ptr;
		o->size = a.size;
		o->ns = a.ns;
		o->stack_id = a.stack_id;
		o->reserved = 0;
	}
	return 0;
}

static int handle_cmp(const void *a, const void *b)
{
	const struct lw_snap_handle *x = a, *y = b;
	return (x->fd > y->fd) - (x->fd < y->fd);
}

/* Everything after the mapping exists: check the header, then copy. */
static int snapshot_copy(struct lw_snapshot *s, const unsigned char *base, uint64_t file_size,
			 char *err, size_t errlen)
{
	const struct lw_header *h = (const struct lw_header *)(const void *)base;

	/* an all-hole first page has no magic; do not allocate it to find out */
	if (!slot_present(base, base, sizeof h->magic) || h->magic != LW_MAGIC)
		return fail(err, errlen, "not a leakwatch segment");
	if (h->compat_version > LW_VERSION)
		return fail(err, errlen, "newer layout (version %u, this leakwatch reads up to %u)",
			    h->version, LW_VERSION);
	if (h->header_size < sizeof(struct lw_header) || h->header_size > file_size)
		return fail(err, errlen, "bad header size %u", h->header_size);
	if (h->total_size != file_size)
		return fail(err, errlen, "truncated: header says %llu bytes, file has %llu",
			    (unsigned long long)h->total_size, (unsigned long long)file_size);

	/* Descriptors are written once before the header becomes visible; copy them first
	 * so the checks and the reads below use the same values. */
	struct lw_table stacks, modules, handles, badcloses, heap;
	memcpy(&stacks, &h->stacks, sizeof stacks);
	memcpy(&modules, &h->modules, sizeof modules);
	memcpy(&handles, &h->handles, sizeof handles);
	memcpy(&badcloses, &h->badcloses, sizeof badcloses);
	memcpy(&heap, &h->heap, sizeof heap);
	if (table_check(&stacks, "stack", sizeof(struct lw_stack), h->header_size, file_size, err, errlen) ||
	    table_check(&modules, "module", sizeof(struct lw_module), h->header_size, file_size, err, errlen) ||
	    table_check(&handles, "handle", sizeof(struct lw_handle), h->header_size, file_size, err, errlen) ||
	    table_check(&badcloses, "bad-close", sizeof(struct lw_badclose), h->header_size, file_size,
			err, errlen) ||
	    table_check(&heap, "heap", sizeof(struct lw_alloc), h->header_size, file_size, err, errlen))
		return -1;
	/* A mode this reader does not know would be misread as full tracking. */
	if (h->heap_mode > LW_HEAP_FULL)
		return fail(err, errlen, "unknown heap mode %u", h->heap_mode);

	/* the header's reserved tail is usually a hole: copy page by page */
	for (size_t off = 0; off < sizeof s->hdr; off += g_page ? g_page : sizeof s->hdr) {
		size_t n = sizeof s->hdr - off;
		if (g_page && n > g_page)
			n = g_page;
		if (slot_present(base, base + off, n))
			memcpy((unsigned char *)&s->hdr + off, base + off, n);
		else
			memset((unsigned char *)&s->hdr + off, 0, n);
	}
	s->hdr.exe[LW_PATH_MAX - 1] = '\0';
	s->hdr.cmdline[LW_CMDLINE_MAX - 1] = '\0';
	s->state = atomic_load_explicit(&h->state, memory_order_acquire);
	for (size_t i = 0; i < LW_CTR_MAX; i++)
		s->counters[i] = atomic_load_explicit(&h->counters[i], memory_order_relaxed);

	/*
	 * Referrers before referents: entries that name a stack, then stacks, then
	 * the modules their addresses lie in.  The shim publishes a stack before
	 * any entry that refers to it and a module before its code runs, and
	 * removes neither, so every id and address copied is found in the tables
	 * copied after it.  The other order races with a writer creating a stack
	 * and its entry between the two passes.
	 */
	if (copy_handles(s, base, &handles) || copy_badcloses(s, base, &badcloses) ||
	    (h->heap_mode != LW_HEAP_OFF && copy_allocs(s, base, &heap)) ||
	    copy_stacks(s, base, &stacks) || copy_modules(s, base, &modules))
		return fail(err, errlen, "out of memory");
	if (s->nhandles)
		qsort(s->handles, s->nhandles, sizeof *s->handles, handle_cmp);
	return 0;
}

int lw_snapshot_open(struct lw_snapshot *s, const char *path, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	snprintf(s->path, sizeof s->path, "%s", path);

	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
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
	s->mtime = st.st_mtim;
	s->file_uid = st.st_uid;

	size_t size = (size_t)st.st_size;
	extents_load(fd, (uint64_t)st.st_size);
	void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	int e = errno;
	close(fd);
	if (map == MAP_FAILED) {
		extents_free();
		return fail(err, errlen, "mmap: %s", strerror(e));
	}

	int rc = snapshot_copy(s, map, (uint64_t)st.st_size, err, errlen);
	munmap(map, size);
	extents_free();
	if (rc < 0) {
		lw_snapshot_free(s);
		snprintf(s->path, sizeof s->path, "%s", path);
	}
	return rc;
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
