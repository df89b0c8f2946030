/* SPDX-License-Identifier: MIT */
/*
 * cmd_attach.c — `leakwatch attach PID` and `leakwatch detach PID`: bring
 * the shim into a running, dynamically linked process without restarting
 * it, and stop it again.
 *
 * attach: preflight (one line and a status of its own for each reason it
 * cannot work), then borrow one thread (inject.c) to call the target's own
 * dlopen() on libleakwatch.so and the shim's leakwatch_attach(), which
 * records what is open (as "before attach") and takes over the calls the
 * program's modules bound already (preload/attach.c).  detach: the same
 * thread borrowing, to call leakwatch_detach(): the original call sites
 * come back; the shim stays loaded (unloading code other threads may be
 * running would risk the host).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "inject.h"
#include "leakwatch/segment.h"
#include "names.h"
#include "segdir.h"

/* attach/detach exit statuses: one per reason (README, --help) */
enum {
	AT_EXIT_PTRACE_SCOPE = 4,       /* kernel.yama.ptrace_scope forbids it */
	AT_EXIT_NO_CAP = 5,             /* another user's process, no CAP_SYS_PTRACE */
	AT_EXIT_TRACED = 6,             /* another tracer (a debugger, strace) holds it */
	AT_EXIT_STATIC = 7,             /* statically linked, no dlopen in libc, other arch */
	AT_EXIT_MNTNS = 8,              /* another mount namespace without the shim in it */
	AT_EXIT_SECCOMP = 9,            /* a seccomp filter may forbid the calls we need */
	AT_EXIT_ALREADY = 10,           /* attach: traced by leakwatch already; detach: not attached */
	AT_EXIT_INJECT = 11,            /* the injection or the shim's start failed */
};

struct attach_options {
	int timeout_ms;                 /* --timeout MS: how long to wait for a safe point */
	int seccomp_ok;                 /* --seccomp-filter-ok: try under a seccomp filter */
};

static const struct attach_options attach_defaults = { .timeout_ms = 2000 };

static const struct lw_option attach_options_table[] = {
	{ "timeout", LW_OPT_INT, LW_ARG_REQUIRED, offsetof(struct attach_options, timeout_ms), "MS",
	  "wait up to MS milliseconds for a thread to reach a safe point\n(blocked in read, poll, accept, sleep...; default 2000)",
	  10, 600000, 0, "bad --timeout '*' (10 to 600000 ms)", NULL },
	{ "seccomp-filter-ok", LW_OPT_FLAG, LW_ARG_NONE, offsetof(struct attach_options, seccomp_ok), NULL,
	  "attach even though the process runs under a seccomp filter\n(it must allow mmap, openat, mprotect, ftruncate, fallocate)",
	  0, 0, 0, NULL, NULL },
};

const struct lw_command_spec lw_attach_spec = { "attach", LW_CMD_ONE_ARG, "PID", attach_options_table,
						sizeof attach_options_table / sizeof attach_options_table[0] };

static const struct lw_option detach_options_table[] = {
	{ "timeout", LW_OPT_INT, LW_ARG_REQUIRED, offsetof(struct attach_options, timeout_ms), "MS",
	  "wait up to MS milliseconds for a thread to reach a safe point\n(default 2000)", 10, 600000, 0,
	  "bad --timeout '*' (10 to 600000 ms)", NULL },
};

const struct lw_command_spec lw_detach_spec = { "detach", LW_CMD_ONE_ARG, "PID", detach_options_table,
						sizeof detach_options_table / sizeof detach_options_table[0] };

/* A "Key:\tvalue" line of /proc/PID/status as a long (-1: absent). */
static long status_field(int pid, const char *key, char *text, size_t len)
{
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "re");
	long v = -1;
	if (!f)
		return -1;
	size_t kl = strlen(key);
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			char *p = line + kl + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			p[strcspn(p, "\n")] = '\0';
			if (text)
				snprintf(text, len, "%s", p);
			v = strtol(p, NULL, 0);
			break;
		}
	fclose(f);
	return v;
}

