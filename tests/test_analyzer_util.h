/* SPDX-License-Identifier: MIT */
/*
 * test_analyzer_util.h — fabricate segments for the analyzer tests, so the
 * reader can be tested without the shim: a header plus tables at 64-byte
 * aligned offsets, exactly as include/leakwatch/segment.h lays them out.
 */
#ifndef LEAKWATCH_TEST_ANALYZER_UTIL_H
#define LEAKWATCH_TEST_ANALYZER_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "classify.h"
#include "cli.h"
#include "heapgroups.h"
#include "kernel.h"
#include "names.h"
#include "render.h"
#include "report.h"
#include "segdir.h"
#include "snapshot.h"
#include "symbolize.h"
#include "testing.h"

struct fab {
	unsigned char *mem;
	size_t size;
	struct lw_header *hdr;
};

static inline uint64_t fab_align(uint64_t v)
{
	return (v + 63) & ~(uint64_t)63;
}

static inline uint64_t fab_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * A RUNNING segment for a pid that does not exist, with empty tables and a
 * heap table of nallocs slots (0: heap tracking off).
 */
static inline void fab_init_heap(struct fab *f, uint32_t nstacks, uint32_t nmodules, uint32_t nhandles,
				 uint32_t nbadcloses, uint32_t nallocs, uint32_t heap_mode, uint64_t sample_bytes)
{
	uint64_t off = LW_HEADER_SIZE;
	struct lw_table t[5];
	uint32_t caps[5] = { nstacks, nmodules, nhandles, nbadcloses, nallocs };
	uint32_t sizes[5] = { sizeof(struct lw_stack), sizeof(struct lw_module), sizeof(struct lw_handle),
			      sizeof(struct lw_badclose), sizeof(struct lw_alloc) };
	memset(t, 0, sizeof t);
	for (int i = 0; i < 5; i++) {
		off = fab_align(off);
		t[i].offset = off;
		t[i].capacity = caps[i];
		t[i].entry_size = sizes[i];
		off += (uint64_t)caps[i] * sizes[i];
	}
	f->size = (size_t)fab_align(off);
	f->mem = calloc(1, f->size);
	f->hdr = (struct lw_header *)(void *)f->mem;
	struct lw_header *h = f->hdr;
	h->magic = LW_MAGIC;
	h->version = LW_VERSION;
	h->compat_version = LW_COMPAT_VERSION;
	h->header_size = LW_HEADER_SIZE;
	h->total_size = f->size;
	h->pid = 2147483;         /* above any pid_max: never a live process */
	h->ppid = 1;
	h->uid = getuid();
	h->state = LW_STATE_RUNNING;
	h->start_monotonic_ns = 1000000000ull;
	h->start_realtime_ns = 1700000000ull * 1000000000ull;
	snprintf(h->exe, sizeof h->exe, "/usr/bin/fake");
	snprintf(h->cmdline, sizeof h->cmdline, "fake --serve");
	h->stack_depth = 32;
	h->heap_mode = heap_mode;
	h->sample_bytes = sample_bytes;
	h->stacks = t[0];
	h->modules = t[1];
	h->handles = t[2];
	h->badcloses = t[3];
	h->heap = t[4];
}

/* A RUNNING segment for a pid that does not exist, with empty tables, heap tracking off. */
static inline void fab_init(struct fab *f, uint32_t nstacks, uint32_t nmodules, uint32_t nhandles,
			    uint32_t nbadcloses)
{
	fab_init_heap(f, nstacks, nmodules, nhandles, nbadcloses, 0, LW_HEAP_OFF, 0);
	f->hdr->heap.offset = f->size;
}

static inline void fab_free(struct fab *f)
{
	free(f->mem);
	f->mem = NULL;
}

static inline void *fab_slot(struct fab *f, const struct lw_table *t, size_t i)
{
	return f->mem + t->offset + i * t->entry_size;
}

/* Store a ready stack in slot id-1 and return id. */
static inline uint32_t fab_stack(struct fab *f, uint32_t id, const uint64_t *frames, size_t n)
{
	struct lw_stack *s = fab_slot(f, &f->hdr->stacks, id - 1);
	s->seq = 2;
	s->depth = (uint16_t)n;
	memcpy(s->frames, frames, n * sizeof *frames);
	return id;
}

/* Per-stack heap totals of stack id. */
static inline void fab_stack_heap(struct fab *f, uint32_t id, uint64_t allocs, uint64_t frees, uint64_t bytes)
{
	struct lw_stack *s = fab_slot(f, &f->hdr->stacks, id - 1);
	s->heap_allocs = allocs;
	s->heap_frees = frees;
	s->heap_bytes = bytes;
}

/* A live heap block in heap slot i (a ready, even seq). */
static inline struct lw_alloc *fab_alloc(struct fab *f, size_t i, uint64_t ptr, uint64_t size, uint64_t ns,
					 uint32_t stack_id)
{
	struct lw_alloc *a = fab_slot(f, &f->hdr->heap, i);
	a->seq = 2;
	a->ptr = ptr;
	a->size = size;
	a->ns = ns;
	a->stack_id = stack_id;
	return a;
}

static inline struct lw_module *fab_module(struct fab *f, const char *path, uint64_t base,
					   uint64_t start, uint64_t end, uint32_t flags)
{
	uint32_t i = f->hdr->modules.used++;
	struct lw_module *m = fab_slot(f, &f->hdr->modules, i);
	m->seq = 2;
	m->flags = flags;
	m->base = base;
	m->start = start;
	m->end = end;
	snprintf(m->path, sizeof m->path, "%.*s", (int)sizeof m->path - 1, path);
	return m;
}

