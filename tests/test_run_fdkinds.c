/*
 * Every kind of descriptor, end to end: tests/fixtures/fdkinds.c leaves
 * files, dups, pipes, a socketpair, eventfd, epoll, memfd, mkstemp, fopen
 * and opendir descriptors open at exit (each on an "LW-MARK:" line) and
 * closes as many again through their own calls.  `leakwatch run` must
 * report exactly the ones left open, with kind, path and creation line,
 * and agree with `valgrind --track-fds=yes` on the same program.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/testlib.h"

#define FIX(name) LW_BUILD_DIR "/fixtures/" name
#define SRC "tests/fixtures/fdkinds.c"
#define MAXFD 128

TestSuite(run_fdkinds, .init = suite_dir_setup, .fini = suite_dir_teardown);

/* "leak NAME FD" lines of the fixture: name per fd ("" not leaked) */
static void leaks_printed(const char *out, char names[MAXFD][32])
{
	memset(names, 0, MAXFD * 32);
	for (const char *p = out; (p = strstr(p, "leak ")) != NULL; p++) {
		char name[32];
		int fd;
		if (sscanf(p, "leak %31s %d", name, &fd) == 2 && fd >= 0 && fd < MAXFD)
			snprintf(names[fd], 32, "%s", name);
	}
}

static int marker(const char *name)
{
	char m[64];
	snprintf(m, sizeof m, "fdkinds.%s", name);
	int line = marker_line(SRC, m);
	cr_assert_neq(line, 0, "no marker %s", m);
	return line;
}

static void assert_made_at(struct tj *group, const char *what, int line)
{
	struct tj *f = tj_at(tj_get(group, "stack"), 0);
	cr_assert_not_null(f, "%s: no stack", what);
	cr_assert_str_eq(tj_str(f, "function") ? tj_str(f, "function") : "(null)", "main", "%s", what);
	const char *file = tj_str(f, "file");
	cr_assert(file && strstr(file, "fdkinds.c"), "%s: frame in %s", what, file ? file : "(null)");
	cr_assert_eq((int)tj_num(f, "line", -1), line, "%s: line %d, expected %d", what, (int)tj_num(f, "line", -1),
		     line);
}

struct expect {
	const char *name, *kind, *path, *origin;   /* path "DIR/x": in the test's directory; NULL none */
	const char *mark;
};

static const struct expect expected[] = {
	{ "open", "file", "DIR/open.txt", "open", "leak.open" },
	{ "creat", "file", "DIR/creat.txt", "open", "leak.creat" },
	{ "dup", "file", "DIR/open.txt", "dup", "leak.dup" },
	{ "dup2", "file", "DIR/open.txt", "dup", "leak.dup2" },
	{ "fcntl", "file", "DIR/open.txt", "dup", "leak.fcntl" },
	{ "pipe", "pipe", NULL, "open", "leak.pipe" },
	{ "eventfd", "eventfd", NULL, "open", "leak.eventfd" },
	{ "epoll", "epoll", NULL, "open", "leak.epoll" },
	{ "memfd", "memfd", "fdkinds", "open", "leak.memfd" },
	{ "mkstemp", "file", "DIR/tmp.", "open", "leak.mkstemp" },
	{ "fopen", "file", "DIR/fopen.txt", "open", "leak.fopen" },
	{ "opendir", "dir", "DIR", "open", "leak.opendir" },
};

static const struct expect *expect_of(const char *name)
{
	for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
		if (strcmp(expected[i].name, name) == 0)
			return &expected[i];
	return NULL;
}

