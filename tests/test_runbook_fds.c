/*
 * docs/runbook-fds.md ("Too many open files"): every command of its sh
 * blocks is run verbatim, in order, against the incident it describes —
 * tests/fixtures/fdleak.c, a service that leaks one file per request under
 * a soft RLIMIT_NOFILE of 256 — with PID and CMD set as the runbook says,
 * and leakwatch on PATH.  Each command must be one this test knows (a new
 * one in the runbook needs its expectation here) and must do what the
 * runbook says it does.
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/testlib.h"

#define RUNBOOK LW_SOURCE_DIR "/docs/runbook-fds.md"

struct expect {
	const char *cmd;                /* the runbook's line, exactly */
	int status;
	const char *out[4];             /* substrings of stdout (or stderr, for run) */
};

static const struct expect expects[] = {
	{ "grep 'Max open files' /proc/$PID/limits", 0, { "Max open files", " 256 " } },
	{ "ls /proc/$PID/fd | wc -l", 0, { "" } },
	{ "leakwatch report $PID --kind fds", 0,
	  { "DESCRIPTORS ", " open of 256 allowed (soft RLIMIT_NOFILE, ", "/etc/hostname (file)" } },
	{ "leakwatch report $PID --kind fds --interval 1s", 0,
	  { "LEAK SUSPECT, growing: ", "the limit in about ", "load_template", "fdleak.c" } },
	{ "leakwatch run --fail-on-leak=fds -- $CMD", 1, { "other descriptors (files, pipes, ...) left open" } },
};

static const struct expect *expect_of(const char *cmd)
{
	for (size_t i = 0; i < sizeof expects / sizeof expects[0]; i++)
		if (strcmp(expects[i].cmd, cmd) == 0)
			return &expects[i];
	return NULL;
}

/* the commands of the runbook's ```sh blocks, in order */
static size_t runbook_commands(char cmds[][256], size_t max)
{
	FILE *f = fopen(RUNBOOK, "r");
	cr_assert_not_null(f, "%s", RUNBOOK);
	char line[512];
	size_t n = 0;
	int in = 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "```", 3) == 0) {
			in = !in && strcmp(line, "```sh") == 0;
			continue;
		}
		if (!in || !line[0] || line[0] == '#')
			continue;
		cr_assert_lt(n, max);
		cr_assert_lt(strlen(line), 256, "runbook line too long: %s", line);
		memcpy(cmds[n++], line, strlen(line) + 1);
	}
	fclose(f);
	return n;
}

Test(runbook_fds, every_command_works_as_written, .timeout = 120)
{
	char cmds[32][256];
	size_t n = runbook_commands(cmds, 32);
	cr_assert_eq(n, sizeof expects / sizeof expects[0], "the runbook has %zu commands, the test knows %zu", n,
		     sizeof expects / sizeof expects[0]);
	for (size_t i = 0; i < n; i++)
		cr_assert_not_null(expect_of(cmds[i]), "runbook command not checked here: %s", cmds[i]);

	char dir[64];
	lw_tmpdir(dir, sizeof dir);
	char envdir[128], pre[512], pidenv[32], cmdenv[300], pathenv[4096];
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", dir);
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lw_shim());
	char *argv[] = { LW_BUILD_DIR "/fixtures/fdleak", "serve", NULL };
	int in, out;
	pid_t pid = spawn_piped(NULL, argv, (char *[]){ envdir, pre, NULL }, &in, &out);
	cr_assert_gt(pid, 0);
	char buf[64] = "";
	size_t len = 0;
	cr_assert(pipe_wait_for(out, buf, sizeof buf, &len, "ready", 20000), "fixture not ready: %s", buf);

	snprintf(pidenv, sizeof pidenv, "PID=%d", (int)pid);
	snprintf(cmdenv, sizeof cmdenv, "CMD=%s/fixtures/fdleak once", LW_BUILD_DIR);
	snprintf(pathenv, sizeof pathenv, "PATH=%s:%s", LW_BUILD_DIR, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	char *env[] = { envdir, pidenv, cmdenv, pathenv, NULL };
	for (size_t i = 0; i < n; i++) {
		const struct expect *e = expect_of(cmds[i]);
		struct cmd_result r;
		run_cmd(&r, (char *[]){ "sh", "-c", cmds[i], NULL }, env, 60);
		cr_expect_eq(r.status, e->status, "'%s' exited %d (want %d):\n%s%s", cmds[i], r.status, e->status,
			     r.out, r.err);
		for (int k = 0; k < 4 && e->out[k]; k++)
			cr_expect(strstr(r.out, e->out[k]) || strstr(r.err, e->out[k]), "'%s': no '%s' in:\n%s%s",
				  cmds[i], e->out[k], r.out, r.err);
		cmd_result_free(&r);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(in);
	close(out);
	cr_assert_eq(rm_rf(dir), 0);
}
