/* SPDX-License-Identifier: MIT */
/*
 * pgjoin.c — `report --pg CONNINFO`: what PostgreSQL says about the
 * process's connections.
 *
 * A leaked database connection is, on the server, a backend sitting "idle"
 * or — worse, holding locks and snapshots — "idle in transaction" since the
 * moment the code path forgot it.  pg_stat_activity says so, with the last
 * query, but not which process holds the other end.  The kernel does: the
 * socket's local address and port are the backend's client_addr and
 * client_port.  So the join is by (address, port), one bisection per socket.
 *
 * The connection is made with libpq's non-blocking calls (PQconnectStartParams,
 * PQconnectPoll, PQsendQuery) under one deadline: PQconnectdb honours
 * connect_timeout only while connecting, and a server that accepts and then
 * says nothing would hang a blocking PQexec for ever.  connect_timeout is
 * taken from CONNINFO (as libpq reads it: seconds), LW_PG_DEFAULT_TIMEOUT_S
 * when it is not there; 0 waits for ever, as in libpq.
 *
 * Visibility: a role that is neither superuser nor in pg_read_all_stats sees
 * only its own backends' addresses, states and queries; the others come with
 * client_port, state and even backend_type NULL and query "<insufficient
 * privilege>".  Those with a user are counted (hidden: sessions of other
 * roles, and a background worker or two started for a role, such as the
 * logical replication launcher), never joined.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "pgjoin.h"
#include "names.h"

/* The first line of a libpq message, without its newline, in err. */
static void pg_err(char *err, size_t errlen, const char *prefix, const char *msg)
{
	if (!msg || !*msg)
		msg = "unknown error";
	size_t n = strcspn(msg, "\n");
	while (n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == '\r' || msg[n - 1] == '\t'))
		n--;
	snprintf(err, errlen, "%s%.*s", prefix ? prefix : "", (int)n, msg);
}

int lw_pg_check_conninfo(const char *conninfo, char *err, size_t errlen)
{
	char *msg = NULL;
	PQconninfoOption *o = PQconninfoParse(conninfo, &msg);
	if (!o) {
		pg_err(err, errlen, NULL, msg ? msg : "out of memory");
		PQfreemem(msg);
		return -1;
	}
	PQconninfoFree(o);
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until c's socket is readable (or writable); 0, or -1 with err set on timeout/error. */
static int pg_wait(PGconn *c, int for_write, int64_t deadline, char *err, size_t errlen)
{
	int fd = PQsocket(c);
	if (fd < 0) {
		pg_err(err, errlen, NULL, PQerrorMessage(c));
		return -1;
	}
	for (;;) {
		int ms = -1;
		if (deadline) {
			int64_t left = deadline - mono_ms();
			if (left <= 0) {
				snprintf(err, errlen, "timeout expired (connect_timeout)");
				return -1;
			}
			ms = left > 60000 ? 60000 : (int)left;
		}
		struct pollfd p = { fd, (short)(for_write ? POLLOUT : POLLIN), 0 };
		int rc = poll(&p, 1, ms);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			return -1;
		}
	}
}

/*
 * Connect with CONNINFO's words plus our defaults (connect_timeout,
 * application_name): the parsed options become keyword/value arrays, so
 * environment defaults (PGHOST, PGUSER, ...) still apply to what is missing.
 * Returns the connection, or NULL with err set.
 */
