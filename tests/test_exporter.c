/* SPDX-License-Identifier: MIT */
/*
 * `leakwatch exporter` (issue 15): the exposition against the tools that
 * read it — a real Prometheus (Debian's package) scraping it during the
 * demo's leak, `promtool check metrics`, the shipped alerting rule under
 * `promtool test rules` with the series that Prometheus stored, the
 * OpenMetrics form under prometheus_client's strict parser — and the
 * textfile mode, bounded labels, growth and time to exhaustion, bad input.
 *
 * Everything listens on 127.0.0.1; every process started here is stopped in
 * the fini (services.h).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <sys/stat.h>

#include "lib/json.h"
#include "lib/services.h"
#include "lib/testlib.h"

#define DEMO(name) LW_BUILD_DIR "/demo/" name
#define RULES LW_SOURCE_DIR "/docs/prometheus/leakwatch-alerts.yml"

static void setup(void)
{
	svc_setup("lw-exporter-test");
}

TestSuite(exporter, .init = setup, .fini = svc_teardown, .timeout = 240);

static char env_dir[400], env_pre[400];

static char **envv(void)
{
	static char *e[3];
	snprintf(env_dir, sizeof env_dir, "LEAKWATCH_DIR=%s", svc_path("segments"));
	snprintf(env_pre, sizeof env_pre, "LD_PRELOAD=%s", lw_shim());
	e[0] = env_dir;
	e[1] = env_pre;
	e[2] = NULL;
	return e;
}

/* the segment directory only (the exporter and promtool are not traced) */
static char **envdir(void)
{
	static char *e[2];
	envv();
	e[0] = env_dir;
	e[1] = NULL;
	return e;
}

/* http - GET url with curl (an Accept header when accept); the body, or NULL. */
static char *http(const char *url, const char *accept)
{
	char hdr[256];
	snprintf(hdr, sizeof hdr, "Accept: %s", accept ? accept : "*/*");
	char *argv[] = { "curl", "-s", "-f", "--max-time", "10", "-H", hdr, (char *)url, NULL };
	struct cmd_result r;
	run_cmd(&r, argv, NULL, 20);
	char *body = r.status == 0 ? strdup(r.out) : NULL;
	cmd_result_free(&r);
	return body;
}

/* prom_query - Prometheus's instant query API; the parsed "data.result" owner (free with tj_free). */
static struct tj *prom_query(int port, const char *query)
{
	char url[128], q[1024];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/query", port);
	snprintf(q, sizeof q, "query=%s", query);
	char *argv[] = { "curl", "-s", "-f", "--max-time", "10", "-G", "--data-urlencode", q, url, NULL };
	struct cmd_result r;
	run_cmd(&r, argv, NULL, 20);
	struct tj *j = r.status == 0 ? tj_parse(r.out) : NULL;
	cmd_result_free(&r);
	return j;
}

static const struct tj *prom_result(const struct tj *j)
{
	return tj_get(tj_get(j, "data"), "result");
}

/* The demo: minidb, the leaky api under the shim, the load generator at a
 * rate that leaks about one connection a second (a miss every 20 requests). */
struct demo {
	pid_t api;
	int db_port, api_port;
};

static void demo_start(struct demo *d, int seconds)
{
	char *db[] = { DEMO("minidb"), "--max-conn", "60", "--latency-ms", "5", "--port-file", svc_path("db.port"), NULL };
	svc_spawn(db, NULL, "minidb.log");
	d->db_port = svc_read_port("db.port", 10);
	cr_assert_neq(d->db_port, 0, "minidb did not start");
	char dbp[16];
	snprintf(dbp, sizeof dbp, "%d", d->db_port);
	char *api[] = { DEMO("api"), "--db-port", dbp, "--pool", "40", "--workers", "8", "--checkout-timeout-ms", "300",
			"--port-file", svc_path("api.port"), NULL };
	d->api = svc_spawn(api, envv(), "api.log");
	d->api_port = svc_read_port("api.port", 20);
	cr_assert_neq(d->api_port, 0, "the demo service did not start: %s", slurp(svc_path("api.log")));
	char ap[16], dur[16];
	snprintf(ap, sizeof ap, "%d", d->api_port);
	snprintf(dur, sizeof dur, "%d", seconds);
	char *lg[] = { DEMO("loadgen"), "--port", ap, "--rate", "20", "--miss-every", "20", "--duration", dur,
		       "--timeout-ms", "3000", "--quiet", NULL };
	svc_spawn(lg, NULL, "loadgen.log");
}

