/* SPDX-License-Identifier: MIT */
/*
 * fab_heap_segment — write a layout 2 segment holding N live heap blocks
 * (full mode), for timing `leakwatch report` on a big heap without a shim
 * whose heap table can hold them.  Usage:
 *
 *     fab_heap_segment PATH NBLOCKS NSTACKS
 *
 * The segment looks like what the shim leaves: a 1 TiB sparse span, the
 * chunked tables after the header, a heap table of the next power of two
 * above 2 x NBLOCKS slots filled the way the shim's index fills it (nearby
 * addresses in nearby slots, linear probing), NSTACKS allocation stacks of
 * 12 frames each in this program's own code (so symbolization has real
 * DWARF to read), and this program as the main module.  The header names a
 * child process that has exited.  Prints the path.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../include/leakwatch/segment.h"

#define FRAMES 12u

static uint64_t text_lo, text_hi, load_bias;
static char self[LW_PATH_MAX];

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	load_bias = info->dlpi_addr; /* the first object is the main program */
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		if (p->p_type == PT_LOAD && (p->p_flags & PF_X)) {
			text_lo = info->dlpi_addr + p->p_vaddr;
			text_hi = text_lo + p->p_memsz;
		}
	}
	return 1;
}

static int die(const char *what)
{
	perror(what);
	exit(1);
}

static void pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n <= 0)
			die("pwrite");
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s PATH NBLOCKS NSTACKS\n", argv[0]);
		return 2;
	}
	const char *path = argv[1];
	uint64_t nblocks = strtoull(argv[2], NULL, 10), nstacks = strtoull(argv[3], NULL, 10);
	if (nstacks == 0 || nstacks > (1u << 20) || nblocks > (1u << 26))
		return 2;
	dl_iterate_phdr(find_self, NULL);
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	self[sl > 0 ? sl : 0] = '\0';

	pid_t child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0);

	struct lw_header *h = calloc(1, sizeof *h);
	struct timespec rt, mt;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mt);
	h->magic = LW_MAGIC;
	h->version = LW_VERSION;
	h->compat_version = LW_COMPAT_VERSION;
	h->header_size = LW_HEADER_SIZE;
	h->total_size = 1ull << 40;
	h->pid = child;
	h->ppid = getpid();
	h->uid = getuid();
	h->state = LW_STATE_EXITED;
	h->exit_known = 1;
	h->start_realtime_ns = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec - 60000000000ull;
	h->start_monotonic_ns = (uint64_t)mt.tv_sec * 1000000000ull + (uint64_t)mt.tv_nsec - 60000000000ull;
	h->end_realtime_ns = h->start_realtime_ns + 60000000000ull;
	h->end_monotonic_ns = h->start_monotonic_ns + 60000000000ull;
	snprintf(h->exe, sizeof h->exe, "%s", self);
	snprintf(h->cmdline, sizeof h->cmdline, "%s %s %s", self, argv[2], argv[3]);
	h->stack_depth = 32;
	h->heap_mode = LW_HEAP_FULL;
	h->counters[LW_CTR_HEAP_ALLOCS] = nblocks;

	/* chunked tables: stacks hold nstacks, the others one chunk */
	const uint32_t es[LW_T_NUM] = { sizeof(struct lw_stack), sizeof(struct lw_module), sizeof(struct lw_handle),
					sizeof(struct lw_badclose) };
	struct lw_table *tabs[LW_T_NUM] = { &h->stacks, &h->modules, &h->handles, &h->badcloses };
	uint64_t off = LW_HEADER_SIZE;
	for (unsigned t = 0; t < LW_T_NUM; t++) {
		struct lw_chunks *c = &h->chunks[t];
		c->shift = 6;
		uint64_t want = t == LW_T_STACKS ? nstacks : 1;
		while (lw_chunk_first(c->shift, c->count) < want)
			c->count++;
		for (unsigned k = 0; k < c->count; k++) {
			c->off[k] = off;
			off += lw_chunk_bytes(c->shift, k, es[t]);
		}
		tabs[t]->entry_size = es[t];
		tabs[t]->capacity = (uint32_t)lw_chunk_first(c->shift, c->count);
	}
	uint64_t cap = 16;
	while (cap < 2 * nblocks)
		cap <<= 1;
	h->heap.entry_size = sizeof(struct lw_alloc);
	h->heap.capacity = (uint32_t)cap;
	h->heapdir.seq = 2;
	h->heapdir.gen = 1;
	h->heapdir.cur_off = off;
	h->heapdir.cur_cap = cap;
	off += (cap * sizeof(struct lw_alloc) + 4095) & ~4095ull;
	h->reserved_bytes = off;
	h->modules.used = 1;
	h->counters[LW_CTR_HEAP_GROWS] = 0;

	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die(path);
	if (ftruncate(fd, (off_t)h->total_size) != 0)
		die("ftruncate");

	/* the main program as the one module */
	struct lw_module m;
	memset(&m, 0, sizeof m);
	m.seq = 2;
	m.flags = LW_MODULE_MAIN;
	m.base = load_bias;
	m.start = text_lo;
	m.end = text_hi;
	snprintf(m.path, sizeof m.path, "%s", self);
	pwrite_all(fd, &m, sizeof m, h->chunks[LW_T_MODULES].off[0]);

	/* stacks: FRAMES addresses spread over our own text */
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	struct lw_stack st;
	for (uint64_t i = 0; i < nstacks; i++) {
		memset(&st, 0, sizeof st);
		st.seq = 2;
		st.depth = FRAMES;
		for (unsigned k = 0; k < FRAMES; k++) {
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			st.frames[k] = text_lo + 1 + rng % (text_hi - text_lo - 1);
		}
		st.hash = rng;
		st.heap_allocs = nblocks / nstacks + 1;
		st.heap_bytes = st.heap_allocs * 64;
		uint64_t within;
		unsigned k = lw_chunk_of(6, i, &within);
		pwrite_all(fd, &st, sizeof st, h->chunks[LW_T_STACKS].off[k] + within * sizeof st);
	}

	/* the heap table, filled as the shim's index fills it */
	struct lw_alloc *tab = calloc(cap, sizeof *tab);
	if (!tab)
		die("calloc");
	uint64_t mask = cap - 1;
	for (uint64_t i = 0; i < nblocks; i++) {
		uint64_t p = 0x7f0000000000ull + i * 48;
		uint64_t idx = ((p >> 4) + ((p >> 20) * 0x9e3779b97f4a7c15ull >> 32)) & mask;
		while (tab[idx].ptr)
			idx = (idx + 1) & mask;
		tab[idx].seq = 2;
		tab[idx].ptr = p;
		tab[idx].size = 16 + i % 240;
		tab[idx].ns = h->start_monotonic_ns + i * 50;
		tab[idx].stack_id = (uint32_t)(i % nstacks) + 1;
	}
	pwrite_all(fd, tab, cap * sizeof *tab, h->heapdir.cur_off);
	pwrite_all(fd, h, sizeof *h, 0);
	close(fd);
	printf("%s\n", path);
	return 0;
}
