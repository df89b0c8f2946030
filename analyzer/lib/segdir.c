/* SPDX-License-Identifier: MIT */
/*
 * segdir.c — where segments live, which one a `report` argument means, and
 * whether the process a segment describes is still that process.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segdir.h"

const char *lw_segment_dir(void)
{
	const char *d = getenv("LEAKWATCH_DIR");
	return d && *d ? d : LW_DEFAULT_DIR;
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

int lw_segment_name_pid(const char *name, int *archived)
{
	size_t plen = strlen(LW_SEGMENT_PREFIX);
	if (strncmp(name, LW_SEGMENT_PREFIX, plen) != 0)
		return -1;
	const char *p = name + plen;
	long pid = 0;
	const char *q = p;
	while (isdigit((unsigned char)*q) && q - p < 10) {
		pid = pid * 10 + (*q - '0');
		q++;
	}
	if (q == p || pid <= 0 || pid > INT32_MAX)
		return -1;
	if (*q == '\0') {
		*archived = 0;
		return (int)pid;
	}
	if (*q == '.' && q[1] != '\0') {
		*archived = 1;
		return (int)pid;
	}
	return -1;
}

static int segref_cmp(const void *a, const void *b)
{
	const struct lw_segref *x = a, *y = b;
	if (x->pid != y->pid)
		return (x->pid > y->pid) - (x->pid < y->pid);
	if (x->archived != y->archived)
		return x->archived - y->archived;
	return strcmp(x->path, y->path);
}

int lw_segments_list(const char *dir, struct lw_segref **out, char *err, size_t errlen)
{
	*out = NULL;
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	struct lw_segref *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		int archived;
		int pid = lw_segment_name_pid(de->d_name, &archived);
		if (pid < 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct lw_segref *nv = realloc(v, ncap * sizeof *nv);
			if (!nv) {
				free(v);
				closedir(d);
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			v = nv;
			cap = ncap;
		}
		snprintf(v[n].path, sizeof v[n].path, "%s/%s", dir, de->d_name);
		v[n].pid = pid;
		v[n].archived = archived;
		n++;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof *v, segref_cmp);
	*out = v;
	return (int)n;
}

int lw_segment_resolve(const char *arg, char *out, size_t outlen, char *err, size_t errlen)
{
	struct stat st;
	if (strchr(arg, '/') || lstat(arg, &st) == 0) {
		/* A path; snapshot.c explains what is wrong with it if anything. */
		snprintf(out, outlen, "%s", arg);
		return 0;
	}
	if (!all_digits(arg) || strlen(arg) > 9 || atoi(arg) <= 0) {
		snprintf(err, errlen, "not a pid or a segment file");
		return -1;
	}
	int pid = atoi(arg);
	const char *dir = lw_segment_dir();
	snprintf(out, outlen, "%s/" LW_SEGMENT_PREFIX "%d", dir, pid);
	if (lstat(out, &st) == 0)
		return 0;
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/%d", pid);
	if (stat(proc, &st) == 0)
		snprintf(err, errlen,
			 "process %d is running but is not traced by leakwatch (no %s/" LW_SEGMENT_PREFIX "%d)",
			 pid, dir, pid);
	else
		snprintf(err, errlen, "no process %d and no segment for it", pid);
	return -1;
}

int lw_segment_remove(const struct lw_snapshot *s)
{
	struct stat st;
	/* lstat: a symlink put in its place is a different inode, never followed */
	if (lstat(s->path, &st) != 0)
		return -1;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_dev != s->file_dev || (uint64_t)st.st_ino != s->file_ino) {
		errno = ESTALE;
		return -1;
	}
	/*
	 * Between the lstat and the unlink another file could take the name only
	 * if its owner can rename over it; in a sticky directory (/dev/shm) that
	 * is the owner of this file, who may remove it anyway.
	 */
	return unlink(s->path);
}

int lw_proc_uids(int pid, uint32_t *ruid, uint32_t *euid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int found = 0;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned r, e;
		if (sscanf(line, "Uid: %u %u", &r, &e) == 2) {
			*ruid = r;
			*euid = e;
			found = 1;
		}
	}
	fclose(f);
	return found ? 0 : -1;
}

