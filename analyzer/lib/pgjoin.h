/* SPDX-License-Identifier: MIT */
/*
 * pgjoin.h — the database's side of a connection (pgjoin.c, `report --pg`):
 * PostgreSQL's pg_stat_activity read once through libpq, and each traced
 * TCP socket joined with the backend serving it, by the socket's local
 * address and port (the kernel's, sockdiag.c) == the backend's client_addr
 * and client_port.  A connection over a unix socket has client_port -1 and
 * cannot be joined; a backend of another role shows no address unless we
 * may read all statistics (superuser, pg_read_all_stats).
 */
#ifndef LEAKWATCH_PGJOIN_H
#define LEAKWATCH_PGJOIN_H

#include <stddef.h>
#include <stdint.h>
#include "classify.h"

#define LW_PG_QUERY_MAX 1024    /* characters of a backend's query kept (left(query, N)) */
#define LW_PG_NAME_MAX 64       /* user, database, application names, wait events */
#define LW_PG_DEFAULT_TIMEOUT_S 5 /* connect + query, when CONNINFO has no connect_timeout */

/* One client backend of pg_stat_activity.  Ages are seconds; < 0: NULL. */
struct lw_pg_backend {
	int pid;                        /* the backend process (on the server's host) */
	int visible;                    /* its client_port is not NULL: our own role's backend,
					 * or we may read all statistics */
	int client_port;                /* -1: over a unix socket; 0 unless visible */
	uint16_t family;                /* client_addr parsed: AF_INET (v4-mapped v6 too),
					 * AF_INET6; 0 when NULL or not an address */
	uint8_t addr[16];               /* network byte order */
	char client_addr[48];           /* host(client_addr) as the server has it ("" NULL) */
	char state[40];                 /* "active", "idle", "idle in transaction", ... ("" NULL) */
	double state_age_s, xact_age_s, query_age_s, backend_age_s; /* since state_change,
					 * xact_start, query_start, backend_start */
	char wait_event_type[LW_PG_NAME_MAX], wait_event[LW_PG_NAME_MAX]; /* "" NULL */
	char *query;                    /* malloc'd, its first LW_PG_QUERY_MAX characters; NULL */
	char user[LW_PG_NAME_MAX], database[LW_PG_NAME_MAX], application[LW_PG_NAME_MAX];
};

/* What pg_stat_activity said, once per report. */
struct lw_pg_view {
	char server[128];               /* "host:port" we reached (PQhost, PQport) */
	char user[LW_PG_NAME_MAX];      /* current_user */
	int server_port;                /* the server's port setting: what a client's
					 * remote port is when it talks to this server */
	int version;                    /* server_version_num (150005) */
	int all_visible;                /* superuser or pg_read_all_stats: every backend's
					 * address and query are visible to us */
	struct lw_pg_backend *b;        /* client backends, ours left out; sorted by address */
	size_t n;
	size_t hidden;                  /* of those, rows of other roles we may not see (no
					 * address, state or query; may include a background
					 * worker started for a role) */
	size_t unix_clients;            /* visible ones connected over a unix socket */
};

/*
 * lw_pg_check_conninfo - parse CONNINFO (key=value words or a postgresql://
 * URI) without connecting.  Returns 0, or -1 with libpq's message (first
 * line) in err.
 */
int lw_pg_check_conninfo(const char *conninfo, char *err, size_t errlen);

/*
 * lw_pg_load - connect with CONNINFO (connect_timeout, default
 * LW_PG_DEFAULT_TIMEOUT_S, bounds the connection and the queries together:
 * a dead or silent server cannot hang the caller), read pg_stat_activity's
 * client backends and disconnect.  Returns 0 with v filled (free with
 * lw_pg_free), or -1 with v empty and the first line of libpq's (or the
 * server's) message in err: bad conninfo, unreachable server, refused
 * authentication, permission denied on pg_stat_activity, timeout, a server
 * older than PostgreSQL 10 (no backend_type).
 */
int lw_pg_load(struct lw_pg_view *v, const char *conninfo, char *err, size_t errlen);

/* lw_pg_sort - order v->b for lw_pg_find (lw_pg_load does; a view filled by hand needs it). */
void lw_pg_sort(struct lw_pg_view *v);

/* lw_pg_free - release; safe on a zeroed view. */
void lw_pg_free(struct lw_pg_view *v);

/*
 * lw_pg_find - the backend serving member m: a TCP socket the kernel
 * described, to the server's port, whose local address and port are a
 * visible backend's client_addr and client_port (v4-mapped IPv6 equals
 * IPv4).  NULL when there is none (v may be NULL).
 */
const struct lw_pg_backend *lw_pg_find(const struct lw_pg_view *v, const struct lw_member *m);

/* lw_pg_member_unix - 1 when m is a unix socket connected to a PostgreSQL
 * server's socket file (".s.PGSQL.PORT"): a libpq connection that cannot be joined. */
int lw_pg_member_unix(const struct lw_member *m);

/* lw_pg_member_local - m's local "ip:port" / "[ip6]:port" as the kernel has it; "" unknown.  Returns buf. */
char *lw_pg_member_local(const struct lw_member *m, char *buf, size_t len);

#define LW_PG_MAX_STATES 8
#define LW_PG_MAX_QUERIES 4

/* The database's view of one socket group. */
struct lw_pg_summary {
	size_t joined;                  /* members a backend serves */
	size_t not_found;               /* TCP members to the server's port that no visible
					 * backend serves (another server, NAT, a pooler, or a
					 * hidden backend of another role) */
	size_t unix_members;            /* members over a unix socket: not joinable */
	struct { const char *state; size_t n; double oldest_s; } states[LW_PG_MAX_STATES];
	size_t nstates;                 /* distinct states, most members first ("" NULL state
					 * counted as "unknown"); past the cap in the last one */
	double oldest_state_s;          /* oldest state_change among joined members (< 0: none) */
	const char *oldest_state;       /* ...and the state it started */
	double oldest_xact_s;           /* oldest open transaction (< 0: none) */
	struct { const char *query; size_t n; } queries[LW_PG_MAX_QUERIES];
	size_t nqueries;                /* distinct queries kept, most common first */
	size_t nqueries_total;          /* distinct queries among the joined members */
};

/*
 * lw_pg_summarize - aggregate v's view of g's members into s.  Returns 1
 * when g concerns the database (something joined, not found or over its
 * unix socket), else 0 (s then all zero).  Strings point into v.
 */
int lw_pg_summarize(const struct lw_pg_view *v, const struct lw_group *g, struct lw_pg_summary *s);

/* lw_pg_state_word - a backend's state, "unknown" for NULL. */
const char *lw_pg_state_word(const struct lw_pg_backend *b);

#endif /* LEAKWATCH_PGJOIN_H */
