/* SPDX-License-Identifier: MIT */
/*
 * output.c — `--output FILE`: where the report goes, and what happens to FILE.
 *
 * What FILE is decides how it is written:
 *
 *   "-"                 stdout, as if there were no --output.
 *   nothing there, or   atomically: stdout goes to a temporary file in the
 *   a regular file      same directory, renamed over FILE only after every
 *                       byte was written and flushed, so a reader (a CI step)
 *                       never sees half a report and a failed write (ENOSPC)
 *                       leaves the old FILE as it was.  A new file gets
 *                       0666 & ~umask (the kernel applies the umask); an
 *                       existing one keeps its mode, and its owner and group
 *                       where we may set them.
 *   a symbolic link     followed to its target, which gets the treatment of
 *                       its own type; the link itself is never replaced.
 *   a character device, written in place (renaming over /dev/null as root
 *   a FIFO              would replace the system's /dev/null with a file).
 *                       A FIFO is opened non-blocking first: no reader is an
 *                       error ("no reader"), not a hang.
 *   anything else       (directory, socket, block device) refused.
 *
 * Redirection starts just before rendering, so `run` leaves the traced
 * command's own stdout alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <limits.h>

#include "output.h"
#include "util.h"

enum out_mode { OUT_NONE = 0, OUT_STDOUT, OUT_ATOMIC, OUT_IN_PLACE };

static enum out_mode g_mode;
static char g_shown[PATH_MAX];      /* FILE as given: for messages */
static char g_target[PATH_MAX];     /* FILE with symlinks resolved: renamed over */
static char g_tmp[PATH_MAX + 32];
static int g_saved_stdout = -1;

static int out_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int out_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * resolve_links - follow symlinks in the last component of path (up to 40,
 * like the kernel) into out.  A dangling link resolves to the missing target,
 * which will then be created.  Returns 0 with *st filled (st->st_mode == 0
 * when nothing exists there), or -1 with err set.
 */
static int resolve_links(const char *path, char *out, size_t outlen, struct stat *st, char *err, size_t errlen)
{
	if (snprintf(out, outlen, "%s", path) >= (int)outlen)
		return out_fail(err, errlen, "cannot write %s: path too long", path);
	for (int hops = 0; hops < 40; hops++) {
		if (lstat(out, st) != 0) {
			if (errno != ENOENT)
				return out_fail(err, errlen, "cannot write %s: %s", path, strerror(errno));
			memset(st, 0, sizeof *st);
			return 0;
		}
		if (!S_ISLNK(st->st_mode))
			return 0;
		char link[PATH_MAX];
		ssize_t n = readlink(out, link, sizeof link - 1);
		if (n < 0)
			return out_fail(err, errlen, "cannot write %s: %s", path, strerror(errno));
		link[n] = '\0';
		char next[PATH_MAX];
		if (link[0] == '/') {
			snprintf(next, sizeof next, "%s", link);
		} else {
			char d[PATH_MAX];
			snprintf(d, sizeof d, "%s", out);
			if ((size_t)snprintf(next, sizeof next, "%s/%s", dirname(d), link) >= sizeof next)
				return out_fail(err, errlen, "cannot write %s: path too long", path);
		}
		snprintf(out, outlen, "%s", next);
	}
	return out_fail(err, errlen, "cannot write %s: %s", path, strerror(ELOOP));
}

/* open_temp - a new file beside target: ".<name>.<random>", created with `mode` (umask applies). */
static int open_temp(const char *target, mode_t mode)
{
	char d[PATH_MAX], b[PATH_MAX];
	snprintf(d, sizeof d, "%s", target);
	snprintf(b, sizeof b, "%s", target);
	const char *dir = dirname(d), *base = basename(b);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	unsigned long x = (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 16);
	for (int tries = 0; tries < 100; tries++) {
		x = x * 6364136223846793005ul + 1442695040888963407ul;
		if ((size_t)snprintf(g_tmp, sizeof g_tmp, "%s/.%s.%06lx", dir, base, (x >> 40) & 0xffffff) >=
		    sizeof g_tmp) {
			errno = ENAMETOOLONG;
			return -1;
		}
		int fd = open(g_tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1;
}

/* open_in_place - a character device or a FIFO, opened for writing without blocking. */
static int open_in_place(const char *target, const struct stat *st, char *err, size_t errlen)
{
	int fd = open(target, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENXIO && S_ISFIFO(st->st_mode))
			return out_fail(err, errlen, "cannot write %s: FIFO has no reader", g_shown);
		return out_fail(err, errlen, "cannot write %s: %s", g_shown, strerror(errno));
	}
	struct stat now;
	/* the name may have been swapped between lstat and open */
	if (fstat(fd, &now) != 0 || (!S_ISCHR(now.st_mode) && !S_ISFIFO(now.st_mode))) {
		close(fd);
		return out_fail(err, errlen, "cannot write %s: changed while being opened", g_shown);
	}
	/* a reader is there: from now on a full pipe waits for it, as a shell's `>` does */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		return out_fail(err, errlen, "cannot write %s: %s", g_shown, strerror(e));
	}
	return fd;
}

