/* SPDX-License-Identifier: MIT */
/*
 * cmd_exporter.c — `leakwatch exporter`: every traced process of the
 * segment directory as Prometheus metrics (metrics.c), for dashboards and
 * alerts.
 *
 * One collection every --interval (default 5s) reports each live segment as
 * `report PID` would and renders the exposition once, in both formats, and
 * the /stacks JSON; the HTTP server (libmicrohttpd, its own polling thread)
 * only copies the last rendering out, so a scrape costs the same however
 * often it comes and never touches a segment.  Endpoints:
 *
 *   /metrics   Prometheus text 0.0.4, or OpenMetrics 1.0.0 when the Accept
 *              header asks for application/openmetrics-text
 *   /stacks    the exported sites with their whole stacks (JSON)
 *   /          a short index
 *
 * --textfile PATH writes the text exposition for node_exporter's textfile
 * collector after every collection, atomically (a temporary file beside it,
 * renamed: the collector never reads half a file).  Without --listen,
 * --textfile alone serves nothing.  --once collects once, writes (the
 * textfile, else stdout) and exits: a cron job, or `promtool check metrics`.
 *
 * The listener is on loopback unless --listen says otherwise.  SIGINT and
 * SIGTERM stop it (exit 0).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "classify.h"
#include "metrics.h"
#include "options.h"
#include "output.h"
#include "segdir.h"

#define EXPORTER_LISTEN_DEFAULT "127.0.0.1:9479"

struct exporter_options {
	const char *listen;             /* --listen ADDR:PORT */
	const char *textfile;           /* --textfile PATH */
	uint64_t interval_ns;           /* --interval DUR */
	uint64_t window_ns;             /* --window DUR */
	uint64_t idle_for_ns;           /* --idle-for DUR */
	int top;                        /* --top N */
	int once;                       /* --once */
	int openmetrics;                /* --openmetrics (with --once on stdout) */
};

static const struct lw_option exporter_options_table[] = {
	{ "listen", LW_OPT_STRING, LW_ARG_REQUIRED, offsetof(struct exporter_options, listen), "ADDR:PORT",
	  "serve /metrics and /stacks on ADDR:PORT (default " EXPORTER_LISTEN_DEFAULT ",\nloopback only; "
	  "[::1]:PORT for IPv6, :PORT for every interface,\nport 0 for any free port, printed at start)",
	  0, 0, 0, NULL, NULL },
	{ "textfile", LW_OPT_STRING, LW_ARG_REQUIRED, offsetof(struct exporter_options, textfile), "PATH",
	  "also write the metrics to PATH after every collection, atomically,\nfor node_exporter's textfile "
	  "collector (PATH ending in .prom); with\nno --listen, only that",
	  0, 0, 0, NULL, NULL },
	{ "interval", LW_OPT_DURATION, LW_ARG_REQUIRED, offsetof(struct exporter_options, interval_ns), "DUR",
	  "collect every DUR (default 5s, at least 100ms)", 100000000ll, 0, 0, "bad --interval duration '*' (at least 100ms)",
	  NULL },
	{ "window", LW_OPT_DURATION, LW_ARG_REQUIRED, offsetof(struct exporter_options, window_ns), "DUR",
	  "growth rates and time to exhaustion over the last DUR\n(default 5m)", 1000000000ll, 0, 0,
	  "bad --window duration '*' (at least 1s)", NULL },
	LW_OPT_IDLE_FOR(struct exporter_options, idle_for_ns),
	{ "top", LW_OPT_INT, LW_ARG_REQUIRED, offsetof(struct exporter_options, top), "N",
	  "sites exported per process and resource (default 10; the\nrest are summed as site \"other\")", 1, 1000, 0,
	  "bad --top '*' (1 to 1000)", NULL },
	{ "once", LW_OPT_FLAG, LW_ARG_NONE, offsetof(struct exporter_options, once), NULL,
	  "collect once, write the metrics (to --textfile, else stdout)\nand exit", 0, 0, 0, NULL, NULL },
	{ "openmetrics", LW_OPT_FLAG, LW_ARG_NONE, offsetof(struct exporter_options, openmetrics), NULL,
	  "with --once on stdout: OpenMetrics text instead of Prometheus's", 0, 0, 0, NULL, NULL },
};

const struct lw_command_spec lw_exporter_spec = { "exporter", LW_CMD_NO_ARGS, NULL, exporter_options_table,
						  sizeof exporter_options_table / sizeof exporter_options_table[0] };