static PGconn *pg_connect(const char *conninfo, int64_t *deadline, char *err, size_t errlen)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	if (!opts) {
		pg_err(err, errlen, NULL, msg ? msg : "out of memory");
		PQfreemem(msg);
		return NULL;
	}
	size_t n = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		n++;
	const char **keys = calloc(n + 3, sizeof *keys), **vals = calloc(n + 3, sizeof *vals);
	if (!keys || !vals) {
		free(keys);
		free(vals);
		PQconninfoFree(opts);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	size_t k = 0;
	long timeout_s = LW_PG_DEFAULT_TIMEOUT_S;
	int have_timeout = 0, have_app = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		if (!strcmp(o->keyword, "connect_timeout")) {
			char *end;
			long t = strtol(o->val, &end, 10);
			timeout_s = end != o->val ? t : LW_PG_DEFAULT_TIMEOUT_S;
			have_timeout = 1;
		} else if (!strcmp(o->keyword, "application_name")) {
			have_app = 1;
		}
		keys[k] = o->keyword;
		vals[k++] = o->val;
	}
	char tbuf[24];
	if (!have_timeout) {
		snprintf(tbuf, sizeof tbuf, "%d", LW_PG_DEFAULT_TIMEOUT_S);
		keys[k] = "connect_timeout";
		vals[k++] = tbuf;
	}
	if (!have_app) {
		keys[k] = "application_name";
		vals[k++] = "leakwatch";
	}
	keys[k] = vals[k] = NULL;
	/* libpq's own minimum is 2 s; ours is 1 s */
	*deadline = timeout_s > 0 ? mono_ms() + (timeout_s > 86400 ? 86400 : timeout_s) * 1000 : 0;
	PGconn *c = PQconnectStartParams(keys, vals, 0);
	free(keys);
	free(vals);
	PQconninfoFree(opts);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* Before the first PQconnectPoll, behave as if it returned WRITING. */
	PostgresPollingStatusType st = PQstatus(c) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
	while (st != PGRES_POLLING_OK) {
		if (st == PGRES_POLLING_FAILED) {
			pg_err(err, errlen, NULL, PQerrorMessage(c));
			PQfinish(c);
			return NULL;
		}
		if (pg_wait(c, st == PGRES_POLLING_WRITING, *deadline, err, errlen) < 0) {
			PQfinish(c);
			return NULL;
		}
		st = PQconnectPoll(c);
	}
	if (PQsetnonblocking(c, 1) != 0) {
		pg_err(err, errlen, NULL, PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Run one query under the deadline; its result (PGRES_TUPLES_OK), or NULL with err set. */
static PGresult *pg_query(PGconn *c, const char *sql, int64_t deadline, char *err, size_t errlen)
{
	if (!PQsendQuery(c, sql)) {
		pg_err(err, errlen, NULL, PQerrorMessage(c));
		return NULL;
	}
	int f;
	while ((f = PQflush(c)) == 1)
		if (pg_wait(c, 1, deadline, err, errlen) < 0)
			return NULL;
	if (f < 0) {
		pg_err(err, errlen, NULL, PQerrorMessage(c));
		return NULL;
	}
	PGresult *res = NULL, *r;
	for (;;) {
		while (PQisBusy(c)) {
			if (pg_wait(c, 0, deadline, err, errlen) < 0) {
				PQclear(res);
				return NULL;
			}
			if (!PQconsumeInput(c)) {
				pg_err(err, errlen, NULL, PQerrorMessage(c));
				PQclear(res);
				return NULL;
			}
		}
		if (!(r = PQgetResult(c)))
			break;
		/* keep the first result: an error is reported as it came */
		if (res)
			PQclear(r);
		else
			res = r;
	}
	if (!res) {
		pg_err(err, errlen, NULL, PQerrorMessage(c));
		return NULL;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		pg_err(err, errlen, NULL, primary ? primary : PQresultErrorMessage(res));
		PQclear(res);
		return NULL;
	}
	return res;
}

/* client_addr text -> (family, bytes); v4-mapped IPv6 becomes IPv4. */
static uint16_t addr_parse(const char *s, uint8_t out[16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, s, out) == 1)
		return AF_INET;
	struct in6_addr a6;
	if (inet_pton(AF_INET6, s, &a6) != 1)
		return 0;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(out, a6.s6_addr + 12, 4);
		return AF_INET;
	}
	memcpy(out, a6.s6_addr, 16);
	return AF_INET6;
}