static inline void fab_addr_in(struct lw_addr *a, const char *ip, uint16_t port)
{
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	inet_pton(AF_INET, ip, &sin.sin_addr);
	memcpy(a->data, &sin, sizeof sin);
	a->len = sizeof sin;
}

static inline void fab_addr_un(struct lw_addr *a, const char *path)
{
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	memcpy(a->data, &sun, sizeof sun);
	a->len = (uint16_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

/* An OPEN TCP handle at fd, opened age_s seconds before `now` on the header clock. */
static inline struct lw_handle *fab_handle(struct fab *f, int fd, uint16_t origin, uint32_t stack_id,
					   uint64_t open_ns)
{
	struct lw_handle *h = fab_slot(f, &f->hdr->handles, (size_t)fd);
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
static inline void fab_stack_socks(struct fab *f, uint32_t id, uint64_t opened, uint64_t closed)
{
	struct lw_stack *s = fab_slot(f, &f->hdr->stacks, id - 1);
	s->sock_opened = opened;
	s->sock_closed = closed;
}

/* The most recent send-side call on h: stack and time (0/0 = never used). */
static inline void fab_use(struct lw_handle *h, uint32_t stack_id, uint64_t ns)
{
	h->last_use_stack_id = stack_id;
	h->last_use_ns = ns;
}

/*
 * Fabricated kernel evidence: a TCP socket (inode) in kernel state st
 * (1 ESTABLISHED, 8 CLOSE_WAIT, 10 LISTEN) whose last data went both ways
 * idle_ms ago (UINT32_MAX: no tcp_info), with queue sums rq/wq.
 */
static inline void fab_kernel_tcp(struct lw_sockdiag *d, uint64_t inode, unsigned st, uint32_t idle_ms,
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
static inline int fab_verdict(struct lw_grouping *g, const struct lw_snapshot *s, struct lw_sockdiag *d,
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

static inline struct lw_badclose *fab_badclose(struct fab *f, int fd, uint32_t stack_id)
{
	uint32_t n = f->hdr->badcloses.used++;
	struct lw_badclose *b = fab_slot(f, &f->hdr->badcloses, n % f->hdr->badcloses.capacity);
	memset(b, 0, sizeof *b);
	b->seq = 2;
	b->fd = fd;
	b->tid = 4243;
	b->stack_id = stack_id;
	return b;
}

/* A fresh private directory (0755 so a setuid() child can reach files in it). */
static inline void fab_tmpdir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/lw-analyzer-test.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	chmod(dir, 0755);
}

/* Write the fabricated segment to dir/name; returns the path in out. */
static inline void fab_write(const struct fab *f, const char *dir, const char *name, char *out, size_t len)
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
	close(fd);
}

static inline void fab_rmdir(const char *dir)
{
	char cmd[PATH_MAX + 16];
	if (strncmp(dir, "/tmp/lw-analyzer-test.", 22) != 0)
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		/* leftovers in /tmp are harmless */
	}
}

/*
 * Run build/leakwatch with argv (NULL-terminated, without argv[0]), optionally
 * as another uid.  Captures stdout and stderr (truncated to their buffers) and
 * returns the exit status, or -1 if it did not exit normally.
 */
static inline int cli_run(const char *const *args, uid_t as_uid, char *out, size_t outlen, char *err,
			  size_t errlen)
{
	int po[2], pe[2];
	if (pipe(po) < 0 || pipe(pe) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		const char *bin = LW_BUILD_DIR "/leakwatch";
		char copy[64];
		if (as_uid != (uid_t)-1) {
			/* the build tree may sit where the other user cannot reach it
			 * (a clone under /root): run a world-readable copy */
			snprintf(copy, sizeof copy, "/tmp/lw-cli-%d", (int)getppid());
			char cmd[1024];
			snprintf(cmd, sizeof cmd, "mkdir -p -m 755 %s && cp %s %s/leakwatch && chmod 755 %s/leakwatch",
				 copy, bin, copy, copy);
			if (system(cmd) != 0)
				_exit(125);
			strcat(copy, "/leakwatch");
			bin = copy;
			if (setgid(as_uid) < 0 || setuid(as_uid) < 0)
				_exit(126);
		}
		const char *argv[32];
		size_t n = 0;
		argv[n++] = bin;
		for (; args[n - 1] && n < 31; n++)
			argv[n] = args[n - 1];
		argv[n] = NULL;
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	size_t no = 0, ne = 0;
	int open_o = 1, open_e = 1;
	/* Both pipes are small here; read them alternately until EOF. */
	while (open_o || open_e) {
		char buf[4096];
		if (open_o) {
			ssize_t r = read(po[0], buf, sizeof buf);
			if (r <= 0)
				open_o = 0;
			else {
				size_t c = (size_t)r < outlen - 1 - no ? (size_t)r : outlen - 1 - no;
				memcpy(out + no, buf, c);
				no += c;
			}
		}
		if (open_e && !open_o) {
			ssize_t r = read(pe[0], buf, sizeof buf);
			if (r <= 0)
				open_e = 0;
			else {
				size_t c = (size_t)r < errlen - 1 - ne ? (size_t)r : errlen - 1 - ne;
				memcpy(err + ne, buf, c);
				ne += c;
			}
		}
	}
	out[no] = '\0';
	err[ne] = '\0';
	close(po[0]);
	close(pe[0]);
	int status;
	int waited = waitpid(pid, &status, 0);
	if (as_uid != (uid_t)-1) {
		char cmd[64];
		snprintf(cmd, sizeof cmd, "rm -rf /tmp/lw-cli-%d", (int)getpid());
		if (system(cmd) != 0)
			return -1;
	}
	if (waited < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static inline size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

#endif /* LEAKWATCH_TEST_ANALYZER_UTIL_H */
