/* SPDX-License-Identifier: MIT */
/*
 * `leakwatch report PID --pg CONNINFO` (analyzer/lib/pgjoin.c): each traced
 * PostgreSQL connection joined with its backend in pg_stat_activity, against
 * the demo's throwaway cluster (demo/pg.sh).
 *
 * The truth the report is checked against comes from the other side: the
 * pgclient fixture (tests/fixtures/pgclient.c) prints each connection's fd
 * and PQbackendPID, and puts each in a known state (idle in transaction,
 * idle, active in pg_sleep, one over the unix socket).  The demo service
 * (build/demo/api-pg) leaks pool connections on its 404 path; the leaked ones
 * must show the query that used them last.  Also: the kernel's local and
 * remote addresses the join relies on (sockdiag.c, netlink and /proc), a
 * role that may not see other roles' sessions, and every way --pg fails:
 * one line, exit status 2, nothing written.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "lib/analyzer.h"
#include "lib/json.h"
#include "lib/pgtest.h"
#include "lib/testlib.h"
#include "kernel.h"
#include "pgjoin.h"
#include "testing.h"

#define Q_XACT "SELECT name FROM users WHERE id = $1"
#define Q_IDLE "SELECT count(*) FROM users"
#define Q_ACTIVE "SELECT pg_sleep(600)"

static struct pgtest pg;
static struct pgclient client;
static pid_t api_pid;

static void teardown(void)
{
	pgclient_stop(&client);
	if (api_pid > 0) {
		int st;
		kill(api_pid, SIGTERM);
		for (int t = 0; t < 100 && waitpid(api_pid, &st, WNOHANG) == 0; t++)
			usleep(50000);
		kill(api_pid, SIGKILL);
		waitpid(api_pid, &st, 0);
		api_pid = 0;
	}
	pgtest_stop(&pg);
}

/* Skip only when PostgreSQL is truly not there (scripts/deps.sh installs it for `make test`). */
static void start_or_skip(void)
{
	char why[256];
	if (!pgtest_available(why, sizeof why)) {
		fprintf(stderr, "\n*** report_pg SKIPPED: %s ***\n\n", why);
		cr_skip_test("%s", why);
	}
	pgtest_start(&pg);
}

/* `leakwatch report PID --kind sockets --pg CONNINFO [extra...]`; status, stdout, stderr in r. */
static void report_pg(struct cmd_result *r, pid_t pid, const char *conninfo, const char *fmt, const char *extra)
{
	char spid[16], env_dir[200];
	snprintf(spid, sizeof spid, "%d", (int)pid);
	snprintf(env_dir, sizeof env_dir, "LEAKWATCH_DIR=%s", pg.segdir);
	char *env[] = { env_dir, NULL };
	char *argv[] = { (char *)lw_bin(), "report", spid, "--kind", "sockets", "--format", (char *)fmt,
			 "--pg", (char *)conninfo, (char *)extra, NULL };
	run_cmd(r, argv, env, 60);
}

static struct tj *report_json(pid_t pid, const char *conninfo)
{
	struct cmd_result r;
	report_pg(&r, pid, conninfo, "json", NULL);
	cr_assert_eq(r.status, 0, "report --pg failed (%d): %s", r.status, r.err);
	struct tj *j = tj_parse(r.out);
	cr_assert_not_null(j, "not JSON: %.400s", r.out);
	cmd_result_free(&r);
	return j;
}

/* The group holding fd, or NULL. */
static struct tj *group_of(struct tj *rep, int fd)
{
	struct tj *groups = tj_get(rep, "groups");
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *fds = tj_get(tj_at(groups, i), "fds");
		for (size_t k = 0; k < tj_len(fds); k++)
			if ((int)tj_at(fds, k)->num == fd)
				return tj_at(groups, i);
	}
	return NULL;
}

/* The pg.connections entry of fd in group g, or NULL. */
static struct tj *connection_of(struct tj *g, int fd)
{
	struct tj *conns = tj_get(tj_get(g, "pg"), "connections");
	for (size_t i = 0; i < tj_len(conns); i++)
		if ((int)tj_num(tj_at(conns, i), "fd", -1) == fd)
			return tj_at(conns, i);
	return NULL;
}

