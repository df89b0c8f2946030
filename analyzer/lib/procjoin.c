/* SPDX-License-Identifier: MIT */
/*
 * procjoin.c — the kernel's view of a live process.
 *
 * The shim's table can go stale: libc closes some descriptors where no hook
 * sees it (fclose of a socket FILE, resolver sockets), and the fd number may
 * since have been reused.  So an OPEN entry is believed only while
 * /proc/PID/fd/N still names the same socket inode; sockets the kernel shows
 * that the shim never recorded are listed as untracked.  Records of sockets
 * the hook knew were new (socket(), accept(), socketpair()) carry no inode:
 * asking for it would cost the traced call an fstat().  Such a record is
 * believed while a socket is behind its fd, and takes that socket's inode;
 * what this cannot tell apart is a socket closed where no hook sees it and
 * replaced, on the same number, by another socket no hook saw created.  The kernel's view of
 * each socket (state, queues, tcp_info) comes from sockdiag.c, loaded once
 * per join on first lookup.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel.h"
#include "segdir.h"
#include "testing.h"

/* "socket:[12345]" -> 12345; 0 when the link is not a socket. */
static uint64_t link_socket_inode(const char *link)
{
	unsigned long long ino;
	char tail;
	if (sscanf(link, "socket:[%llu%c", &ino, &tail) == 2 && tail == ']')
		return ino;
	return 0;
}

static int fd_socket_inode(int pid, int fd, uint64_t *ino)
{
	char path[64], link[128];
	snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n < 0)
		return -1;
	link[n] = '\0';
	*ino = link_socket_inode(link);
	return 0;
}

/* The kind a /proc/PID/fd link names (enum lw_fd_kind); paths are files
 * until stat says otherwise. */
