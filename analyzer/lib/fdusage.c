/* SPDX-License-Identifier: MIT */
/*
 * fdusage.c — descriptors of a live process by kind, against RLIMIT_NOFILE
 * (see fdusage.h).  Everything comes from /proc at report time: the shim
 * records only what it saw created, the kernel knows what is open.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdusage.h"

static const char *const fdk_names[LW_FDK_N] = {
	[LW_FDK_SOCKET] = "socket",     [LW_FDK_FILE] = "file",         [LW_FDK_DIR] = "dir",
	[LW_FDK_PIPE] = "pipe",         [LW_FDK_FIFO] = "fifo",         [LW_FDK_DEVICE] = "device",
	[LW_FDK_EVENTFD] = "eventfd",   [LW_FDK_EPOLL] = "epoll",       [LW_FDK_TIMERFD] = "timerfd",
	[LW_FDK_SIGNALFD] = "signalfd", [LW_FDK_INOTIFY] = "inotify",   [LW_FDK_FANOTIFY] = "fanotify",
	[LW_FDK_MEMFD] = "memfd",       [LW_FDK_PIDFD] = "pidfd",       [LW_FDK_USERFAULTFD] = "userfaultfd",
	[LW_FDK_OTHER] = "other",
};

const char *lw_fdk_name(enum lw_fdk k)
{
	return (unsigned)k < LW_FDK_N ? fdk_names[k] : "other";
}

enum lw_fdk lw_fdk_of_link(const char *link, unsigned mode)
{
	static const struct {
		const char *prefix;
		enum lw_fdk kind;
	} anon[] = {
		{ "[eventfd]", LW_FDK_EVENTFD },   { "[eventpoll]", LW_FDK_EPOLL },
		{ "[timerfd]", LW_FDK_TIMERFD },   { "[signalfd]", LW_FDK_SIGNALFD },
		{ "inotify", LW_FDK_INOTIFY },     { "[fanotify]", LW_FDK_FANOTIFY },
		{ "[pidfd]", LW_FDK_PIDFD },       { "[userfaultfd]", LW_FDK_USERFAULTFD },
		{ "[eventfd", LW_FDK_EVENTFD }, /* "[eventfd:N]" on newer kernels */
	};
	if (strncmp(link, "socket:[", 8) == 0)
		return LW_FDK_SOCKET;
	if (strncmp(link, "pipe:[", 6) == 0)
		return LW_FDK_PIPE;
	if (strncmp(link, "anon_inode:", 11) == 0) {
		const char *a = link + 11;
		for (size_t i = 0; i < sizeof anon / sizeof anon[0]; i++)
			if (strncmp(a, anon[i].prefix, strlen(anon[i].prefix)) == 0)
				return anon[i].kind;
		return LW_FDK_OTHER;
	}
	if (strncmp(link, "/memfd:", 7) == 0)
		return LW_FDK_MEMFD;
	if (link[0] == '/') {
		if (S_ISDIR(mode))
			return LW_FDK_DIR;
		if (S_ISFIFO(mode))
			return LW_FDK_FIFO;
		if (S_ISCHR(mode) || S_ISBLK(mode))
			return LW_FDK_DEVICE;
		if (S_ISSOCK(mode))
			return LW_FDK_SOCKET;
		return LW_FDK_FILE;
	}
	return LW_FDK_OTHER;
}

/* one limit field: a decimal number or "unlimited"; *p advanced past it */
static int limit_field(const char **p, uint64_t *v)
{
	const char *s = *p;
	while (*s == ' ' || *s == '\t')
		s++;
	if (strncmp(s, "unlimited", 9) == 0) {
		*v = LW_FD_UNLIMITED;
		*p = s + 9;
		return 1;
	}
	if (*s < '0' || *s > '9')
		return 0;
	uint64_t n = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (n > (UINT64_MAX - 9) / 10)
			return 0;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*v = n;
	*p = s;
	return 1;
}