static pid_t exporter_start(int port, const char *interval, const char *extra)
{
	char listen[32];
	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	char *argv[] = { (char *)lw_bin(), "exporter", "--listen", listen, "--interval", (char *)interval, "--idle-for", "1s",
			 (char *)extra, NULL };
	pid_t pid = svc_spawn(argv, envdir(), "exporter.log");
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
	for (int t = 0; t < 200; t++) {
		char *b = http(url, NULL);
		if (b) {
			free(b);
			return pid;
		}
		usleep(50000);
	}
	cr_assert_fail("the exporter never answered: %s", slurp(svc_path("exporter.log")));
	return -1;
}

/* promtool_stdin - run promtool ARGS with text on stdin; its exit status (out/err in r). */
static int promtool(struct cmd_result *r, char *const argv[], const char *text)
{
	struct spawn_opts o = { .stdin_text = text, .timeout_s = 60 };
	run_opts(r, argv, &o);
	return r->status;
}

/* labels of a Prometheus result's "metric" object as a PromQL selector body:
 * name{a="x",b="y"}; __name__ left out. */
static void series_of(const struct tj *metric, const char *name, char *buf, size_t cap)
{
	size_t n = (size_t)snprintf(buf, cap, "%s{", name);
	int first = 1;
	for (size_t i = 0; i < tj_len(metric) && n < cap; i++) {
		const char *k = metric->keys[i];
		const char *v = metric->items[i]->type == TJ_STR ? metric->items[i]->str : NULL;
		if (!k || !v || strcmp(k, "__name__") == 0)
			continue;
		n += (size_t)snprintf(buf + n, cap - n, "%s%s=\\\"%s\\\"", first ? "" : ",", k, v);
		first = 0;
	}
	if (n < cap)
		snprintf(buf + n, cap - n, "}");
}

/* The alert expression's condition at minute t (closed 5m window, as
 * Prometheus 2 evaluates delta over 1m-spaced samples): grew over it. */
static int grew(const double *v, int t)
{
	int from = t - 5 < 0 ? 0 : t - 5;
	return t > from && v[t] - v[from] > 0;
}