static const char *expected_state(const char *kind)
{
	return !strcmp(kind, "xact") ? "idle in transaction" : !strcmp(kind, "idle") ? "idle" : "active";
}

static const char *expected_query(const char *kind)
{
	return !strcmp(kind, "xact") ? Q_XACT : !strcmp(kind, "idle") ? Q_IDLE : Q_ACTIVE;
}

TestSuite(report_pg, .timeout = 120);

Test(report_pg, each_connection_joined_with_its_backend, .fini = teardown)
{
	start_or_skip();
	pgclient_start(&client, &pg, 1);
	cr_assert_eq(client.n, 5, "pgclient reported %zu connections", client.n);
	struct tj *rep = report_json(client.pid, pg.conninfo);

	struct tj *top = tj_get(rep, "pg");
	cr_assert(top && top->type == TJ_OBJ, "no pg object");
	cr_assert_eq(tj_num(top, "server_port", -1), pg.port);
	cr_assert_str_eq(tj_str(top, "user"), "leakwatch");
	cr_assert(tj_get(top, "all_visible")->type == TJ_BOOL && tj_get(top, "all_visible")->num, "superuser sees all");
	cr_assert_eq(tj_num(top, "hidden", -1), 0);
	cr_assert_geq(tj_num(top, "backends", -1), 5, "the fixture's five backends at least");
	cr_assert_eq(tj_num(top, "joined", -1), 4, "every TCP connection joined");
	cr_assert_eq(tj_num(top, "unix_unjoinable", -1), 1);
	cr_assert_geq(tj_num(top, "unix_clients", -1), 1);

	size_t joined = 0;
	for (size_t i = 0; i < client.n; i++) {
		const char *kind = client.conn[i].kind;
		int fd = client.conn[i].fd;
		struct tj *g = group_of(rep, fd);
		cr_assert_not_null(g, "fd %d (%s) in no group", fd, kind);
		struct tj *gp = tj_get(g, "pg");
		cr_assert(gp && gp->type == TJ_OBJ, "fd %d (%s): group without pg", fd, kind);
		struct tj *c = connection_of(g, fd);
		if (!strcmp(kind, "unix")) {
			cr_assert_null(c, "a unix-socket connection cannot be joined");
			cr_assert_eq(tj_num(gp, "unix", -1), 1);
			cr_assert_eq(tj_num(gp, "joined", -1), 0);
			continue;
		}
		cr_assert_not_null(c, "fd %d (%s) not joined", fd, kind);
		joined++;
		cr_assert_eq(tj_num(c, "backend_pid", -1), client.conn[i].backend, "fd %d: backend %.0f, PQbackendPID %d",
			     fd, tj_num(c, "backend_pid", -1), client.conn[i].backend);
		cr_assert_str_eq(tj_str(c, "state"), expected_state(kind), "fd %d (%s)", fd, kind);
		cr_assert_str_eq(tj_str(c, "query"), expected_query(kind), "fd %d (%s)", fd, kind);
		cr_assert_str_eq(tj_str(c, "user"), "leakwatch");
		cr_assert_str_eq(tj_str(c, "database"), "postgres");
		cr_assert_geq(tj_num(c, "state_change_age_s", -1), 0);
		cr_assert_geq(tj_num(c, "backend_age_s", -1), tj_num(c, "state_change_age_s", -1) - 0.001,
			      "the backend started before its state changed");
		const char *local = tj_str(c, "local");
		cr_assert(local && !strncmp(local, "127.0.0.1:", 10), "local %s", local ? local : "(null)");
		if (!strcmp(kind, "idle"))
			cr_assert_eq(tj_get(c, "xact_age_s")->type, TJ_NULL, "no transaction open on an idle backend");
		else
			cr_assert_geq(tj_num(c, "xact_age_s", -1), 0, "%s: a transaction is open", kind);
		if (!strcmp(kind, "active"))
			cr_assert_str_eq(tj_str(c, "wait_event"), "PgSleep");
	}
	cr_assert_eq(joined, 4);

	/* per group: counts add up, the states and the query of its members */
	struct tj *groups = tj_get(rep, "groups");
	double sum_joined = 0;
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *gp = tj_get(tj_at(groups, i), "pg");
		if (!gp || gp->type != TJ_OBJ)
			continue;
		double n = tj_num(gp, "joined", -1), in_states = 0;
		sum_joined += n;
		struct tj *st = tj_get(gp, "states");
		for (size_t k = 0; k < st->n; k++)
			in_states += st->items[k]->num;
		cr_assert_eq(in_states, n, "states add up to the joined members");
		cr_assert_eq(tj_len(tj_get(gp, "connections")), n);
		cr_assert_leq(n + tj_num(gp, "not_found", 0) + tj_num(gp, "unix", 0), tj_num(tj_at(groups, i), "count", 0));
	}
	cr_assert_eq(sum_joined, 4);
	struct tj *xg = group_of(rep, client.conn[0].fd);
	cr_assert_eq(group_of(rep, client.conn[1].fd), xg, "both open transactions come from one call site");
	struct tj *xp = tj_get(xg, "pg");
	cr_assert_eq(tj_num(xg, "count", -1), 2);
	cr_assert_eq(tj_num(tj_get(xp, "states"), "idle in transaction", -1), 2);
	cr_assert_str_eq(tj_str(xp, "oldest_state"), "idle in transaction");
	cr_assert_geq(tj_num(xp, "oldest_xact_s", -1), tj_num(xp, "oldest_state_change_s", -1) - 0.001,
		      "BEGIN came before the query");
	cr_assert_eq(tj_len(tj_get(xp, "queries")), 1);
	cr_assert_str_eq(tj_str(tj_at(tj_get(xp, "queries"), 0), "query"), Q_XACT);
	cr_assert_eq(tj_num(tj_at(tj_get(xp, "queries"), 0), "count", -1), 2);
	tj_free(rep);

	/* text: the database line under each group, one backend line per connection with --all */
	struct cmd_result r;
	report_pg(&r, client.pid, pg.conninfo, "text", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "  database    2 idle in transaction (since "), "%s", r.out);
	cr_assert(strstr(r.out, "last query \"" Q_XACT "\""), "%s", r.out);
	cr_assert(strstr(r.out, "  database    1 idle (since "), "%s", r.out);
	cr_assert(strstr(r.out, "  database    1 active (since "), "%s", r.out);
	cr_assert(strstr(r.out, "1 over a unix socket: not joinable"), "%s", r.out);
	cr_assert(strstr(r.out, "\nnote: 1 connection over a unix socket cannot be joined"), "%s", r.out);
	cr_assert_null(strstr(r.out, "  backend "), "backend lines only with --all");
	cmd_result_free(&r);
	report_pg(&r, client.pid, pg.conninfo, "text", "--all");
	cr_assert_eq(r.status, 0, "%s", r.err);
	for (size_t i = 0; i < client.n; i++) {
		if (!strcmp(client.conn[i].kind, "unix"))
			continue;
		char want[128];
		snprintf(want, sizeof want, "  backend     fd %d 127.0.0.1:", client.conn[i].fd);
		const char *l = strstr(r.out, want);
		cr_assert_not_null(l, "no backend line for fd %d: %s", client.conn[i].fd, r.out);
		snprintf(want, sizeof want, " -> pid %d %s since ", client.conn[i].backend,
			 expected_state(client.conn[i].kind));
		const char *eol = strchr(l, '\n');
		const char *at = strstr(l, want);
		cr_assert(at && at < eol, "fd %d: %.*s", client.conn[i].fd, (int)(eol - l), l);
	}
	cmd_result_free(&r);
}

