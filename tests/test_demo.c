/*
 * The demo incident as a test: the leaky api service (demo/api.c) runs under
 * the shim against its database (the embedded minidb, or a throwaway
 * PostgreSQL through libpq), the demo's load generator drives it until the
 * pool is exhausted, and `leakwatch report PID --format json` on the live
 * process must name get_user_data at its marked line through the last-use
 * stack, with the database as endpoint.  Then the fixed build under the same
 * load: requests succeed, the pool is whole, no leak suspect.
 *
 * Lines come from "LW-MARK: demo.*" comments in demo/api.c.  Everything runs
 * on 127.0.0.1; every process started here is stopped in the fixture's fini
 * (own process groups, SIGTERM then SIGKILL), also when an assertion fails.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "lib/json.h"
#include "lib/services.h"
#include "lib/testlib.h"

#define DEMO(name) LW_BUILD_DIR "/demo/" name
#define POOL 6
#define IDLE_FOR "2s"

/* What the fini must undo besides the services (services.h): a PostgreSQL cluster. */
static char pgdir[400];

static void teardown(void)
{
	if (pgdir[0]) {
		struct cmd_result r;
		char *argv[] = { "sh", LW_SOURCE_DIR "/demo/pg.sh", "stop", pgdir, NULL };
		run_cmd(&r, argv, NULL, 30);
		cmd_result_free(&r);
		pgdir[0] = '\0';
	}
	svc_teardown();
}

static void setup(void)
{
	svc_setup("lw-demo-test");
}

/* summary_num - a key=value of loadgen's --summary-file line */
static double summary_num(const char *sum, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof pat, "%s=", key);
	for (const char *p = sum; (p = strstr(p, pat)) != NULL; p++)
		if (p == sum || p[-1] == ' ')
			return atof(p + strlen(pat));
	cr_assert_fail("no %s in loadgen summary: %s", key, sum);
	return -1;
}

/* load - run the demo's load generator against the service; its summary line */
static char *load(int port, const char *duration, const char *name, int stop_on_errors)
{
	char portbuf[16], sumfile[400];
	snprintf(portbuf, sizeof portbuf, "%d", port);
	snprintf(sumfile, sizeof sumfile, "%s", svc_path(name));
	char *argv[] = { DEMO("loadgen"), "--port", portbuf, "--rate", "150", "--miss-every", "25",
			 "--duration", (char *)duration, "--timeout-ms", "3000", "--quiet",
			 "--summary-file", sumfile, stop_on_errors ? "--stop-on-errors" : NULL, "1", NULL };
	struct cmd_result r;
	run_cmd(&r, argv, NULL, 60);
	cr_assert_eq(r.status, 0, "loadgen failed (%d): %s", r.status, r.err);
	cmd_result_free(&r);
	char *sum = slurp(sumfile);
	cr_assert_not_null(sum, "loadgen wrote no summary");
	return sum;
}

/* report - `leakwatch report PID --kind sockets --idle-for 2s --format json` */
static struct tj *report(pid_t pid)
{
	char pidbuf[16], env[400];
	snprintf(pidbuf, sizeof pidbuf, "%d", (int)pid);
	snprintf(env, sizeof env, "LEAKWATCH_DIR=%s/segments", svc_dir());
	char *envv[] = { env, NULL };
	char *argv[] = { (char *)lw_bin(), "report", pidbuf, "--kind", "sockets", "--idle-for", IDLE_FOR,
			 "--format", "json", NULL };
	struct cmd_result r;
	run_cmd(&r, argv, envv, 60);
	cr_assert_eq(r.status, 0, "leakwatch report failed (%d): %s", r.status, r.err);
	struct tj *j = tj_parse(r.out);
	cr_assert_not_null(j, "report is not valid JSON: %.400s", r.out);
	cmd_result_free(&r);
	return j;
}

/* http_get - GET path from 127.0.0.1:port; the response body parsed as JSON */
static struct tj *http_get(int port, const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "cannot reach the service");
	char req[256], buf[4096];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
	cr_assert_eq(write(fd, req, (size_t)n), n);
	size_t len = 0;
	ssize_t r;
	while (len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)r;
	close(fd);
	buf[len] = '\0';
	char *body = strstr(buf, "\r\n\r\n");
	cr_assert_not_null(body, "no HTTP response: %s", buf);
	struct tj *j = tj_parse(body + 4);
	cr_assert_not_null(j, "body is not JSON: %s", body + 4);
	return j;
}