/* A socket's local address, normalized as addr_parse does. */
static uint16_t addr_norm(uint16_t family, const uint8_t in[16], uint8_t out[16])
{
	memset(out, 0, 16);
	if (family == AF_INET) {
		memcpy(out, in, 4);
		return AF_INET;
	}
	if (family != AF_INET6)
		return 0;
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (!memcmp(in, mapped, 12)) {
		memcpy(out, in + 12, 4);
		return AF_INET;
	}
	memcpy(out, in, 16);
	return AF_INET6;
}

static int key_cmp(uint16_t fa, const uint8_t *aa, int pa, uint16_t fb, const uint8_t *ab, int pb)
{
	if (fa != fb)
		return fa < fb ? -1 : 1;
	int c = memcmp(aa, ab, 16);
	if (c)
		return c;
	return (pa > pb) - (pa < pb);
}

static int backend_cmp(const void *x, const void *y)
{
	const struct lw_pg_backend *a = x, *b = y;
	int c = key_cmp(a->family, a->addr, a->client_port, b->family, b->addr, b->client_port);
	return c ? c : (a->pid > b->pid) - (a->pid < b->pid);
}

static void copy_col(const PGresult *res, int row, int col, char *buf, size_t len)
{
	if (PQgetisnull(res, row, col))
		buf[0] = '\0';
	else
		snprintf(buf, len, "%s", PQgetvalue(res, row, col));
}

static double age_col(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return -1;
	double v = strtod(PQgetvalue(res, row, col), NULL);
	return v < 0 ? 0 : v; /* clock_timestamp() - a start a hair ahead of it */
}

/* pg_has_role: superusers are members of every role. */
static const char sql_who[] =
	"SELECT current_user, current_setting('port'), pg_has_role('pg_read_all_stats', 'USAGE')";

/* The columns lw_pg_load reads, in this order. */
#define Q_(s) #s
#define Q(s) Q_(s)
static const char sql_activity[] =
	"SELECT pid, host(client_addr), client_port, state,"
	" extract(epoch FROM clock_timestamp() - state_change),"
	" extract(epoch FROM clock_timestamp() - xact_start),"
	" extract(epoch FROM clock_timestamp() - query_start),"
	" extract(epoch FROM clock_timestamp() - backend_start),"
	" wait_event_type, wait_event, left(query, " Q(LW_PG_QUERY_MAX) "), usename, datname, application_name"
	" FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (backend_type = 'client backend'"
	/* another role's row hides backend_type too; one with a user is a
	 * session (or a worker started for a role: the replication launcher) */
	" OR (backend_type IS NULL AND usesysid IS NOT NULL))";