/*
 * A role that is neither superuser nor in pg_read_all_stats sees other
 * roles' sessions without address, state or query: nothing joins, every
 * TCP connection is "not found", and the report says they are hidden.
 * Granted pg_read_all_stats, the same role joins everything.  With SELECT
 * on pg_stat_activity revoked, --pg fails: one line, exit status 2.
 */
Test(report_pg, other_roles_hidden_then_granted_then_denied, .fini = teardown)
{
	start_or_skip();
	pgtest_exec(&pg, "CREATE ROLE watcher LOGIN");
	pgclient_start(&client, &pg, 0);
	cr_assert_eq(client.n, 4);
	const char *as_watcher = pgtest_conninfo_as(&pg, "watcher");
	char conninfo[600];
	snprintf(conninfo, sizeof conninfo, "%s", as_watcher);

	struct tj *rep = report_json(client.pid, conninfo);
	struct tj *top = tj_get(rep, "pg");
	cr_assert_str_eq(tj_str(top, "user"), "watcher");
	cr_assert(tj_get(top, "all_visible")->type == TJ_BOOL && !tj_get(top, "all_visible")->num);
	cr_assert_geq(tj_num(top, "hidden", -1), 4, "the fixture's four sessions are another role's");
	cr_assert_eq(tj_num(top, "joined", -1), 0);
	double not_found = 0;
	for (size_t i = 0; i < client.n; i++) {
		struct tj *g = group_of(rep, client.conn[i].fd);
		cr_assert_not_null(g);
		cr_assert_null(connection_of(g, client.conn[i].fd));
	}
	struct tj *groups = tj_get(rep, "groups");
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *gp = tj_get(tj_at(groups, i), "pg");
		if (gp && gp->type == TJ_OBJ)
			not_found += tj_num(gp, "not_found", 0);
	}
	cr_assert_eq(not_found, 4, "each TCP connection to the server's port is not found");
	tj_free(rep);
	struct cmd_result r;
	report_pg(&r, client.pid, conninfo, "text", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "sessions of other roles show no address, state or query to watcher"), "%s", r.out);
	cr_assert(strstr(r.out, "2 not in pg_stat_activity (or hidden"), "%s", r.out);
	cmd_result_free(&r);

	pgtest_exec(&pg, "GRANT pg_read_all_stats TO watcher");
	rep = report_json(client.pid, conninfo);
	top = tj_get(rep, "pg");
	cr_assert(tj_get(top, "all_visible")->num, "pg_read_all_stats sees all");
	cr_assert_eq(tj_num(top, "hidden", -1), 0);
	cr_assert_eq(tj_num(top, "joined", -1), 4);
	tj_free(rep);

	pgtest_exec(&pg, "REVOKE pg_read_all_stats FROM watcher; REVOKE SELECT ON pg_stat_activity FROM PUBLIC");
	char out[300];
	snprintf(out, sizeof out, "%s/report.txt", pg.tmp);
	char extra[320];
	snprintf(extra, sizeof extra, "--output=%s", out);
	report_pg(&r, client.pid, conninfo, "json", extra);
	cr_assert_eq(r.status, 2, "permission denied is exit status 2 (%d): %s", r.status, r.err);
	cr_assert_str_eq(r.err, "leakwatch: --pg: permission denied for view pg_stat_activity\n");
	cr_assert_eq(r.out_len, 0);
	struct stat st;
	cr_assert_neq(stat(out, &st), 0, "no output file for a failed report");
	cmd_result_free(&r);
}

