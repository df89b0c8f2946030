/* SPDX-License-Identifier: MIT */
/*
 * `make install` (issue 15, item 4): from this source tree into a private
 * prefix, built in a build directory of its own (the suite runs from
 * build/, which must not be touched).  The installed leakwatch must name
 * the installed shim and data directory (PREFIX compiled in, never the
 * build dir or DESTDIR); every man page must render without a warning and
 * list exactly the options of its command's --help; the bash completion
 * must work in a real bash; `make uninstall` must leave nothing.
 *
 * One install per test run, shared by the suite's tests: the first test
 * process to get the lock builds it (fresh build dir), the others find the
 * marker naming this run (the runner's pid and start time) and reuse it.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fixtures.h"

/* snprintf into an array, asserted not to truncate */
#define FMT(buf, ...) \
	cr_assert_lt((size_t)snprintf((buf), sizeof(buf), __VA_ARGS__), sizeof(buf), "too long for " #buf)

#define MAX_CMDS 32
#define MAX_OPTS 64

/* short enough that every path built from them fits a PATH_MAX buffer */
static char root[1024];         /* LW_BUILD_DIR/install-test */
static char prefix[1040];       /* root/usr */

static void paths_init(void)
{
	FMT(root, "%s/install-test", LW_BUILD_DIR);
	FMT(prefix, "%s/usr", root);
}

/* The run this test process belongs to: the runner's pid and start time. */
static void run_identity(char *buf, size_t len)
{
	char path[64], *stat_text;
	unsigned long long start = 0;
	FMT(path, "/proc/%d/stat", (int)getppid());
	stat_text = slurp(path);
	if (stat_text) {
		/* field 22 (starttime), counted after the ")" that ends comm */
		const char *p = strrchr(stat_text, ')');
		for (int field = 2; p && *p && field < 22; p++)
			if (*p == ' ')
				field++;
		if (p)
			start = strtoull(p, NULL, 10);
		free(stat_text);
	}
	snprintf(buf, len, "run %d %llu", (int)getppid(), start);
}

/*
 * make -C SOURCE ARGS... with the make variables of an enclosing `make test`
 * removed (its jobserver is not ours), output to log.  The exit status.
 */
static int make_run(const char *const *args, const char *log)
{
	char *argv[32];
	int n = 0;
	const char *pre[] = { "env", "-u", "MAKEFLAGS", "-u", "MFLAGS", "-u", "MAKELEVEL", "-u", "MAKEOVERRIDES",
			      "make", "--no-print-directory", "-C", LW_SOURCE_DIR };
	for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
		argv[n++] = (char *)pre[i];
	for (size_t i = 0; args[i] && n < 31; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	struct spawn_opts o = { .log_path = log, .timeout_s = 900 };
	struct cmd_result r;
	unlink(log);
	run_opts(&r, argv, &o);
	int st = r.status;
	cmd_result_free(&r);
	return st;
}

/* The suite's install: built once per run (see the top), asserted ready. */
static void install_ready(void)
{
	char lockpath[PATH_MAX], marker[PATH_MAX], log[PATH_MAX], want[128], build[PATH_MAX];
	paths_init();
	cr_assert(mkdir(root, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", root, strerror(errno));
	FMT(lockpath, "%s/lock", root);
	FMT(marker, "%s/done", root);
	FMT(log, "%s/install.log", root);
	FMT(build, "%s/build", root);
	run_identity(want, sizeof want);
	int fd = open(lockpath, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "%s: %s", lockpath, strerror(errno));
	cr_assert_eq(flock(fd, LOCK_EX), 0);
	int status = -1;
	char *done = slurp(marker);
	if (done && strncmp(done, want, strlen(want)) == 0 && done[strlen(want)] == ' ') {
		status = atoi(done + strlen(want) + 1);
	} else {
		/* from nothing: a fresh build dir and prefix */
		rm_rf(build);
		rm_rf(prefix);
		char pfx[PATH_MAX], bld[PATH_MAX];
		FMT(pfx, "PREFIX=%s", prefix);
		FMT(bld, "BUILD=%s", build);
		const char *args[] = { "-j2", "install", pfx, bld, NULL };
		status = make_run(args, log);
		FILE *f = fopen(marker, "w");
		cr_assert_not_null(f);
		fprintf(f, "%s %d\n", want, status);
		cr_assert_eq(fclose(f), 0);
	}
	free(done);
	flock(fd, LOCK_UN);
	close(fd);
	cr_assert_eq(status, 0, "make install PREFIX=%s exited %d: see %s", prefix, status, log);
}

/* Run the installed leakwatch (or `path`) with args; LEAKWATCH_SHIM unset so
 * that it finds its shim the way an installed one does. */
static void inst_run(struct cmd_result *r, const char *path, const char *const *args)
{
	char bin[PATH_MAX];
	FMT(bin, "%s/bin/leakwatch", prefix);
	char *argv[40];
	int n = 0;
	argv[n++] = "env";
	argv[n++] = "-u";
	argv[n++] = "LEAKWATCH_SHIM";
	argv[n++] = (char *)(path ? path : bin);
	for (size_t i = 0; args[i] && n < 39; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	run_cmd(r, argv, NULL, 60);
}

/* The commands as `leakwatch --help` synopsis lines name them: every
 * "leakwatch WORD" that starts a usage line but help's own. */
static int help_commands(char (*cmds)[32], int max)
{
	struct cmd_result r;
	inst_run(&r, NULL, (const char *[]){ "--help", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	int n = 0;
	for (const char *p = r.out; p && *p && n < max;) {
		const char *nl = strchr(p, '\n');
		const char *lead = strncmp(p, "usage: leakwatch ", 17) == 0 ? p + 17 :
				   strncmp(p, "       leakwatch ", 17) == 0 ? p + 17 : NULL;
		if (lead) {
			size_t len = strspn(lead, "abcdefghijklmnopqrstuvwxyz");
			if (len && len < 32 && strncmp(lead, "help ", 5) != 0) {
				memcpy(cmds[n], lead, len);
				cmds[n++][len] = '\0';
			}
		}
		p = nl ? nl + 1 : NULL;
		if (p && *p == '\n')
			break;   /* the synopsis ends at the first blank line */
	}
	cmd_result_free(&r);
	return n;
}

/* The options `leakwatch CMD --help` lists: "  --name" entries. */
static int help_options(const char *cmd, char (*opts)[48], int max)
{
	struct cmd_result r;
	inst_run(&r, NULL, (const char *[]){ cmd, "--help", NULL });
	cr_assert_eq(r.status, 0, "%s --help: %s", cmd, r.err);
	int n = 0;
	for (const char *p = r.out; p && *p && n < max;) {
		if (strncmp(p, "  --", 4) == 0) {
			size_t len = strspn(p + 4, "abcdefghijklmnopqrstuvwxyz0123456789-");
			cr_assert(len > 0 && len < 48);
			memcpy(opts[n], p + 4, len);
			opts[n++][len] = '\0';
		}
		const char *nl = strchr(p, '\n');
		p = nl ? nl + 1 : NULL;
	}
	cmd_result_free(&r);
	return n;
}

static void page_path(char *buf, size_t len, const char *cmd)
{
	cr_assert_lt((size_t)snprintf(buf, len, "%s/share/man/man1/leakwatch%s%s.1", prefix, *cmd ? "-" : "", cmd), len);
}

static int file_is(const char *path, mode_t type)
{
	struct stat st;
	return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == type;
}

TestSuite(install, .timeout = 900);

Test(install, installs_binaries_docs_pages_and_completion)
{
	install_ready();
	static const char *const files[] = {
		"bin/leakwatch", "lib/leakwatch/libleakwatch.so", "include/leakwatch/segment.h",
		"share/leakwatch/runbook.md", "share/leakwatch/runbook-fds.md", "share/leakwatch/report-format.md",
		"share/leakwatch/report-schema.json", "share/leakwatch/default.supp", "share/man/man1/leakwatch.1",
		"share/bash-completion/completions/leakwatch",
	};
	/* each installed copy is its source, byte for byte */
	static const char *const sources[] = {
		NULL, NULL, "include/leakwatch/segment.h", "docs/runbook.md", "docs/runbook-fds.md",
		"docs/report-format.md", "docs/report-schema.json", "analyzer/lib/default.supp", NULL, NULL,
	};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char path[PATH_MAX], src[PATH_MAX];
		FMT(path, "%s/%s", prefix, files[i]);
		cr_expect(file_is(path, S_IFREG), "%s not installed", path);
		if (!sources[i])
			continue;
		FMT(src, "%s/%s", LW_SOURCE_DIR, sources[i]);
		char *a = slurp(path), *b = slurp(src);
		cr_expect(a && b && strcmp(a, b) == 0, "%s differs from %s", path, src);
		free(a);
		free(b);
	}
	char bin[PATH_MAX];
	struct stat st;
	FMT(bin, "%s/bin/leakwatch", prefix);
	cr_assert_eq(stat(bin, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0755);

	/* a page for every command --help names, and none besides */
	char cmds[MAX_CMDS][32];
	int n = help_commands(cmds, MAX_CMDS);
	cr_assert_geq(n, 9, "the commands of --help: %d", n);
	int pages = 0;
	char mandir[PATH_MAX];
	FMT(mandir, "%s/share/man/man1", prefix);
	DIR *d = opendir(mandir);
	cr_assert_not_null(d, "%s", mandir);
	for (struct dirent *e; (e = readdir(d));)
		if (strncmp(e->d_name, "leakwatch", 9) == 0)
			pages++;
	closedir(d);
	cr_expect_eq(pages, n + 1, "%d pages for %d commands and leakwatch(1)", pages, n);
	for (int i = 0; i < n; i++) {
		char page[PATH_MAX];
		page_path(page, sizeof page, cmds[i]);
		cr_expect(file_is(page, S_IFREG), "no page for %s: %s", cmds[i], page);
	}
	/* the hidden list the Makefile makes pages from is the same */
	struct cmd_result r;
	inst_run(&r, NULL, (const char *[]){ "help", "--commands", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_expect_eq(count_lines(r.out), n, "%s", r.out);
	for (int i = 0; i < n; i++) {
		char line[40];
		FMT(line, "%s\n", cmds[i]);
		cr_expect_not_null(strstr(r.out, line), "help --commands lacks %s", cmds[i]);
	}
	cmd_result_free(&r);
}

Test(install, names_the_installed_shim_and_data_dir)
{
	install_ready();
	struct cmd_result r;
	inst_run(&r, NULL, (const char *[]){ "--version", NULL });
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect_eq(strncmp(r.out, "leakwatch ", 10), 0, "%s", r.out);
	cmd_result_free(&r);

	char shim[PATH_MAX], want[PATH_MAX], copy[PATH_MAX], bin[PATH_MAX];
	FMT(shim, "%s/lib/leakwatch/libleakwatch.so", prefix);
	char real[PATH_MAX];
	cr_assert_not_null(realpath(shim, real));
	FMT(want, "LD_PRELOAD=%s\n", real);
	inst_run(&r, NULL, (const char *[]){ "preload", NULL });
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect_str_eq(r.out, want);
	cmd_result_free(&r);

	/* a copy away from the prefix finds the shim by the compiled-in LW_LIBDIR:
	 * PREFIX's, not the build dir's */
	FMT(bin, "%s/bin/leakwatch", prefix);
	FMT(copy, "%s/elsewhere-%d", root, (int)getpid());
	cr_assert(mkdir(copy, 0755) == 0 || errno == EEXIST);
	strcat(copy, "/leakwatch");
	run_cmd(&r, (char *const[]){ "cp", bin, copy, NULL }, NULL, 30);
	cr_assert_eq(r.status, 0, "cp: %s", r.err);
	cmd_result_free(&r);
	inst_run(&r, copy, (const char *[]){ "preload", NULL });
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect_str_eq(r.out, want);
	cmd_result_free(&r);
	*strrchr(copy, '/') = '\0';
	rm_rf(copy);

	/* --help says where the runbooks and the schema are */
	char data[PATH_MAX];
	FMT(data, "%s/share/leakwatch/", prefix);
	inst_run(&r, NULL, (const char *[]){ "--help", NULL });
	cr_expect_not_null(strstr(r.out, data), "--help does not name %s", data);
	cmd_result_free(&r);
}

Test(install, run_preloads_the_installed_shim)
{
	install_ready();
	char shim[PATH_MAX];
	FMT(shim, "%s/lib/leakwatch/libleakwatch.so", prefix);
	struct stat want, got;
	cr_assert_eq(stat(shim, &want), 0);
	/* what the traced command itself sees in its environment */
	struct cmd_result r;
	inst_run(&r, NULL,
		 (const char *[]){ "run", "--kind", "sockets", "--", "sh", "-c", "printf '%s\\n' \"$LD_PRELOAD\"", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	r.out[strcspn(r.out, "\n")] = '\0';
	cr_assert_eq(stat(r.out, &got), 0, "LD_PRELOAD=%s", r.out);
	cr_expect(got.st_ino == want.st_ino && got.st_dev == want.st_dev, "run preloads %s, not %s", r.out, shim);
	cmd_result_free(&r);
}

/* The OPTIONS of a rendered page: the "--name" of each tag (7 columns in). */
static int page_options(const char *text, char (*opts)[48], int max)
{
	const char *p = strstr(text, "\nOPTIONS\n");
	cr_assert_not_null(p, "no OPTIONS section");
	int n = 0;
	for (p += 9; *p && n < max;) {
		if (*p != ' ' && *p != '\n')
			break;   /* the next section */
		if (strncmp(p, "       --", 9) == 0) {
			size_t len = strspn(p + 9, "abcdefghijklmnopqrstuvwxyz0123456789-");
			char after = p[9 + len];
			if (len && len < 48 && (after == ' ' || after == '[' || after == '\n')) {
				memcpy(opts[n], p + 9, len);
				opts[n++][len] = '\0';
			}
		}
		const char *nl = strchr(p, '\n');
		p = nl ? nl + 1 : "";
	}
	return n;
}

static int in_list(const char *w, char (*list)[48], int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(list[i], w) == 0)
			return 1;
	return 0;
}

Test(install, man_pages_render_cleanly_and_list_every_option)
{
	install_ready();
	char cmds[MAX_CMDS][32];
	int n = help_commands(cmds, MAX_CMDS);
	cr_assert_geq(n, 9);
	char manpath[PATH_MAX];
	FMT(manpath, "%s/share/man", prefix);
	char *const env[] = { "MANWIDTH=100", "LC_ALL=C.UTF-8", "MAN_KEEP_FORMATTING=", NULL };
	for (int i = -1; i < n; i++) {
		const char *cmd = i < 0 ? "" : cmds[i];
		char page[PATH_MAX], name[64];
		page_path(page, sizeof page, cmd);
		FMT(name, "leakwatch%s%s", *cmd ? "-" : "", cmd);
		struct cmd_result r;

		/* groff with every warning on, man -l, mandoc's linter: not one warning */
		run_cmd(&r, (char *const[]){ "groff", "-man", "-Tutf8", "-ww", "-z", page, NULL }, env, 60);
		cr_expect_eq(r.status, 0, "groff %s: %s", page, r.err);
		cr_expect_eq(r.err_len, 0, "groff warns on %s:\n%s", page, r.err);
		cmd_result_free(&r);
		run_cmd(&r, (char *const[]){ "mandoc", "-Tlint", "-W", "warning", page, NULL }, env, 60);
		cr_expect_eq(r.status, 0, "mandoc -Tlint %s: %s%s", page, r.out, r.err);
		cr_expect_eq(r.out_len + r.err_len, 0, "mandoc -Tlint on %s:\n%s%s", page, r.out, r.err);
		cmd_result_free(&r);
		run_cmd(&r, (char *const[]){ "lexgrog", page, NULL }, env, 60);
		cr_expect_eq(r.status, 0, "lexgrog %s: %s%s", page, r.out, r.err);
		cr_expect_not_null(strstr(r.out, name), "lexgrog %s: %s", page, r.out);
		cmd_result_free(&r);
		/* found by name where it was installed */
		run_cmd(&r, (char *const[]){ "man", "-M", manpath, "-w", name, NULL }, env, 60);
		cr_expect_eq(r.status, 0, "man -M %s -w %s: %s", manpath, name, r.err);
		cr_expect_eq(strncmp(r.out, page, strlen(page)), 0, "man -w %s: %s", name, r.out);
		cmd_result_free(&r);

		run_cmd(&r, (char *const[]){ "man", "--warnings=w", "-l", page, NULL }, env, 60);
		cr_expect_eq(r.status, 0, "man -l %s: %s", page, r.err);
		cr_expect_eq(r.err_len, 0, "man -l %s warns:\n%s", page, r.err);
		static const char *const sections[] = { "\nNAME\n", "\nSYNOPSIS\n", "\nDESCRIPTION\n", "\nOPTIONS\n",
							"\nEXIT STATUS\n", "\nENVIRONMENT\n", "\nFILES\n", "\nSEE ALSO\n" };
		const char *last = r.out;
		for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++) {
			const char *at = strstr(r.out, sections[s]);
			cr_expect(at && at > last, "%s: section%s missing or out of order", page, sections[s]);
			if (at)
				last = at;
		}
		/* the page lists exactly the options of `leakwatch CMD --help`, and --help */
		char want[MAX_OPTS][48], got[MAX_OPTS][48];
		int nwant = *cmd ? help_options(cmd, want, MAX_OPTS - 1) : 0;
		if (*cmd) {
			strcpy(want[nwant++], "help");
			int ngot = page_options(r.out, got, MAX_OPTS);
			for (int k = 0; k < nwant; k++) {
				char syn[128];
				cr_expect(in_list(want[k], got, ngot), "%s: OPTIONS lacks --%s", page, want[k]);
				FMT(syn, "[--%s", want[k]);
				const char *opts_at = strstr(r.out, "\nOPTIONS\n");
				const char *syn_at = strstr(r.out, syn);
				cr_expect(strcmp(want[k], "help") == 0 || (syn_at && syn_at < opts_at),
					  "%s: SYNOPSIS lacks %s", page, syn);
			}
			for (int k = 0; k < ngot; k++)
				cr_expect(in_list(got[k], want, nwant), "%s: --%s is not an option of %s", page,
					  got[k], cmd);
		} else {
			/* leakwatch(1) names every command's page */
			for (int k = 0; k < n; k++) {
				char ref[128];
				FMT(ref, "leakwatch-%s(1)", cmds[k]);
				cr_expect_not_null(strstr(r.out, ref), "leakwatch(1) does not name %s", ref);
			}
			/* and every shim setting README's table lists */
			char readme[PATH_MAX];
			FMT(readme, "%s/README.md", LW_SOURCE_DIR);
			char *text = slurp(readme);
			cr_assert_not_null(text);
			int vars = 0;
			for (const char *q = text; (q = strstr(q, "\n| `LEAKWATCH_"));) {
				q += 4;
				size_t len = strcspn(q, "`");
				char var[64];
				if (len >= sizeof var)
					continue;
				memcpy(var, q, len);
				var[len] = '\0';
				vars++;
				cr_expect_not_null(strstr(r.out, var), "leakwatch(1) ENVIRONMENT lacks %s", var);
			}
			cr_expect_geq(vars, 10, "README's table of the shim's settings");
			free(text);
		}
		cmd_result_free(&r);
	}
}

/* ---- bash completion ---------------------------------------------------------------- */

static char segdir[PATH_MAX];

/* COMPREPLY, one word a line, for the command line `words` (the last one
 * being completed), in a bash that sourced the installed script. */
static char *complete(const char *const *words)
{
	static const char script[] =
		"source \"$1\" || exit 9; shift\n"
		"[[ $(complete -p leakwatch) == 'complete -F _leakwatch leakwatch' ]] || exit 8\n"
		"COMP_WORDS=(\"$@\"); COMP_CWORD=$(( $# - 1 ))\n"
		"COMP_LINE=\"$*\"; COMP_POINT=${#COMP_LINE}\n"
		"_leakwatch leakwatch \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\" || exit 7\n"
		"(( ${#COMPREPLY[@]} )) && printf '%s\\n' \"${COMPREPLY[@]}\"\n"
		"exit 0\n";
	char file[PATH_MAX], dirvar[PATH_MAX];
	FMT(file, "%s/share/bash-completion/completions/leakwatch", prefix);
	FMT(dirvar, "LEAKWATCH_DIR=%s", segdir);
	char *argv[40];
	int n = 0;
	argv[n++] = "bash";
	argv[n++] = "--norc";
	argv[n++] = "--noprofile";
	argv[n++] = "-c";
	argv[n++] = (char *)script;
	argv[n++] = "bash";
	argv[n++] = file;
	for (size_t i = 0; words[i] && n < 39; i++)
		argv[n++] = (char *)words[i];
	argv[n] = NULL;
	struct cmd_result r;
	run_cmd(&r, argv, (char *const[]){ dirvar, NULL }, 30);
	cr_assert_eq(r.status, 0, "bash completion failed (%d): %s", r.status, r.err);
	cr_expect_eq(r.err_len, 0, "bash says: %s", r.err);
	char *out = r.out;
	r.out = NULL;
	cmd_result_free(&r);
	return out;
}

static int has_word(const char *reply, const char *w)
{
	size_t len = strlen(w);
	for (const char *p = reply; p && *p;) {
		if (strncmp(p, w, len) == 0 && p[len] == '\n')
			return 1;
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	return 0;
}

static void touch(const char *dir, const char *name)
{
	char path[PATH_MAX];
	FMT(path, "%s/%s", dir, name);
	int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	close(fd);
}

Test(install, bash_completion_completes_from_the_tables)
{
	install_ready();
	lw_tmpdir(segdir, sizeof segdir);
	char mine[32], dead[32], seg[64];
	FMT(mine, "%d", (int)getpid());
	FMT(dead, "%d", lw_dead_pid());
	FMT(seg, "leakwatch.%s", mine);
	touch(segdir, seg);
	FMT(seg, "leakwatch.%s.1", mine);   /* an archive: not a second PID */
	touch(segdir, seg);
	FMT(seg, "leakwatch.%s", dead);
	touch(segdir, seg);
	touch(segdir, "leakwatch.junk");
	touch(segdir, "report-out.json");

	/* the commands: all of --help's */
	char cmds[MAX_CMDS][32];
	int n = help_commands(cmds, MAX_CMDS);
	char *c = complete((const char *[]){ "leakwatch", "", NULL });
	for (int i = 0; i < n; i++)
		cr_expect(has_word(c, cmds[i]), "command %s not offered: %s", cmds[i], c);
	free(c);
	c = complete((const char *[]){ "leakwatch", "r", NULL });
	cr_expect(has_word(c, "report") && has_word(c, "run") && !has_word(c, "ps"), "%s", c);
	free(c);

	/* each command's options are exactly those of its --help (and --help) */
	for (int i = 0; i < n; i++) {
		char want[MAX_OPTS][48], opt[64];
		int nwant = help_options(cmds[i], want, MAX_OPTS);
		c = complete((const char *[]){ "leakwatch", cmds[i], "--", NULL });
		for (int k = 0; k < nwant; k++) {
			FMT(opt, "--%s", want[k]);
			cr_expect(has_word(c, opt), "%s: %s not offered: %s", cmds[i], opt, c);
		}
		cr_expect(has_word(c, "--help"), "%s", c);
		for (const char *p = c; p && *p;) {
			size_t len = strcspn(p, "=\n");
			char w[64];
			FMT(w, "%.*s", len > 2 ? (int)len - 2 : 0, p + 2);
			cr_expect(strncmp(p, "--", 2) != 0 || len == 2 || strcmp(w, "help") == 0 || in_list(w, want, nwant),
				  "%s: --%s offered, not an option", cmds[i], w);
			p = strchr(p, '\n');
			p = p ? p + 1 : NULL;
		}
		free(c);
	}

	/* enumerable values: each offered one is one the parser takes */
	static const char *const valued[][3] = {
		{ "report", "--kind", "heap" }, { "report", "--format", "json" }, { "report", "--by", "use" },
		{ "run", "--heap", "sampled" },  { "diff", "--format", "text" },  { "ps", "--format", "json" },
	};
	for (size_t i = 0; i < sizeof valued / sizeof valued[0]; i++) {
		c = complete((const char *[]){ "leakwatch", valued[i][0], valued[i][1], "", NULL });
		cr_expect(has_word(c, valued[i][2]), "%s %s: %s not offered: %s", valued[i][0], valued[i][1],
			  valued[i][2], c);
		for (const char *p = c; p && *p;) {
			char v[64], quoted[72];
			FMT(v, "%.*s", (int)strcspn(p, "\n"), p);
			FMT(quoted, "'%s'", v);
			struct cmd_result r;
			/* parsed before the missing word is noticed: only a bad value is quoted */
			inst_run(&r, NULL, (const char *[]){ valued[i][0], valued[i][1], v, NULL });
			cr_expect_null(strstr(r.err, quoted), "%s %s %s offered but refused: %s", valued[i][0],
				       valued[i][1], v, r.err);
			cmd_result_free(&r);
			p = strchr(p, '\n');
			p = p ? p + 1 : NULL;
		}
		free(c);
	}
	/* --kind=h as bash splits it at '=' (COMP_WORDBREAKS), and as one word */
	c = complete((const char *[]){ "leakwatch", "report", "--kind", "=", "h", NULL });
	cr_expect_str_eq(c, "heap\n");
	free(c);
	c = complete((const char *[]){ "leakwatch", "report", "--kind", "=", NULL });
	cr_expect(has_word(c, "heap") && has_word(c, "sockets"), "%s", c);
	free(c);
	c = complete((const char *[]){ "leakwatch", "report", "--kind=h", NULL });
	cr_expect_str_eq(c, "--kind=heap\n");
	free(c);
	c = complete((const char *[]){ "leakwatch", "run", "--fail-on-leak", "=", "so", NULL });
	cr_expect_str_eq(c, "sockets\n");
	free(c);

	/* FILE arguments complete file names */
	char prefix_word[PATH_MAX], want_file[PATH_MAX];
	FMT(prefix_word, "%s/report-o", segdir);
	FMT(want_file, "%s/report-out.json\n", segdir);
	c = complete((const char *[]){ "leakwatch", "report", "--output", prefix_word, NULL });
	cr_expect_str_eq(c, want_file);
	free(c);
	c = complete((const char *[]){ "leakwatch", "run", "--suppressions", prefix_word, NULL });
	cr_expect_str_eq(c, want_file);
	free(c);

	/* PIDs: report takes any segment's, top a running one's, attach a running one without */
	c = complete((const char *[]){ "leakwatch", "report", "", NULL });
	cr_expect(has_word(c, mine) && has_word(c, dead), "report: %s", c);
	cr_expect(!has_word(c, "junk"), "%s", c);
	free(c);
	c = complete((const char *[]){ "leakwatch", "report", "--kind", "heap", "", NULL });
	cr_expect(has_word(c, mine), "report after an option's value: %s", c);
	free(c);
	c = complete((const char *[]){ "leakwatch", "top", "", NULL });
	cr_expect(has_word(c, mine) && !has_word(c, dead), "top: %s", c);
	free(c);
	c = complete((const char *[]){ "leakwatch", "attach", "", NULL });
	char parent[32];
	FMT(parent, "%d", (int)getppid());
	cr_expect(!has_word(c, mine) && !has_word(c, dead) && has_word(c, parent), "attach: %s", c);
	free(c);
	/* report's one word given: options next */
	c = complete((const char *[]){ "leakwatch", "report", mine, "", NULL });
	cr_expect(has_word(c, "--kind") && !has_word(c, mine), "%s", c);
	free(c);

	/* run: after "--" (or the first word) the program's command line */
	c = complete((const char *[]){ "leakwatch", "run", "--", "ech", NULL });
	cr_expect(has_word(c, "echo"), "run -- ech: %s", c);
	free(c);
	c = complete((const char *[]){ "leakwatch", "run", "--keep", "--", "cat", prefix_word, NULL });
	cr_expect_str_eq(c, want_file);
	free(c);
	c = complete((const char *[]){ "leakwatch", "run", "--", "ls", "--kind", NULL });
	cr_expect(!has_word(c, "--kind"), "run's options after --: %s", c);
	free(c);
	lw_rmdir(segdir);
}

/* ---- DESTDIR and uninstall ----------------------------------------------------------- */

/* Whether the file holds the bytes of s. */
static int file_contains(const char *path, const char *s)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	size_t len = strlen(s), cap = 1 << 20, have = 0, got;
	char *buf = malloc(cap + len);
	int found = 0;
	while (!found && (got = fread(buf + have, 1, cap, f)) > 0) {
		have += got;
		found = memmem(buf, have, s, len) != NULL;
		/* keep the tail that could begin a match */
		size_t keep = have < len ? have : len - 1;
		memmove(buf, buf + have - keep, keep);
		have = keep;
	}
	fclose(f);
	free(buf);
	return found;
}

static int tree_files(const char *dir)
{
	struct cmd_result r;
	run_cmd(&r, (char *const[]){ "find", (char *)dir, "!", "-type", "d", NULL }, NULL, 30);
	int n = count_lines(r.out);
	cr_expect_eq(n, 0, "left under %s:\n%s", dir, r.out);
	cmd_result_free(&r);
	return n;
}

Test(install, destdir_only_stages_and_uninstall_removes_everything)
{
	install_ready();
	char stage[PATH_MAX], dest[PATH_MAX], pfx[PATH_MAX], bld[PATH_MAX], log[PATH_MAX];
	FMT(stage, "%s/stage-%d", root, (int)getpid());
	FMT(dest, "DESTDIR=%s", stage);
	FMT(pfx, "PREFIX=%s", prefix);
	FMT(bld, "BUILD=%s/build", root);
	FMT(log, "%s/stage-%d.log", root, (int)getpid());
	rm_rf(stage);
	cr_assert_eq(make_run((const char *[]){ "install", pfx, bld, dest, NULL }, log), 0, "see %s", log);
	/* DESTDIR is not part of the build: nothing was compiled again */
	char *text = slurp(log);
	cr_assert_not_null(text);
	cr_expect_null(strstr(text, "  CC "), "DESTDIR rebuilt:\n%s", text);
	free(text);

	char staged[PATH_MAX], installed[PATH_MAX];
	FMT(staged, "%s%s/bin/leakwatch", stage, prefix);
	FMT(installed, "%s/bin/leakwatch", prefix);
	cr_assert(file_is(staged, S_IFREG), "%s", staged);
	cr_expect(!file_contains(staged, stage), "DESTDIR %s compiled into %s", stage, staged);
	cr_expect(file_contains(staged, prefix), "PREFIX %s not compiled into %s", prefix, staged);
	struct stat sa, sb;
	cr_assert_eq(stat(staged, &sa), 0);
	cr_assert_eq(stat(installed, &sb), 0);
	cr_expect_eq(sa.st_size, sb.st_size, "the staged binary is the installed one");
	char page[PATH_MAX];
	FMT(page, "%s%s/share/man/man1/leakwatch-report.1", stage, prefix);
	cr_expect(file_is(page, S_IFREG), "%s", page);

	cr_assert_eq(make_run((const char *[]){ "uninstall", pfx, bld, dest, NULL }, log), 0, "see %s", log);
	tree_files(stage);
	static const char *const own_dirs[] = { "lib/leakwatch", "share/leakwatch", "include/leakwatch" };
	for (size_t i = 0; i < sizeof own_dirs / sizeof own_dirs[0]; i++) {
		char dir[PATH_MAX];
		FMT(dir, "%s%s/%s", stage, prefix, own_dirs[i]);
		cr_expect(access(dir, F_OK) != 0, "%s left behind", dir);
	}
	/* the other install (no DESTDIR) is untouched */
	cr_expect(file_is(installed, S_IFREG));
	rm_rf(stage);
	unlink(log);
}

/* The hidden generators (this build's binary): a bad argument is one line and status 2. */
Test(install, help_generators_refuse_bad_arguments)
{
	static const char *const bad[][4] = {
		{ "help", "--man", "no-such-command", NULL }, { "help", "--man", "report", "extra" },
		{ "help", "--completion", "x", NULL },        { "help", "--no-such-thing", NULL, NULL },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char out[4096], err[4096];
		const char *args[5] = { bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL };
		cr_expect_eq(cli_run(args, (uid_t)-1, out, sizeof out, err, sizeof err), 2, "%s %s", args[1], err);
		cr_expect_eq(out[0], '\0', "%s", out);
		cr_expect_eq(count_lines(err), 1, "%s", err);
		cr_expect_eq(strncmp(err, "leakwatch: help: ", 17), 0, "%s", err);
	}
	/* leakwatch-report and report name the same page */
	char a[65536], b[65536], err[4096];
	cr_assert_eq(cli_run((const char *[]){ "help", "--man", "report", NULL }, (uid_t)-1, a, sizeof a, err, sizeof err),
		     0, "%s", err);
	cr_assert_eq(cli_run((const char *[]){ "help", "--man", "leakwatch-report", NULL }, (uid_t)-1, b, sizeof b, err,
			     sizeof err),
		     0, "%s", err);
	cr_expect_str_eq(a, b);
	cr_expect_not_null(strstr(a, ".TH LEAKWATCH\\-REPORT 1 "), "%.200s", a);
	/* plain `help` is still --help */
	cr_assert_eq(cli_run((const char *[]){ "help", NULL }, (uid_t)-1, a, sizeof a, err, sizeof err), 0);
	cr_expect_eq(strncmp(a, "usage: leakwatch ", 17), 0, "%.200s", a);
}