Test(run_fdkinds, reports_exactly_the_descriptors_left_open)
{
	struct cmd_result r;
	const char *cmd[] = { FIX("fdkinds"), suite_dir, NULL };
	char *text = run_report(&r, NULL, NULL, cmd);
	cr_assert_not_null(text, "no report; stderr: %s", r.err);
	struct tj *json = tj_parse(text);
	cr_assert_not_null(json);
	char names[MAXFD][32];
	leaks_printed(r.out, names);
	size_t nexpected = 0;
	for (int fd = 0; fd < MAXFD; fd++)
		nexpected += names[fd][0] != 0;
	cr_assert_eq(nexpected, 15, "the fixture printed %zu leaks:\n%s", nexpected, r.out);
	cr_assert_eq(tj_num(json, "leaked", -1), 2, "the socketpair");
	cr_assert_eq(tj_num(json, "leaked_fds", -1), 13, "13 other descriptors left open");

	struct tj *p = tj_at(tj_get(json, "processes"), 0);
	int seen[MAXFD] = { 0 };
	struct tj *groups = tj_get(p, "descriptors");
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *g = tj_at(groups, i);
		struct tj *members = tj_get(g, "members");
		for (size_t k = 0; k < tj_len(members); k++) {
			struct tj *m = tj_at(members, k);
			int fd = (int)tj_num(m, "fd", -1);
			cr_assert(fd >= 0 && fd < MAXFD && names[fd][0], "fd %d reported but not left open", fd);
			seen[fd]++;
			const struct expect *e = expect_of(names[fd]);
			cr_assert_not_null(e, "fd %d (%s) reported as a descriptor", fd, names[fd]);
			cr_assert_str_eq(tj_str(g, "kind"), e->kind, "fd %d (%s)", fd, e->name);
			cr_assert_str_eq(tj_str(m, "origin"), e->origin, "fd %d (%s)", fd, e->name);
			const char *path = tj_str(m, "path");
			if (!e->path) {
				cr_assert_null(path, "fd %d (%s) has path %s", fd, e->name, path);
			} else {
				char want[4096];
				if (strncmp(e->path, "DIR", 3) == 0)
					snprintf(want, sizeof want, "%s%s", suite_dir, e->path + 3);
				else
					snprintf(want, sizeof want, "%s", e->path);
				cr_assert(path && strncmp(path, want, strlen(want)) == 0, "fd %d (%s): path %s, expected %s",
					  fd, e->name, path ? path : "(null)", want);
			}
			assert_made_at(g, e->name, marker(e->mark));
		}
	}
	/* the socketpair is a socket group */
	struct tj *sg = tj_at(tj_get(p, "groups"), 0);
	cr_assert_eq(tj_len(tj_get(p, "groups")), 1);
	for (size_t k = 0; k < tj_len(tj_get(sg, "fds")); k++) {
		int fd = (int)tj_at(tj_get(sg, "fds"), k)->num;
		cr_assert(fd >= 0 && fd < MAXFD && strcmp(names[fd], "socketpair") == 0, "socket fd %d", fd);
		seen[fd]++;
	}
	assert_made_at(sg, "socketpair", marker("leak.socketpair"));
	for (int fd = 0; fd < MAXFD; fd++)
		cr_assert_eq(seen[fd], names[fd][0] ? 1 : 0, "fd %d (%s) reported %d times", fd,
			     names[fd][0] ? names[fd] : "not left open", seen[fd]);
	tj_free(json);
	free(text);
	cmd_result_free(&r);
}

Test(run_fdkinds, text_report_names_path_and_kind)
{
	struct cmd_result r;
	const char *opts[] = { "--kind", "fds", NULL };
	const char *cmd[] = { FIX("fdkinds"), suite_dir, "onefile", NULL };
	lw_run_timed(&r, NULL, opts, cmd, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);
	char want[4200];
	snprintf(want, sizeof want, "FILES      1  %s/one.txt (file)", suite_dir);
	const char *both = strstr(r.out, want) ? r.out : r.err;
	cr_assert_not_null(strstr(both, want), "no '%s' in:\n%s\n%s", want, r.out, r.err);
	char at[64];
	snprintf(at, sizeof at, "fdkinds.c:%d", marker("onefile"));
	cr_assert_not_null(strstr(both, at), "no creation line %s in:\n%s", at, both);
	cr_assert_not_null(strstr(both, "leakwatch: 1 other descriptor (files, pipes, ...) left open"), "%s", both);
	cmd_result_free(&r);
}

Test(run_fdkinds, fail_on_leak_fails_on_a_file_and_not_on_closed_ones)
{
	struct cmd_result r;
	const char *opts[] = { "--fail-on-leak=fds", NULL };
	const char *leaky[] = { FIX("fdkinds"), suite_dir, "onefile", NULL };
	lw_run_timed(&r, NULL, opts, leaky, 60);
	cr_assert_eq(r.status, 1, "one file left open: status %d\n%s", r.status, r.err);
	cmd_result_free(&r);
	/* everything closed through fclose, closedir, pclose, close: nothing left */
	const char *clean[] = { FIX("fdkinds"), suite_dir, "closed", NULL };
	lw_run_timed(&r, NULL, opts, clean, 60);
	cr_assert_eq(r.status, 0, "nothing left open: status %d\n%s\n%s", r.status, r.out, r.err);
	cmd_result_free(&r);
}