Test(exporter, prometheus_scrapes_the_demo_and_the_alert_rule_fires_on_its_series)
{
	struct demo d;
	demo_start(&d, 40);
	int ep = svc_free_port();
	exporter_start(ep, "500ms", NULL);

	/* a real Prometheus: scrapes every second, loads the shipped rules */
	int pp = svc_free_port();
	char cfg[2048];
	snprintf(cfg, sizeof cfg,
		 "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
		 "rule_files: [\"%s\"]\n"
		 "scrape_configs:\n  - job_name: leakwatch\n    static_configs:\n      - targets: [\"127.0.0.1:%d\"]\n",
		 RULES, ep);
	FILE *f = fopen(svc_path("prometheus.yml"), "w");
	cr_assert_not_null(f);
	fputs(cfg, f);
	fclose(f);
	char a1[512], a2[512], a3[64];
	snprintf(a1, sizeof a1, "--config.file=%s", svc_path("prometheus.yml"));
	snprintf(a2, sizeof a2, "--storage.tsdb.path=%s", svc_path("tsdb"));
	snprintf(a3, sizeof a3, "--web.listen-address=127.0.0.1:%d", pp);
	char *prom[] = { "/usr/bin/prometheus", a1, a2, a3, NULL };
	svc_spawn(prom, NULL, "prometheus.log");
	char ready[64];
	snprintf(ready, sizeof ready, "http://127.0.0.1:%d/-/ready", pp);
	char *b = NULL;
	for (int t = 0; t < 300 && !(b = http(ready, NULL)); t++)
		usleep(100000);
	cr_assert_not_null(b, "Prometheus did not start: %s", slurp(svc_path("prometheus.log")));
	free(b);

	/* the leak grows in Prometheus: 12 scrapes of suspects from one site, at least 8 of them */
	const char *sel = "leakwatch_leak_suspects{resource=\"socket\",site!~\"none|other\"}";
	char q[256];
	snprintf(q, sizeof q, "count_over_time(%s[2m]) >= 12 and %s >= 8", sel, sel);
	int seen = 0;
	for (int t = 0; t < 60 && !seen; t++) {
		struct tj *j = prom_query(pp, q);
		seen = j && tj_len(prom_result(j)) == 1;
		tj_free(j);
		if (!seen)
			sleep(1);
	}
	cr_assert(seen, "Prometheus never saw 12 scrapes of 8 and more leak suspects: exporter %s; loadgen %s", slurp(svc_path("exporter.log")),
		  slurp(svc_path("loadgen.log")));

	/* the scrape itself: up, no error (Prometheus asked for OpenMetrics and parsed it) */
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/targets", pp);
	char *targets = http(url, NULL);
	struct tj *tg = tj_parse(targets);
	const struct tj *active = tj_get(tj_get(tg, "data"), "activeTargets");
	cr_assert_eq(tj_len(active), 1, "%s", targets);
	cr_expect_str_eq(tj_str(tj_at(active, 0), "health"), "up", "%s", targets);
	cr_expect_str_eq(tj_str(tj_at(active, 0), "lastError"), "", "%s", targets);
	tj_free(tg);
	free(targets);
	/* the shipped rules loaded and evaluate */
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/rules", pp);
	char *rules = http(url, NULL);
	cr_assert_not_null(rules);
	cr_expect_not_null(strstr(rules, "\"name\":\"LeakwatchLeakSuspectsGrowing\""), "%s", rules);
	cr_expect_null(strstr(rules, "\"health\":\"err"), "a rule fails to evaluate: %s", rules);
	free(rules);

	/* the site the suspects come from, named in its info series */
	struct tj *info = prom_query(pp, "leakwatch_site_info{resource=\"socket\"}");
	cr_assert_geq(tj_len(prom_result(info)), 1);
	struct tj *sus = prom_query(pp, sel);
	cr_assert_eq(tj_len(prom_result(sus)), 1, "one leaking site");
	const struct tj *sm = tj_get(tj_at(prom_result(sus), 0), "metric");
	const char *site = tj_str(sm, "site");
	const struct tj *im = NULL;
	for (size_t i = 0; i < tj_len(prom_result(info)); i++)
		if (strcmp(tj_str(tj_get(tj_at(prom_result(info), i), "metric"), "site"), site) == 0)
			im = tj_get(tj_at(prom_result(info), i), "metric");
	cr_assert_not_null(im, "no leakwatch_site_info for site %s", site);
	char endpoint[64];
	snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", d.db_port);
	cr_expect_str_eq(tj_str(im, "endpoint"), endpoint, "the database is the endpoint");
	cr_expect_str_eq(tj_str(im, "file"), "demo/api.c");
	int line = atoi(tj_str(im, "line") ? tj_str(im, "line") : "0");
	/* named where top's WHERE names it: the handler, not the query helper */
	cr_expect_str_eq(tj_str(im, "function"), "get_user_data");
	cr_expect_eq(line, marker_line("demo/api.c", "demo.leak_use"), "at the leaking call");
	char pidbuf[16];
	snprintf(pidbuf, sizeof pidbuf, "%d", (int)d.api);
	cr_expect_str_eq(tj_str(sm, "pid"), pidbuf);
	cr_expect_str_eq(tj_str(sm, "comm"), "api");

	/* what the exporter serves passes promtool's linter */
	snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", ep);
	char *expo = http(url, NULL);
	cr_assert_not_null(expo);
	struct cmd_result r;
	char *check[] = { "promtool", "check", "metrics", NULL };
	cr_expect_eq(promtool(&r, check, expo), 0, "promtool check metrics: %s%s", r.out, r.err);
	cmd_result_free(&r);
	free(expo);

	/* the series Prometheus stored, one value a scrape, for promtool test rules */
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/query", pp);
	char qr[512];
	snprintf(qr, sizeof qr, "query=%s{site=\"%s\"}[2m]", "leakwatch_leak_suspects", site);
	char *argv[] = { "curl", "-s", "-f", "-G", "--data-urlencode", qr, url, NULL };
	run_cmd(&r, argv, NULL, 20);
	struct tj *rng = tj_parse(r.out);
	cmd_result_free(&r);
	const struct tj *values = tj_get(tj_at(prom_result(rng), 0), "values");
	size_t n = tj_len(values);
	cr_assert_geq(n, 8, "%zu samples", n);
	double v[256];
	if (n > 256)
		n = 256;
	char vals[4096] = "";
	size_t vl = 0;
	for (size_t i = 0; i < n; i++) {
		const struct tj *val = tj_at(tj_at(values, i), 1);
		v[i] = val && val->type == TJ_STR ? atof(val->str) : 0;
		vl += (size_t)snprintf(vals + vl, sizeof vals - vl, "%s%g", i ? " " : "", v[i]);
	}
	/* Time compressed: one scrape (1s) becomes one minute, so "growing for
	 * 5m" is checked on the demo's own numbers.  The alert fires at minute T
	 * when the condition held at every evaluation of the last 5 minutes. */
	int T = -1;
	for (int t = (int)n - 1; t >= 5 && T < 0; t--) {
		int ok = 1;
		for (int k = t - 5; k <= t; k++)
			ok &= grew(v, k);
		if (ok)
			T = t;
	}
	cr_assert_geq(T, 5, "the demo's series never grew for 5 steps: %s", vals);
	char ser[1024], inf[1024];
	series_of(sm, "leakwatch_leak_suspects", ser, sizeof ser);
	series_of(im, "leakwatch_site_info", inf, sizeof inf);
	const char *fn = tj_str(im, "function");
	char test[16384];
	const char *kind = tj_str(im, "kind");
	snprintf(test, sizeof test,
		 "rule_files: [\"%s\"]\n"
		 "evaluation_interval: 1m\n"
		 "tests:\n"
		 "  - interval: 1m\n"
		 "    input_series:\n"
		 "      - series: \"%s\"\n        values: \"%s\"\n"
		 "      - series: \"%s\"\n        values: \"1x%zu\"\n"
		 "    alert_rule_test:\n"
		 "      - eval_time: %dm\n"
		 "        alertname: LeakwatchLeakSuspectsGrowing\n"
		 "        exp_alerts:\n"
		 "          - exp_labels:\n"
		 "              severity: warning\n              comm: api\n              pid: \"%s\"\n"
		 "              resource: socket\n              site: \"%s\"\n              instance: \"%s\"\n"
		 "              job: leakwatch\n              kind: %s\n              function: %s\n"
		 "              file: demo/api.c\n              line: \"%d\"\n              endpoint: \"%s\"\n"
		 "            exp_annotations:\n"
		 "              summary: \"api (pid %s) leaks sockets from %s (demo/api.c:%d)\"\n"
		 "              description: \"%g %s socket leak suspects to %s, growing for 5m, named by %s at demo/api.c:%d. "
		 "Stacks: http://%s/stacks (site %s); on the host: leakwatch report %s\"\n",
		 RULES, ser, vals, inf, n - 1, T, pidbuf, site, tj_str(sm, "instance"), kind, fn, line, endpoint, pidbuf,
		 fn, line, v[T], kind, endpoint, fn, line, tj_str(sm, "instance"), site, pidbuf);
	f = fopen(svc_path("rules_test.yml"), "w");
	cr_assert_not_null(f);
	fputs(test, f);
	fclose(f);
	char *ptest[] = { "promtool", "test", "rules", svc_path("rules_test.yml"), NULL };
	cr_expect_eq(promtool(&r, ptest, NULL), 0, "promtool test rules: %s%s\n%s", r.out, r.err, test);
	cmd_result_free(&r);

	/* the test can fail: the same series expecting no alert is refused,
	 * and a flat series (a pool that holds its connections) raises none */
	char *at = strstr(test, "        exp_alerts:\n");
	cr_assert_not_null(at);
	strcpy(at, "        exp_alerts: []\n");
	f = fopen(svc_path("rules_test.yml"), "w");
	fputs(test, f);
	fclose(f);
	cr_expect_neq(promtool(&r, ptest, NULL), 0, "a growing leak must alert: %s", r.out);
	cmd_result_free(&r);
	char flat[64];
	snprintf(flat, sizeof flat, "\"%gx%zu\"", v[n - 1], n - 1);
	char *vp = strstr(test, vals);
	cr_assert_not_null(vp);
	char rest[16384];
	snprintf(rest, sizeof rest, "%s", vp + strlen(vals) + 1); /* after the closing quote */
	snprintf(vp - 1, sizeof test - (size_t)(vp - 1 - test), "%s%s", flat, rest);
	f = fopen(svc_path("rules_test.yml"), "w");
	fputs(test, f);
	fclose(f);
	cr_expect_eq(promtool(&r, ptest, NULL), 0, "a flat series must not alert: %s%s\n%s", r.out, r.err, test);
	cmd_result_free(&r);

	tj_free(rng);
	tj_free(info);
	tj_free(sus);
}

