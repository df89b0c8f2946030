/*
 * Leak or pool, end to end: tests/fixtures/pool.c runs live under the shim
 * in one mode per verdict, and `leakwatch report PID --format json` must give
 * the verdict, the counts, both stacks (opened at, last used at) and the
 * evidence.  The fixture's sockets are a second old; --idle-for is 500ms.
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/json.h"
#include "lib/testlib.h"

#define POOL_SRC "tests/fixtures/pool.c"

struct live {
	pid_t pid;
	int in, out;
	char dir[64];
	int port;
};

static void live_start(struct live *l, const char *mode)
{
	char envdir[96];
	strcpy(l->dir, "/tmp/lw-verdict-XXXXXX");
	cr_assert_not_null(mkdtemp(l->dir));
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", l->dir);
	char preload[4096];
	snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lw_shim());
	l->pid = spawn_piped(LW_BUILD_DIR "/fixtures/pool", (char *[]){ "pool", (char *)mode, NULL },
			     (char *[]){ envdir, "LEAKWATCH_HEAP=off", preload, NULL }, &l->in, &l->out);
	cr_assert_gt(l->pid, 0);
	char buf[128] = "";
	struct pollfd p = { l->out, POLLIN, 0 };
	cr_assert_gt(poll(&p, 1, 20000), 0, "fixture did not start");
	cr_assert_gt(read(l->out, buf, sizeof buf - 1), 0);
	cr_assert_eq(sscanf(buf, "ready port %d", &l->port), 1, "%s", buf);
}

static void live_stop(struct live *l)
{
	close(l->in); /* the fixture ends when stdin closes */
	int st;
	waitpid(l->pid, &st, 0);
	close(l->out);
	cr_assert_eq(rm_rf(l->dir), 0);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static struct tj *live_report(struct live *l, const char *const *extra)
{
	char envdir[128], spid[16];
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", l->dir);
	snprintf(spid, sizeof spid, "%d", (int)l->pid);
	char *env[] = { envdir, NULL };
	const char *argv[24];
	int n = 0;
	argv[n++] = lw_bin();
	argv[n++] = "report";
	argv[n++] = spid;
	argv[n++] = "--format";
	argv[n++] = "json";
	argv[n++] = "--idle-for";
	argv[n++] = "500ms";
	for (int i = 0; extra && extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	struct cmd_result r;
	run_cmd(&r, (char *const *)argv, env, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);
	struct tj *j = tj_parse(r.out);
	cr_assert_not_null(j, "%.500s", r.out);
	cmd_result_free(&r);
	cr_assert_str_eq(tj_str(j, "state"), "running");
	return j;
}

/* does the stack contain `func` at the marker's line? */
static int stack_has(struct tj *stack, const char *func, const char *mark)
{
	int line = marker_line(POOL_SRC, mark);
	cr_assert_neq(line, 0, "marker %s", mark);
	for (size_t i = 0; i < tj_len(stack); i++) {
		struct tj *f = tj_at(stack, i);
		if (tj_str(f, "function") && !strcmp(tj_str(f, "function"), func) &&
		    (int)tj_num(f, "line", -1) == line)
			return 1;
	}
	return 0;
}

/* the groups with this verdict, to the fixture's database port */
static struct tj *find_group(struct tj *j, const char *verdict, int port, size_t nth)
{
	char ep[32];
	snprintf(ep, sizeof ep, "127.0.0.1:%d", port);
	struct tj *groups = tj_get(j, "groups");
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *g = tj_at(groups, i);
		if (!strcmp(tj_str(g, "verdict"), verdict) && tj_str(g, "endpoint") &&
		    !strcmp(tj_str(g, "endpoint"), ep) && nth-- == 0)
			return g;
	}
	return NULL;
}

static size_t count_verdict(struct tj *j, const char *verdict)
{
	size_t n = 0;
	struct tj *groups = tj_get(j, "groups");
	for (size_t i = 0; i < tj_len(groups); i++)
		if (!strcmp(tj_str(tj_at(groups, i), "verdict"), verdict))
			n += (size_t)tj_num(tj_at(groups, i), "count", 0);
	return n;
}

Test(live_verdict, pool_with_periodic_io, .timeout = 60)
{
	struct live l;
	live_start(&l, "pool");
	sleep_ms(1200);
	struct tj *j = live_report(&l, NULL);
	struct tj *g = find_group(j, "pool", l.port, 0);
	cr_assert_not_null(g, "no pool group");
	cr_assert_eq(tj_num(g, "count", -1), 4);
	cr_assert(stack_has(tj_get(g, "stack"), "pool_init", "pool.open"), "opened at pool_init");
	cr_assert(stack_has(tj_get(g, "last_use_stack"), "pool_query", "pool.query"), "last used by pool_query");
	struct tj *ev = tj_get(g, "evidence");
	cr_assert_eq(tj_num(ev, "idle", -1), 0, "no member idle");
	cr_assert_eq(tj_num(ev, "used_recently", -1), 4);
	cr_assert_eq(count_verdict(j, "leak_suspect"), 0, "a healthy pool is not a leak");
	tj_free(j);
	live_stop(&l);
}

Test(live_verdict, opened_used_never_closed, .timeout = 60)
{
	struct live l;
	live_start(&l, "leak");
	sleep_ms(1200);
	struct tj *j = live_report(&l, NULL);
	struct tj *g = find_group(j, "leak_suspect", l.port, 0);
	cr_assert_not_null(g, "no leak suspect");
	cr_assert_eq(tj_num(g, "count", -1), 3);
	cr_assert(stack_has(tj_get(g, "stack"), "open_use_forget", "leak.open"));
	cr_assert(stack_has(tj_get(g, "last_use_stack"), "open_use_forget", "leak.use"));
	struct tj *ev = tj_get(g, "evidence");
	cr_assert_eq(tj_num(ev, "idle", -1), 3);
	cr_assert_geq(tj_num(ev, "idle_min_s", -1), 0.5, "idle at least --idle-for");
	tj_free(j);
	live_stop(&l);
}