/* A listening socket that accepts (in the kernel's backlog) and never answers. */
static int silent_server(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(fd, 8), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/*
 * Every failure of --pg is one line "leakwatch: --pg: <libpq's message>",
 * exit status 2 and nothing on stdout (or in --output): a bad conninfo
 * (before the segment is even read), a port nothing listens on, a socket
 * directory without a server, a server that never answers (the deadline:
 * connect_timeout; the run's own 60 s timeout is only a hang detector).
 */
Test(report_pg, failures_are_one_line_and_status_2)
{
	char dir[64], path[PATH_MAX], env_dir[PATH_MAX + 32];
	lw_tmpdir(dir, sizeof dir);
	snprintf(env_dir, sizeof env_dir, "LEAKWATCH_DIR=%s", dir);
	struct fab f;
	fab_init(&f, 16, 4, 16, 4);
	fab_handle(&f, 5, LW_ORIGIN_SOCKET, 0, 1);
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);

	int lport, dport;
	int lfd = silent_server(&lport);
	/* a port that was free a moment ago: bind one, close it */
	int cfd = silent_server(&dport);
	close(cfd);
	char refused[128], silent[128], nosock[200], out[PATH_MAX + 16];
	snprintf(refused, sizeof refused, "host=127.0.0.1 port=%d connect_timeout=5", dport);
	snprintf(silent, sizeof silent, "host=127.0.0.1 port=%d connect_timeout=1", lport);
	snprintf(nosock, sizeof nosock, "host=%s/nowhere port=5432", dir);
	snprintf(out, sizeof out, "%s/out.json", dir);
	static const struct { const char *info, *msg; } cases[] = {
		{ "garbage", "missing \"=\" after \"garbage\" in connection info string" },
		{ "postgresql://[bad", "end of string reached when looking for matching \"]\"" },
		{ "host=127.0.0.1 port=notaport", NULL },
		{ NULL, "Connection refused" },
		{ NULL, "timeout expired" },
		{ NULL, "No such file or directory" },
	};
	const char *infos[] = { cases[0].info, cases[1].info, cases[2].info, refused, silent, nosock };
	for (size_t i = 0; i < sizeof infos / sizeof infos[0]; i++) {
		char oarg[PATH_MAX + 32];
		snprintf(oarg, sizeof oarg, "--output=%s", out);
		char *argv[] = { (char *)lw_bin(), "report", path, "--format", "json", "--pg", (char *)infos[i], oarg, NULL };
		char *env[] = { env_dir, NULL };
		struct cmd_result r;
		run_cmd(&r, argv, env, 60);
		cr_assert_eq(r.status, 2, "%s: exit %d: %s", infos[i], r.status, r.err);
		cr_assert_not(r.timed_out, "%s: hung", infos[i]);
		cr_assert_eq(count_lines(r.err), 1, "%s: one line: %s", infos[i], r.err);
		cr_assert(!strncmp(r.err, "leakwatch: --pg: ", 17), "%s: %s", infos[i], r.err);
		if (cases[i].msg)
			cr_assert(strstr(r.err, cases[i].msg), "%s: %s", infos[i], r.err);
		cr_assert_eq(r.out_len, 0, "%s: nothing on stdout", infos[i]);
		struct stat st;
		cr_assert_neq(stat(out, &st), 0, "%s: no output file", infos[i]);
		cmd_result_free(&r);
	}
	/* --pg with a format it does not go with: a usage error */
	char *argv[] = { (char *)lw_bin(), "report", path, "--format", "folded", "--pg", "host=x", NULL };
	struct cmd_result r;
	run_cmd(&r, argv, NULL, 60);
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "--pg goes with --format text or json"), "%s", r.err);
	cmd_result_free(&r);
	close(lfd);
	lw_rmdir(dir);
}

