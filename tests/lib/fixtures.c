/* SPDX-License-Identifier: MIT */
/* fixtures.c — binaries, markers, temp dirs, a dead pid (see fixtures.h). */
#include "fixtures.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

const char *lw_bin(void)
{
	return LW_BUILD_DIR "/leakwatch";
}

const char *lw_shim(void)
{
	return LW_BUILD_DIR "/libleakwatch.so";
}

int marker_line(const char *relpath, const char *name)
{
	char path[1024], line[1024], tag[256];
	snprintf(path, sizeof path, "%s/%s", LW_SOURCE_DIR, relpath);
	snprintf(tag, sizeof tag, "LW-MARK: %s", name);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int n = 0, found = 0;
	while (fgets(line, sizeof line, f)) {
		n++;
		const char *at = strstr(line, tag);
		/* the name must end there: "x.a" must not match "x.ab" */
		if (at && (at[strlen(tag)] == ' ' || at[strlen(tag)] == '\n' || at[strlen(tag)] == '\0')) {
			found = n;
			break;
		}
	}
	fclose(f);
	return found;
}

int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0, n;
	char *buf = malloc(cap);
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (len + 1 >= cap)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static int pid_exists(int pid)
{
	char path[32];
	snprintf(path, sizeof path, "/proc/%d", pid);
	return access(path, F_OK) == 0 || kill(pid, 0) == 0 || errno != ESRCH;
}

int lw_dead_pid(void)
{
	static int pid;
	if (pid)
		return pid;
	long max = 32768;
	FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 32768;
		fclose(f);
	}
	for (long p = max - 1; p > 300; p--)
		if (!pid_exists((int)p)) {
			pid = (int)p;
			return pid;
		}
	abort(); /* every pid taken: nothing sensible to test with */
}

const char *lw_dead_pid_str(void)
{
	static char s[16];
	snprintf(s, sizeof s, "%d", lw_dead_pid());
	return s;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
const char *lw_pidfmt(const char *fmt)
{
	static char bufs[8][512];
	static unsigned next;
	char *b = bufs[next++ % 8];
	snprintf(b, sizeof bufs[0], fmt, lw_dead_pid());
	return b;
}
#pragma GCC diagnostic pop

void lw_tmpdir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/lw-analyzer-test.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	chmod(dir, 0755);
}

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

int tmpfs_dir(char *dir, size_t len, const char *tag)
{
	if (geteuid() == 0) {
		snprintf(dir, len, "/tmp/lw-%s.XXXXXX", tag);
		if (mkdtemp(dir)) {
			if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=1g,mode=0755") == 0)
				return 0;
			rmdir(dir);
		}
	}
	struct statfs f;
	if (statfs("/dev/shm", &f) != 0 || f.f_type != TMPFS_MAGIC)
		return -1;
	snprintf(dir, len, "/dev/shm/lw-%s.XXXXXX", tag);
	if (!mkdtemp(dir))
		return -1;
	chmod(dir, 0755);
	return 0;
}

void tmpfs_dir_release(const char *dir)
{
	struct statfs f;
	char parent[PATH_MAX];
	snprintf(parent, sizeof parent, "%s/..", dir);
	/* ours when it is a mount point of its own: a tmpfs that /tmp is not */
	struct stat a, b;
	if (stat(dir, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev && statfs(dir, &f) == 0 &&
	    f.f_type == TMPFS_MAGIC && strncmp(dir, "/tmp/lw-", 8) == 0)
		umount2(dir, MNT_DETACH);
	if (rm_rf(dir) != 0) {
		/* leftovers are harmless: private names */
	}
}

static int range_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct obj_range *r = arg;
	(void)size;
	if (r->want && !strstr(info->dlpi_name, r->want))
		return 0;
	snprintf(r->path, sizeof r->path, "%s", info->dlpi_name);
	r->base = info->dlpi_addr;
	r->start = UINT64_MAX;
	r->end = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uint64_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (lo < r->start)
			r->start = lo;
		if (hi > r->end)
			r->end = hi;
	}
	r->found = 1;
	return 1;
}

int loaded_object(const char *want, struct obj_range *r)
{
	memset(r, 0, sizeof *r);
	r->want = want;
	dl_iterate_phdr(range_cb, r);
	return r->found;
}

struct lib_query {
	const char *soname;
	char path[PATH_MAX];
};

static int find_lib(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	struct lib_query *q = data;
	const char *base = strrchr(info->dlpi_name, '/');
	if (base && strcmp(base + 1, q->soname) == 0) {
		snprintf(q->path, sizeof q->path, "%s", info->dlpi_name);
		return 1;
	}
	return 0;
}