static int link_kind(const char *link, const char *fdpath)
{
	static const struct { const char *prefix; int kind; } anon[] = {
		{ "socket:[", LW_FD_SOCKET }, { "pipe:[", LW_FD_PIPE },
		{ "anon_inode:[eventfd]", LW_FD_EVENTFD }, { "anon_inode:[eventpoll]", LW_FD_EPOLL },
		{ "anon_inode:[timerfd]", LW_FD_TIMERFD }, { "anon_inode:[signalfd]", LW_FD_SIGNALFD },
		{ "anon_inode:inotify", LW_FD_INOTIFY }, { "anon_inode:[fanotify]", LW_FD_FANOTIFY },
		{ "anon_inode:[pidfd]", LW_FD_PIDFD }, { "pidfd:", LW_FD_PIDFD },
		{ "anon_inode:[userfaultfd]", LW_FD_USERFAULTFD }, { "/memfd:", LW_FD_MEMFD },
	};
	for (size_t i = 0; i < sizeof anon / sizeof anon[0]; i++)
		if (strncmp(link, anon[i].prefix, strlen(anon[i].prefix)) == 0)
			return anon[i].kind;
	if (link[0] != '/')
		return LW_FD_OTHER;
	struct stat st;
	if (stat(fdpath, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return LW_FD_DIR;
		if (S_ISFIFO(st.st_mode))
			return LW_FD_FIFO;
	}
	return LW_FD_FILE;
}

/* kind_agrees - may a record of kind `rec` describe what the link is now?
 * The shim takes the kind from the call: open() without O_DIRECTORY may
 * have opened a directory or a FIFO, SCM_RIGHTS only knows "other". */
static int kind_agrees(unsigned rec, int now)
{
	if (now == LW_FD_SOCKET)
		return 0;
	switch (rec) {
	case LW_FD_FILE: return now == LW_FD_FILE || now == LW_FD_DIR || now == LW_FD_FIFO ||
				now == LW_FD_MEMFD;
	case LW_FD_DIR: return now == LW_FD_DIR;
	case LW_FD_PIPE:
	case LW_FD_FIFO: return now == LW_FD_PIPE || now == LW_FD_FIFO;
	case LW_FD_OTHER: return 1;
	default: return (int)rec == now;
	}
}

/* join_fd - the kernel's word on non-socket record i: valid, its link. */
static int join_fd(struct lw_join *j, const struct lw_snapshot *s, size_t i)
{
	char path[64], link[PATH_MAX];
	snprintf(path, sizeof path, "/proc/%d/fd/%d", j->pid, s->handles[i].fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n < 0)
		return 0;
	link[n] = '\0';
	int now = link_kind(link, path);
	if (!kind_agrees(s->handles[i].h.kind, now))
		return 0;
	j->now_kind[i] = (unsigned char)now;
	j->link[i] = strdup(link);
	return j->link[i] ? 1 : -1;
}

static int untracked_add(struct lw_join *j, size_t *cap, int fd, uint64_t ino)
{
	if (j->nuntracked == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct lw_untracked *nu = realloc(j->untracked, ncap * sizeof *nu);
		if (!nu)
			return -1;
		j->untracked = nu;
		*cap = ncap;
	}
	j->untracked[j->nuntracked].fd = fd;
	j->untracked[j->nuntracked].inode = ino;
	j->nuntracked++;
	return 0;
}

static int untracked_cmp(const void *a, const void *b)
{
	const struct lw_untracked *x = a, *y = b;
	return (x->fd > y->fd) - (x->fd < y->fd);
}

int lw_join_proc(struct lw_join *j, const struct lw_snapshot *s, int pid)
{
	memset(j, 0, sizeof *j);
	j->pid = pid;
	j->fd_errno = ENOENT;
	j->nlink = s->nhandles;
	if (s->nhandles) {
		j->valid = calloc(s->nhandles, 1);
		j->inode = calloc(s->nhandles, sizeof *j->inode);
		j->link = calloc(s->nhandles, sizeof *j->link);
		j->now_kind = calloc(s->nhandles, 1);
		if (!j->valid || !j->inode || !j->link || !j->now_kind) {
			lw_join_free(j);
			return -1;
		}
	}
	/* Without a kernel view the segment is all we have: trust OPEN entries. */
	for (size_t i = 0; i < s->nhandles; i++) {
		j->valid[i] = s->handles[i].h.state == LW_H_OPEN;
		j->inode[i] = s->handles[i].h.inode;
	}
	if (pid <= 0)
		return 0;

	char dirpath[64];
	snprintf(dirpath, sizeof dirpath, "/proc/%d/fd", pid);
	DIR *d = opendir(dirpath);
	if (!d) {
		j->fd_errno = errno;
		return 0;
	}
	j->fd_ok = 1;
	j->fd_errno = 0;

	/* Tracked entries: valid only if the same socket inode is still behind
	 * the fd (any socket, for a record made without its inode). */
	for (size_t i = 0; i < s->nhandles; i++) {
		if (s->handles[i].h.state != LW_H_OPEN)
			continue;
		if (s->handles[i].h.kind != LW_FD_SOCKET) {
			int ok = join_fd(j, s, i);
			if (ok < 0) {
				closedir(d);
				return -1;
			}
			if (!ok) {
				j->valid[i] = 0;
				j->nstale++;
			}
			continue;
		}
		uint64_t ino = 0, want = s->handles[i].h.inode;
		if (fd_socket_inode(pid, s->handles[i].fd, &ino) < 0 || ino == 0 ||
		    (want != 0 && ino != want)) {
			j->valid[i] = 0;
			j->nstale++;
			continue;
		}
		j->inode[i] = ino;
	}

	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		if (*end || fd < 0 || fd > INT32_MAX)
			continue;
		uint64_t ino = 0;
		if (fd_socket_inode(pid, (int)fd, &ino) < 0 || ino == 0)
			continue;
		const struct lw_snap_handle *h = lw_snapshot_handle(s, (int)fd);
		if (h && h->h.state == LW_H_OPEN && h->h.kind == LW_FD_SOCKET &&
		    (h->h.inode == ino || (h->h.inode == 0 && j->valid[h - s->handles])))
			continue;
		if (untracked_add(j, &cap, (int)fd, ino) < 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	if (j->nuntracked)
		qsort(j->untracked, j->nuntracked, sizeof *j->untracked, untracked_cmp);
	return 0;
}

void lw_join_free(struct lw_join *j)
{
	/* link[] is as long as valid[]: the snapshot's handle count, unknown here */
	for (size_t i = 0; j->link && i < j->nlink; i++)
		free(j->link[i]);
	free(j->link);
	free(j->now_kind);
	free(j->valid);
	free(j->untracked);
	free(j->inode);
	lw_sockdiag_free(&j->diag);
	lw_watch_free(&j->watch);
	for (size_t i = 0; i < j->nrelated; i++)
		lw_watch_free(&j->related[i].w);
	free(j->related);
	free((void *)j->supp);
	memset(j, 0, sizeof *j);
}

int lw_join_valid(const struct lw_join *j, const struct lw_snapshot *s, size_t i)
{
	if (i >= s->nhandles || s->handles[i].h.state != LW_H_OPEN)
		return 0;
	if (!j || !j->valid)
		return 1;
	return j->valid[i];
}

uint64_t lw_join_inode(const struct lw_join *j, const struct lw_snapshot *s, size_t i)
{
	if (i >= s->nhandles)
		return 0;
	if (!j || !j->inode)
		return s->handles[i].h.inode;
	return j->inode[i];
}

const struct lw_sockinfo *lw_join_sockinfo(struct lw_join *j, uint64_t inode)
{
	if (!j)
		return NULL;
	if (!j->diag_loaded) {
		if (j->pid <= 0 || !j->fd_ok)
			return NULL;
		j->diag_loaded = 1;
		/* Out of memory leaves an empty table: the report goes on without states. */
		if (lw_sockdiag_load(&j->diag, j->pid) < 0)
			memset(&j->diag, 0, sizeof j->diag);
	}
	return lw_sockdiag_find(&j->diag, inode);
}

void lw_join_set_sockdiag(struct lw_join *j, struct lw_sockdiag *d)
{
	lw_sockdiag_free(&j->diag);
	j->diag = *d;
	if (!j->diag.sorted)
		lw_sockdiag_sort(&j->diag);
	j->diag_loaded = 1;
	memset(d, 0, sizeof *d);
}

const char *sockstate_lookup(struct lw_join *j, uint64_t inode)
{
	const struct lw_sockinfo *k = lw_join_sockinfo(j, inode);
	return k ? k->state_name : NULL;
}