/* valgrind's "Open file descriptor N: ..." / "Open AF_UNIX socket N: ..."
 * records: the creation line in main of each, 0 for none; inherited ones
 * (and 0, 1, 2) are left out. */
static size_t valgrind_fds(const char *err, int lines[MAXFD])
{
	size_t n = 0;
	memset(lines, 0, MAXFD * sizeof *lines);
	for (const char *p = err; (p = strstr(p, "Open ")) != NULL; p++) {
		const char *colon = strchr(p, ':');
		const char *sock = strstr(p, " socket "), *desc = strstr(p, " descriptor ");
		const char *num = sock && sock < colon ? sock + 8 : desc && desc < colon ? desc + 12 : NULL;
		if (!num)
			continue;
		int fd = atoi(num);
		const char *next = strstr(p + 1, "Open ");
		const char *inh = strstr(p, "<inherited from parent>");
		if (fd <= 2 || fd >= MAXFD || (inh && (!next || inh < next)))
			continue;
		const char *m = strstr(p, "main (fdkinds.c:");
		lines[fd] = m && (!next || m < next) ? atoi(m + strlen("main (fdkinds.c:")) : -1;
		n++;
	}
	return n;
}

Test(run_fdkinds, same_leaked_set_and_lines_as_valgrind, .timeout = 120)
{
	if (!have_program("valgrind"))
		cr_skip_test("valgrind is not installed");
	struct cmd_result v;
	char *vargv[] = { "valgrind", "--track-fds=yes", "-q", "--leak-check=no", FIX("fdkinds"), suite_dir, NULL };
	run_cmd(&v, vargv, NULL, 110);
	cr_assert_eq(v.status, 0, "valgrind: %s", v.err);
	int vline[MAXFD];
	size_t nv = valgrind_fds(v.err, vline);

	struct cmd_result r;
	const char *cmd[] = { FIX("fdkinds"), suite_dir, NULL };
	char *text = run_report(&r, NULL, NULL, cmd);
	cr_assert_not_null(text, "no report; stderr: %s", r.err);
	struct tj *json = tj_parse(text);
	struct tj *p = tj_at(tj_get(json, "processes"), 0);
	int lline[MAXFD] = { 0 };
	size_t nl = 0;
	struct tj *groups = tj_get(p, "descriptors");
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *g = tj_at(groups, i);
		int line = (int)tj_num(tj_at(tj_get(g, "stack"), 0), "line", -1);
		for (size_t k = 0; k < tj_len(tj_get(g, "members")); k++) {
			int fd = (int)tj_num(tj_at(tj_get(g, "members"), k), "fd", -1);
			cr_assert(fd > 2 && fd < MAXFD);
			lline[fd] = line;
			nl++;
		}
	}
	struct tj *sg = tj_get(p, "groups");
	for (size_t i = 0; i < tj_len(sg); i++) {
		struct tj *g = tj_at(sg, i);
		int line = (int)tj_num(tj_at(tj_get(g, "stack"), 0), "line", -1);
		for (size_t k = 0; k < tj_len(tj_get(g, "fds")); k++) {
			int fd = (int)tj_at(tj_get(g, "fds"), k)->num;
			cr_assert(fd > 2 && fd < MAXFD);
			lline[fd] = line;
			nl++;
		}
	}
	cr_assert_eq(nl, nv, "leakwatch %zu descriptors, valgrind %zu:\n%s", nl, nv, v.err);
	for (int fd = 3; fd < MAXFD; fd++) {
		cr_assert_eq(lline[fd] != 0, vline[fd] != 0, "fd %d: leakwatch %s, valgrind %s", fd,
			     lline[fd] ? "reports it" : "does not", vline[fd] ? "does" : "does not");
		if (vline[fd])
			cr_assert_eq(lline[fd], vline[fd], "fd %d: leakwatch line %d, valgrind line %d", fd, lline[fd],
				     vline[fd]);
	}
	tj_free(json);
	free(text);
	cmd_result_free(&r);
	cmd_result_free(&v);
}

/* A forked client/server and a descriptor received over SCM_RIGHTS
 * (tests/fixtures/fdpass.c): the parent's leaks, the accepted socket and
 * the received file, are the ones valgrind --track-fds=yes lists for that
 * process, at the same lines; the client that closed everything leaks
 * nothing. */