/* stack_has - frame index of func in file (basename) at line, or -1 */
static int stack_has(const struct tj *stack, const char *func, const char *file, int line)
{
	for (size_t i = 0; i < tj_len(stack); i++) {
		struct tj *f = tj_at(stack, i);
		const char *fn = tj_str(f, "function"), *path = tj_str(f, "file");
		if (!fn || !path || strcmp(fn, func) != 0)
			continue;
		const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		if (strcmp(base, file) == 0 && (int)tj_num(f, "line", -1) == line)
			return (int)i;
	}
	return -1;
}

static void stack_text(const struct tj *stack, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < tj_len(stack) && len + 1 < cap; i++) {
		struct tj *f = tj_at(stack, i);
		const char *fn = tj_str(f, "function"), *path = tj_str(f, "file");
		len += (size_t)snprintf(out + len, cap - len, " %s@%s:%d", fn ? fn : "?",
					path ? path : "?", (int)tj_num(f, "line", 0));
	}
}

/* The scenario, for either database: db_args are the service's database
 * options; api and api_fixed the two builds. */
static void scenario(char *const db_args[2], const char *api, const char *api_fixed, int db_port)
{
	int use_line = marker_line("demo/api.c", "demo.leak_use");
	int open_line = marker_line("demo/api.c", "demo.pool_open");
	cr_assert_neq(use_line, 0, "LW-MARK: demo.leak_use not found in demo/api.c");
	cr_assert_neq(open_line, 0, "LW-MARK: demo.pool_open not found in demo/api.c");
	char env_dir[400], env_pre[400], endpoint[64], pool_s[8];
	snprintf(env_dir, sizeof env_dir, "LEAKWATCH_DIR=%s/segments", svc_dir());
	snprintf(env_pre, sizeof env_pre, "LD_PRELOAD=%s", lw_shim());
	snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", db_port);
	snprintf(pool_s, sizeof pool_s, "%d", POOL);
	char *envv[] = { env_dir, env_pre, NULL };

	/* --- the leaky service: the pool runs dry --- */
	char portfile[400];
	snprintf(portfile, sizeof portfile, "%s", svc_path("api.port"));
	char *argv[] = { (char *)api, db_args[0], db_args[1], "--pool", pool_s, "--workers", "8",
			 "--checkout-timeout-ms", "300", "--port-file", portfile, NULL };
	pid_t api_pid = svc_spawn(argv, envv, "api.log");
	int port = svc_read_port("api.port", 20);
	cr_assert_neq(port, 0, "the leaky service did not start: %s", slurp(svc_path("api.log")));
	char *sum = load(port, "10", "leaky.sum", 1);
	cr_assert_gt(summary_num(sum, "s5xx"), 0, "no request failed although the pool leaks: %s", sum);
	cr_assert_eq(summary_num(sum, "stopped_early"), 1, "errors never took over: %s", sum);
	cr_assert_geq(summary_num(sum, "p99_max_ms"), 250,
		      "latency did not climb to the checkout timeout: %s", sum);
	int leaked = (int)summary_num(sum, "not_found"); /* each 404 kept one connection */
	cr_assert(leaked >= 1 && leaked <= POOL, "%s", sum);
	free(sum);
	struct tj *st = http_get(port, "/stats");
	cr_assert_eq(tj_num(st, "checked_out", -1), leaked, "the service's own count differs");
	tj_free(st);

	usleep(2500 * 1000); /* no traffic: the leaked connections go idle > --idle-for */
	struct tj *rep = report(api_pid);
	struct tj *groups_j = tj_get(rep, "groups");
	struct tj *suspect = NULL;
	int on_db = 0;
	for (size_t i = 0; i < tj_len(groups_j); i++) {
		struct tj *g = tj_at(groups_j, i);
		const char *ep = tj_str(g, "endpoint"), *v = tj_str(g, "verdict");
		if (!ep || strcmp(ep, endpoint) != 0)
			continue;
		on_db += (int)tj_num(g, "count", 0);
		if (v && !strcmp(v, "leak_suspect")) {
			cr_assert_null(suspect, "more than one leak suspect on the database");
			suspect = g;
		} else {
			cr_assert(v && (!strcmp(v, "pool") || !strcmp(v, "active")),
				  "healthy pool connections have verdict %s", v ? v : "(none)");
		}
	}
	cr_assert_eq(on_db, POOL, "the pool's %d connections to %s, %d in the report", POOL, endpoint, on_db);
	cr_assert_not_null(suspect, "no leak_suspect group for %s", endpoint);
	cr_assert_eq(tj_num(suspect, "count", -1), leaked);
	cr_assert_str_eq(tj_str(suspect, "endpoint_role"), "peer");
	struct tj *ev = tj_get(suspect, "evidence");
	cr_assert_eq(tj_num(ev, "idle", -1), leaked, "every suspect is idle");
	cr_assert_geq(tj_num(ev, "idle_min_s", -1), 2.0);
	char text[2048];
	stack_text(tj_get(suspect, "last_use_stack"), text, sizeof text);
	cr_assert_geq(stack_has(tj_get(suspect, "last_use_stack"), "get_user_data", "api.c", use_line), 0,
		      "last-use stack lacks get_user_data at demo/api.c:%d:%s", use_line, text);
	stack_text(tj_get(suspect, "stack"), text, sizeof text);
	cr_assert_geq(stack_has(tj_get(suspect, "stack"), "pool_init", "api.c", open_line), 0,
		      "opened-at stack lacks pool_init at demo/api.c:%d:%s", open_line, text);
	tj_free(rep);
	svc_stop(api_pid);

	/* --- the fixed build under the same load --- */
	argv[0] = (char *)api_fixed;
	unlink(portfile);
	api_pid = svc_spawn(argv, envv, "api-fixed.log");
	port = svc_read_port("api.port", 20);
	cr_assert_neq(port, 0, "the fixed service did not start: %s", slurp(svc_path("api-fixed.log")));
	sum = load(port, "4", "fixed.sum", 0);
	cr_assert_eq(summary_num(sum, "s5xx"), 0, "the fixed service failed requests: %s", sum);
	cr_assert_eq(summary_num(sum, "failed"), 0, "%s", sum);
	cr_assert_gt(summary_num(sum, "ok"), 300, "%s", sum);
	cr_assert_gt(summary_num(sum, "not_found"), POOL, "the not-found path was not exercised: %s", sum);
	free(sum);
	st = http_get(port, "/stats");
	cr_assert_eq(tj_num(st, "pool_free", -1), POOL, "connections missing from the fixed pool");
	tj_free(st);
	usleep(2500 * 1000);
	rep = report(api_pid);
	groups_j = tj_get(rep, "groups");
	on_db = 0;
	for (size_t i = 0; i < tj_len(groups_j); i++) {
		struct tj *g = tj_at(groups_j, i);
		const char *v = tj_str(g, "verdict");
		cr_assert(!v || strcmp(v, "leak_suspect") != 0, "the fixed build has a leak suspect (%s)",
			  tj_str(g, "endpoint"));
		if (tj_str(g, "endpoint") && !strcmp(tj_str(g, "endpoint"), endpoint)) {
			on_db += (int)tj_num(g, "count", 0);
			cr_assert_str_eq(v ? v : "(none)", "pool");
		}
	}
	cr_assert_eq(on_db, POOL);
	tj_free(rep);
	svc_stop(api_pid);
}