static void comm_of(int pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/comm", pid);
	FILE *f = fopen(path, "re");
	buf[0] = '\0';
	if (f) {
		if (fgets(buf, (int)len, f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
}

/* Is a mapping of pid's named like `prefix` (basename)?  Its path in *path. */
static int has_mapping(int pid, const char *prefix, char *path, size_t len)
{
	char mp[64], line[4096 + 128];
	snprintf(mp, sizeof mp, "/proc/%d/maps", pid);
	FILE *f = fopen(mp, "re");
	if (!f)
		return 0;
	int yes = 0;
	while (!yes && fgets(line, sizeof line, f)) {
		char *p = strchr(line, '/');
		if (!p)
			continue;
		p[strcspn(p, "\n")] = '\0';
		const char *b = strrchr(p, '/') + 1;
		if (strncmp(b, prefix, strlen(prefix)) == 0) {
			yes = 1;
			if (path)
				snprintf(path, len, "%s", p);
		}
	}
	fclose(f);
	return yes;
}

static int have_cap_sys_ptrace(void)
{
	char caps[64];
	if (status_field(getpid(), "CapEff", caps, sizeof caps) < 0 && !caps[0])
		return 0;
	unsigned long long v = strtoull(caps, NULL, 16);
	return (v >> 19) & 1; /* CAP_SYS_PTRACE */
}

static int read_int_file(const char *path, int def)
{
	FILE *f = fopen(path, "re");
	int v = def;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = def;
		fclose(f);
	}
	return v;
}

/* Is `anc` an ancestor of pid (Yama scope 1 lets a process trace its descendants)? */
static int is_ancestor(int anc, int pid)
{
	for (int i = 0; i < 64 && pid > 1; i++) {
		long pp = status_field(pid, "PPid", NULL, 0);
		if (pp < 0)
			return 0;
		if (pp == anc)
			return 1;
		pid = (int)pp;
	}
	return 0;
}

/*
 * The checks both commands share: the process exists, ptrace will be
 * allowed, nobody else traces it, it is a dynamically linked process of
 * our architecture.  0, or an exit status with the line printed.
 */
static int preflight_common(const char *cmd, int pid, const char *name)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d", pid);
	if (access(path, F_OK) != 0) {
		fprintf(stderr, "leakwatch: %s: no process %d\n", cmd, pid);
		return LW_EXIT_USAGE;
	}
	if (pid == getpid()) {
		fprintf(stderr, "leakwatch: %s: pid %d is leakwatch itself\n", cmd, pid);
		return LW_EXIT_USAGE;
	}
	int root = geteuid() == 0 || have_cap_sys_ptrace();
	long uid = -1;
	char uids[128] = "";
	if (status_field(pid, "Uid", uids, sizeof uids) >= 0) {
		/* real, effective, saved, fs: ptrace needs ours to match all */
		unsigned long u[4] = { 0 };
		if (sscanf(uids, "%lu %lu %lu %lu", &u[0], &u[1], &u[2], &u[3]) == 4) {
			uid = (long)u[1];
			for (int i = 0; i < 4; i++)
				if (u[i] != (unsigned long)getuid() && !root) {
					fprintf(stderr,
						"leakwatch: %s: pid %d (%s) runs as uid %lu: tracing another user's process needs root (CAP_SYS_PTRACE)\n",
						cmd, pid, name, u[i]);
					return AT_EXIT_NO_CAP;
				}
		}
	}
	(void)uid;
	int scope = read_int_file("/proc/sys/kernel/yama/ptrace_scope", 0);
	if (scope == 3) {
		fprintf(stderr, "leakwatch: %s: kernel.yama.ptrace_scope is 3: no process may be traced until reboot\n",
			cmd);
		return AT_EXIT_PTRACE_SCOPE;
	}
	if (scope == 2 && !root) {
		fprintf(stderr, "leakwatch: %s: kernel.yama.ptrace_scope is 2: only root (CAP_SYS_PTRACE) may trace; run as root\n",
			cmd);
		return AT_EXIT_PTRACE_SCOPE;
	}
	if (scope == 1 && !root && !is_ancestor(getpid(), pid)) {
		fprintf(stderr,
			"leakwatch: %s: kernel.yama.ptrace_scope is 1: only root or an ancestor may trace pid %d (sudo, or sysctl kernel.yama.ptrace_scope=0)\n",
			cmd, pid);
		return AT_EXIT_PTRACE_SCOPE;
	}
	long tracer = status_field(pid, "TracerPid", NULL, 0);
	if (tracer > 0) {
		char tn[64];
		comm_of((int)tracer, tn, sizeof tn);
		fprintf(stderr, "leakwatch: %s: pid %d (%s) is traced by pid %ld (%s) already: detach it first\n", cmd, pid,
			name, tracer, tn[0] ? tn : "?");
		return AT_EXIT_TRACED;
	}
	/* a static binary maps no loader; a 32-bit one another */
	char exe[64];
	snprintf(exe, sizeof exe, "/proc/%d/exe", pid);
	int fd = open(exe, O_RDONLY | O_CLOEXEC);
	unsigned char id[20] = { 0 };
	if (fd >= 0) {
		if (read(fd, id, sizeof id) != (ssize_t)sizeof id)
			memset(id, 0, sizeof id);
		close(fd);
	}
	if (id[0] == 0x7f && id[1] == 'E' && (id[4] != 2 /* ELFCLASS64 */ || id[18] != 62 /* EM_X86_64 */)) {
		fprintf(stderr, "leakwatch: %s: pid %d (%s) is not an x86_64 program\n", cmd, pid, name);
		return AT_EXIT_STATIC;
	}
	if (!has_mapping(pid, "ld-linux", NULL, 0) && !has_mapping(pid, "ld-2.", NULL, 0)) {
		fprintf(stderr, "leakwatch: %s: pid %d (%s) is statically linked (no dynamic loader): the shim cannot be loaded\n",
			cmd, pid, name);
		return AT_EXIT_STATIC;
	}
	return 0;
}

static int seccomp_check(const char *cmd, int pid, const char *name, int ok)
{
	long mode = status_field(pid, "Seccomp", NULL, 0);
	if (mode == 1) {
		fprintf(stderr, "leakwatch: %s: pid %d (%s) runs in seccomp strict mode: only read, write and exit are allowed\n",
			cmd, pid, name);
		return AT_EXIT_SECCOMP;
	}
	if (mode == 2 && !ok) {
		fprintf(stderr,
			"leakwatch: %s: pid %d (%s) runs under a seccomp filter that may forbid what loading the shim needs (mmap, openat, mprotect, ftruncate, fallocate); --seccomp-filter-ok to try\n",
			cmd, pid, name);
		return AT_EXIT_SECCOMP;
	}
	return 0;
}

/* The shim as the target sees it: the same file at the same path in its mount namespace. */
static int shim_visible(const char *cmd, int pid, const char *name, const char *shim)
{
	char self_ns[128] = "", its_ns[128] = "", p[64];
	snprintf(p, sizeof p, "/proc/%d/ns/mnt", pid);
	ssize_t a = readlink("/proc/self/ns/mnt", self_ns, sizeof self_ns - 1);
	ssize_t b = readlink(p, its_ns, sizeof its_ns - 1);
	if (a < 0 || b < 0)
		return 0; /* cannot tell: dlopen's own error will */
	self_ns[a] = its_ns[b] = '\0';
	if (strcmp(self_ns, its_ns) == 0)
		return 0;
	char there[PATH_MAX + 64];
	snprintf(there, sizeof there, "/proc/%d/root%s", pid, shim);
	struct stat s1, s2;
	if (stat(shim, &s1) == 0 && stat(there, &s2) == 0 && s1.st_dev == s2.st_dev && s1.st_ino == s2.st_ino)
		return 0;
	fprintf(stderr,
		"leakwatch: %s: pid %d (%s) is in another mount namespace where %s is not the same file: install the shim inside it (or bind-mount it) and set LEAKWATCH_SHIM\n",
		cmd, pid, name, shim);
	return AT_EXIT_MNTNS;
}

static const char *attach_error(int rc)
{
	switch (rc) {
	case LW_ATTACH_E_PRELOADED: return "traced by leakwatch already: the shim was preloaded";
	case LW_ATTACH_E_ATTACHED: return "traced by leakwatch already: attached";
	case LW_ATTACH_E_DISABLED: return "has the shim disabled (LEAKWATCH_DISABLE in its environment, or setuid)";
	case LW_ATTACH_E_SEGMENT: return "could not get a segment (its LEAKWATCH_DIR missing, full or not writable for it); attach again once fixed";
	case LW_ATTACH_E_ARCH: return "is on an architecture without call-site patching";
	case LW_ATTACH_E_NOT_ATTACHED: return "is not attached (started with the shim preloaded, or detached already)";
	case LW_ATTACH_E_MEMORY: return "ran out of memory for the patch list";
	case LW_ATTACH_E_ALLOCATOR: return "uses an allocator of its own (jemalloc, tcmalloc, or a malloc it defines): attach would mix allocators, not supported; start it with LD_PRELOAD";
	case LW_ATTACH_E_DETACHED: return "was attached once and detached: a second attach is not supported (restart it, or start it with LD_PRELOAD)";
	}
	return "unknown error";
}

/* The address of `name` in the loaded shim (read from its ELF file and load base). */
static int call_in_shim(struct lw_inject *ij, const char *fn_name, int *rc, char *err, size_t errlen)
{
	/* dlopen(path, RTLD_NOLOAD) finds the loaded copy without loading anything */
	uint64_t dlopen_fn = lw_inject_symbol(ij, "dlopen"), dlsym_fn = lw_inject_symbol(ij, "dlsym");
	if (!dlopen_fn || !dlsym_fn) {
		snprintf(err, errlen, "libc has no dlopen/dlsym (glibc older than 2.34)");
		return -1;
	}
	char shim[PATH_MAX];
	if (!has_mapping(ij->pid, "libleakwatch.so", shim, sizeof shim)) {
		snprintf(err, errlen, "libleakwatch.so is not loaded in pid %d", (int)ij->pid);
		return -1;
	}
	uint64_t s = lw_inject_string(ij, shim, err, errlen);
	if (!s)
		return -1;
	uint64_t h;
	if (lw_inject_call(ij, dlopen_fn, s, 0x4 /* RTLD_NOLOAD */ | 0x2 /* RTLD_NOW */, 0, 5000, &h, err, errlen) != 0)
		return -1;
	if (!h) {
		snprintf(err, errlen, "dlopen(RTLD_NOLOAD) did not find %s", shim);
		return -1;
	}
	s = lw_inject_string(ij, fn_name, err, errlen);
	uint64_t fn;
	if (!s || lw_inject_call(ij, dlsym_fn, h, s, 0, 5000, &fn, err, errlen) != 0)
		return -1;
	if (!fn) {
		snprintf(err, errlen, "the loaded libleakwatch.so has no %s (an older shim?)", fn_name);
		return -1;
	}
	uint64_t r;
	if (lw_inject_call(ij, fn, 0, 0, 0, 30000, &r, err, errlen) != 0)
		return -1;
	*rc = (int)(int32_t)(uint32_t)r;
	return 0;
}

static const char *syscall_name(long nr)
{
	static char buf[24];
	switch (nr) {
	case 0: return "read";
	case 7: return "poll";
	case 23: return "select";
	case 35: return "nanosleep";
	case 43: return "accept";
	case 45: return "recvfrom";
	case 47: return "recvmsg";
	case 61: return "wait4";
	case 232: return "epoll_wait";
	case 230: return "clock_nanosleep";
	case 270: return "pselect6";
	case 271: return "ppoll";
	case 281: return "epoll_pwait";
	case 288: return "accept4";
	}
	snprintf(buf, sizeof buf, "system call %ld", nr);
	return buf;
}

static int parse_pid(const char *cmd, const char *arg, int *pid)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || *end || v <= 0 || v > INT_MAX) {
		lw_usage_error(cmd, "'%s' is not a process id", arg);
		return -1;
	}
	*pid = (int)v;
	return 0;
}