int lw_proc_start_ticks(int pid, uint64_t *ticks)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* comm (field 2) may contain spaces and ')': count fields after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	/* after ')' comes field 3; field 22 is the 20th token from here */
	char *save = NULL, *tok = strtok_r(p, " ", &save);
	for (int field = 3; tok && field < 22; field++)
		tok = strtok_r(NULL, " ", &save);
	if (!tok || !isdigit((unsigned char)*tok))
		return -1;
	*ticks = strtoull(tok, NULL, 10);
	return 0;
}

enum lw_live lw_snapshot_live(const struct lw_snapshot *s)
{
	if (s->state == LW_STATE_EXITED)
		return LW_LIVE_EXITED;
	if (s->state == LW_STATE_EXECED)
		return LW_LIVE_EXECED;
	uint64_t ticks;
	if (s->hdr.pid <= 0 || lw_proc_start_ticks(s->hdr.pid, &ticks) < 0 ||
	    !lw_start_ticks_match(&s->hdr, ticks))
		return LW_LIVE_DEAD;
	return s->state == LW_STATE_DISABLED ? LW_LIVE_DISABLED : LW_LIVE_ALIVE;
}

const char *lw_live_name(enum lw_live l)
{
	switch (l) {
	case LW_LIVE_ALIVE: return "alive";
	case LW_LIVE_EXITED: return "exited";
	case LW_LIVE_EXECED: return "execed";
	case LW_LIVE_DEAD: return "dead";
	case LW_LIVE_DISABLED: return "disabled";
	}
	return "?";
}

/* ---- the image's clock: the age reference of a snapshot ---- */

static uint64_t monotonic_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* The latest time the segment shows the process doing anything: last_active_ns and the
 * newest time in any record.  0 when there is none. */
static uint64_t snapshot_last_seen(const struct lw_snapshot *s)
{
	uint64_t t = s->hdr.last_active_ns;
	for (size_t i = 0; i < s->nhandles; i++) {
		const struct lw_handle *h = &s->handles[i].h;
		t = max_u64(t, max_u64(max_u64(h->open_ns, h->connect_ns), max_u64(h->last_use_ns, h->close_ns)));
	}
	for (size_t i = 0; i < s->nallocs; i++)
		t = max_u64(t, s->allocs[i].ns);
	for (size_t i = 0; i < s->nbadcloses; i++)
		t = max_u64(t, s->badcloses[i].ns);
	for (size_t i = 0; i < s->nmodules; i++)
		t = max_u64(t, max_u64(s->modules[i].load_ns, s->modules[i].unload_ns));
	return t;
}

int lw_snapshot_end_lower_bound(const struct lw_snapshot *s, enum lw_live live)
{
	return live != LW_LIVE_ALIVE && live != LW_LIVE_DISABLED && s->hdr.end_monotonic_ns == 0;
}

uint64_t lw_snapshot_now(const struct lw_snapshot *s, enum lw_live live)
{
	if (live == LW_LIVE_ALIVE || live == LW_LIVE_DISABLED)
		return monotonic_now();
	if (s->hdr.end_monotonic_ns)
		return s->hdr.end_monotonic_ns;
	/*
	 * Killed (SIGKILL: no exit path ran): the latest thing the shim recorded.
	 * The file's mtime is no help: tmpfs stamps a shared mapping only when a
	 * page is first dirtied.  Never later than now (a hostile record).
	 */
	uint64_t now = monotonic_now(), seen = snapshot_last_seen(s);
	if (seen > s->hdr.start_monotonic_ns)
		return seen < now ? seen : now;
	/* Nothing recorded at all (an older shim): the last write to the file. */
	uint64_t mt = (uint64_t)s->mtime.tv_sec * 1000000000ull + (uint64_t)s->mtime.tv_nsec;
	if (s->hdr.start_realtime_ns && mt >= s->hdr.start_realtime_ns)
		return s->hdr.start_monotonic_ns + (mt - s->hdr.start_realtime_ns);
	return now;
}