Test(demo_minidb, pool_leak_named_by_last_use_then_fixed, .init = setup, .fini = teardown, .timeout = 60)
{
	char *argv[] = { DEMO("minidb"), "--latency-ms", "10", "--max-conn", "40", "--port-file",
			 svc_path("db.port"), NULL };
	svc_spawn(argv, NULL, "minidb.log");
	int db_port = svc_read_port("db.port", 10);
	cr_assert_neq(db_port, 0, "minidb did not start: %s", slurp(svc_path("minidb.log")));
	char portbuf[16];
	snprintf(portbuf, sizeof portbuf, "%d", db_port);
	char *db_args[2] = { "--db-port", portbuf };
	scenario(db_args, DEMO("api"), DEMO("api-fixed"), db_port);
}

/* setup() only after the skip decision: a skipped test does not run its fini. */
Test(demo_postgres, pool_leak_named_by_last_use_then_fixed, .fini = teardown, .timeout = 60)
{
	struct cmd_result r;
	char *check[] = { "sh", LW_SOURCE_DIR "/demo/pg.sh", "check", NULL };
	run_cmd(&r, check, NULL, 10);
	int have_server = r.status == 0;
	cmd_result_free(&r);
	if (!have_server || access(DEMO("api-pg"), X_OK) != 0 || access(DEMO("api-pg-fixed"), X_OK) != 0) {
		fprintf(stderr, "\n*** demo_postgres SKIPPED: %s -- install them with "
				"`sh scripts/deps.sh postgresql libpq-dev` (as root) and rebuild ***\n\n",
			!have_server ? "PostgreSQL server binaries (initdb, pg_ctl) not found"
				     : "build/demo/api-pg not built (libpq-dev missing)");
		cr_skip_test("PostgreSQL variant not run: %s", !have_server ? "no initdb/pg_ctl"
									    : "no libpq (api-pg not built)");
	}
	setup();
	snprintf(pgdir, sizeof pgdir, "%s/pg", svc_dir());
	char *start[] = { "sh", LW_SOURCE_DIR "/demo/pg.sh", "start", pgdir, "10", "40", NULL };
	run_cmd(&r, start, NULL, 60);
	cr_assert_eq(r.status, 0, "throwaway PostgreSQL did not start: %s", r.err);
	char conninfo[512];
	snprintf(conninfo, sizeof conninfo, "%s", r.out);
	conninfo[strcspn(conninfo, "\n")] = '\0';
	cmd_result_free(&r);
	char *p = strstr(conninfo, "port=");
	cr_assert_not_null(p, "pg.sh printed no port: %s", conninfo);
	char *db_args[2] = { "--db", conninfo };
	scenario(db_args, DEMO("api-pg"), DEMO("api-pg-fixed"), atoi(p + 5));
}