/* The join's ground: both ends of a TCP socket, v4 and v6, from sock_diag and from /proc. */
Test(report_pg, kernel_view_has_both_ends_of_a_tcp_socket)
{
	for (int v6 = 0; v6 < 2; v6++) {
		int fam = v6 ? AF_INET6 : AF_INET;
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof ss);
		socklen_t len;
		if (v6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			a->sin6_family = AF_INET6;
			a->sin6_addr = in6addr_loopback;
			len = sizeof *a;
		} else {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			a->sin_family = AF_INET;
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			len = sizeof *a;
		}
		int l = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (v6 && (l < 0 || bind(l, (struct sockaddr *)&ss, len) != 0)) {
			if (l >= 0)
				close(l);
			continue; /* no IPv6 loopback here */
		}
		if (!v6)
			cr_assert_eq(bind(l, (struct sockaddr *)&ss, len), 0);
		cr_assert_eq(listen(l, 4), 0);
		cr_assert_eq(getsockname(l, (struct sockaddr *)&ss, &len), 0);
		int c = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_eq(connect(c, (struct sockaddr *)&ss, len), 0);
		struct sockaddr_storage me, peer;
		socklen_t ml = sizeof me, pl = sizeof peer;
		cr_assert_eq(getsockname(c, (struct sockaddr *)&me, &ml), 0);
		cr_assert_eq(getpeername(c, (struct sockaddr *)&peer, &pl), 0);
		struct stat st;
		cr_assert_eq(fstat(c, &st), 0);
		const void *maddr = v6 ? (const void *)&((struct sockaddr_in6 *)&me)->sin6_addr
				       : (const void *)&((struct sockaddr_in *)&me)->sin_addr;
		const void *paddr = v6 ? (const void *)&((struct sockaddr_in6 *)&peer)->sin6_addr
				       : (const void *)&((struct sockaddr_in *)&peer)->sin_addr;
		uint16_t mport = ntohs(v6 ? ((struct sockaddr_in6 *)&me)->sin6_port : ((struct sockaddr_in *)&me)->sin_port);
		uint16_t pport = ntohs(v6 ? ((struct sockaddr_in6 *)&peer)->sin6_port
					  : ((struct sockaddr_in *)&peer)->sin_port);
		size_t alen = v6 ? 16 : 4;
		for (int proc = 0; proc < 2; proc++) {
			struct lw_sockdiag d;
			cr_assert_eq(proc ? lw_sockdiag_load_proc(&d, getpid()) : lw_sockdiag_load(&d, getpid()), 0);
			const struct lw_sockinfo *k = lw_sockdiag_find(&d, st.st_ino);
			cr_assert_not_null(k, "v6=%d proc=%d: socket not found", v6, proc);
			cr_assert(k->has_addrs, "v6=%d proc=%d: no addresses", v6, proc);
			cr_assert_eq(k->local_port, mport, "v6=%d proc=%d: local port %u, getsockname %u", v6, proc,
				     k->local_port, mport);
			cr_assert_eq(k->remote_port, pport, "v6=%d proc=%d", v6, proc);
			cr_assert_eq(memcmp(k->local_addr, maddr, alen), 0, "v6=%d proc=%d: local address", v6, proc);
			cr_assert_eq(memcmp(k->remote_addr, paddr, alen), 0, "v6=%d proc=%d: remote address", v6, proc);
			lw_sockdiag_free(&d);
		}
		close(c);
		close(l);
	}
}

