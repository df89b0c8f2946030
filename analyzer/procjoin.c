/* SPDX-License-Identifier: MIT */
/*
 * procjoin.c — the kernel's view of a live process.
 *
 * The shim's table can go stale: libc closes some descriptors where no hook
 * sees it (fclose of a socket FILE, resolver sockets), and the fd number may
 * since have been reused.  So an OPEN entry is believed only while
 * /proc/PID/fd/N still names the same socket inode; sockets the kernel shows
 * that the shim never recorded are listed as untracked.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyzer.h"

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
	if (s->nhandles) {
		j->valid = calloc(s->nhandles, 1);
		if (!j->valid)
			return -1;
	}
	/* Without a kernel view the segment is all we have: trust OPEN entries. */
	for (size_t i = 0; i < s->nhandles; i++)
		j->valid[i] = s->handles[i].h.state == LW_H_OPEN;
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

	/* Tracked entries: valid only if the same socket inode is still behind the fd. */
	for (size_t i = 0; i < s->nhandles; i++) {
		if (s->handles[i].h.state != LW_H_OPEN)
			continue;
		uint64_t ino = 0;
		if (fd_socket_inode(pid, s->handles[i].fd, &ino) < 0 || ino == 0 ||
		    ino != s->handles[i].h.inode) {
			j->valid[i] = 0;
			j->nstale++;
		}
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
		if (h && h->h.state == LW_H_OPEN && h->h.inode == ino)
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
	free(j->valid);
	free(j->untracked);
	free(j->states);
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

/* include/net/tcp_states.h */
static const char *tcp_state_name(unsigned st)
{
	static const char *const names[] = {
		NULL, "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
		"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING",
		"NEW_SYN_RECV",
	};
	return st < sizeof names / sizeof names[0] ? names[st] : NULL;
}

static int state_add(struct lw_join *j, size_t *cap, uint64_t ino, const char *name)
{
	if (!name || ino == 0)
		return 0;
	if (j->nstates == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct lw_sockstate *ns = realloc(j->states, ncap * sizeof *ns);
		if (!ns)
			return -1;
		j->states = ns;
		*cap = ncap;
	}
	j->states[j->nstates].inode = ino;
	snprintf(j->states[j->nstates].state, sizeof j->states[j->nstates].state, "%s", name);
	j->nstates++;
	return 0;
}

/* /proc/net/{tcp,tcp6,udp,udp6}: "sl local rem st tx:rx tr:when retr uid timeout inode". */
static void states_load_inet(struct lw_join *j, size_t *cap, const char *file, int udp)
{
	char path[96], line[512];
	snprintf(path, sizeof path, "/proc/%d/net/%s", j->pid, file);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	if (!fgets(line, sizeof line, f)) { /* column titles */
		fclose(f);
		return;
	}
	while (fgets(line, sizeof line, f)) {
		unsigned st;
		unsigned long long ino;
		if (sscanf(line, "%*s %*s %*s %x %*s %*s %*s %*s %*s %llu", &st, &ino) != 2)
			continue;
		/* An unconnected UDP socket sits in TCP_CLOSE; "CLOSE" would alarm. */
		const char *name = udp && st == 7 ? "UNCONN"
						 : tcp_state_name(st);
		if (state_add(j, cap, ino, name) < 0)
			break;
	}
	fclose(f);
}

/* /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path". */
static void states_load_unix(struct lw_join *j, size_t *cap)
{
	char path[96], line[512];
	snprintf(path, sizeof path, "/proc/%d/net/unix", j->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	if (!fgets(line, sizeof line, f)) {
		fclose(f);
		return;
	}
	while (fgets(line, sizeof line, f)) {
		unsigned flags, type, st;
		unsigned long long ino;
		if (sscanf(line, "%*s %*s %*s %x %x %x %llu", &flags, &type, &st, &ino) != 4)
			continue;
		const char *name;
		if (flags & 0x10000u)   /* __SO_ACCEPTCON: listen() was called */
			name = "LISTEN";
		else if (st == 1)
			name = "UNCONNECTED";
		else if (st == 2)
			name = "CONNECTING";
		else if (st == 3)
			name = "CONNECTED";
		else if (st == 4)
			name = "DISCONNECTING";
		else
			name = NULL;
		if (state_add(j, cap, ino, name) < 0)
			break;
	}
	fclose(f);
}

static int sockstate_cmp(const void *a, const void *b)
{
	const struct lw_sockstate *x = a, *y = b;
	return (x->inode > y->inode) - (x->inode < y->inode);
}

const char *sockstate_lookup(struct lw_join *j, uint64_t inode)
{
	if (!j || j->pid <= 0 || !j->fd_ok)
		return NULL;
	if (!j->states_loaded) {
		size_t cap = 0;
		j->states_loaded = 1;
		/* Through /proc/PID/net so the target's network namespace is used. */
		states_load_inet(j, &cap, "tcp", 0);
		states_load_inet(j, &cap, "tcp6", 0);
		states_load_inet(j, &cap, "udp", 1);
		states_load_inet(j, &cap, "udp6", 1);
		states_load_unix(j, &cap);
		if (j->nstates)
			qsort(j->states, j->nstates, sizeof *j->states, sockstate_cmp);
	}
	size_t lo = 0, hi = j->nstates;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (j->states[mid].inode == inode)
			return j->states[mid].state;
		if (j->states[mid].inode < inode)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
