/* SPDX-License-Identifier: MIT */
/*
 * watch.c — who still waits on a socket, from the kernel's own evidence at
 * report time (live processes only).  Idle is not leaked while the program
 * waits on the socket: an event loop keeps its idle clients in an epoll set,
 * a thread-per-connection server keeps a thread blocked in read().
 *
 *   epoll sets   every fd of the target that is an epoll instance
 *                (/proc/PID/fd/N -> "anon_inode:[eventpoll]") lists its
 *                registrations in /proc/PID/fdinfo/N, one "tfd:" line each
 *                (Documentation/filesystems/proc.rst).  tfd is the fd number
 *                in the process that registered it, which need not be this
 *                one (an epoll fd is shared with fork children, and an item
 *                outlives its fd while a dup of the file is open), so items
 *                are matched to this process's sockets by the inode the line
 *                shows; by tfd only on kernels that show no inode.  An item
 *                whose interest mask holds only private bits (a fired
 *                EPOLLONESHOT never re-armed) reports nothing and is not
 *                evidence.
 *   threads      /proc/PID/task/TID/syscall of a thread blocked in a system
 *                call gives its number and arguments: read-like calls and
 *                accept name the fd; epoll_wait names the epoll fd (every
 *                socket of its set gets the waiting thread); poll/ppoll name
 *                a pollfd array in the target's memory, read with
 *                process_vm_readv (it never stops or changes the target) and
 *                believed only if the thread's syscall line is the same
 *                afterwards — the thread is then still in that very call.
 *   not seen     select/pselect (fd_set bitmaps: not read; such threads are
 *                listed as unattributed, as are poll threads whose array
 *                could not be read), io_uring, signal-driven I/O, a program
 *                that polls with timeouts between calls (caught only while
 *                blocked), nested epoll sets (membership counts, the waiting
 *                thread of the outer set is not propagated).
 *
 * Syscall numbers are the host architecture's (<sys/syscall.h>): leakwatch
 * and the shim are built for one ABI, and a process of another ABI cannot
 * load the shim, so has no segment to report on.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kernel.h"
#include "testing.h"

/* fdinfo of an epoll set with 10^6 items is ~80 MB; beyond this, the set is read in part. */
#define FDINFO_MAX (128u << 20)
/* pollfd entries read from one poll() call */
#define POLL_MAX 4096

/* ==== parsers (pure: tests feed them fabricated text) ===================== */

/* Skip blanks (not newlines). */
static const char *blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * A number at p in base 10 or 16 (base 16: "0x" required when want_0x) up to
 * a blank, newline or NUL; *end after it.  0, or -1 when there is no digit,
 * a stray character, or it does not fit 64 bits.
 */
static int num_at(const char *p, int base, int want_0x, uint64_t *v, const char **end)
{
	uint64_t x = 0;
	int digits = 0;
	if (want_0x) {
		if (p[0] != '0' || (p[1] != 'x' && p[1] != 'X'))
			return -1;
		p += 2;
	}
	for (;; p++, digits++) {
		unsigned d;
		char c = *p;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			break;
		if (x > (UINT64_MAX - d) / (unsigned)base)
			return -1;
		x = x * (unsigned)base + d;
	}
	if (!digits || (*p && *p != ' ' && *p != '\t' && *p != '\n'))
		return -1;
	*v = x;
	*end = p;
	return 0;
}

int lw_watch_parse_syscall(const char *text, struct lw_task_syscall *sc)
{
	const char *p = blanks(text);
	uint64_t v[9];
	if (strncmp(p, "running", 7) == 0 && (p[7] == '\n' || p[7] == '\0'))
		return 0;
	if (p[0] == '-' && p[1] == '1') {
		/* blocked, but not in a system call: "-1 0xSP 0xPC" */
		p = blanks(p + 2);
		for (int i = 0; i < 2; i++) {
			if (num_at(p, 16, 1, &v[i], &p) < 0)
				return -1;
			p = blanks(p);
		}
		return *p == '\n' || *p == '\0' ? 0 : -1;
	}
	if (num_at(p, 10, 0, &v[0], &p) < 0 || v[0] > INT_MAX)
		return -1;
	for (int i = 1; i < 9; i++) {
		p = blanks(p);
		if (num_at(p, 16, 1, &v[i], &p) < 0)
			return -1;
	}
	p = blanks(p);
	if (*p != '\n' && *p != '\0')
		return -1;
	sc->nr = (long)v[0];
	for (int i = 0; i < 6; i++)
		sc->args[i] = v[1 + i];
	sc->sp = v[7];
	sc->pc = v[8];
	return 1;
}

