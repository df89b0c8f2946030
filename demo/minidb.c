/*
 * minidb — the embedded stand-in database server of the demo.
 *
 * Speaks a line protocol on 127.0.0.1, one thread per connection (so a slow
 * query on one connection does not hold up the others, as in a real server):
 *
 *   "USER <id>\n"    -> "OK user-<id>\n" for 1 <= id <= --users, else "NOTFOUND\n"
 *   "ORDERS <id>\n"  -> "OK <n>\n"  (a made-up order count)
 *   "PING\n"         -> "PONG\n"    (no latency: what a pool's keepalive sends)
 *   anything else    -> "ERR bad query\n"
 *
 * Every USER/ORDERS answer comes after --latency-ms.  Like PostgreSQL's
 * max_connections, beyond --max-conn concurrent clients a new connection gets
 * "ERR too many connections\n" and is closed.  Loopback only.
 *
 * Usage: minidb [--port N] [--max-conn N] [--latency-ms N] [--users N] [--port-file F]
 * Prints "minidb listening on 127.0.0.1:PORT" and exits on SIGTERM/SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static atomic_int clients;
static int latency_ms = 5, users = 1000;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* answer - the reply to one query line (without its newline). */
static void answer(const char *q, char *reply, size_t cap)
{
	int id = 0;
	if (strcmp(q, "PING") == 0) {
		snprintf(reply, cap, "PONG\n");
	} else if (sscanf(q, "USER %d", &id) == 1) {
		sleep_ms(latency_ms);
		if (id >= 1 && id <= users)
			snprintf(reply, cap, "OK user-%d\n", id);
		else
			snprintf(reply, cap, "NOTFOUND\n");
	} else if (sscanf(q, "ORDERS %d", &id) == 1) {
		sleep_ms(latency_ms);
		snprintf(reply, cap, "OK %d\n", (id * 7) % 13);
	} else {
		snprintf(reply, cap, "ERR bad query\n");
	}
}

static int write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* serve - one client connection: read lines, answer each, until EOF. */
static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[512];
	size_t len = 0;
	while (!stop) {
		struct pollfd p = { fd, POLLIN, 0 };
		int pr = poll(&p, 1, 200);
		if (pr == 0 || (pr < 0 && errno == EINTR))
			continue;
		if (pr < 0)
			break;
		ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		char *nl;
		while ((nl = memchr(buf, '\n', len)) != NULL) {
			*nl = '\0';
			if (nl > buf && nl[-1] == '\r')
				nl[-1] = '\0';
			char reply[128];
			answer(buf, reply, sizeof reply);
			if (write_all(fd, reply, strlen(reply)) != 0)
				goto out;
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len);
		}
		if (len == sizeof buf - 1) /* a line longer than any query: drop it */
			len = 0;
	}
out:
	close(fd);
	atomic_fetch_sub(&clients, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	int port = 0, max_conn = 100;
	const char *port_file = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--max-conn"))
			max_conn = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--latency-ms"))
			latency_ms = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--users"))
			users = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--port-file"))
			port_file = argv[i + 1];
		else {
			fprintf(stderr, "minidb: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof a;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 256) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
		fprintf(stderr, "minidb: cannot listen: %s\n", strerror(errno));
		return 1;
	}
	printf("minidb listening on 127.0.0.1:%d (max %d connections, %d ms per query)\n",
	       ntohs(a.sin_port), max_conn, latency_ms);
	fflush(stdout);
	if (port_file) {
		/* written under another name and renamed: a reader never sees half a number */
		char tmp[4096];
		snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d\n", ntohs(a.sin_port)) < 0 || fclose(f) != 0 ||
		    rename(tmp, port_file) != 0) {
			fprintf(stderr, "minidb: cannot write %s\n", port_file);
			return 1;
		}
	}

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	while (!stop) {
		struct pollfd p = { lfd, POLLIN, 0 };
		if (poll(&p, 1, 200) <= 0)
			continue;
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		pthread_t t;
		if (atomic_load(&clients) >= max_conn) {
			const char *msg = "ERR too many connections\n";
			write_all(c, msg, strlen(msg));
			close(c);
			continue;
		}
		atomic_fetch_add(&clients, 1);
		if (pthread_create(&t, &attr, serve, (void *)(intptr_t)c) != 0) {
			atomic_fetch_sub(&clients, 1);
			close(c);
		}
	}
	close(lfd);
	return 0;
}