/* What attach and detach start with: options, the pid, its name, the
 * shared preflight.  -1 to go on, else the exit status (line printed). */
static int command_start(const struct lw_command_spec *spec, struct attach_options *o, int argc, char **argv,
			 int *pid, char *name, size_t namelen)
{
	const char *target = NULL;
	if (lw_options_parse(spec, o, argc, argv, &target) < 0 || parse_pid(spec->name, target, pid) < 0)
		return LW_EXIT_USAGE;
	comm_of(*pid, name, namelen);
	int rc = preflight_common(spec->name, *pid, name);
	return rc ? rc : -1;
}

int lw_cmd_attach(int argc, char **argv)
{
	struct attach_options o = attach_defaults;
	int pid;
	char name[64];
	int rc = command_start(&lw_attach_spec, &o, argc, argv, &pid, name, sizeof name);
	if (rc >= 0)
		return rc;
	char shimp[PATH_MAX], shim[PATH_MAX];
	if (lw_shim_find(shimp, sizeof shimp) < 0 || !realpath(shimp, shim)) {
		fprintf(stderr, "leakwatch: attach: cannot find libleakwatch.so (set LEAKWATCH_SHIM)\n");
		return LW_EXIT_ERROR;
	}
	/* loaded already: preloaded, attached, or an attach whose start failed
	 * (then it may be retried); the shim itself tells which */
	int loaded = has_mapping(pid, "libleakwatch.so", NULL, 0);
	if ((rc = seccomp_check("attach", pid, name, o.seccomp_ok)) ||
	    (!loaded && (rc = shim_visible("attach", pid, name, shim))))
		return rc;

	char err[LW_ERR_MAX + PATH_MAX];
	struct lw_inject ij;
	if (lw_inject_begin(&ij, pid, o.timeout_ms, err, sizeof err) != 0) {
		fprintf(stderr, "leakwatch: attach: %s\n", err);
		return AT_EXIT_INJECT;
	}
	uint64_t dlopen_fn = lw_inject_symbol(&ij, "dlopen"), dlerror_fn = lw_inject_symbol(&ij, "dlerror");
	if (!dlopen_fn) {
		lw_inject_end(&ij);
		fprintf(stderr, "leakwatch: attach: pid %d (%s): its libc (%s) has no dlopen (glibc older than 2.34)\n", pid,
			name, ij.libc);
		return AT_EXIT_STATIC;
	}
	int status = AT_EXIT_INJECT;
	uint64_t s = 0, h = 1;
	if (!loaded && (!(s = lw_inject_string(&ij, shim, err, sizeof err)) ||
			lw_inject_call(&ij, dlopen_fn, s, 0x2 /* RTLD_NOW */, 0, 10000, &h, err, sizeof err) != 0))
		goto fail;
	if (!h) {
		uint64_t msg = 0;
		char text[512] = "unknown error";
		if (dlerror_fn && lw_inject_call(&ij, dlerror_fn, 0, 0, 0, 5000, &msg, err, sizeof err) == 0 && msg)
			lw_inject_read_string(&ij, msg, text, sizeof text);
		snprintf(err, sizeof err, "dlopen(%s) failed in pid %d: %s", shim, pid, text);
		goto fail;
	}
	int arc;
	if (call_in_shim(&ij, "leakwatch_attach", &arc, err, sizeof err) != 0) {
		if (loaded) { /* a shim of its own, without attach: an older one, preloaded */
			lw_inject_end(&ij);
			fprintf(stderr, "leakwatch: attach: pid %d (%s) is traced by leakwatch already (its shim is preloaded)\n",
				pid, name);
			return AT_EXIT_ALREADY;
		}
		goto fail;
	}
	long nr = ij.syscall_nr;
	pid_t tid = ij.tid;
	uint64_t stopped = lw_inject_end(&ij);
	if (arc != LW_ATTACH_OK) {
		fprintf(stderr, "leakwatch: attach: pid %d (%s) %s\n", pid, name, attach_error(arc));
		return arc == LW_ATTACH_E_PRELOADED || arc == LW_ATTACH_E_ATTACHED || arc == LW_ATTACH_E_DETACHED
			       ? AT_EXIT_ALREADY
			       : arc == LW_ATTACH_E_ALLOCATOR ? AT_EXIT_STATIC : AT_EXIT_INJECT;
	}
	char d[32];
	printf("leakwatch: attached to pid %d (%s): recording from now on; thread %d was stopped %s (in %s)\n", pid, name,
	       (int)tid, lw_duration_format(stopped, d, sizeof d), syscall_name(nr));
	printf("leakwatch: what was open before is listed as \"before attach\" (no stack); calls through pointers taken before (dlsym results, stored callbacks) are not seen\n");
	printf("leakwatch: leakwatch report %d    (leakwatch detach %d to stop)\n", pid, pid);
	return LW_EXIT_OK;
fail:
	lw_inject_end(&ij);
	fprintf(stderr, "leakwatch: attach: %s\n", err);
	return status;
}