enum lw_wait_call lw_watch_syscall_kind(long nr)
{
	switch (nr) {
#ifdef SYS_read
	case SYS_read:
#endif
#ifdef SYS_readv
	case SYS_readv:
#endif
#ifdef SYS_pread64
	case SYS_pread64:
#endif
#ifdef SYS_recvfrom
	case SYS_recvfrom:
#endif
#ifdef SYS_recvmsg
	case SYS_recvmsg:
#endif
#ifdef SYS_recvmmsg
	case SYS_recvmmsg:
#endif
		return LW_WAIT_READ;
#ifdef SYS_accept
	case SYS_accept:
#endif
#ifdef SYS_accept4
	case SYS_accept4:
#endif
		return LW_WAIT_ACCEPT;
#ifdef SYS_poll
	case SYS_poll:
#endif
#ifdef SYS_ppoll
	case SYS_ppoll:
#endif
		return LW_WAIT_POLL;
#ifdef SYS_epoll_wait
	case SYS_epoll_wait:
#endif
#ifdef SYS_epoll_pwait
	case SYS_epoll_pwait:
#endif
#ifdef SYS_epoll_pwait2
	case SYS_epoll_pwait2:
#endif
		return LW_WAIT_EPOLL;
#ifdef SYS_select
	case SYS_select:
#endif
#ifdef SYS_pselect6
	case SYS_pselect6:
#endif
		return LW_WAIT_SELECT;
	default:
		return LW_WAIT_NONE;
	}
}

const char *lw_wait_call_name(int call)
{
	switch (call) {
	case LW_WAIT_READ: return "reading";
	case LW_WAIT_ACCEPT: return "in accept";
	case LW_WAIT_POLL: return "in poll";
	case LW_WAIT_EPOLL: return "in epoll_wait";
	case LW_WAIT_SELECT: return "in select";
	}
	return "";
}

const char *lw_wait_call_word(int call)
{
	switch (call) {
	case LW_WAIT_READ: return "read";
	case LW_WAIT_ACCEPT: return "accept";
	case LW_WAIT_POLL: return "poll";
	case LW_WAIT_EPOLL: return "epoll_wait";
	case LW_WAIT_SELECT: return "select";
	}
	return "none";
}

/* "key:" at p (after blanks) -> after it; NULL when absent. */
static const char *field(const char *p, const char *key)
{
	size_t n = strlen(key);
	p = blanks(p);
	return strncmp(p, key, n) == 0 ? p + n : NULL;
}

/* One "tfd:" line (p after "tfd:"): 0 with *it filled, -1 when malformed. */
static int epoll_line(const char *p, struct lw_epoll_item *it)
{
	uint64_t tfd, ev, data, ino = 0;
	if (num_at(blanks(p), 10, 0, &tfd, &p) < 0 || tfd > INT_MAX)
		return -1;
	if (!(p = field(p, "events:")) || num_at(blanks(p), 16, 0, &ev, &p) < 0 || ev > UINT32_MAX)
		return -1;
	if (!(p = field(p, "data:")) || num_at(blanks(p), 16, 0, &data, &p) < 0)
		return -1;
	/* 3.18+: "pos:%lli ino:%lx sdev:%x" (pos may be negative: skipped unread) */
	const char *q = field(p, "pos:");
	if (q) {
		q = blanks(q);
		if (*q == '-')
			q++;
		uint64_t pos;
		if (num_at(q, 10, 0, &pos, &q) < 0)
			return -1;
		if (!(q = field(q, "ino:")) || num_at(blanks(q), 16, 0, &ino, &q) < 0)
			return -1;
		p = q;
	}
	/* the rest (sdev, fields of later kernels) up to the end of the line is not needed */
	it->tfd = (int)tfd;
	it->events = (uint32_t)ev;
	it->ino = ino;
	return 0;
}