/* GET path from the demo service; the HTTP status. */
static int http_status(int port, const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { 10, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "cannot reach the service");
	char req[256], buf[2048];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
	cr_assert_eq(write(fd, req, (size_t)n), n);
	size_t len = 0;
	ssize_t k;
	while (len < sizeof buf - 1 && (k = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)k;
	close(fd);
	buf[len] = '\0';
	int status = 0;
	cr_assert_eq(sscanf(buf, "HTTP/1.%*d %d", &status), 1, "no HTTP response: %s", buf);
	return status;
}

/*
 * The demo's incident on PostgreSQL: the leaky service (build/demo/api-pg)
 * keeps the connection of each 404.  The database's side of the pool: every
 * connection joined, idle, and exactly the leaked ones last ran the
 * service's user query.
 */
Test(report_pg, demo_service_leaked_connections_show_their_last_query, .fini = teardown)
{
	if (access(LW_BUILD_DIR "/demo/api-pg", X_OK) != 0)
		cr_skip_test("build/demo/api-pg not built (libpq-dev missing)");
	start_or_skip();
	char env_dir[200], preload[4200], portfile[300], log[300];
	snprintf(env_dir, sizeof env_dir, "LEAKWATCH_DIR=%s", pg.segdir);
	snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lw_shim());
	snprintf(portfile, sizeof portfile, "%s/api.port", pg.tmp);
	snprintf(log, sizeof log, "%s/api.log", pg.tmp);
	char *argv[] = { LW_BUILD_DIR "/demo/api-pg", "--db", pg.conninfo, "--pool", "4", "--workers", "2",
			 "--checkout-timeout-ms", "300", "--port-file", portfile, NULL };
	char *env[] = { env_dir, preload, NULL };
	struct spawn_opts o = { .path = argv[0], .env = env, .log_path = log };
	api_pid = spawn_bg(argv, &o);
	cr_assert_gt(api_pid, 0);
	int port = 0;
	for (int t = 0; t < 400 && port <= 0; t++) {
		char *s = slurp(portfile);
		port = s ? atoi(s) : 0;
		free(s);
		if (port <= 0)
			usleep(50000);
	}
	cr_assert_gt(port, 0, "the service did not start: %s", slurp(log));
	cr_assert_eq(http_status(port, "/users/5001"), 404);
	cr_assert_eq(http_status(port, "/users/5002"), 404);
	cr_assert_eq(http_status(port, "/users/12"), 200);

	char endpoint[64];
	snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", pg.port);
	struct tj *rep = report_json(api_pid, pg.conninfo);
	struct tj *groups = tj_get(rep, "groups");
	int conns = 0, user_query = 0, idle = 0;
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *g = tj_at(groups, i);
		if (!tj_str(g, "endpoint") || strcmp(tj_str(g, "endpoint"), endpoint))
			continue;
		struct tj *cs = tj_get(tj_get(g, "pg"), "connections");
		cr_assert_eq(tj_len(cs), tj_num(g, "count", -1), "every pool connection joined");
		for (size_t k = 0; k < tj_len(cs); k++) {
			struct tj *c = tj_at(cs, k);
			conns++;
			idle += !strcmp(tj_str(c, "state"), "idle");
			user_query += tj_str(c, "query") && !strcmp(tj_str(c, "query"), "SELECT user_name($1::int)");
		}
	}
	cr_assert_eq(conns, 4, "the pool's 4 connections joined");
	cr_assert_eq(idle, 4, "between requests every backend is idle");
	/* the 200 gave its connection back; it ran the same query, so 2 or 3 (the returned one
	 * may since have been pinged by the keepalive) */
	cr_assert(user_query >= 2 && user_query <= 3, "%d connections last ran the user query", user_query);
	tj_free(rep);
}

