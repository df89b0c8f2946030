/*
 * Benchmark workload: a fork-per-connection server, as a pre-fork-less
 * inetd-style or PostgreSQL-style server is.  The server (single-threaded)
 * accepts ITERS connections one at a time; for each it forks a child that
 * allocates a few KiB (a request buffer and some small objects), reads the
 * 64-byte request, sends a 64-byte reply, frees everything and _exit(0)s;
 * the parent closes its copy of the connection and waits for the child.
 * The client is this program re-executed with LEAKWATCH and LD_PRELOAD
 * removed from its environment, so only the server is traced.
 * Prints the server's elapsed seconds.  Usage: fork_workload [ITERS=1000]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MSG 64

extern char **environ;

static void fail(const char *what)
{
	perror(what);
	_exit(1);
}

/* client: ITERS connections, one request/reply each */
static int run_client(int port, long iters)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char buf[MSG];
	memset(buf, 'q', sizeof buf);
	for (long i = 0; i < iters; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
			fail("fork_workload client: connect");
		if (write(fd, buf, MSG) != MSG || recv_full(fd, buf, MSG) != 0)
			fail("fork_workload client: request");
		close(fd);
	}
	return 0;
}

/* the per-connection child: a request buffer, a few small objects, one
 * request and one reply */
static void __attribute__((noreturn)) serve(int fd)
{
	char *buf = malloc(4096);
	void *obj[8];
	for (int i = 0; i < 8; i++)
		obj[i] = malloc(64 + 32 * (size_t)i);
	if (!buf || recv_full(fd, buf, MSG) != 0 || send(fd, buf, MSG, 0) != MSG)
		_exit(2);
	for (int i = 0; i < 8; i++)
		free(obj[i]);
	free(buf);
	_exit(0);
}

/* start_client - this program again, untraced, as the client */
static pid_t start_client(const char *self, int port, long iters)
{
	static char *env[256];
	int n = 0;
	for (char **e = environ; *e && n < 255; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11) != 0 && strncmp(*e, "LEAKWATCH", 9) != 0)
			env[n++] = *e;
	env[n] = NULL;
	char p[16], it[24];
	snprintf(p, sizeof p, "%d", port);
	snprintf(it, sizeof it, "%ld", iters);
	pid_t pid = fork();
	if (pid == 0) {
		char *argv[] = { (char *)self, "client", p, it, NULL };
		execve("/proc/self/exe", argv, env);
		_exit(127);
	}
	return pid;
}

int main(int argc, char **argv)
{
	if (argc > 3 && strcmp(argv[1], "client") == 0)
		return run_client(atoi(argv[2]), atol(argv[3]));
	long iters = argc > 1 ? atol(argv[1]) : 1000;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 64) ||
	    getsockname(lfd, (struct sockaddr *)&a, &len))
		fail("fork_workload: listen");
	pid_t cl = start_client(argv[0], ntohs(a.sin_port), iters);
	if (cl < 0)
		fail("fork_workload: client");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < iters; i++) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			fail("fork_workload: accept");
		pid_t pid = fork();
		if (pid < 0)
			fail("fork_workload: fork");
		if (pid == 0) {
			close(lfd);
			serve(c);
		}
		close(c);
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "fork_workload: child failed\n");
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int st;
	waitpid(cl, &st, 0);
	close(lfd);
	printf("%.4f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