size_t lw_watch_parse_epoll(const char *text, struct lw_epoll_item *out, size_t max)
{
	size_t n = 0;
	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		const char *q = blanks(p);
		struct lw_epoll_item it;
		/* a line cut off by the buffer's end (no newline) is as good as its fields */
		if (strncmp(q, "tfd:", 4) == 0 && epoll_line(q + 4, &it) == 0) {
			if (n < max)
				out[n] = it;
			n++;
		}
		p = nl ? nl + 1 : NULL;
	}
	return n;
}

int lw_watch_epoll_armed(uint32_t events)
{
	const uint32_t private_bits = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
	return (events & ~private_bits) != 0;
}

/* ==== the set ============================================================== */

static int watch_cmp(const void *a, const void *b)
{
	const struct lw_watch *x = a, *y = b;
	return (x->inode > y->inode) - (x->inode < y->inode);
}

void lw_watch_sort(struct lw_watchset *w)
{
	if (w->n > 1)
		qsort(w->v, w->n, sizeof *w->v, watch_cmp);
	/* merge duplicates (lw_watch_add appends while unsorted) */
	size_t k = 0;
	for (size_t i = 0; i < w->n; i++) {
		if (k && w->v[k - 1].inode == w->v[i].inode) {
			struct lw_watch *d = &w->v[k - 1];
			const struct lw_watch *x = &w->v[i];
			if (x->epoll_fd >= 0 && (d->epoll_fd < 0 || x->epoll_fd < d->epoll_fd)) {
				d->epoll_fd = x->epoll_fd;
				d->epoll_tid = x->epoll_tid;
			} else if (x->epoll_fd == d->epoll_fd && !d->epoll_tid) {
				d->epoll_tid = x->epoll_tid;
			}
			if (!d->tid && x->tid) {
				d->tid = x->tid;
				d->call = x->call;
			}
			continue;
		}
		w->v[k++] = w->v[i];
	}
	w->n = k;
	w->sorted = 1;
}

int lw_watch_add(struct lw_watchset *w, const struct lw_watch *x)
{
	if (x->inode == 0)
		return 0;
	if (w->n == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 32;
		struct lw_watch *nv = realloc(w->v, ncap * sizeof *nv);
		if (!nv)
			return -1;
		w->v = nv;
		w->cap = ncap;
	}
	w->v[w->n++] = *x;
	w->sorted = 0;
	return 0;
}

const struct lw_watch *lw_watch_find(const struct lw_watchset *w, uint64_t inode)
{
	if (!w || !w->sorted || inode == 0)
		return NULL;
	size_t lo = 0, hi = w->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->v[mid].inode == inode)
			return &w->v[mid];
		if (w->v[mid].inode < inode)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void lw_watch_free(struct lw_watchset *w)
{
	free(w->v);
	memset(w, 0, sizeof *w);
}

/* ==== gathering from /proc ================================================= */

/* The process's descriptors that matter here. */
struct fdmap {
	struct { int fd; uint64_t ino; } *sock;     /* by fd (readdir order, then sorted) */
	size_t nsock, capsock;
	uint64_t *inos;                             /* socket inodes, sorted */
	int *epfd;
	size_t nepfd, capepfd;
	struct { int epfd; int tid; } *waiter;      /* threads in epoll_wait */
	size_t nwaiter, capwaiter;
};

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *nv = realloc(*v, ncap * size);
	if (!nv)
		return -1;
	*v = nv;
	*cap = ncap;
	return 0;
}