/* A Python program leaking a socket from each of 15 functions (15 sites),
 * and a file every 50 ms under a soft limit of 400 descriptors. */
static const char sites_py[] =
	"import socket, sys, time, resource\n"
	"resource.setrlimit(resource.RLIMIT_NOFILE, (400, 400))\n"
	"kept = []\n"
	"def make(i):\n"
	"    def leak():\n"
	"        kept.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))\n"
	"    leak.__qualname__ = 'leak_%02d' % i\n"
	"    leak.__code__ = leak.__code__.replace(co_name='leak_%02d' % i, co_qualname='leak_%02d' % i,\n"
	"                                          co_firstlineno=100 + i)\n"
	"    return leak\n"
	"for i in range(15):\n"
	"    for k in range(i + 1):\n"
	"        make(i)()\n"
	"print('ready', flush=True)\n"
	"files = []\n"
	"while True:\n"
	"    if len(files) < 300:\n"
	"        files.append(open('/dev/null'))\n"
	"    time.sleep(0.05)\n";

static pid_t sites_start(void)
{
	FILE *f = fopen(svc_path("sites.py"), "w");
	cr_assert_not_null(f);
	fputs(sites_py, f);
	fclose(f);
	char *argv[] = { "/usr/bin/python3", svc_path("sites.py"), NULL };
	pid_t pid = svc_spawn(argv, envv(), "sites.log");
	for (int t = 0; t < 200; t++) {
		char *log = slurp(svc_path("sites.log"));
		int ok = log && strstr(log, "ready");
		free(log);
		if (ok)
			return pid;
		usleep(50000);
	}
	cr_assert_fail("sites.py did not start: %s", slurp(svc_path("sites.log")));
	return -1;
}

