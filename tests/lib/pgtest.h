/* SPDX-License-Identifier: MIT */
/*
 * pgtest.h — a throwaway PostgreSQL cluster for a test (demo/pg.sh, as
 * the demo uses it) and the pgclient fixture (tests/fixtures/pgclient.c)
 * holding connections in known states under the shim: for the suites of
 * `report --pg` (test_report_pg.c, test_report_schema.c).
 */
#ifndef TESTS_LIB_PGTEST_H
#define TESTS_LIB_PGTEST_H

#include <stddef.h>
#include <sys/types.h>

struct pgtest {
	char tmp[64];                   /* private temp dir: the cluster and segments below it */
	char dir[128];                  /* the cluster (its unix socket is there) */
	char segdir[128];               /* a LEAKWATCH_DIR for the traced fixtures */
	char conninfo[512];             /* libpq, TCP, the superuser "leakwatch" */
	int port;
};

/* pgtest_available - 1 when the server binaries are installed (demo/pg.sh check); else 0 with why. */
int pgtest_available(char *why, size_t len);

/* pgtest_start - make the temp dir and start a cluster in it (asserts on failure). */
void pgtest_start(struct pgtest *p);

/* pgtest_stop - stop the cluster and remove the temp dir; safe on a zeroed or stopped one. */
void pgtest_stop(struct pgtest *p);

/* pgtest_exec - run sql as the superuser over conninfo (asserts it succeeded). */
void pgtest_exec(const struct pgtest *p, const char *sql);

/* pgtest_conninfo - p's conninfo with another user: a static buffer. */
const char *pgtest_conninfo_as(const struct pgtest *p, const char *user);

#define PGCLIENT_MAX 8

/* The pgclient fixture under the shim, and the connections it reported. */
struct pgclient {
	pid_t pid;
	int in, out;
	size_t n;
	struct { char kind[16]; int fd, backend; } conn[PGCLIENT_MAX];
};

/* pgclient_start - run it (LEAKWATCH_DIR=p->segdir, LD_PRELOAD the shim;
 * with_unix: also a connection over the cluster's unix socket) until
 * "ready" (asserts). */
void pgclient_start(struct pgclient *c, const struct pgtest *p, int with_unix);

/* pgclient_stop - close its stdin and reap it; safe on a zeroed one. */
void pgclient_stop(struct pgclient *c);

#endif