int lw_cmd_detach(int argc, char **argv)
{
	struct attach_options o = attach_defaults;
	int pid;
	char name[64];
	int rc = command_start(&lw_detach_spec, &o, argc, argv, &pid, name, sizeof name);
	if (rc >= 0)
		return rc;
	if (!has_mapping(pid, "libleakwatch.so", NULL, 0)) {
		fprintf(stderr, "leakwatch: detach: pid %d (%s) is not traced by leakwatch\n", pid, name);
		return AT_EXIT_ALREADY;
	}
	char err[LW_ERR_MAX + PATH_MAX];
	struct lw_inject ij;
	if (lw_inject_begin(&ij, pid, o.timeout_ms, err, sizeof err) != 0) {
		fprintf(stderr, "leakwatch: detach: %s\n", err);
		return AT_EXIT_INJECT;
	}
	int drc;
	if (call_in_shim(&ij, "leakwatch_detach", &drc, err, sizeof err) != 0) {
		lw_inject_end(&ij);
		fprintf(stderr, "leakwatch: detach: %s\n", err);
		return AT_EXIT_INJECT;
	}
	uint64_t stopped = lw_inject_end(&ij);
	if (drc != LW_ATTACH_OK) {
		fprintf(stderr, "leakwatch: detach: pid %d (%s) %s\n", pid, name, attach_error(drc));
		return AT_EXIT_ALREADY;
	}
	char d[32];
	printf("leakwatch: detached from pid %d (%s): recording stopped, original call sites restored (stopped %s); the shim stays loaded, its segment keeps what it recorded\n",
	       pid, name, lw_duration_format(stopped, d, sizeof d));
	return LW_EXIT_OK;
}
