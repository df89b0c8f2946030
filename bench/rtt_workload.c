/*
 * Benchmark workload: small request/response round trips over loopback.
 * CONNS client connections (one thread each) each send a 64-byte request
 * with write() and wait for the 64-byte reply; an echo thread per
 * connection answers with send().  Every call lands on a socket leakwatch
 * tracks, so the send-side hooks record a last-use stack on each one.
 * Prints the elapsed seconds.  Usage: rtt_workload [CONNS=2] [ROUNDS=50000]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64

static int rounds;

static int read_full(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static void *echo(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[MSG];
	while (read_full(fd, buf, MSG) == 0)
		if (send(fd, buf, MSG, 0) != MSG)
			break;
	close(fd);
	return NULL;
}

static void *client(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[MSG];
	memset(buf, 'x', sizeof buf);
	for (int i = 0; i < rounds; i++) {
		if (write(fd, buf, MSG) != MSG || read_full(fd, buf, MSG) != 0) {
			fprintf(stderr, "rtt_workload: round trip failed\n");
			exit(1);
		}
	}
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	int conns = argc > 1 ? atoi(argv[1]) : 2;
	rounds = argc > 2 ? atoi(argv[2]) : 50000;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 64) ||
	    getsockname(lfd, (struct sockaddr *)&a, &len)) {
		perror("rtt_workload: listen");
		return 1;
	}
	pthread_t t[128];
	int n = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < conns && n + 2 <= 128; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&a, sizeof a) != 0) {
			perror("rtt_workload: connect");
			return 1;
		}
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		int s = accept(lfd, NULL, NULL);
		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		pthread_create(&t[n++], NULL, echo, (void *)(intptr_t)s);
		pthread_create(&t[n++], NULL, client, (void *)(intptr_t)c);
	}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(lfd);
	printf("%.4f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