/* A backend of a hand-made view: ip (v4 text), port, state, ages, query. */
static void fab_backend(struct lw_pg_view *v, int pid, const char *ip, int port, const char *state, double state_age,
			double xact_age, const char *query)
{
	struct lw_pg_backend *b = &v->b[v->n++];
	memset(b, 0, sizeof *b);
	b->pid = pid;
	b->visible = port != 0;
	b->client_port = port;
	if (ip) {
		b->family = AF_INET;
		cr_assert_eq(inet_pton(AF_INET, ip, b->addr), 1);
		snprintf(b->client_addr, sizeof b->client_addr, "%s", ip);
	}
	snprintf(b->state, sizeof b->state, "%s", state ? state : "");
	b->state_age_s = state_age;
	b->xact_age_s = xact_age;
	b->query_age_s = b->backend_age_s = state_age;
	b->query = query ? strdup(query) : NULL;
}

/* A TCP member: local ip:port (v6: as a v4-mapped IPv6 address) to remote port rport. */
static void fab_member(struct lw_member *m, int fd, const char *ip, int port, int rport, int v6)
{
	memset(m, 0, sizeof *m);
	m->fd = fd;
	m->has_kernel = 1;
	m->k.protocol = IPPROTO_TCP;
	m->k.has_addrs = 1;
	m->k.local_port = (uint16_t)port;
	m->k.remote_port = (uint16_t)rport;
	if (v6) {
		char mapped[64];
		snprintf(mapped, sizeof mapped, "::ffff:%s", ip);
		m->k.family = AF_INET6;
		cr_assert_eq(inet_pton(AF_INET6, mapped, m->k.local_addr), 1);
	} else {
		m->k.family = AF_INET;
		cr_assert_eq(inet_pton(AF_INET, ip, m->k.local_addr), 1);
	}
}

/*
 * The join and the summary without a server: a hand-made pg_stat_activity
 * and a group of members.  Joined by local address:port (a v4-mapped IPv6
 * socket too) only when the remote port is the server's; another service
 * on the same local port is not the database; a member to the server's port
 * without a backend is "not found"; the unix-socket one is counted; a
 * hidden backend never joins; states and queries most members first.
 */
