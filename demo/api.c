/*
 * api — the demo service: handles "requests" that read users from minidb.
 *
 * A pool of three connections is opened at start-up and closed at shutdown,
 * as a healthy pool should be.  get_user_data() opens its own connection
 * for each request and, on the "user not in cache" path added in the last
 * deploy, returns early without closing it: the leak of the 3 AM story.
 *
 * Usage: api --db-port N [--requests N] [--hold-seconds S]
 *   --hold-seconds keeps the process alive afterwards so a live
 *   `leakwatch report PID` can look at it.
 * Build with -DFIXED for the corrected service.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define POOL_SIZE 3

static int db_port;
static int pool[POOL_SIZE];

/* db_get_connection - a new connection to the database, or -1. */
static int __attribute__((noinline)) db_get_connection(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)db_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int __attribute__((noinline)) db_query(int fd, int id, char *out, size_t cap)
{
	char q[64];
	int n = snprintf(q, sizeof q, "GET %d\n", id);
	if (write(fd, q, (size_t)n) != n)
		return -1;
	ssize_t r = read(fd, out, cap - 1);
	if (r <= 0)
		return -1;
	out[r] = '\0';
	return strncmp(out, "OK", 2) == 0 ? 0 : -1;
}

static int __attribute__((noinline)) cache_lookup(int id)
{
	return id % 5 != 0; /* one request in five misses the cache */
}

/* get_user_data - the handler that leaks: the cache-miss path returns
 * before conn is closed. */
static int __attribute__((noinline)) get_user_data(int id)
{
	char row[128];
	int conn = db_get_connection();
	if (conn < 0)
		return -1;
	if (db_query(conn, id, row, sizeof row) != 0) {
		close(conn);
		return -1;
	}
	if (!cache_lookup(id)) {
#ifndef FIXED
		return 0; /* BUG: conn is never closed on this path */
#else
		close(conn);
		return 0;
#endif
	}
	close(conn);
	return 0;
}

/* get_user_list - uses the pool correctly. */
static int __attribute__((noinline)) get_user_list(int i)
{
	char row[128];
	return db_query(pool[i % POOL_SIZE], i, row, sizeof row);
}

static void __attribute__((noinline)) handle_request(int i)
{
	if (i % 2)
		get_user_data(i);
	else
		get_user_list(i);
}

int main(int argc, char **argv)
{
	int requests = 100, hold = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--db-port"))
			db_port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--requests"))
			requests = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--hold-seconds"))
			hold = atoi(argv[i + 1]);
	}
	if (!db_port) {
		fprintf(stderr, "usage: api --db-port N [--requests N] [--hold-seconds S]\n");
		return 2;
	}
	for (int i = 0; i < POOL_SIZE; i++)
		if ((pool[i] = db_get_connection()) < 0) {
			fprintf(stderr, "api: cannot reach the database on port %d\n", db_port);
			return 1;
		}
	for (int i = 0; i < requests; i++)
		handle_request(i);
	printf("api: handled %d requests (pid %d)\n", requests, (int)getpid());
	fflush(stdout);
	if (hold > 0)
		sleep((unsigned)hold);
	for (int i = 0; i < POOL_SIZE; i++)
		close(pool[i]);
	return 0;
}
