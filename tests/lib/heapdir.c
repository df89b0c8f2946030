/* SPDX-License-Identifier: MIT */
/* heapdir.c — a v2 segment's heap blocks over pread (see heapdir.h). */
#include "heapdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_SLOTS 8192u               /* slots per pread */
#define SLOT_TRIES  500u                /* re-reads of one slot that was busy (up to ~0.5 s) */

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* a consistent copy: even seq in both copies, every byte equal */
static int stable(const void *a, const void *b, size_t len)
{
	uint32_t s;
	memcpy(&s, a, sizeof s);
	return !(s & 1u) && memcmp(a, b, len) == 0;
}

static int read_dir(int fd, struct lw_heapdir *d)
{
	uint64_t off = offsetof(struct lw_header, heapdir);
	for (unsigned i = 0; i < 100000; i++) {
		struct lw_heapdir a, b;
		if (pread_all(fd, &a, sizeof a, off) || pread_all(fd, &b, sizeof b, off))
			return -1;
		if (stable(&a, &b, sizeof a)) {
			*d = a;
			return 0;
		}
	}
	errno = EBUSY;
	return -1;
}

struct acc {
	struct hd_block *v;
	size_t n, cap;
};

static int acc_push(struct acc *a, const struct lw_alloc *r, uint32_t in_old)
{
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 4096;
		struct hd_block *nv = realloc(a->v, nc * sizeof *nv);
		if (!nv)
			return -1;
		a->v = nv;
		a->cap = nc;
	}
	a->v[a->n++] = (struct hd_block){ r->ptr, r->size, r->ns, r->stack_id, in_old };
	return 0;
}

/* read_table - every live record of the table at off (cap slots) into a */
static int read_table(int fd, uint64_t off, uint64_t cap, uint32_t in_old, struct acc *acc, size_t *busy,
		      size_t *tombs)
{
	size_t es = sizeof(struct lw_alloc);
	struct lw_alloc *x = malloc(CHUNK_SLOTS * es), *y = malloc(CHUNK_SLOTS * es);
	int rc = -1;
	if (!x || !y)
		goto out;
	for (uint64_t i = 0; i < cap; i += CHUNK_SLOTS) {
		size_t n = cap - i < CHUNK_SLOTS ? (size_t)(cap - i) : CHUNK_SLOTS;
		uint64_t at = off + i * es;
		if (pread_all(fd, x, n * es, at) || pread_all(fd, y, n * es, at))
			goto out;
		for (size_t k = 0; k < n; k++) {
			struct lw_alloc r = x[k];
			if (!stable(&x[k], &y[k], es)) {
				unsigned t;
				for (t = 0; t < SLOT_TRIES; t++) {
					struct lw_alloc p, q;
					if (pread_all(fd, &p, es, at + k * es) || pread_all(fd, &q, es, at + k * es))
						goto out;
					if (stable(&p, &q, es)) {
						r = p;
						break;
					}
					/* its writer may be preempted: give it the CPU */
					if (t >= 16)
						usleep(1000);
				}
				if (t == SLOT_TRIES) {
					(*busy)++;
					continue;
				}
			}
			*tombs += r.ptr == LW_ALLOC_TOMBSTONE;
			if (r.ptr > LW_ALLOC_TOMBSTONE && acc_push(acc, &r, in_old))
				goto out;
		}
	}
	rc = 0;
out:
	free(x);
	free(y);
	return rc;
}

static int by_ptr(const void *a, const void *b)
{
	const struct hd_block *x = a, *y = b;
	if (x->ptr != y->ptr)
		return x->ptr < y->ptr ? -1 : 1;
	/* cur's record (in_old 0) first */
	return (int)x->in_old - (int)y->in_old;
}

int heapdir_read(const char *path, struct hd_snap *s)
{
	memset(s, 0, sizeof *s);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = -1;
	struct acc acc = { 0 };
	for (unsigned attempt = 0; attempt < 1000; attempt++) {
		struct lw_heapdir d, d2;
		if (pread_all(fd, &s->hdr, sizeof s->hdr, 0))
			goto out;
		if (s->hdr.magic != LW_MAGIC || s->hdr.version < 2) {
			errno = EPROTO;
			goto out;
		}
		if (read_dir(fd, &d))
			goto out;
		acc.n = 0;
		s->busy = 0;
		size_t old_tombs = 0;
		s->cur_tombs = 0;
		if (d.old_cap && read_table(fd, d.old_off, d.old_cap, 1, &acc, &s->busy, &old_tombs))
			goto out;
		if (d.cur_cap && read_table(fd, d.cur_off, d.cur_cap, 0, &acc, &s->busy, &s->cur_tombs))
			goto out;
		if (read_dir(fd, &d2))
			goto out;
		if (d2.gen != d.gen) {
			s->retries++;
			continue;
		}
		s->dir = d;
		if (acc.n)
			qsort(acc.v, acc.n, sizeof *acc.v, by_ptr);
		size_t w = 0;
		for (size_t i = 0; i < acc.n; i++) {
			if (w && acc.v[w - 1].ptr == acc.v[i].ptr) {
				if (acc.v[w - 1].in_old != acc.v[i].in_old)
					s->in_both++;
				else
					s->twice++;
				continue;
			}
			acc.v[w++] = acc.v[i];
		}
		s->blocks = acc.v;
		s->n = w;
		acc.v = NULL;
		struct stat st;
		if (fstat(fd, &st) == 0)
			s->st_blocks_bytes = (uint64_t)st.st_blocks * 512;
		rc = 0;
		goto out;
	}
	errno = EAGAIN;
out:
	free(acc.v);
	close(fd);
	return rc;
}

const struct hd_block *heapdir_find(const struct hd_snap *s, uint64_t ptr)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->blocks[mid].ptr < ptr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->n && s->blocks[lo].ptr == ptr ? &s->blocks[lo] : NULL;
}

void heapdir_free(struct hd_snap *s)
{
	free(s->blocks);
	s->blocks = NULL;
	s->n = 0;
}