int lw_fdusage_parse_limits(const char *text, uint64_t *soft, uint64_t *hard)
{
	static const char key[] = "Max open files";
	for (const char *line = text; line && *line;) {
		const char *eol = strchr(line, '\n');
		if (strncmp(line, key, sizeof key - 1) == 0) {
			const char *p = line + sizeof key - 1;
			uint64_t s, h;
			if (!limit_field(&p, &s) || !limit_field(&p, &h))
				return 0;
			if (eol && p > eol)
				return 0;
			*soft = s;
			*hard = h;
			return 1;
		}
		line = eol ? eol + 1 : NULL;
	}
	return 0;
}

static void read_limits(struct lw_fdusage *u, int pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/limits", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	u->limit_ok = lw_fdusage_parse_limits(buf, &u->soft, &u->hard);
}

void lw_fdusage_read(struct lw_fdusage *u, int pid)
{
	memset(u, 0, sizeof *u);
	u->err = ENOENT;
	if (pid <= 0)
		return;
	char dirpath[64];
	snprintf(dirpath, sizeof dirpath, "/proc/%d/fd", pid);
	DIR *d = opendir(dirpath);
	if (!d) {
		u->err = errno;
		return;
	}
	u->ok = 1;
	u->err = 0;
	struct dirent *de;
	size_t cap = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char path[320], link[512];
		snprintf(path, sizeof path, "%s/%s", dirpath, de->d_name);
		ssize_t n = readlink(path, link, sizeof link - 1);
		if (n < 0)
			continue; /* closed since the directory was read */
		link[n] = '\0';
		unsigned mode = 0;
		struct stat st;
		/* a path: what it is decides the kind (stat follows the link;
		 * it never opens the target) */
		if (link[0] == '/' && strncmp(link, "/memfd:", 7) != 0 && stat(path, &st) == 0)
			mode = (unsigned)st.st_mode;
		enum lw_fdk kind = lw_fdk_of_link(link, mode);
		u->by_kind[kind]++;
		u->open++;
		if (u->nfds == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct lw_fdusage_fd *nf = realloc(u->fds, ncap * sizeof *nf);
			if (!nf)
				continue; /* counted, not listed: no untracked counts then */
			u->fds = nf;
			cap = ncap;
		}
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		u->fds[u->nfds].fd = *end || fd < 0 || fd > INT32_MAX ? -1 : (int)fd;
		u->fds[u->nfds++].kind = kind;
	}
	closedir(d);
	read_limits(u, pid);
}

void lw_fdusage_untracked(struct lw_fdusage *u, int (*tracked)(int fd, void *arg), void *arg)
{
	if (!u->ok || u->nfds != u->open)
		return; /* a list cut short by memory: no counts rather than wrong ones */
	memset(u->untracked_by_kind, 0, sizeof u->untracked_by_kind);
	u->untracked = 0;
	for (size_t i = 0; i < u->nfds; i++)
		if (u->fds[i].fd < 0 || !tracked(u->fds[i].fd, arg)) {
			u->untracked_by_kind[u->fds[i].kind < LW_FDK_N ? u->fds[i].kind : LW_FDK_OTHER]++;
			u->untracked++;
		}
	u->have_untracked = 1;
}

void lw_fdusage_free(struct lw_fdusage *u)
{
	free(u->fds);
	u->fds = NULL;
	u->nfds = 0;
}

uint64_t lw_fdusage_eta_ns(const struct lw_fdusage *before, const struct lw_fdusage *now,
			   uint64_t interval_ns)
{
	if (!before->ok || !now->ok || !now->limit_ok || now->soft == LW_FD_UNLIMITED || interval_ns == 0)
		return 0;
	if (now->open >= now->soft)
		return 1;
	if (now->open <= before->open)
		return 0;
	double rate = (double)(now->open - before->open) / (double)interval_ns; /* per ns */
	double eta = (double)(now->soft - now->open) / rate;
	if (eta > 9e18)
		return 0;
	return eta < 1 ? 1 : (uint64_t)eta;
}
