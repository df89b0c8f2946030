/*
 * Benchmark workload: malloc-heavy, as a busy service is.
 * THREADS threads each run ITERS steps; a step descends a call chain 8-12
 * frames deep and, at the leaf, replaces a random block in a ring of RING
 * live blocks with a new one of a mixed size (16 B .. 4 KiB, small ones
 * most often), writing its first bytes.  Prints the elapsed seconds.
 * Usage: heap_workload [THREADS=2] [ITERS=2000000] [RING=4096] [keep]
 *   keep: fill the ring first, and leave it allocated at exit (to measure
 *   the segment cost of THREADS x RING live tracked blocks)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long iters;
static int ring_size, keep;

struct ctx {
	void **ring;
	uint64_t x;
};

static inline uint64_t rnd(struct ctx *c)
{
	c->x ^= c->x << 13;
	c->x ^= c->x >> 7;
	c->x ^= c->x << 17;
	return c->x;
}

static size_t mixed_size(uint64_t r)
{
	switch (r % 8) {
	case 0: case 1: case 2: return 16 + r % 48;      /* small objects */
	case 3: case 4: return 64 + r % 192;
	case 5: return 256 + r % 768;
	case 6: return 1024 + r % 1024;
	default: return 2048 + r % 2048;
	}
}

static void __attribute__((noinline)) leaf(struct ctx *c)
{
	uint64_t r = rnd(c);
	size_t k = r % (uint64_t)ring_size;
	free(c->ring[k]);
	size_t n = mixed_size(r >> 16);
	char *p = malloc(n);
	memset(p, (int)r, n < 64 ? n : 64);
	c->ring[k] = p;
}

/* A chain of distinct frames so stacks differ by depth and by caller. */
static void __attribute__((noinline)) f12(struct ctx *c) { leaf(c); __asm__ volatile(""); }
static void __attribute__((noinline)) f11(struct ctx *c) { f12(c); __asm__ volatile(""); }
static void __attribute__((noinline)) f10(struct ctx *c) { f11(c); __asm__ volatile(""); }
static void __attribute__((noinline)) f9(struct ctx *c) { f10(c); __asm__ volatile(""); }
static void __attribute__((noinline)) f8(struct ctx *c) { f9(c); __asm__ volatile(""); }
static void __attribute__((noinline)) f7(struct ctx *c) { f8(c); __asm__ volatile(""); }
static void __attribute__((noinline)) f6(struct ctx *c) { f7(c); __asm__ volatile(""); }
static void __attribute__((noinline)) f5(struct ctx *c) { f6(c); __asm__ volatile(""); }
static void __attribute__((noinline)) f4(struct ctx *c) { f5(c); __asm__ volatile(""); }
static void __attribute__((noinline)) f3(struct ctx *c) { f4(c); __asm__ volatile(""); }
static void __attribute__((noinline)) f2(struct ctx *c) { f3(c); __asm__ volatile(""); }

static void (*const entry[5])(struct ctx *) = { f5, f4, f3, f2, f2 };

static void *worker(void *arg)
{
	struct ctx c = { calloc((size_t)ring_size, sizeof(void *)), (uintptr_t)arg * 0x9e3779b97f4a7c15ull };
	for (int k = 0; keep && k < ring_size; k++)
		c.ring[k] = malloc(mixed_size(rnd(&c) >> 16));
	for (long i = 0; i < iters; i++) {
		/* depth 8..12 below the worker: entry point varies with i */
		entry[i % 5](&c);
	}
	if (!keep) {
		for (int k = 0; k < ring_size; k++)
			free(c.ring[k]);
		free(c.ring);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 2;
	iters = argc > 2 ? atol(argv[2]) : 2000000;
	ring_size = argc > 3 ? atoi(argv[3]) : 4096;
	keep = argc > 4 && !strcmp(argv[4], "keep");
	pthread_t t[64];
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < threads && i < 64; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < threads && i < 64; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.4f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
	return 0;
}