Test(run_fdkinds, forked_server_and_scm_rights_like_valgrind, .timeout = 120)
{
	const char *src = "tests/fixtures/fdpass.c";
	int accept_line = marker_line(src, "fdpass.accept"), recv_line = marker_line(src, "fdpass.recvmsg");
	cr_assert(accept_line && recv_line);

	struct cmd_result r;
	const char *cmd[] = { FIX("fdpass"), NULL };
	char *text = run_report(&r, NULL, NULL, cmd);
	cr_assert_not_null(text, "no report; stderr: %s", r.err);
	int ppid = 0, conn = -1, got = -1;
	cr_assert_eq(sscanf(strstr(r.out, "pid ") ? strstr(r.out, "pid ") : "", "pid %d accepted %d received %d", &ppid,
			    &conn, &got),
		     3, "%s", r.out);
	struct tj *json = tj_parse(text);
	free(text);
	cr_assert_not_null(json);
	struct tj *procs = tj_get(json, "processes");
	int seen_parent = 0, seen_child = 0;
	for (size_t i = 0; i < tj_len(procs); i++) {
		struct tj *p = tj_at(procs, i);
		struct tj *sg = tj_get(p, "groups"), *dg = tj_get(p, "descriptors");
		if ((int)tj_num(p, "pid", -1) != ppid) {
			seen_child = 1;
			cr_assert_eq(tj_len(sg), 0, "the client left no socket open");
			cr_assert_eq(tj_len(dg), 0, "the client left no descriptor open");
			continue;
		}
		seen_parent = 1;
		cr_assert_eq(tj_len(sg), 1);
		cr_assert_eq((int)tj_at(tj_get(tj_at(sg, 0), "fds"), 0)->num, conn);
		cr_assert_str_eq(tj_str(tj_at(sg, 0), "origin"), "accept");
		cr_assert_eq((int)tj_num(tj_at(tj_get(tj_at(sg, 0), "stack"), 0), "line", -1), accept_line);
		cr_assert_eq(tj_len(dg), 1);
		struct tj *g = tj_at(dg, 0);
		cr_assert_str_eq(tj_str(g, "origin"), "scm_rights");
		cr_assert_eq((int)tj_num(tj_at(tj_get(g, "members"), 0), "fd", -1), got);
		cr_assert_eq((int)tj_num(tj_at(tj_get(g, "stack"), 0), "line", -1), recv_line);
	}
	cr_assert(seen_parent && seen_child);
	tj_free(json);
	cmd_result_free(&r);

	if (!have_program("valgrind"))
		cr_skip_test("valgrind is not installed");
	struct cmd_result v;
	char *vargv[] = { "valgrind", "--track-fds=yes", "-q", "--leak-check=no", FIX("fdpass"), NULL };
	run_cmd(&v, vargv, NULL, 110);
	cr_assert_eq(v.status, 0, "valgrind: %s", v.err);
	cr_assert_eq(sscanf(strstr(v.out, "pid ") ? strstr(v.out, "pid ") : "", "pid %d", &ppid), 1, "%s", v.out);
	/* the parent's records: "==PID== Open ... N: ..." followed by its stack */
	char pfx[32], want_sock[160], want_file[160];
	snprintf(pfx, sizeof pfx, "==%d== Open ", ppid);
	snprintf(want_sock, sizeof want_sock, "socket %d: ", conn);
	snprintf(want_file, sizeof want_file, "descriptor %d: /etc/hostname", got);
	int n = 0, sock_ok = 0, file_ok = 0;
	for (const char *p = v.err; (p = strstr(p, pfx)) != NULL; p++) {
		const char *next = strstr(p + 1, pfx), *eol = strchr(p, '\n');
		if (eol && strstr(p, "<inherited from parent>") && (!next || strstr(p, "<inherited from parent>") < next))
			continue;
		n++;
		char line_s[48], line_r[48];
		snprintf(line_s, sizeof line_s, "main (fdpass.c:%d)", accept_line);
		snprintf(line_r, sizeof line_r, "main (fdpass.c:%d)", recv_line);
		const char *at_s = strstr(p, line_s), *at_r = strstr(p, line_r);
		if (strncmp(p + strlen(pfx), "AF_INET ", 8) == 0 && strstr(p, want_sock) && strstr(p, want_sock) < eol)
			sock_ok = at_s && (!next || at_s < next);
		if (strstr(p, want_file) && strstr(p, want_file) < eol)
			file_ok = at_r && (!next || at_r < next);
	}
	cr_assert_eq(n, 2, "valgrind lists two leaks of the parent:\n%s", v.err);
	cr_assert(sock_ok, "valgrind: the accepted socket at line %d:\n%s", accept_line, v.err);
	cr_assert(file_ok, "valgrind: the received file at line %d:\n%s", recv_line, v.err);
	cmd_result_free(&v);
}