/*
 * The on-call path (issue 13): the leaky service runs WITHOUT leakwatch
 * while it leaks; leakwatch attach brings the shim in mid-incident, with
 * no restart; the report then shows the connections leaked before the
 * attach as an idle leak suspect with kernel evidence only (no stack, no
 * last use), and the ones leaked after it named by get_user_data at its
 * line through the last-use stack.  Every leaked connection is a suspect.
 */
static void attached_mid_incident(const char *lang);

Test(demo_minidb, attached_mid_incident_without_a_restart, .init = setup, .fini = teardown, .timeout = 90)
{
	attached_mid_incident("c");
}

/* make demo-python's service (demo/api.py), the same way: the report names
 * the Python function get_user_data at its line in api.py. */
Test(demo_python, attached_mid_incident_names_the_python_function, .init = setup, .fini = teardown, .timeout = 90)
{
	attached_mid_incident("python");
}

static void attached_mid_incident(const char *lang)
{
	int python = strcmp(lang, "python") == 0;
	char *dbv[] = { DEMO("minidb"), "--latency-ms", "10", "--max-conn", "40", "--port-file", svc_path("db.port"), NULL };
	svc_spawn(dbv, NULL, "minidb.log");
	int db_port = svc_read_port("db.port", 10);
	cr_assert_neq(db_port, 0, "minidb did not start: %s", slurp(svc_path("minidb.log")));
	char dbport[16], endpoint[64], env_dir[400];
	snprintf(dbport, sizeof dbport, "%d", db_port);
	snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", db_port);
	snprintf(env_dir, sizeof env_dir, "LEAKWATCH_DIR=%s/segments", svc_dir());
	char *envv[] = { env_dir, NULL }; /* no LD_PRELOAD */
	char portfile[400];
	snprintf(portfile, sizeof portfile, "%s", svc_path("api.port"));
	char *apiv[] = { DEMO("api"), "--db-port", dbport, "--pool", "12", "--workers", "8",
			 "--checkout-timeout-ms", "300", "--port-file", portfile, NULL };
	char *pyv[] = { "/usr/bin/python3", LW_SOURCE_DIR "/demo/api.py", "--db-port", dbport, "--pool", "12",
			"--checkout-timeout-ms", "300", "--port-file", portfile, NULL };
	pid_t api_pid = svc_spawn(python ? pyv : apiv, envv, "api.log");
	int port = svc_read_port("api.port", 20);
	cr_assert_neq(port, 0, "the service did not start: %s", slurp(svc_path("api.log")));

	/* traffic in the background: one request in 40 leaks a connection */
	char portbuf[16], sumfile[400];
	snprintf(portbuf, sizeof portbuf, "%d", port);
	snprintf(sumfile, sizeof sumfile, "%s", svc_path("leaky.sum"));
	char *loadv[] = { DEMO("loadgen"), "--port", portbuf, "--rate", python ? "80" : "150", "--miss-every",
			  python ? "20" : "40", "--duration", "20",
			  "--timeout-ms", "3000", "--quiet", "--summary-file", sumfile, "--stop-on-errors", "1", NULL };
	pid_t load_pid = svc_spawn(loadv, NULL, "load.log");
	usleep(1500 * 1000); /* some connections leak before anyone looks */
	struct tj *st = http_get(port, "/stats");
	int before = (int)tj_num(st, "checked_out", -1);
	tj_free(st);
	cr_assert_geq(before, 1, "nothing leaked before the attach; slow machine?");

	char pidbuf[16];
	snprintf(pidbuf, sizeof pidbuf, "%d", (int)api_pid);
	char *attv[] = { (char *)lw_bin(), "attach", pidbuf, NULL };
	struct cmd_result r;
	run_cmd(&r, attv, envv, 60);
	cr_assert_eq(r.status, 0, "attach failed (%d): %s%s", r.status, r.out, r.err);
	cmd_result_free(&r);
	int ws;
	for (int t = 0; t < 600 && waitpid(load_pid, &ws, WNOHANG) == 0; t++)
		usleep(50000);
	char *sum = slurp(sumfile);
	cr_assert_not_null(sum, "loadgen wrote no summary: %s", slurp(svc_path("load.log")));
	int leaked = (int)summary_num(sum, "not_found");
	free(sum);
	cr_assert_gt(leaked, before, "nothing leaked after the attach");

	usleep(2500 * 1000); /* the leaked connections go idle > --idle-for */
	struct tj *rep = report(api_pid);
	cr_assert(tj_get(rep, "attach") && tj_get(rep, "attach")->type == TJ_OBJ, "the report says it attached");
	struct tj *groups_j = tj_get(rep, "groups");
	int suspects = 0, named = 0, unnamed = 0, on_db = 0;
	int use_line = python ? marker_line("demo/api.py", "demo.py_leak_use") : marker_line("demo/api.c", "demo.leak_use");
	const char *use_file = python ? "api.py" : "api.c";
	for (size_t i = 0; i < tj_len(groups_j); i++) {
		struct tj *g = tj_at(groups_j, i);
		const char *ep = tj_str(g, "endpoint"), *v = tj_str(g, "verdict");
		if (!ep || strcmp(ep, endpoint) != 0)
			continue;
		on_db += (int)tj_num(g, "count", 0);
		cr_expect_str_eq(tj_str(g, "origin"), "before_attach", "the pool was opened before the attach");
		if (!v || strcmp(v, "leak_suspect") != 0)
			continue;
		int n = (int)tj_num(g, "count", 0);
		suspects += n;
		cr_expect_eq(tj_num(tj_get(g, "evidence"), "idle", -1), n, "every suspect is idle");
		if (stack_has(tj_get(g, "last_use_stack"), "get_user_data", use_file, use_line) >= 0)
			named += n;
		else if (tj_len(tj_get(g, "last_use_stack")) == 0)
			unnamed += n;
	}
	cr_expect_eq(on_db, 12, "the whole pool is in the report");
	cr_expect_eq(suspects, leaked, "every leaked connection is a leak suspect");
	cr_expect_geq(named, 1, "a leak after the attach is named by get_user_data at demo/%s:%d", use_file, use_line);
	char dump[8192];
	snprintf(dump, sizeof dump, "%s", "");
	for (size_t i = 0; i < tj_len(groups_j); i++) {
		size_t l = strlen(dump);
		snprintf(dump + l, sizeof dump - l, " [%s %s n=%.0f use=%zu]", tj_str(tj_at(groups_j, i), "endpoint"), tj_str(tj_at(groups_j, i), "verdict"), tj_num(tj_at(groups_j, i), "count", 0), tj_len(tj_get(tj_at(groups_j, i), "last_use_stack")));
	}
	cr_expect_geq(unnamed, 1, "the leaks before the attach: kernel evidence, no stack (before=%d leaked=%d):%s", before, leaked, dump);
	cr_expect_eq(named + unnamed, suspects);
	tj_free(rep);
	svc_stop(api_pid);
}
