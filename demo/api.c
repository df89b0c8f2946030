/*
 * api — the demo service of the 3 AM incident: a small HTTP API in front of a
 * database, with a fixed-size connection pool.
 *
 *   GET /users/<id>          get_user_data():   the user's name, or 404
 *   GET /users/<id>/orders   get_user_orders(): the user's order count
 *   GET /health              no database
 *   GET /stats               {"pool_size":N,"pool_free":N,"checked_out":N,...}
 *
 * The pool opens --pool connections at start-up; a request checks one out and
 * gives it back.  When the pool is empty a request waits until
 * --checkout-timeout-ms after it was accepted, then answers 503.  A keepalive
 * thread pings connections that sit idle in the pool, as real pools do.
 *
 * The bug: on the "user not found" path get_user_data() returns without
 * giving its connection back (the missing `finally: conn.close()`).  Every
 * request for a missing user takes one connection out of the pool for good;
 * latency climbs and 503s appear as the pool runs dry.  The connection was
 * opened by the pool at start-up, so the stack that matters is the last one
 * that wrote to it: get_user_data's.  Build with -DFIXED for the corrected
 * service.
 *
 * Two database back-ends, same handlers: minidb (the embedded line protocol,
 * default) and PostgreSQL through libpq (-DUSE_LIBPQ, build/demo/api-pg).
 *
 * Usage: api [--port N] [--port-file F] [--pool N] [--workers N]
 *            [--checkout-timeout-ms N]  (--db-port N | --db CONNINFO with libpq)
 * Loopback only.  Exits on SIGTERM/SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#ifdef USE_LIBPQ
#include <libpq-fe.h>
#endif

#define NOINLINE __attribute__((noinline))
#define MAX_POOL 256
#define MAX_WORKERS 64
#define QUEUE_CAP 4096

static volatile sig_atomic_t stop;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct timespec ns_to_ts(uint64_t ns)
{
	return (struct timespec){ (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
}

/* ---- database back-ends ------------------------------------------------------
 * db_connect() opens one connection; db_get_user() returns 1 (found, name
 * filled), 0 (no such user) or -1 (connection broken); db_ping() 0 or -1. */

struct db_conn {
#ifdef USE_LIBPQ
	PGconn *pg;
#else
	int fd;
	char buf[256];
	size_t len;
#endif
	uint64_t returned_ns; /* when it last went back into the pool */
};

#ifdef USE_LIBPQ
static const char *db_conninfo = "host=127.0.0.1 port=5432 dbname=postgres connect_timeout=5";

static NOINLINE int db_connect(struct db_conn *c)
{
	c->pg = PQconnectdb(db_conninfo);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		fprintf(stderr, "api: cannot connect to PostgreSQL: %s", PQerrorMessage(c->pg));
		PQfinish(c->pg);
		c->pg = NULL;
		return -1;
	}
	return 0;
}

static void db_close(struct db_conn *c)
{
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
}

/* db_call - run a one-parameter function of the demo schema; its text result
 * (NULL when SQL NULL) in out.  1 row, 0 NULL, -1 error. */
static NOINLINE int db_call(struct db_conn *c, const char *sql, int id, char *out, size_t cap)
{
	char idbuf[16];
	snprintf(idbuf, sizeof idbuf, "%d", id);
	const char *params[1] = { idbuf };
	PGresult *r = PQexecParams(c->pg, sql, 1, NULL, params, NULL, NULL, 0);
	int rc = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		rc = !PQgetisnull(r, 0, 0);
		if (rc)
			snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	return rc;
}

static NOINLINE int db_get_user(struct db_conn *c, int id, char *name, size_t cap)
{
	return db_call(c, "SELECT user_name($1::int)", id, name, cap);
}

static NOINLINE int db_get_orders(struct db_conn *c, int id, char *out, size_t cap)
{
	return db_call(c, "SELECT order_count($1::int)::text", id, out, cap) == 1 ? 1 : -1;
}

static NOINLINE int db_ping(struct db_conn *c)
{
	PGresult *r = PQexec(c->pg, "SELECT 1");
	int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;
	PQclear(r);
	return rc;
}
#else
static int db_port;