static int sock_fd_cmp(const void *a, const void *b)
{
	const int *x = a, *y = b;    /* fd is the first member */
	return (*x > *y) - (*x < *y);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static uint64_t fdmap_inode_of(const struct fdmap *m, int fd)
{
	size_t lo = 0, hi = m->nsock;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->sock[mid].fd == fd)
			return m->sock[mid].ino;
		if (m->sock[mid].fd < fd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int fdmap_has_inode(const struct fdmap *m, uint64_t ino)
{
	return ino && bsearch(&ino, m->inos, m->nsock, sizeof *m->inos, u64_cmp) != NULL;
}

static void fdmap_free(struct fdmap *m)
{
	free(m->sock);
	free(m->inos);
	free(m->epfd);
	free(m->waiter);
}

/* /proc/PID/fd: sockets by fd, and the epoll instances.  0, -1 (no memory); unreadable: empty. */
static int fdmap_load(struct fdmap *m, int pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char *end, lpath[96], link[128];
		long fd = strtol(de->d_name, &end, 10);
		if (de->d_name[0] == '.' || *end || fd < 0 || fd > INT_MAX)
			continue;
		snprintf(lpath, sizeof lpath, "/proc/%d/fd/%ld", pid, fd);
		ssize_t n = readlink(lpath, link, sizeof link - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		unsigned long long ino;
		char tail;
		if (sscanf(link, "socket:[%llu%c", &ino, &tail) == 2 && tail == ']' && ino) {
			if (grow((void **)&m->sock, &m->capsock, m->nsock, sizeof *m->sock) < 0)
				goto oom;
			m->sock[m->nsock].fd = (int)fd;
			m->sock[m->nsock++].ino = ino;
		} else if (strcmp(link, "anon_inode:[eventpoll]") == 0) {
			if (grow((void **)&m->epfd, &m->capepfd, m->nepfd, sizeof *m->epfd) < 0)
				goto oom;
			m->epfd[m->nepfd++] = (int)fd;
		}
	}
	closedir(d);
	if (m->nsock) {
		qsort(m->sock, m->nsock, sizeof *m->sock, sock_fd_cmp);
		m->inos = malloc(m->nsock * sizeof *m->inos);
		if (!m->inos)
			return -1;
		for (size_t i = 0; i < m->nsock; i++)
			m->inos[i] = m->sock[i].ino;
		qsort(m->inos, m->nsock, sizeof *m->inos, u64_cmp);
	}
	if (m->nepfd > 1)
		qsort(m->epfd, m->nepfd, sizeof *m->epfd, sock_fd_cmp);
	return 0;
oom:
	closedir(d);
	return -1;
}

/*
 * The whole of a /proc text file (NUL-terminated, up to max bytes) in a
 * malloc'd buffer, or NULL with errno set.
 */
static char *slurp(const char *path, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (n + 1 >= cap) {
			if (cap >= max)
				break;
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				errno = ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			buf = NULL;
			errno = e;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (buf)
		buf[n] = '\0';
	int e = errno;
	close(fd);
	errno = e;
	return buf;
}

static int add_thread(struct lw_watchset *w, const struct fdmap *m, int fd, int tid, enum lw_wait_call call)
{
	uint64_t ino = fd >= 0 ? fdmap_inode_of(m, fd) : 0;
	if (!ino)
		return 0;
	struct lw_watch x = { .inode = ino, .epoll_fd = -1, .tid = tid, .call = (uint8_t)call };
	return lw_watch_add(w, &x);
}

static void unattributed(struct lw_watchset *w, int tid, enum lw_wait_call call)
{
	if (w->nunattributed < LW_WATCH_MAX_UNATTRIBUTED) {
		w->unattributed[w->nunattributed] = tid;
		w->unattributed_call[w->nunattributed] = (uint8_t)call;
	}
	w->nunattributed++;
}

/*
 * A thread blocked in poll/ppoll: read its pollfd array and believe it only
 * if the thread is still in the same call afterwards (same syscall line).
 * 1 attributed, 0 not (unreadable, changed), -1 no memory.
 */
static int poll_thread(struct lw_watchset *w, const struct fdmap *m, int pid, int tid, const char *path,
		       const struct lw_task_syscall *sc)
{
	uint64_t nfds = sc->args[1];
	if (nfds == 0 || nfds > POLL_MAX)
		return 0;
	struct pollfd *pf = malloc(nfds * sizeof *pf);
	if (!pf)
		return -1;
	struct iovec local = { pf, nfds * sizeof *pf };
	struct iovec remote = { (void *)(uintptr_t)sc->args[0], nfds * sizeof *pf };
	/* the thread's memory is the process's: any tid reads it, pid is the group */
	ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	int rc = 0;
	char *again = got == (ssize_t)(nfds * sizeof *pf) ? slurp(path, 4096) : NULL;
	struct lw_task_syscall sc2;
	if (again && lw_watch_parse_syscall(again, &sc2) == 1 && memcmp(&sc2, sc, sizeof sc2) == 0) {
		rc = 1;
		for (uint64_t i = 0; i < nfds && rc >= 0; i++)
			if (pf[i].fd >= 0 && pf[i].events && add_thread(w, m, pf[i].fd, tid, LW_WAIT_POLL) < 0)
				rc = -1;
	}
	free(again);
	free(pf);
	return rc;
}

/* Every thread: what it is blocked on.  0 or -1 (no memory). */
static int load_threads(struct lw_watchset *w, struct fdmap *m, int pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d) {
		w->task_errno = errno;
		return 0;
	}
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		char *end, spath[96];
		long tid = strtol(de->d_name, &end, 10);
		if (de->d_name[0] == '.' || *end || tid <= 0 || tid > INT_MAX)
			continue;
		snprintf(spath, sizeof spath, "/proc/%d/task/%ld/syscall", pid, tid);
		char *text = slurp(spath, 4096);
		if (!text) {
			/* a thread that just ended is not an error */
			if (errno != ENOENT && errno != ESRCH && !w->task_errno)
				w->task_errno = errno;
			continue;
		}
		w->nthreads++;
		struct lw_task_syscall sc;
		if (lw_watch_parse_syscall(text, &sc) == 1) {
			enum lw_wait_call call = lw_watch_syscall_kind(sc.nr);
			int fd = sc.args[0] <= INT_MAX ? (int)sc.args[0] : -1;
			if (call == LW_WAIT_READ || call == LW_WAIT_ACCEPT) {
				rc = add_thread(w, m, fd, (int)tid, call);
			} else if (call == LW_WAIT_EPOLL && fd >= 0) {
				if (grow((void **)&m->waiter, &m->capwaiter, m->nwaiter, sizeof *m->waiter) < 0) {
					rc = -1;
				} else {
					m->waiter[m->nwaiter].epfd = fd;
					m->waiter[m->nwaiter++].tid = (int)tid;
				}
			} else if (call == LW_WAIT_POLL) {
				int p = poll_thread(w, m, pid, (int)tid, spath, &sc);
				if (p < 0)
					rc = -1;
				else if (p == 0)
					unattributed(w, (int)tid, call);
			} else if (call == LW_WAIT_SELECT) {
				unattributed(w, (int)tid, call);
			}
		}
		free(text);
	}
	closedir(d);
	return rc;
}

static int epoll_waiter(const struct fdmap *m, int epfd)
{
	int tid = 0;
	for (size_t i = 0; i < m->nwaiter; i++)
		if (m->waiter[i].epfd == epfd && (!tid || m->waiter[i].tid < tid))
			tid = m->waiter[i].tid;
	return tid;
}

/* Every epoll set: which of our sockets it holds armed.  0 or -1 (no memory). */
static int load_epolls(struct lw_watchset *w, const struct fdmap *m, int pid)
{
	for (size_t e = 0; e < m->nepfd; e++) {
		char path[96];
		int epfd = m->epfd[e];
		snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", pid, epfd);
		char *text = slurp(path, FDINFO_MAX);
		if (!text) {
			if (errno == ENOMEM)
				return -1;
			if (errno != ENOENT && !w->epoll_errno)
				w->epoll_errno = errno;
			continue;
		}
		w->nepoll++;
		size_t n = lw_watch_parse_epoll(text, NULL, 0);
		struct lw_epoll_item *items = malloc((n ? n : 1) * sizeof *items);
		if (!items) {
			free(text);
			return -1;
		}
		n = lw_watch_parse_epoll(text, items, n);
		free(text);
		int tid = epoll_waiter(m, epfd);
		for (size_t i = 0; i < n; i++) {
			if (!lw_watch_epoll_armed(items[i].events))
				continue;
			/* by inode: tfd is a number in whichever process registered the item */
			uint64_t ino = items[i].ino ? items[i].ino : fdmap_inode_of(m, items[i].tfd);
			if (!fdmap_has_inode(m, ino))
				continue;
			struct lw_watch x = { .inode = ino, .epoll_fd = epfd, .epoll_tid = tid };
			if (lw_watch_add(w, &x) < 0) {
				free(items);
				return -1;
			}
		}
		free(items);
	}
	return 0;
}

int lw_watch_load(struct lw_watchset *w, int pid)
{
	struct fdmap m;
	memset(w, 0, sizeof *w);
	memset(&m, 0, sizeof m);
	int rc = fdmap_load(&m, pid);
	if (rc == 0)
		rc = load_threads(w, &m, pid);
	if (rc == 0)
		rc = load_epolls(w, &m, pid);
	fdmap_free(&m);
	if (rc < 0) {
		lw_watch_free(w);
		return -1;
	}
	lw_watch_sort(w);
	w->loaded = 1;
	return 0;
}

/* ==== the join's cache ===================================================== */

/* The processes that may hold the other end of the target's unix
 * sockets: its children (/proc/PID/task/TID/children) and its parent. */
static void related_load(struct lw_join *j)
{
	j->related_loaded = 1;
	int pids[64];
	size_t n = 0;
	char path[96];
	snprintf(path, sizeof path, "/proc/%d/task", j->pid);
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL && n < 63) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char cp[160];
		snprintf(cp, sizeof cp, "/proc/%d/task/%.16s/children", j->pid, de->d_name);
		char *text = slurp(cp, 4096);
		for (char *p = text; p && *p && n < 63;) {
			char *end;
			long v = strtol(p, &end, 10);
			if (end == p)
				break;
			if (v > 0 && v <= INT32_MAX)
				pids[n++] = (int)v;
			p = end;
		}
		free(text);
	}
	if (d)
		closedir(d);
	snprintf(path, sizeof path, "/proc/%d/stat", j->pid);
	char *st = slurp(path, 4096);
	const char *rp = st ? strrchr(st, ')') : NULL;
	int ppid = 0;
	if (rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid > 1)
		pids[n++] = ppid;
	free(st);
	if (!n)
		return;
	j->related = calloc(n, sizeof *j->related);
	if (!j->related)
		return;
	for (size_t i = 0; i < n; i++) {
		j->related[j->nrelated].pid = pids[i];
		/* another user's process, or one gone meanwhile: no evidence from it */
		if (lw_watch_load(&j->related[j->nrelated].w, pids[i]) == 0)
			j->nrelated++;
	}
}