const char *loaded_lib_path(const char *soname)
{
	static struct lib_query q;
	if (!dlopen(soname, RTLD_LAZY)) /* kept open: the path stays valid */
		return NULL;
	q.soname = soname;
	q.path[0] = '\0';
	dl_iterate_phdr(find_lib, &q);
	return q.path[0] ? q.path : NULL;
}

char suite_dir[64];

void suite_dir_setup(void)
{
	lw_tmpdir(suite_dir, sizeof suite_dir);
}

void suite_dir_teardown(void)
{
	lw_rmdir(suite_dir);
}

void suite_segdir_setup(void)
{
	suite_dir_setup();
	setenv("LEAKWATCH_DIR", suite_dir, 1);
}

void suite_segdir_teardown(void)
{
	unsetenv("LEAKWATCH_DIR");
	suite_dir_teardown();
}

int rm_rf(const char *path)
{
	struct cmd_result r;
	run_cmd(&r, (char *const[]){ "rm", "-rf", "--", (char *)path, NULL }, NULL, 60);
	int st = r.status;
	cmd_result_free(&r);
	return st;
}

int have_program(const char *prog)
{
	struct cmd_result r;
	run_cmd(&r, (char *const[]){ "sh", "-c", "command -v \"$1\"", "sh", (char *)prog, NULL }, NULL, 30);
	int st = r.status;
	cmd_result_free(&r);
	return st == 0;
}

void lw_rmdir(const char *dir)
{
	if (strncmp(dir, "/tmp/lw-analyzer-test.", 22) != 0)
		return;
	if (rm_rf(dir) != 0) {
		/* leftovers in /tmp are harmless */
	}
}

void lw_run_timed(struct cmd_result *r, char *const env[], const char *const *opts, const char *const *cmd,
		  int timeout_s)
{
	const char *argv[96];
	int n = 0;
	argv[n++] = lw_bin();
	argv[n++] = "run";
	for (int i = 0; opts && opts[i] && n < 60; i++)
		argv[n++] = opts[i];
	argv[n++] = "--";
	for (int i = 0; cmd[i] && n < 94; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	run_cmd(r, (char *const *)argv, env, timeout_s);
}

char *run_report(struct cmd_result *r, char *const env[], const char *const *opts, const char *const *cmd)
{
	char out[] = "/tmp/lw-report-XXXXXX";
	int fd = mkstemp(out);
	if (fd >= 0)
		close(fd);
	const char *all[64] = { "--format", "json", "--output", out };
	int n = 4;
	for (int i = 0; opts && opts[i] && n < 63; i++)
		all[n++] = opts[i];
	all[n] = NULL;
	lw_run_timed(r, env, all, cmd, 120);
	char *text = slurp(out);
	unlink(out);
	return text;
}

static void copy_out(char *dst, size_t len, const char *src, size_t n)
{
	if (n > len - 1)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int cli_run_opts(const char *const *args, const struct spawn_opts *o, char *out, size_t outlen, char *err,
		 size_t errlen)
{
	const char *bin = lw_bin();
	char copy[64] = "", target[96];
	struct cmd_result c;
	if (o && o->set_uid) {
		/* the build tree may sit where the other user cannot reach it
		 * (a clone under /root): run a world-readable copy */
		snprintf(copy, sizeof copy, "/tmp/lw-cli-%d", (int)getpid());
		snprintf(target, sizeof target, "%s/leakwatch", copy);
		run_cmd(&c, (char *const[]){ "sh", "-c", "mkdir -p -m 755 \"$1\" && cp \"$2\" \"$3\" && chmod 755 \"$3\"",
					    "sh", copy, (char *)bin, target, NULL },
			NULL, 60);
		int ok = c.status == 0;
		cmd_result_free(&c);
		if (!ok)
			return -1;
		bin = target;
	}
	const char *argv[32];
	size_t n = 0;
	argv[n++] = bin;
	for (; args[n - 1] && n < 31; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	struct cmd_result r;
	run_opts(&r, (char *const *)argv, o);
	copy_out(out, outlen, r.out, r.out_len);
	copy_out(err, errlen, r.err, r.err_len);
	int rc = r.signal || r.timed_out || r.status < 0 ? -1 : r.status;
	cmd_result_free(&r);
	if (copy[0]) {
		run_cmd(&c, (char *const[]){ "rm", "-rf", copy, NULL }, NULL, 60);
		if (c.status != 0)
			rc = -1;
		cmd_result_free(&c);
	}
	return rc;
}

int cli_run(const char *const *args, uid_t as_uid, char *out, size_t outlen, char *err, size_t errlen)
{
	struct spawn_opts o = { .set_uid = as_uid != (uid_t)-1, .uid = as_uid };
	return cli_run_opts(args, &o, out, outlen, err, errlen);
}