int lw_pg_load(struct lw_pg_view *v, const char *conninfo, char *err, size_t errlen)
{
	memset(v, 0, sizeof *v);
	int64_t deadline;
	PGconn *c = pg_connect(conninfo, &deadline, err, errlen);
	if (!c)
		return -1;
	if (PQserverVersion(c) < 100000) {
		snprintf(err, errlen, "PostgreSQL 10 or newer needed (the server is %d)", PQserverVersion(c));
		PQfinish(c);
		return -1;
	}
	v->version = PQserverVersion(c);
	const char *host = PQhost(c), *port = PQport(c);
	snprintf(v->server, sizeof v->server, "%s%s%s", host ? host : "", port && *port ? ":" : "",
		 port ? port : "");
	PGresult *who = pg_query(c, sql_who, deadline, err, errlen);
	if (!who) {
		PQfinish(c);
		return -1;
	}
	copy_col(who, 0, 0, v->user, sizeof v->user);
	v->server_port = PQgetisnull(who, 0, 1) ? 0 : atoi(PQgetvalue(who, 0, 1));
	v->all_visible = !PQgetisnull(who, 0, 2) && PQgetvalue(who, 0, 2)[0] == 't';
	PQclear(who);
	PGresult *res = pg_query(c, sql_activity, deadline, err, errlen);
	PQfinish(c);
	if (!res)
		return -1;
	int rows = PQntuples(res);
	if (PQnfields(res) != 14) {
		snprintf(err, errlen, "pg_stat_activity: unexpected answer (%d columns)", PQnfields(res));
		PQclear(res);
		return -1;
	}
	v->b = calloc(rows > 0 ? (size_t)rows : 1, sizeof *v->b);
	if (!v->b) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < rows; i++) {
		struct lw_pg_backend *b = &v->b[v->n++];
		b->pid = atoi(PQgetvalue(res, i, 0));
		b->visible = !PQgetisnull(res, i, 2);
		if (!b->visible) {
			v->hidden++;
		} else {
			b->client_port = atoi(PQgetvalue(res, i, 2));
			copy_col(res, i, 1, b->client_addr, sizeof b->client_addr);
			if (b->client_port < 0)
				v->unix_clients++;
			else if (b->client_addr[0])
				b->family = addr_parse(b->client_addr, b->addr);
		}
		copy_col(res, i, 3, b->state, sizeof b->state);
		b->state_age_s = age_col(res, i, 4);
		b->xact_age_s = age_col(res, i, 5);
		b->query_age_s = age_col(res, i, 6);
		b->backend_age_s = age_col(res, i, 7);
		copy_col(res, i, 8, b->wait_event_type, sizeof b->wait_event_type);
		copy_col(res, i, 9, b->wait_event, sizeof b->wait_event);
		if (b->visible && !PQgetisnull(res, i, 10)) {
			b->query = strdup(PQgetvalue(res, i, 10));
			if (!b->query) {
				PQclear(res);
				lw_pg_free(v);
				snprintf(err, errlen, "out of memory");
				return -1;
			}
		}
		copy_col(res, i, 11, b->user, sizeof b->user);
		copy_col(res, i, 12, b->database, sizeof b->database);
		copy_col(res, i, 13, b->application, sizeof b->application);
	}
	PQclear(res);
	lw_pg_sort(v);
	return 0;
}

void lw_pg_sort(struct lw_pg_view *v)
{
	if (v->n > 1)
		qsort(v->b, v->n, sizeof *v->b, backend_cmp);
}

void lw_pg_free(struct lw_pg_view *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->b[i].query);
	free(v->b);
	memset(v, 0, sizeof *v);
}