Test(report_pg, join_and_summary_of_a_hand_made_view)
{
	struct lw_pg_view v;
	memset(&v, 0, sizeof v);
	v.server_port = 5432;
	v.b = calloc(8, sizeof *v.b);
	fab_backend(&v, 101, "127.0.0.1", 40001, "idle in transaction", 10, 11, "SELECT a");
	fab_backend(&v, 102, "127.0.0.1", 40002, "idle", 3, -1, "SELECT b");
	fab_backend(&v, 103, "127.0.0.1", 40003, "idle in transaction", 20, 25, "SELECT a");
	fab_backend(&v, 104, NULL, 0, NULL, -1, -1, NULL);               /* hidden */
	fab_backend(&v, 105, "10.0.0.9", 40009, "active", 1, 1, "SELECT c"); /* another host's client */
	fab_backend(&v, 106, NULL, -1, "idle", 2, -1, "SELECT d");         /* over the unix socket */
	v.hidden = 1;
	lw_pg_sort(&v);

	struct lw_member *m = calloc(7, sizeof *m);
	fab_member(&m[0], 3, "127.0.0.1", 40001, 5432, 0);
	fab_member(&m[1], 4, "127.0.0.1", 40002, 5432, 0);
	fab_member(&m[2], 5, "127.0.0.1", 40003, 5432, 1);
	fab_member(&m[3], 6, "127.0.0.1", 40001, 6379, 0); /* same local port, another service */
	fab_member(&m[4], 7, "127.0.0.1", 40007, 5432, 0); /* no backend */
	fab_member(&m[5], 8, "127.0.0.1", 40009, 5432, 0); /* 10.0.0.9's port, not ours */
	memset(&m[6], 0, sizeof m[6]);
	m[6].fd = 9;
	snprintf(m[6].peer, sizeof m[6].peer, "/run/postgresql/.s.PGSQL.5432");
	struct lw_group g;
	memset(&g, 0, sizeof g);
	g.members = m;
	g.count = 7;

	cr_assert_eq(lw_pg_find(&v, &m[0])->pid, 101);
	cr_assert_eq(lw_pg_find(&v, &m[2])->pid, 103, "v4-mapped IPv6 is IPv4");
	cr_assert_null(lw_pg_find(&v, &m[3]), "another service on the same local port");
	cr_assert_null(lw_pg_find(&v, &m[5]));
	cr_assert(lw_pg_member_unix(&m[6]));
	cr_assert_not(lw_pg_member_unix(&m[0]));
	char local[64];
	cr_assert_str_eq(lw_pg_member_local(&m[2], local, sizeof local), "[::ffff:127.0.0.1]:40003");

	struct lw_pg_summary s;
	cr_assert_eq(lw_pg_summarize(&v, &g, &s), 1);
	cr_assert_eq(s.joined, 3);
	cr_assert_eq(s.not_found, 2, "fds 7 and 8 talk to the server's port");
	cr_assert_eq(s.unix_members, 1);
	cr_assert_eq(s.nstates, 2);
	cr_assert_str_eq(s.states[0].state, "idle in transaction");
	cr_assert_eq(s.states[0].n, 2);
	cr_assert_float_eq(s.states[0].oldest_s, 20, 1e-9);
	cr_assert_str_eq(s.states[1].state, "idle");
	cr_assert_float_eq(s.oldest_state_s, 20, 1e-9);
	cr_assert_str_eq(s.oldest_state, "idle in transaction");
	cr_assert_float_eq(s.oldest_xact_s, 25, 1e-9);
	cr_assert_eq(s.nqueries_total, 2);
	cr_assert_str_eq(s.queries[0].query, "SELECT a");
	cr_assert_eq(s.queries[0].n, 2);
	cr_assert_str_eq(s.queries[1].query, "SELECT b");

	/* a group of nothing the database knows */
	struct lw_group other;
	memset(&other, 0, sizeof other);
	other.members = &m[3];
	other.count = 1;
	cr_assert_eq(lw_pg_summarize(&v, &other, &s), 0);
	cr_assert_eq(lw_pg_summarize(NULL, &g, &s), 0);
	free(m);
	lw_pg_free(&v);
}