static NOINLINE int db_connect(struct db_conn *c)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)db_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	c->len = 0;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
		fprintf(stderr, "api: cannot connect to minidb on 127.0.0.1:%d: %s\n", db_port,
			strerror(errno));
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static void db_close(struct db_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* db_roundtrip - send one query line, read one answer line into out. */
static NOINLINE int db_roundtrip(struct db_conn *c, const char *q, char *out, size_t cap)
{
	size_t n = strlen(q);
	if (write(c->fd, q, n) != (ssize_t)n)
		return -1;
	char *nl;
	while ((nl = memchr(c->buf, '\n', c->len)) == NULL) {
		if (c->len == sizeof c->buf)
			return -1;
		ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
		if (r <= 0)
			return -1;
		c->len += (size_t)r;
	}
	*nl = '\0';
	snprintf(out, cap, "%s", c->buf);
	c->len -= (size_t)(nl + 1 - c->buf);
	memmove(c->buf, nl + 1, c->len);
	return 0;
}

static NOINLINE int db_get_user(struct db_conn *c, int id, char *name, size_t cap)
{
	char q[32], a[128];
	snprintf(q, sizeof q, "USER %d\n", id);
	if (db_roundtrip(c, q, a, sizeof a) != 0)
		return -1;
	if (strcmp(a, "NOTFOUND") == 0)
		return 0;
	if (strncmp(a, "OK ", 3) != 0)
		return -1;
	snprintf(name, cap, "%s", a + 3);
	return 1;
}

static NOINLINE int db_get_orders(struct db_conn *c, int id, char *out, size_t cap)
{
	char q[32], a[128];
	snprintf(q, sizeof q, "ORDERS %d\n", id);
	if (db_roundtrip(c, q, a, sizeof a) != 0 || strncmp(a, "OK ", 3) != 0)
		return -1;
	snprintf(out, cap, "%s", a + 3);
	return 1;
}

static NOINLINE int db_ping(struct db_conn *c)
{
	char a[32];
	return db_roundtrip(c, "PING\n", a, sizeof a) == 0 && strcmp(a, "PONG") == 0 ? 0 : -1;
}
#endif

/* ---- the connection pool ------------------------------------------------------ */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct db_conn conns[MAX_POOL];
	struct db_conn *free[MAX_POOL]; /* a stack: the most recently returned goes out first */
	int size, nfree;
	uint64_t checkouts, returns, timeouts;
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* pool_init - open every connection up front; 0, or -1 when one fails. */
static NOINLINE int pool_init(int size)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pool.cv, &ca);
	for (int i = 0; i < size; i++) {
		if (db_connect(&pool.conns[i]) != 0) /* LW-MARK: demo.pool_open */
			return -1;
		pool.conns[i].returned_ns = now_ns();
		pool.free[pool.nfree++] = &pool.conns[i];
		pool.size++;
	}
	return 0;
}

/* pool_checkout - a connection, waiting until deadline_ns (CLOCK_MONOTONIC)
 * at most; NULL when the pool stayed empty. */
static NOINLINE struct db_conn *pool_checkout(uint64_t deadline_ns)
{
	struct timespec dl = ns_to_ts(deadline_ns);
	struct db_conn *c = NULL;
	pthread_mutex_lock(&pool.mu);
	while (pool.nfree == 0 && !stop)
		if (pthread_cond_timedwait(&pool.cv, &pool.mu, &dl) == ETIMEDOUT)
			break;
	if (pool.nfree > 0) {
		c = pool.free[--pool.nfree];
		pool.checkouts++;
	} else {
		pool.timeouts++;
	}
	pthread_mutex_unlock(&pool.mu);
	return c;
}