const struct lw_pg_backend *lw_pg_find(const struct lw_pg_view *v, const struct lw_member *m)
{
	if (!v || !v->n || !m->has_kernel || !m->k.has_addrs || m->k.protocol != IPPROTO_TCP)
		return NULL;
	/* Linux hands one ephemeral port to connections to different
	 * destinations: a socket to another service on the same local
	 * address:port must not take this backend */
	if (v->server_port > 0 && m->k.remote_port != v->server_port)
		return NULL;
	uint8_t a[16];
	uint16_t fam = addr_norm(m->k.family, m->k.local_addr, a);
	if (!fam)
		return NULL;
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct lw_pg_backend *b = &v->b[mid];
		int c = key_cmp(fam, a, m->k.local_port, b->family, b->addr, b->client_port);
		if (c == 0)
			return b->visible && b->client_port > 0 ? b : NULL;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

int lw_pg_member_unix(const struct lw_member *m)
{
	/* libpq's socket file: DIR/.s.PGSQL.PORT */
	if (m->peer[0] != '/')
		return 0;
	const char *base = strrchr(m->peer, '/') + 1;
	return strncmp(base, ".s.PGSQL.", 9) == 0;
}

char *lw_pg_member_local(const struct lw_member *m, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	if (len)
		buf[0] = '\0';
	if (!m->has_kernel || !m->k.has_addrs)
		return buf;
	int fam = m->k.family == AF_INET6 ? AF_INET6 : AF_INET;
	if (!inet_ntop(fam, m->k.local_addr, a, sizeof a))
		return buf;
	snprintf(buf, len, fam == AF_INET6 ? "[%s]:%u" : "%s:%u", a, (unsigned)m->k.local_port);
	return buf;
}

const char *lw_pg_state_word(const struct lw_pg_backend *b)
{
	return b->state[0] ? b->state : "unknown";
}

/* A TCP member talking to the server's port: should be in pg_stat_activity. */
static int member_to_server(const struct lw_pg_view *v, const struct lw_member *m)
{
	return v->server_port > 0 && m->has_kernel && m->k.has_addrs && m->k.protocol == IPPROTO_TCP &&
	       m->k.remote_port == v->server_port;
}

/* A joined member's query and its position among the members. */
struct qref { const char *q; size_t first, n; };

static int qref_by_text(const void *x, const void *y)
{
	const struct qref *a = x, *b = y;
	int c = strcmp(a->q, b->q);
	return c ? c : (a->first > b->first) - (a->first < b->first);
}

/* most members first; on a tie the one met first (fd order) */
static int qref_by_count(const void *x, const void *y)
{
	const struct qref *a = x, *b = y;
	if (a->n != b->n)
		return a->n < b->n ? 1 : -1;
	return (a->first > b->first) - (a->first < b->first);
}

int lw_pg_summarize(const struct lw_pg_view *v, const struct lw_group *g, struct lw_pg_summary *s)
{
	memset(s, 0, sizeof *s);
	s->oldest_state_s = s->oldest_xact_s = -1;
	if (!v)
		return 0;
	/* the joined members' queries, counted by sorting (n log n: a group may hold thousands) */
	struct qref *qs = g->count ? calloc(g->count, sizeof *qs) : NULL;
	size_t nq = 0;
	for (size_t i = 0; i < g->count; i++) {
		const struct lw_member *m = &g->members[i];
		const struct lw_pg_backend *b = lw_pg_find(v, m);
		if (!b) {
			if (lw_pg_member_unix(m))
				s->unix_members++;
			else if (member_to_server(v, m))
				s->not_found++;
			continue;
		}
		s->joined++;
		const char *st = lw_pg_state_word(b);
		size_t k = 0;
		while (k < s->nstates && strcmp(s->states[k].state, st))
			k++;
		if (k == s->nstates) {
			if (k == LW_PG_MAX_STATES) {
				k--; /* more states than kept: the last slot holds the rest */
				s->states[k].state = "other";
			} else {
				s->states[k].state = st;
				s->states[k].oldest_s = -1;
				s->nstates++;
			}
		}
		s->states[k].n++;
		if (b->state_age_s > s->states[k].oldest_s)
			s->states[k].oldest_s = b->state_age_s;
		if (b->state_age_s > s->oldest_state_s) {
			s->oldest_state_s = b->state_age_s;
			s->oldest_state = st;
		}
		if (b->xact_age_s > s->oldest_xact_s)
			s->oldest_xact_s = b->xact_age_s;
		if (b->query && qs)
			qs[nq++] = (struct qref){ b->query, i, 1 };
	}
	/* states, most members first (stable: first seen on a tie) */
	for (size_t i = 1; i < s->nstates; i++)
		for (size_t j = i; j > 0 && s->states[j].n > s->states[j - 1].n; j--) {
			__typeof__(s->states[0]) t = s->states[j];
			s->states[j] = s->states[j - 1];
			s->states[j - 1] = t;
		}
	if (nq) {
		qsort(qs, nq, sizeof *qs, qref_by_text);
		size_t d = 0;
		for (size_t i = 0; i < nq; i++) {
			if (d && !strcmp(qs[d - 1].q, qs[i].q))
				qs[d - 1].n++;
			else
				qs[d++] = qs[i];
		}
		qsort(qs, d, sizeof *qs, qref_by_count);
		s->nqueries_total = d;
		for (size_t i = 0; i < d && i < LW_PG_MAX_QUERIES; i++) {
			s->queries[i].query = qs[i].q;
			s->queries[i].n = qs[i].n;
			s->nqueries++;
		}
	}
	free(qs);
	return s->joined || s->not_found || s->unix_members;
}
