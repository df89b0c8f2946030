/* SPDX-License-Identifier: MIT */
/* pgtest.c — see pgtest.h. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pgtest.h"
#include "testlib.h"

int pgtest_available(char *why, size_t len)
{
	struct cmd_result r;
	char *check[] = { "sh", LW_SOURCE_DIR "/demo/pg.sh", "check", NULL };
	run_cmd(&r, check, NULL, 10);
	int ok = r.status == 0;
	cmd_result_free(&r);
	if (!ok)
		snprintf(why, len, "PostgreSQL server binaries (initdb, pg_ctl, psql) not found -- install them with "
			 "`sh scripts/deps.sh postgresql libpq-dev` (as root)");
	return ok;
}

void pgtest_start(struct pgtest *p)
{
	memset(p, 0, sizeof *p);
	snprintf(p->tmp, sizeof p->tmp, "/tmp/lw-pg-test-XXXXXX");
	cr_assert_not_null(mkdtemp(p->tmp));
	snprintf(p->dir, sizeof p->dir, "%s/pg", p->tmp);
	snprintf(p->segdir, sizeof p->segdir, "%s/segments", p->tmp);
	cr_assert_eq(mkdir(p->segdir, 0700), 0);
	struct cmd_result r;
	char *start[] = { "sh", LW_SOURCE_DIR "/demo/pg.sh", "start", p->dir, "10", "40", NULL };
	run_cmd(&r, start, NULL, 90);
	cr_assert_eq(r.status, 0, "throwaway PostgreSQL did not start: %s", r.err);
	snprintf(p->conninfo, sizeof p->conninfo, "%.*s", (int)strcspn(r.out, "\n"), r.out);
	cmd_result_free(&r);
	const char *port = strstr(p->conninfo, "port=");
	cr_assert_not_null(port, "pg.sh printed no port: %s", p->conninfo);
	p->port = atoi(port + 5);
}

void pgtest_stop(struct pgtest *p)
{
	struct cmd_result r;
	if (p->dir[0]) {
		char *stop[] = { "sh", LW_SOURCE_DIR "/demo/pg.sh", "stop", p->dir, NULL };
		run_cmd(&r, stop, NULL, 30);
		cmd_result_free(&r);
		p->dir[0] = '\0';
	}
	if (p->tmp[0]) {
		char *rm[] = { "rm", "-rf", p->tmp, NULL };
		run_cmd(&r, rm, NULL, 30);
		cmd_result_free(&r);
		p->tmp[0] = '\0';
	}
}

void pgtest_exec(const struct pgtest *p, const char *sql)
{
	PGconn *c = PQconnectdb(p->conninfo);
	cr_assert_eq(PQstatus(c), CONNECTION_OK, "connect: %s", PQerrorMessage(c));
	PGresult *res = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(res);
	cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
}

const char *pgtest_conninfo_as(const struct pgtest *p, const char *user)
{
	static char buf[600];
	/* a later keyword wins */
	snprintf(buf, sizeof buf, "%s user=%s", p->conninfo, user);
	return buf;
}

void pgclient_start(struct pgclient *c, const struct pgtest *p, int with_unix)
{
	memset(c, 0, sizeof *c);
	char env_dir[200], preload[4200], buf[1024] = "";
	snprintf(env_dir, sizeof env_dir, "LEAKWATCH_DIR=%s", p->segdir);
	snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lw_shim());
	char *argv[] = { "pgclient", (char *)p->conninfo, with_unix ? (char *)p->dir : "-", NULL };
	char *env[] = { env_dir, preload, "LEAKWATCH_HEAP=off", NULL };
	c->pid = spawn_piped(LW_BUILD_DIR "/fixtures/pgclient", argv, env, &c->in, &c->out);
	cr_assert_gt(c->pid, 0);
	size_t len = 0;
	cr_assert(pipe_wait_for(c->out, buf, sizeof buf, &len, "ready\n", 60000), "pgclient not ready: %s", buf);
	for (const char *l = buf; (l = strstr(l, "conn ")) != NULL; l++) {
		cr_assert_lt(c->n, PGCLIENT_MAX);
		cr_assert_eq(sscanf(l, "conn %15s %d %d", c->conn[c->n].kind, &c->conn[c->n].fd,
				    &c->conn[c->n].backend), 3, "%s", l);
		c->n++;
	}
}

void pgclient_stop(struct pgclient *c)
{
	if (c->pid <= 0)
		return;
	close(c->in);
	int st;
	for (int t = 0; t < 100 && waitpid(c->pid, &st, WNOHANG) == 0; t++)
		usleep(50000);
	if (waitpid(c->pid, &st, WNOHANG) == 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, &st, 0);
	}
	close(c->out);
	c->pid = 0;
}