/* ---- descriptors libc makes without its open() entry point ----------------- */

#define MORE_SRC "tests/fixtures/fdmore.c"

static const struct more_expect {
	const char *name, *kind, *path, *mark;   /* path: a prefix of the call's */
} more_expected[] = {
	{ "shm", "file", "/lw-fdmore-shm-", "leak.shm" },
	{ "openpt", "file", "/dev/ptmx", "leak.openpt" },
	{ "openpty", "file", NULL, "leak.openpty" },     /* master /dev/ptmx, slave unnamed */
	{ "mq", "other", "/lw-fdmore-mq-", "leak.mq" },
	{ "getfd", "pipe", NULL, "leak.getfd" },         /* a copy of a pipe end: fstat says so */
	{ "forkpty", "file", "/dev/ptmx", "leak.forkpty" },
	{ "fsopen", "other", "tmpfs", "leak.fsopen" },
};

Test(run_fdkinds, descriptors_libc_makes_inside_are_recorded, .timeout = 60)
{
	struct cmd_result r;
	const char *cmd[] = { FIX("fdmore"), NULL };
	char *text = run_report(&r, NULL, NULL, cmd);
	cr_assert_not_null(text, "no report; stderr: %s", r.err);
	struct tj *json = tj_parse(text);
	cr_assert_not_null(json);
	char names[MAXFD][32];
	leaks_printed(r.out, names);
	size_t nleaked = 0;
	for (int fd = 0; fd < MAXFD; fd++)
		nleaked += names[fd][0] != 0;
	/* fsopen needs CAP_SYS_ADMIN: 8 with it, 7 without */
	cr_assert(nleaked == 8 || (nleaked == 7 && strstr(r.out, "skip fsopen")),
		  "the fixture printed %zu leaks:\n%s", nleaked, r.out);
	cr_assert_eq(tj_num(json, "leaked_fds", -1), (double)nleaked, "%s", r.out);

	struct tj *p = tj_at(tj_get(json, "processes"), 0);
	struct tj *groups = tj_get(p, "descriptors");
	int seen[MAXFD] = { 0 };
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *g = tj_at(groups, i);
		struct tj *members = tj_get(g, "members");
		for (size_t k = 0; k < tj_len(members); k++) {
			struct tj *mem = tj_at(members, k);
			int fd = (int)tj_num(mem, "fd", -1);
			cr_assert(fd >= 0 && fd < MAXFD && names[fd][0], "fd %d reported but not left open", fd);
			seen[fd]++;
			const struct more_expect *e = NULL;
			for (size_t j = 0; j < sizeof more_expected / sizeof more_expected[0]; j++)
				if (strcmp(more_expected[j].name, names[fd]) == 0)
					e = &more_expected[j];
			cr_assert_not_null(e, "fd %d (%s)", fd, names[fd]);
			cr_assert_str_eq(tj_str(g, "kind"), e->kind, "fd %d (%s)", fd, e->name);
			const char *path = tj_str(mem, "path");
			if (e->path)
				cr_assert(path && strncmp(path, e->path, strlen(e->path)) == 0,
					  "fd %d (%s): path %s, expected %s...", fd, e->name,
					  path ? path : "(null)", e->path);
			struct tj *f = tj_at(tj_get(g, "stack"), 0);
			cr_assert_not_null(f, "%s: no stack", e->name);
			const char *file = tj_str(f, "file");
			cr_assert(file && strstr(file, "fdmore.c"), "%s: frame in %s", e->name,
				  file ? file : "(null)");
			char m[64];
			snprintf(m, sizeof m, "fdmore.%s", e->mark);
			int line = marker_line(MORE_SRC, m);
			cr_assert_neq(line, 0, "no marker %s", m);
			cr_assert_eq((int)tj_num(f, "line", -1), line, "%s: line %d, expected %d", e->name,
				     (int)tj_num(f, "line", -1), line);
		}
	}
	for (int fd = 0; fd < MAXFD; fd++)
		cr_assert_eq(seen[fd], names[fd][0] ? 1 : 0, "fd %d (%s) reported %d times", fd,
			     names[fd][0] ? names[fd] : "not left open", seen[fd]);
	tj_free(json);
	free(text);
	cmd_result_free(&r);
}