/* The last rendering, swapped in whole after each collection. */
struct rendering {
	char *prom, *om, *stacks;
	size_t nprom, nom, nstacks;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rendering g_cur;
static volatile sig_atomic_t g_stop;

static void on_stop(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void rendering_free(struct rendering *r)
{
	free(r->prom);
	free(r->om);
	free(r->stacks);
	memset(r, 0, sizeof *r);
}

static int render_all(const struct lw_metrics *m, struct rendering *r)
{
	memset(r, 0, sizeof *r);
	FILE *a = open_memstream(&r->prom, &r->nprom);
	FILE *b = open_memstream(&r->om, &r->nom);
	FILE *c = open_memstream(&r->stacks, &r->nstacks);
	int ok = a && b && c;
	if (ok) {
		lw_metrics_render(a, m, 0);
		lw_metrics_render(b, m, 1);
		lw_metrics_render_stacks(c, m);
		ok = !ferror(a) && !ferror(b) && !ferror(c);
	}
	if (a)
		fclose(a);
	if (b)
		fclose(b);
	if (c)
		fclose(c);
	if (!ok)
		rendering_free(r);
	return ok ? 0 : -1;
}

static const char index_html[] =
	"<html><head><title>leakwatch exporter</title></head><body>\n"
	"<h1>leakwatch exporter</h1>\n"
	"<p><a href=\"/metrics\">/metrics</a>: every traced process (Prometheus text; OpenMetrics on request)</p>\n"
	"<p><a href=\"/stacks\">/stacks</a>: the exported sites with their stacks (JSON)</p>\n"
	"</body></html>\n";

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type, const char *body,
			     size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Does the Accept header ask for OpenMetrics?  (Prometheus sends it first, with a q-value.) */
static int wants_openmetrics(struct MHD_Connection *c)
{
	const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	return accept && strstr(accept, "application/openmetrics-text") != NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **state)
{
	(void)cls, (void)version, (void)upload;
	if (!*state) { /* headers only so far: wait for the body (none expected) */
		*state = (void *)1;
		return MHD_YES;
	}
	if (*upload_size) { /* a body: ignored */
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		static const char msg[] = "only GET and HEAD\n";
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", msg, sizeof msg - 1);
	}
	if (strcmp(url, "/") == 0)
		return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", index_html, sizeof index_html - 1);
	int metrics = strcmp(url, "/metrics") == 0, stacks = strcmp(url, "/stacks") == 0;
	if (!metrics && !stacks) {
		static const char msg[] = "not found: try /metrics or /stacks\n";
		return reply(c, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", msg, sizeof msg - 1);
	}
	int om = metrics && wants_openmetrics(c);
	pthread_mutex_lock(&g_lock);
	const char *body = stacks ? g_cur.stacks : om ? g_cur.om : g_cur.prom;
	size_t len = stacks ? g_cur.nstacks : om ? g_cur.nom : g_cur.nprom;
	enum MHD_Result ret;
	if (!body) {
		static const char msg[] = "no collection yet\n";
		ret = reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", msg, sizeof msg - 1);
	} else {
		ret = reply(c, MHD_HTTP_OK,
			    stacks ? "application/json" :
			    om     ? "application/openmetrics-text; version=1.0.0; charset=utf-8" :
				     "text/plain; version=0.0.4; charset=utf-8",
			    body, len);
	}
	pthread_mutex_unlock(&g_lock);
	return ret;
}

/* Parse ADDR:PORT ("127.0.0.1:9479", "[::1]:9479", ":9479"); 0, or -1 with err. */
static int listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *err, size_t errlen)
{
	char host[256];
	const char *colon;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host) {
			snprintf(err, errlen, "bad --listen '%s' (ADDR:PORT, [IPV6]:PORT or :PORT)", s);
			return -1;
		}
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof host || memchr(s, ':', (size_t)(colon - s))) {
			snprintf(err, errlen, "bad --listen '%s' (ADDR:PORT, [IPV6]:PORT or :PORT)", s);
			return -1;
		}
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
	}
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port < 0 || port > 65535) {
		snprintf(err, errlen, "bad port in --listen '%s' (0 to 65535)", s);
		return -1;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | (host[0] ? 0 : AI_PASSIVE) };
	struct addrinfo *ai = NULL;
	char portbuf[8];
	snprintf(portbuf, sizeof portbuf, "%ld", port);
	int rc = getaddrinfo(host[0] ? host : NULL, portbuf, &hints, &ai);
	if (rc != 0 || !ai) {
		snprintf(err, errlen, "cannot use --listen '%s': %s", s, rc ? gai_strerror(rc) : "no address");
		return -1;
	}
	/* ":PORT": every IPv4 interface (as Go's exporters read it) */
	struct addrinfo *pick = ai;
	for (struct addrinfo *p = ai; !host[0] && p; p = p->ai_next)
		if (p->ai_family == AF_INET) {
			pick = p;
			break;
		}
	memcpy(ss, pick->ai_addr, pick->ai_addrlen);
	*len = pick->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int textfile_write(const char *path, const struct rendering *r)
{
	char err[LW_ERR_MAX];
	if (lw_output_begin(path, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: exporter: %s\n", err);
		return -1;
	}
	fwrite(r->prom, 1, r->nprom, stdout);
	return lw_output_end(!ferror(stdout));
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	while (!g_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int lw_cmd_exporter(int argc, char **argv)
{
	struct exporter_options o = { .interval_ns = 5000000000ull, .window_ns = 300000000000ull,
				      .idle_for_ns = LW_IDLE_FOR_DEFAULT_NS, .top = LW_METRICS_TOP_DEFAULT };
	if (lw_options_parse(&lw_exporter_spec, &o, argc, argv, NULL) < 0)
		return LW_EXIT_USAGE;
	if (o.openmetrics && (!o.once || o.textfile)) {
		lw_usage_error("exporter", "--openmetrics is for --once on stdout (the textfile collector reads "
					   "Prometheus text; the server negotiates)");
		return LW_EXIT_USAGE;
	}
	if (o.once && o.listen) {
		lw_usage_error("exporter", "--once serves nothing: drop --listen");
		return LW_EXIT_USAGE;
	}
	const char *listen = o.listen ? o.listen : (o.textfile || o.once) ? NULL : EXPORTER_LISTEN_DEFAULT;
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	char err[LW_ERR_MAX];
	if (listen && listen_parse(listen, &ss, &sslen, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: exporter: %s\n", err);
		return LW_EXIT_USAGE;
	}

	struct lw_metrics_opts mo = { .dir = lw_segment_dir(), .top = (size_t)o.top, .window_ns = o.window_ns,
				      .idle_for_ns = o.idle_for_ns };
	struct lw_metrics m;
	lw_metrics_init(&m, &mo);
	/* the directory must be readable now: a typo is an error, not an empty exporter */
	if (lw_metrics_collect(&m, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: exporter: %s\n", err);
		lw_metrics_free(&m);
		return LW_EXIT_ERROR;
	}
	if (o.once) {
		struct rendering r;
		int rc = render_all(&m, &r);
		lw_metrics_free(&m);
		if (rc < 0) {
			fprintf(stderr, "leakwatch: exporter: out of memory\n");
			return LW_EXIT_ERROR;
		}
		if (o.textfile)
			rc = textfile_write(o.textfile, &r);
		else if (o.openmetrics)
			fwrite(r.om, 1, r.nom, stdout);
		else
			fwrite(r.prom, 1, r.nprom, stdout);
		rendering_free(&r);
		return rc < 0 ? LW_EXIT_ERROR : LW_EXIT_OK;
	}

	struct sigaction sa = { .sa_handler = on_stop };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct MHD_Daemon *d = NULL;
	if (listen) {
		unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
		if (ss.ss_family == AF_INET6)
			flags |= MHD_USE_IPv6;
		d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
				     MHD_OPTION_END);
		if (!d) {
			int e = errno;
			fprintf(stderr, "leakwatch: exporter: cannot listen on %s: %s\n", listen,
				e ? strerror(e) : "libmicrohttpd could not start");
			lw_metrics_free(&m);
			return LW_EXIT_ERROR;
		}
		const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
		char host[INET6_ADDRSTRLEN] = "?";
		if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof host);
		else
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof host);
		fprintf(stderr, "leakwatch: exporter: serving http://%s%s%s:%u/metrics (segments in %s, every %.3gs)\n",
			ss.ss_family == AF_INET6 ? "[" : "", host, ss.ss_family == AF_INET6 ? "]" : "",
			info ? (unsigned)info->port : 0u, m.o.dir, (double)o.interval_ns / 1e9);
	} else {
		fprintf(stderr, "leakwatch: exporter: writing %s (segments in %s, every %.3gs)\n", o.textfile, m.o.dir,
			(double)o.interval_ns / 1e9);
	}

	int failing = 0, rc = LW_EXIT_OK;
	for (;;) {
		struct rendering r;
		if (render_all(&m, &r) == 0) {
			if (o.textfile && textfile_write(o.textfile, &r) < 0 && !d) {
				rendering_free(&r);
				rc = LW_EXIT_ERROR; /* writing is all it does */
				break;
			}
			pthread_mutex_lock(&g_lock);
			struct rendering old = g_cur;
			g_cur = r;
			pthread_mutex_unlock(&g_lock);
			rendering_free(&old);
		}
		sleep_ns(o.interval_ns);
		if (g_stop)
			break;
		if (lw_metrics_collect(&m, err, sizeof err) < 0) {
			if (!failing)
				fprintf(stderr, "leakwatch: exporter: %s (serving the last collection)\n", err);
			failing = 1;
		} else if (failing) {
			fprintf(stderr, "leakwatch: exporter: collecting again\n");
			failing = 0;
		}
	}
	if (d)
		MHD_stop_daemon(d);
	pthread_mutex_lock(&g_lock);
	rendering_free(&g_cur);
	pthread_mutex_unlock(&g_lock);
	lw_metrics_free(&m);
	return rc;
}