Test(live_verdict, close_wait_peer_hung_up, .timeout = 60)
{
	struct live l;
	live_start(&l, "closewait");
	sleep_ms(300); /* CLOSE_WAIT is evidence at once, idle or not */
	struct tj *j = live_report(&l, NULL);
	struct tj *g = find_group(j, "leak_suspect", l.port, 0);
	cr_assert_not_null(g, "CLOSE_WAIT must be a leak suspect");
	cr_assert_eq(tj_num(g, "count", -1), 1);
	cr_assert_eq(tj_num(tj_get(g, "states"), "CLOSE_WAIT", -1), 1);
	cr_assert_eq(tj_num(tj_get(g, "evidence"), "close_wait", -1), 1);
	cr_assert(stack_has(tj_get(g, "stack"), "main", "closewait.open"));
	tj_free(j);
	live_stop(&l);
}

Test(live_verdict, growing_group, .timeout = 60)
{
	struct live l;
	live_start(&l, "growing");
	sleep_ms(1200);
	const char *extra[] = { "--interval", "400ms", NULL };
	struct tj *j = live_report(&l, extra);
	struct tj *g = find_group(j, "leak_suspect", l.port, 0);
	cr_assert_not_null(g, "a growing idle group is a leak suspect");
	cr_assert(stack_has(tj_get(g, "stack"), "open_idle", "grow.open"));
	struct tj *ev = tj_get(g, "evidence");
	cr_assert(tj_get(ev, "growing") && tj_get(ev, "growing")->num, "marked growing");
	struct tj *growth = tj_get(ev, "growth");
	cr_assert_not_null(growth, "--interval gives growth numbers");
	cr_assert_gt(tj_num(growth, "net", -1), 0, "more opened than closed over the interval");
	cr_assert_gt(tj_num(growth, "count_end", -1), tj_num(growth, "count_start", 1e9));
	int reason_growing = 0;
	struct tj *reasons = tj_get(ev, "reasons");
	for (size_t i = 0; i < tj_len(reasons); i++)
		reason_growing |= !strcmp(tj_at(reasons, i)->str, "growing");
	cr_assert(reason_growing, "'growing' among the reasons");
	tj_free(j);
	live_stop(&l);
}

/* The pool opened every connection at start-up; a handler checked two out and
 * never returned them.  Only the last-use stack can name it. */
Test(live_verdict, pool_checkout_never_returned_named_by_last_use, .timeout = 60)
{
	struct live l;
	live_start(&l, "checkout");
	sleep_ms(1200);
	struct tj *j = live_report(&l, NULL);
	struct tj *leak = find_group(j, "leak_suspect", l.port, 0);
	struct tj *pool = find_group(j, "pool", l.port, 0);
	cr_assert_not_null(leak, "no leak suspect");
	cr_assert_not_null(pool, "no pool");
	cr_assert_null(find_group(j, "leak_suspect", l.port, 1), "one culprit, one group");
	cr_assert_eq(tj_num(leak, "count", -1), 2);
	cr_assert_eq(tj_num(pool, "count", -1), 3);
	cr_assert(stack_has(tj_get(leak, "last_use_stack"), "leaky_handler", "checkout.leak"),
		  "the suspect is named by the handler that last used it");
	cr_assert(stack_has(tj_get(leak, "stack"), "pool_init", "pool.open"), "opened by the pool");
	cr_assert(stack_has(tj_get(pool, "last_use_stack"), "healthy_handler", "checkout.healthy"));
	struct tj *ev = tj_get(leak, "evidence");
	cr_assert(tj_get(ev, "split") && tj_get(ev, "split")->num, "split out of the pool's group");
	cr_assert_eq(tj_num(ev, "key_count", -1), 5);
	cr_assert_eq(tj_num(tj_get(leak, "last_use_share"), "count", -1), 2);
	tj_free(j);

	/* grouped by last use, the culprit leads its own group too */
	const char *by_use[] = { "--by", "use", NULL };
	j = live_report(&l, by_use);
	cr_assert_str_eq(tj_str(j, "group_by"), "use");
	leak = find_group(j, "leak_suspect", l.port, 0);
	cr_assert_not_null(leak);
	cr_assert(stack_has(tj_get(leak, "last_use_stack"), "leaky_handler", "checkout.leak"));
	tj_free(j);

	/* and the text report leads with "last used at" for the suspect */
	char envdir[128], spid[16];
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", l.dir);
	snprintf(spid, sizeof spid, "%d", (int)l.pid);
	char *env[] = { envdir, NULL };
	char *argv[] = { (char *)lw_bin(), "report", spid, "--idle-for", "500ms", NULL };
	struct cmd_result r;
	run_cmd(&r, argv, env, 60);
	cr_assert_eq(r.status, 0);
	const char *s = strstr(r.out, "LEAK SUSPECT");
	cr_assert_not_null(s, "%s", r.out);
	const char *used = strstr(s, "last used at"), *opened = strstr(s, "opened at");
	cr_assert(used && opened && used < opened, "suspect: last used at first\n%s", r.out);
	cr_assert_not_null(strstr(used, "leaky_handler"), "%s", r.out);
	cmd_result_free(&r);
	live_stop(&l);
}