int lw_output_begin(const char *path, char *err, size_t errlen)
{
	g_mode = OUT_NONE;
	if (!path)
		return 0;
	if (strcmp(path, "-") == 0) {
		g_mode = OUT_STDOUT;
		return 0;
	}
	if (!*path)
		return out_fail(err, errlen, "--output: empty file name");
	snprintf(g_shown, sizeof g_shown, "%s", path);
	struct stat st;
	if (resolve_links(path, g_target, sizeof g_target, &st, err, errlen) < 0)
		return -1;

	int fd;
	enum out_mode mode;
	if (st.st_mode == 0 || S_ISREG(st.st_mode)) {
		mode = OUT_ATOMIC;
		fd = open_temp(g_target, st.st_mode == 0 ? 0666 : 0600);
		if (fd < 0) {
			char d[PATH_MAX];
			snprintf(d, sizeof d, "%s", g_target);
			return out_fail(err, errlen, "cannot write %s: cannot create a file in %s: %s", g_shown,
					dirname(d), strerror(errno));
		}
		if (st.st_mode != 0) {
			/* owner first: fchown() clears set-id bits that fchmod() then restores */
			if (fchown(fd, st.st_uid, st.st_gid) != 0 && fchown(fd, (uid_t)-1, st.st_gid) != 0) {
				/* not ours to give away: the new file stays ours */
			}
			if (fchmod(fd, st.st_mode & 07777) != 0) {
				int e = errno;
				close(fd);
				unlink(g_tmp);
				return out_fail(err, errlen, "cannot write %s: %s", g_shown, strerror(e));
			}
		}
	} else if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
		mode = OUT_IN_PLACE;
		fd = open_in_place(g_target, &st, err, errlen);
		if (fd < 0)
			return -1;
	} else if (S_ISDIR(st.st_mode)) {
		return out_fail(err, errlen, "cannot write %s: is a directory", g_shown);
	} else {
		return out_fail(err, errlen, "cannot write %s: is a %s (refused)", g_shown,
				S_ISSOCK(st.st_mode) ? "socket" : S_ISBLK(st.st_mode) ? "block device" : "special file");
	}

	fflush(stdout);
	g_saved_stdout = dup(STDOUT_FILENO);
	if (g_saved_stdout < 0 || dup2(fd, STDOUT_FILENO) < 0) {
		int e = errno;
		if (g_saved_stdout >= 0)
			close(g_saved_stdout);
		g_saved_stdout = -1;
		close(fd);
		if (mode == OUT_ATOMIC)
			unlink(g_tmp);
		return out_fail(err, errlen, "cannot redirect output: %s", strerror(e));
	}
	close(fd);
	g_mode = mode;
	return 0;
}

int lw_output_end(int ok)
{
	enum out_mode mode = g_mode;
	g_mode = OUT_NONE;
	if (mode == OUT_NONE)
		return 0;
	if (mode == OUT_STDOUT) {
		if (fflush(stdout) != 0 || ferror(stdout)) {
			fprintf(stderr, "leakwatch: write error on stdout: %s\n", strerror(errno));
			clearerr(stdout); /* said once, here */
			return -1;
		}
		return 0;
	}

	int rc = 0;
	errno = 0;
	int bad = fflush(stdout) != 0 || ferror(stdout);
	/* a device (/dev/null, a tty) may not support fsync: only files are synced */
	if (!bad && mode == OUT_ATOMIC && fsync(STDOUT_FILENO) != 0)
		bad = 1;
	if (bad) {
		fprintf(stderr, "leakwatch: write error on %s: %s\n", g_shown,
			strerror(errno ? errno : EIO));
		ok = 0;
		rc = -1;
	}
	dup2(g_saved_stdout, STDOUT_FILENO);
	close(g_saved_stdout);
	g_saved_stdout = -1;
	clearerr(stdout);
	if (mode == OUT_ATOMIC) {
		if (ok && rename(g_tmp, g_target) != 0) {
			fprintf(stderr, "leakwatch: cannot write %s: %s\n", g_shown, strerror(errno));
			rc = -1;
			ok = 0;
		}
		if (!ok)
			unlink(g_tmp);
	}
	return rc;
}