/* peer_watch - evidence that a related process waits on the unix socket
 * `inode` itself (shared with a fork child: the same socket in both) or on
 * its other end: the target's copy may sit idle on purpose, as a master's
 * channels to workers that watch theirs do. */
static const struct lw_watch *peer_watch(struct lw_join *j, uint64_t inode)
{
	const struct lw_sockinfo *k = lw_join_sockinfo(j, inode);
	if (!k || k->family != AF_UNIX)
		return NULL;
	if (!j->related_loaded)
		related_load(j);
	for (size_t i = 0; i < 2 * j->nrelated; i++) {
		uint64_t want = i < j->nrelated ? inode : k->peer_inode;
		const struct lw_watch *w = want ? lw_watch_find(&j->related[i % j->nrelated].w, want) : NULL;
		if (w && (w->epoll_fd >= 0 || w->tid > 0)) {
			j->peer_scratch = *w;
			j->peer_scratch.inode = inode;
			j->peer_scratch.peer_pid = j->related[i % j->nrelated].pid;
			return &j->peer_scratch;
		}
	}
	return NULL;
}

const struct lw_watch *lw_join_watch(struct lw_join *j, uint64_t inode)
{
	if (!j)
		return NULL;
	if (!j->watch_loaded) {
		if (j->pid <= 0 || !j->fd_ok)
			return NULL;
		j->watch_loaded = 1;
		/* Out of memory leaves no evidence: the verdicts are then as without it. */
		if (lw_watch_load(&j->watch, j->pid) < 0)
			memset(&j->watch, 0, sizeof j->watch);
	}
	const struct lw_watch *w = lw_watch_find(&j->watch, inode);
	if (w)
		return w;
	return peer_watch(j, inode);
}

void lw_join_set_watch(struct lw_join *j, struct lw_watchset *w)
{
	lw_watch_free(&j->watch);
	j->watch = *w;
	if (!j->watch.sorted)
		lw_watch_sort(&j->watch);
	j->watch.loaded = 1;
	j->watch_loaded = 1;
	memset(w, 0, sizeof *w);
}
