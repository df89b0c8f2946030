/* SPDX-License-Identifier: MIT */
/*
 * output.c — `--output FILE`: the report goes to FILE, complete or not at all.
 *
 * stdout is pointed at a temporary file next to FILE and renamed over FILE
 * only after every byte was written and flushed, so a reader (a CI step)
 * never sees a half-written report.  Redirection starts just before
 * rendering, so `run` leaves the traced command's own stdout alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analyzer.h"

static char g_target[PATH_MAX];
static char g_tmp[PATH_MAX + 16];
static int g_saved_stdout = -1;

int lw_output_begin(const char *path, char *err, size_t errlen)
{
	if (!path)
		return 0;
	if (snprintf(g_target, sizeof g_target, "%s", path) >= (int)sizeof g_target) {
		snprintf(err, errlen, "output path too long");
		return -1;
	}
	snprintf(g_tmp, sizeof g_tmp, "%s.XXXXXX", path);
	int fd = mkstemp(g_tmp);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", g_tmp, strerror(errno));
		return -1;
	}
	fchmod(fd, 0644 & ~umask(umask(0)));
	fflush(stdout);
	g_saved_stdout = dup(STDOUT_FILENO);
	if (g_saved_stdout < 0 || dup2(fd, STDOUT_FILENO) < 0) {
		snprintf(err, errlen, "cannot redirect output: %s", strerror(errno));
		close(fd);
		unlink(g_tmp);
		return -1;
	}
	close(fd);
	return 0;
}

int lw_output_end(int ok)
{
	int rc = 0;
	if (g_saved_stdout < 0)
		return 0;
	if (fflush(stdout) != 0 || ferror(stdout) || fsync(STDOUT_FILENO) != 0) {
		fprintf(stderr, "leakwatch: write error on %s: %s\n", g_target, strerror(errno));
		ok = 0;
		rc = -1;
	}
	dup2(g_saved_stdout, STDOUT_FILENO);
	close(g_saved_stdout);
	g_saved_stdout = -1;
	clearerr(stdout);
	if (ok && rename(g_tmp, g_target) != 0) {
		fprintf(stderr, "leakwatch: cannot write %s: %s\n", g_target, strerror(errno));
		rc = -1;
		ok = 0;
	}
	if (!ok)
		unlink(g_tmp);
	return rc;
}