static char *once(const char *const extra[], struct cmd_result *r)
{
	char *argv[16] = { (char *)lw_bin(), "exporter", "--once", "--idle-for", "1s" };
	int n = 5;
	for (int i = 0; extra && extra[i] && n < 15; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	run_cmd(r, argv, envdir(), 60);
	return r->out;
}

/* the value of the sample whose line starts with prefix (name{labels...), or -1 */
static double sample_value(const char *expo, const char *prefix)
{
	for (const char *p = expo; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, prefix, strlen(prefix)) == 0) {
			const char *sp = strchr(p, '}');
			return sp ? atof(sp + 1) : -1;
		}
	return -1;
}

static size_t lines_with(const char *expo, const char *prefix)
{
	size_t n = 0;
	for (const char *p = expo; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		n += strncmp(p, prefix, strlen(prefix)) == 0;
	return n;
}

Test(exporter, labels_are_bounded_and_site_ids_stable)
{
	pid_t pid = sites_start();
	sleep(2); /* idle > --idle-for 1s */
	struct cmd_result r;
	const char *top5[] = { "--top", "5", NULL };
	char *a = strdup(once(top5, &r));
	cr_assert_eq(r.status, 0, "%s", r.err);
	cmd_result_free(&r);
	char pfx[128];
	snprintf(pfx, sizeof pfx, "leakwatch_leak_suspects{pid=\"%d\",comm=\"python3\",resource=\"socket\",site=\"", (int)pid);
	/* 5 sites and "other", whatever the number of sites */
	cr_expect_eq(lines_with(a, pfx), 6, "%s", a);
	char other[160];
	snprintf(other, sizeof other, "%sother\"}", pfx);
	/* sites leak 1..15 sockets: the top 5 hold 15+14+13+12+11, the other 10 hold 55 */
	cr_expect_eq(sample_value(a, other), 55, "%s", a);
	snprintf(pfx, sizeof pfx, "leakwatch_site_info{pid=\"%d\",comm=\"python3\",resource=\"socket\"", (int)pid);
	cr_expect_eq(lines_with(a, pfx), 5, "an info series per named site, not for \"other\"");
	cr_expect_not_null(strstr(a, "function=\"leak_14\",file=\""), "the biggest site is named: %s", a);
	cr_expect_not_null(strstr(a, "line=\"114\""), "at its line: %s", a);
	cr_expect_null(strstr(a, "function=\"leak_09\""), "a site past the top 5 has no series");
	/* the same ids in a second collection, and for a second process running the same code */
	char *b = strdup(once(top5, &r));
	cmd_result_free(&r);
	const char *id = strstr(a, "function=\"leak_14\"");
	cr_assert_not_null(id);
	const char *s = strstr(a, "site=\"");
	(void)s;
	/* the id of leak_14's site */
	const char *line_start = id;
	while (line_start > a && line_start[-1] != '\n')
		line_start--;
	const char *sid = strstr(line_start, "site=\"");
	cr_assert_not_null(sid);
	char site[16] = "";
	sscanf(sid + 6, "%15[0-9a-f]", site);
	cr_assert_eq(strlen(site), 12, "12 hex digits: %s", site);
	char want[64];
	snprintf(want, sizeof want, "site=\"%s\",kind=\"UDP\",function=\"leak_14\"", site);
	cr_expect_not_null(strstr(b, want), "stable across collections");
	pid_t pid2 = sites_start();
	sleep(2);
	char *c = strdup(once(top5, &r));
	cmd_result_free(&r);
	snprintf(pfx, sizeof pfx, "leakwatch_site_info{pid=\"%d\",comm=\"python3\",resource=\"socket\",site=\"%s\"", (int)pid2,
		 site);
	cr_expect_eq(lines_with(c, pfx), 1, "the same code in another process: the same id %s\n%s", site, c);
	/* the stacks behind the ids */
	struct tj *j = NULL;
	{
		int port = svc_free_port();
		exporter_start(port, "200ms", "--top=5");
		char url[64];
		snprintf(url, sizeof url, "http://127.0.0.1:%d/stacks", port);
		char *body = http(url, NULL);
		j = tj_parse(body);
		cr_assert_not_null(j, "/stacks is JSON: %s", body);
		free(body);
	}
	int found = 0;
	for (size_t i = 0; i < tj_len(tj_get(j, "processes")); i++) {
		const struct tj *p = tj_at(tj_get(j, "processes"), i);
		for (size_t k = 0; k < tj_len(tj_get(p, "sites")); k++) {
			const struct tj *st = tj_at(tj_get(p, "sites"), k);
			if (!tj_str(st, "site") || strcmp(tj_str(st, "site"), site) != 0)
				continue;
			found++;
			const struct tj *stack = tj_get(st, "stack");
			int sf = (int)tj_num(st, "site_frame", -1);
			cr_expect_str_eq(tj_str(tj_at(stack, (size_t)sf), "function"), "leak_14");
			cr_expect_eq(tj_num(st, "count", 0), 15);
			int mod = 0;
			for (size_t f = 0; f < tj_len(stack); f++)
				mod += tj_str(tj_at(stack, f), "function") &&
				       strcmp(tj_str(tj_at(stack, f), "function"), "<module>") == 0;
			cr_expect_eq(mod, 1, "the whole stack, down to <module>");
		}
	}
	cr_expect_eq(found, 2, "both processes list the site");
	tj_free(j);
	free(a);
	free(b);
	free(c);
}

Test(exporter, growth_and_time_to_exhaustion)
{
	pid_t pid = sites_start();
	int port = svc_free_port();
	exporter_start(port, "250ms", "--window=30s");
	sleep(4);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
	char *m = http(url, NULL);
	cr_assert_not_null(m);
	char pfx[160];
	snprintf(pfx, sizeof pfx, "leakwatch_descriptors_growth_per_second{pid=\"%d\",comm=\"python3\"", (int)pid);
	double g = sample_value(m, pfx);
	/* a file every 50 ms: 20/s when the machine keeps up; never below 5 */
	cr_expect(g >= 5 && g <= 25, "growth %g/s:\n%s", g, m);
	snprintf(pfx, sizeof pfx, "leakwatch_descriptor_limit{pid=\"%d\",comm=\"python3\"", (int)pid);
	cr_expect_eq(sample_value(m, pfx), 400);
	snprintf(pfx, sizeof pfx, "leakwatch_descriptors_exhaustion_seconds{pid=\"%d\",comm=\"python3\"", (int)pid);
	double ex = sample_value(m, pfx);
	double open = 0;
	for (const char *p = m; (p = strstr(p, "leakwatch_open_descriptors{")); p++) {
		char want[64];
		snprintf(want, sizeof want, "pid=\"%d\"", (int)pid);
		const char *eol = strchr(p, '\n');
		const char *w = strstr(p, want);
		if (w && eol && w < eol)
			open += atof(strchr(p, '}') + 1);
	}
	cr_expect_gt(open, 0);
	/* the descriptors left over the slope */
	cr_expect(ex > 0 && fabs(ex - (400 - open) / g) < 1.0, "exhaustion %gs, open %g, growth %g", ex, open, g);
	free(m);
	/* once it stops growing (300 files), no estimate */
	sleep(1);
	for (int t = 0; t < 200; t++) {
		char *x = http(url, NULL);
		int stopped = x && sample_value(x, pfx) < 0;
		free(x);
		if (stopped)
			return;
		usleep(250000);
	}
	cr_expect_fail("the estimate stayed after growth stopped");
}

/* OpenMetrics, as prometheus_client's strict parser reads it: every family
 * typed, counters' samples in _total, the info family, "# EOF" last. */
static const char om_check_py[] =
	"import sys\n"
	"from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n"
	"fams = {f.name: f for f in parse(sys.stdin.read())}\n"
	"assert fams['leakwatch_collections'].type == 'counter', fams['leakwatch_collections'].type\n"
	"assert fams['leakwatch_collections'].samples[0].name == 'leakwatch_collections_total'\n"
	"assert fams['leakwatch_site'].type == 'info'\n"
	"info = [s for s in fams['leakwatch_site'].samples if s.labels.get('resource') == 'socket']\n"
	"print(len(info), sum(s.value for s in fams['leakwatch_leak_suspects'].samples if s.labels['resource'] == 'socket'))\n";

Test(exporter, openmetrics_passes_a_strict_parser)
{
	sites_start();
	sleep(2);
	struct cmd_result r;
	const char *om[] = { "--openmetrics", NULL };
	char *text = strdup(once(om, &r));
	cr_assert_eq(r.status, 0, "%s", r.err);
	cmd_result_free(&r);
	size_t len = strlen(text);
	cr_expect(len > 6 && strcmp(text + len - 6, "# EOF\n") == 0, "ends with # EOF");
	FILE *f = fopen(svc_path("om.py"), "w");
	fputs(om_check_py, f);
	fclose(f);
	char *argv[] = { "/usr/bin/python3", svc_path("om.py"), NULL };
	struct spawn_opts o = { .stdin_text = text, .timeout_s = 60 };
	run_opts(&r, argv, &o);
	cr_expect_eq(r.status, 0, "the strict parser refused it: %s\n%s", r.err, text);
	int named = 0;
	double suspects = 0;
	cr_expect_eq(sscanf(r.out, "%d %lf", &named, &suspects), 2, "%s", r.out);
	cr_expect_eq(named, 10, "the top 10 sites named");
	cr_expect_eq(suspects, 120, "1 + 2 + ... + 15 sockets");
	cmd_result_free(&r);
	/* and the server negotiates: OpenMetrics when asked, Prometheus text otherwise */
	int port = svc_free_port();
	exporter_start(port, "200ms", NULL);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
	char *a = http(url, "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5");
	char *b = http(url, "text/plain");
	cr_assert(a && b);
	cr_expect_not_null(strstr(a, "# TYPE leakwatch_site info\n"));
	cr_expect_not_null(strstr(a, "\n# EOF\n"));
	cr_expect_not_null(strstr(b, "# TYPE leakwatch_site_info gauge\n"));
	cr_expect_null(strstr(b, "# EOF"));
	free(a);
	free(b);
	free(text);
}

/* --textfile: node_exporter never reads half a file; bad paths refused at once */
Test(exporter, textfile_is_replaced_whole)
{
	sites_start();
	char *path = strdup(svc_path("leakwatch.prom"));
	char *argv[] = { (char *)lw_bin(), "exporter", "--textfile", path, "--interval", "100ms", NULL };
	svc_spawn(argv, envdir(), "textfile.log");
	struct stat st0 = { 0 }, st;
	int reads = 0, inodes = 0;
	for (int t = 0; t < 600 && (reads < 200 || inodes < 5); t++) {
		char *s = slurp(path);
		if (s) {
			reads++;
			cr_assert(strstr(s, "# HELP leakwatch_processes") == s, "starts whole");
			cr_assert_not_null(strstr(s, "leakwatch_segment_incomplete{"), "ends whole: %.200s", s);
			cr_assert_eq(s[strlen(s) - 1], '\n');
			if (stat(path, &st) == 0 && st.st_ino != st0.st_ino) {
				inodes++;
				st0 = st;
			}
			free(s);
		}
		usleep(10000);
	}
	cr_expect_geq(reads, 200, "%s", slurp(svc_path("textfile.log")));
	cr_expect_geq(inodes, 5, "a new file each collection, renamed into place");
	free(path);
	/* no temporary file left beside it after a stop */
	struct cmd_result r;
	char dirpath[400];
	snprintf(dirpath, sizeof dirpath, "%s", svc_dir());
	char *bad1[] = { (char *)lw_bin(), "exporter", "--once", "--textfile", "/nonexistent/dir/x.prom", NULL };
	run_cmd(&r, bad1, envdir(), 30);
	cr_expect_eq(r.status, 2);
	cr_expect_eq(count_lines(r.err), 1, "one line: %s", r.err);
	cr_expect_not_null(strstr(r.err, "/nonexistent/dir/x.prom"), "%s", r.err);
	cmd_result_free(&r);
	char *bad2[] = { (char *)lw_bin(), "exporter", "--once", "--textfile", dirpath, NULL };
	run_cmd(&r, bad2, envdir(), 30);
	cr_expect_eq(r.status, 2, "a directory is refused");
	cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
	cmd_result_free(&r);
}

Test(exporter, bad_input_is_one_line_and_status_2)
{
	struct {
		const char *args[6];
		const char *env;
		const char *says;
	} cases[] = {
		{ { "--listen", "nonsense", NULL }, NULL, "--listen" },
		{ { "--listen", "127.0.0.1:99999", NULL }, NULL, "port" },
		{ { "--listen", "[::1:80", NULL }, NULL, "--listen" },
		{ { "--top", "0", NULL }, NULL, "--top" },
		{ { "--interval", "1ms", NULL }, NULL, "--interval" },
		{ { "--once", "--listen", "127.0.0.1:0", NULL }, NULL, "--once" },
		{ { "--openmetrics", NULL }, NULL, "--openmetrics" },
		{ { "--once", NULL }, "LEAKWATCH_DIR=/nonexistent-lw-dir", "/nonexistent-lw-dir" },
		{ { "surplus", NULL }, NULL, "surplus" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *argv[10] = { (char *)lw_bin(), "exporter" };
		int n = 2;
		for (int k = 0; cases[i].args[k]; k++)
			argv[n++] = (char *)cases[i].args[k];
		argv[n] = NULL;
		char *env[] = { (char *)(cases[i].env ? cases[i].env : envdir()[0]), NULL };
		struct cmd_result r;
		run_cmd(&r, argv, env, 30);
		cr_expect_eq(r.status, 2, "case %zu: status %d: %s", i, r.status, r.err);
		cr_expect_eq(count_lines(r.err), 1, "case %zu: one line: %s", i, r.err);
		cr_expect_not_null(strstr(r.err, cases[i].says), "case %zu names %s: %s", i, cases[i].says, r.err);
		cr_expect_eq(r.out_len, 0, "case %zu: nothing on stdout", i);
		cmd_result_free(&r);
	}
	/* a port in use: one line, status 2, at once */
	int port = svc_free_port();
	exporter_start(port, "1s", NULL);
	char listen[32];
	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	char *argv[] = { (char *)lw_bin(), "exporter", "--listen", listen, NULL };
	struct cmd_result r;
	run_cmd(&r, argv, envdir(), 30);
	cr_expect_eq(r.status, 2, "%s", r.err);
	cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
	cr_expect_not_null(strstr(r.err, "cannot listen on"), "%s", r.err);
	cmd_result_free(&r);
}

/* SIGTERM stops it: status 0, the socket closed */
Test(exporter, stops_on_sigterm)
{
	int port = svc_free_port();
	pid_t pid = exporter_start(port, "200ms", NULL);
	kill(pid, SIGTERM);
	int st = 0;
	pid_t w = 0;
	for (int t = 0; t < 100 && (w = waitpid(pid, &st, WNOHANG)) == 0; t++)
		usleep(50000);
	cr_assert_eq(w, pid, "still running 5 s after SIGTERM");
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	svc_stop(pid);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
	cr_expect_null(http(url, NULL), "nothing answers any more");
}
