/*
 * minidb — a stand-in database server for the demo.
 *
 * Speaks a line protocol on 127.0.0.1 ("GET <id>\n" -> "OK user-<id>\n"),
 * enforces a connection limit like PostgreSQL's max_connections (beyond it a
 * new connection gets "ERR too many connections" and is closed) and answers
 * after a little latency.  Single-threaded poll() loop.
 *
 * Usage: minidb [--port N] [--max-conn N] [--latency-ms N] [--port-file F]
 * Prints "minidb listening on 127.0.0.1:PORT" and exits on SIGTERM/SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 1024

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	int port = 0, max_conn = 100, latency_ms = 2;
	const char *port_file = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--max-conn"))
			max_conn = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--latency-ms"))
			latency_ms = atoi(argv[i + 1]);
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
	printf("minidb listening on 127.0.0.1:%d (max %d connections)\n", ntohs(a.sin_port), max_conn);
	fflush(stdout);
	if (port_file) {
		FILE *f = fopen(port_file, "w");
		if (!f || fprintf(f, "%d\n", ntohs(a.sin_port)) < 0 || fclose(f) != 0) {
			fprintf(stderr, "minidb: cannot write %s\n", port_file);
			return 1;
		}
	}

	struct pollfd pfd[MAX_FDS];
	int n = 1, clients = 0;
	pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	while (!stop) {
		if (poll(pfd, (nfds_t)n, 200) < 0 && errno != EINTR)
			break;
		for (int i = n - 1; i >= 1; i--) {
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[256];
			ssize_t r = read(pfd[i].fd, buf, sizeof buf - 1);
			if (r <= 0) {
				close(pfd[i].fd);
				pfd[i] = pfd[--n];
				clients--;
				continue;
			}
			buf[r] = '\0';
			char reply[300];
			int id = 0;
			if (sscanf(buf, "GET %d", &id) == 1)
				snprintf(reply, sizeof reply, "OK user-%d\n", id);
			else
				snprintf(reply, sizeof reply, "ERR bad query\n");
			struct timespec ts = { 0, latency_ms * 1000000L };
			nanosleep(&ts, NULL);
			ssize_t w = write(pfd[i].fd, reply, strlen(reply));
			(void)w;
		}
		if (pfd[0].revents & POLLIN) {
			int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0) {
				if (clients >= max_conn || n >= MAX_FDS) {
					const char *msg = "ERR too many connections\n";
					ssize_t w = write(c, msg, strlen(msg));
					(void)w;
					close(c);
				} else {
					pfd[n++] = (struct pollfd){ .fd = c, .events = POLLIN };
					clients++;
				}
			}
		}
	}
	for (int i = 0; i < n; i++)
		close(pfd[i].fd);
	return 0;
}