static NOINLINE void pool_return(struct db_conn *c)
{
	pthread_mutex_lock(&pool.mu);
	c->returned_ns = now_ns();
	pool.free[pool.nfree++] = c;
	pool.returns++;
	pthread_cond_signal(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
}

/* pool_keepalive - every 500 ms, ping the connections idle in the pool for
 * more than 500 ms (a pool's "keepalive"/"test while idle"), so a healthy
 * pool always shows recent I/O.  Connections checked out are not touched. */
static void *pool_keepalive(void *arg)
{
	(void)arg;
	while (!stop) {
		struct timespec ts = { 0, 500 * 1000000L };
		nanosleep(&ts, NULL);
		struct db_conn *idle[MAX_POOL];
		int n = 0;
		uint64_t now = now_ns();
		pthread_mutex_lock(&pool.mu);
		for (int i = 0; i < pool.nfree;) {
			if (now - pool.free[i]->returned_ns > 500000000u) {
				idle[n++] = pool.free[i];
				pool.free[i] = pool.free[--pool.nfree];
			} else {
				i++;
			}
		}
		pthread_mutex_unlock(&pool.mu);
		for (int i = 0; i < n; i++) {
			if (db_ping(idle[i]) != 0)
				fprintf(stderr, "api: keepalive ping failed\n");
			pthread_mutex_lock(&pool.mu);
			idle[i]->returned_ns = now_ns();
			pool.free[pool.nfree++] = idle[i];
			pthread_cond_signal(&pool.cv);
			pthread_mutex_unlock(&pool.mu);
		}
	}
	return NULL;
}

/* ---- handlers: each returns an HTTP status and fills body --------------------- */

struct request {
	int fd;
	uint64_t accepted_ns;
	uint64_t deadline_ns; /* accepted + checkout timeout */
};

/* get_user_data - GET /users/<id> */
static NOINLINE int get_user_data(const struct request *rq, int id, char *body, size_t cap)
{
	struct db_conn *conn = pool_checkout(rq->deadline_ns);
	if (!conn) {
		snprintf(body, cap, "{\"error\":\"no database connection available\"}");
		return 503;
	}
	char name[128];
	int found = db_get_user(conn, id, name, sizeof name); /* LW-MARK: demo.leak_use */
	if (found < 0) {
		pool_return(conn);
		snprintf(body, cap, "{\"error\":\"database error\"}");
		return 500;
	}
	if (found == 0) {
		snprintf(body, cap, "{\"error\":\"user %d not found\"}", id);
#ifdef FIXED
		pool_return(conn);
#endif
		return 404; /* BUG (without -DFIXED): conn never goes back to the pool */
	}
	pool_return(conn);
	snprintf(body, cap, "{\"id\":%d,\"name\":\"%s\"}", id, name);
	return 200;
}

/* get_user_orders - GET /users/<id>/orders: uses the pool correctly. */
static NOINLINE int get_user_orders(const struct request *rq, int id, char *body, size_t cap)
{
	struct db_conn *conn = pool_checkout(rq->deadline_ns);
	if (!conn) {
		snprintf(body, cap, "{\"error\":\"no database connection available\"}");
		return 503;
	}
	char n[64];
	int rc = db_get_orders(conn, id, n, sizeof n); /* LW-MARK: demo.orders_use */
	pool_return(conn);
	if (rc < 0) {
		snprintf(body, cap, "{\"error\":\"database error\"}");
		return 500;
	}
	snprintf(body, cap, "{\"id\":%d,\"orders\":%s}", id, n);
	return 200;
}

static NOINLINE int get_stats(char *body, size_t cap)
{
	pthread_mutex_lock(&pool.mu);
	snprintf(body, cap,
		 "{\"pool_size\":%d,\"pool_free\":%d,\"checked_out\":%d,\"checkouts\":%llu,"
		 "\"returns\":%llu,\"checkout_timeouts\":%llu}",
		 pool.size, pool.nfree, pool.size - pool.nfree, (unsigned long long)pool.checkouts,
		 (unsigned long long)pool.returns, (unsigned long long)pool.timeouts);
	pthread_mutex_unlock(&pool.mu);
	return 200;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

/* handle_request - read one HTTP/1.x request from rq->fd, route it, answer,
 * close.  Connection: close keeps the server simple. */
static NOINLINE void handle_request(const struct request *rq)
{
	char req[2048], body[512];
	size_t len = 0;
	int status = 400, id = 0, off = 0;
	snprintf(body, sizeof body, "{\"error\":\"bad request\"}");
	while (len < sizeof req - 1 && !memmem(req, len, "\r\n\r\n", 4)) {
		ssize_t r = read(rq->fd, req + len, sizeof req - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	req[len] = '\0';
	if (sscanf(req, "GET /users/%d%n", &id, &off) == 1 && strncmp(req + off, "/orders ", 8) == 0)
		status = get_user_orders(rq, id, body, sizeof body);
	else if (sscanf(req, "GET /users/%d%n", &id, &off) == 1 && req[off] == ' ')
		status = get_user_data(rq, id, body, sizeof body);
	else if (strncmp(req, "GET /health ", 12) == 0)
		status = 200, snprintf(body, sizeof body, "{\"status\":\"ok\"}");
	else if (strncmp(req, "GET /stats ", 11) == 0)
		status = get_stats(body, sizeof body);
	else if (strncmp(req, "GET ", 4) == 0)
		status = 404, snprintf(body, sizeof body, "{\"error\":\"no such endpoint\"}");
	char out[1024];
	int n = snprintf(out, sizeof out,
			 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s",
			 status, reason(status), strlen(body), body);
	if (write(rq->fd, out, (size_t)n) < 0) {
		/* the client went away: nothing to tell it */
	}
	close(rq->fd);
}

/* ---- accept loop and workers -------------------------------------------------- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct request q[QUEUE_CAP];
	size_t head, n;
} queue = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&queue.mu);
		while (queue.n == 0 && !stop)
			pthread_cond_wait(&queue.cv, &queue.mu);
		if (queue.n == 0) {
			pthread_mutex_unlock(&queue.mu);
			return NULL;
		}
		struct request rq = queue.q[queue.head];
		queue.head = (queue.head + 1) % QUEUE_CAP;
		queue.n--;
		pthread_mutex_unlock(&queue.mu);
		handle_request(&rq);
	}
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int write_port_file(const char *path, int port)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	int bad = fprintf(f, "%d\n", port) < 0;
	bad |= fclose(f) != 0;
	return bad || rename(tmp, path) != 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	int port = 0, pool_size = 16, workers = 8, timeout_ms = 1000;
	const char *port_file = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--port-file"))
			port_file = argv[i + 1];
		else if (!strcmp(argv[i], "--pool"))
			pool_size = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--workers"))
			workers = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--checkout-timeout-ms"))
			timeout_ms = atoi(argv[i + 1]);
#ifdef USE_LIBPQ
		else if (!strcmp(argv[i], "--db"))
			db_conninfo = argv[i + 1];
#else
		else if (!strcmp(argv[i], "--db-port"))
			db_port = atoi(argv[i + 1]);
#endif
		else {
			fprintf(stderr, "api: unknown option %s\n", argv[i]);
			return 2;
		}
	}
#ifndef USE_LIBPQ
	if (!db_port) {
		fprintf(stderr, "usage: api --db-port N [--port N] [--port-file F] [--pool N] "
				"[--workers N] [--checkout-timeout-ms N]\n");
		return 2;
	}
#endif
	if (pool_size < 1 || pool_size > MAX_POOL || workers < 1 || workers > MAX_WORKERS ||
	    timeout_ms < 0) {
		fprintf(stderr, "api: --pool 1..%d, --workers 1..%d\n", MAX_POOL, MAX_WORKERS);
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (pool_init(pool_size) != 0)
		return 1;

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof a;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 1024) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
		fprintf(stderr, "api: cannot listen: %s\n", strerror(errno));
		return 1;
	}
	pthread_t t;
	pthread_create(&t, NULL, pool_keepalive, NULL);
	pthread_detach(t);
	for (int i = 0; i < workers; i++) {
		pthread_create(&t, NULL, worker, NULL);
		pthread_detach(t);
	}
	printf("api%s listening on 127.0.0.1:%d (pid %d, pool of %d, %d workers, %d ms checkout timeout)\n",
#ifdef FIXED
	       " (fixed)",
#else
	       "",
#endif
	       ntohs(a.sin_port), (int)getpid(), pool_size, workers, timeout_ms);
	fflush(stdout);
	if (port_file && write_port_file(port_file, ntohs(a.sin_port)) != 0) {
		fprintf(stderr, "api: cannot write %s\n", port_file);
		return 1;
	}

	struct timeval rcv = { 2, 0 };
	while (!stop) {
		struct pollfd p = { lfd, POLLIN, 0 };
		if (poll(&p, 1, 200) <= 0)
			continue;
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
		uint64_t now = now_ns();
		struct request rq = { c, now, now + (uint64_t)timeout_ms * 1000000u };
		pthread_mutex_lock(&queue.mu);
		if (queue.n < QUEUE_CAP) {
			queue.q[(queue.head + queue.n) % QUEUE_CAP] = rq;
			queue.n++;
			c = -1;
			pthread_cond_signal(&queue.cv);
		}
		pthread_mutex_unlock(&queue.mu);
		if (c >= 0) { /* queue full: shed load */
			static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
						   "Connection: close\r\n\r\n";
			if (write(c, busy, sizeof busy - 1) < 0) {
				/* nothing to do */
			}
			close(c);
		}
	}
	/* Wake everyone and leave; the kernel closes what is left (a leaked
	 * connection included: the database then sees the client go away). */
	pthread_mutex_lock(&queue.mu);
	pthread_cond_broadcast(&queue.cv);
	pthread_mutex_unlock(&queue.mu);
	close(lfd);
	/* Close what is back in the pool; a connection still checked out (or
	 * leaked) is left to exit(), so `leakwatch run` sees it. */
	pthread_mutex_lock(&pool.mu);
	pthread_cond_broadcast(&pool.cv);
	while (pool.nfree > 0)
		db_close(pool.free[--pool.nfree]);
	pthread_mutex_unlock(&pool.mu);
	return 0;
}
