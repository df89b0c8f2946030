/*
 * Benchmark workload: a proxy over keepalive loopback connections, as a
 * reverse proxy with upstream keepalive is.  CHAINS independent chains of
 * three threads: a client writes a 64-byte request to the proxy and waits
 * for the reply; the proxy reads it from the client, writes it to the
 * upstream, reads the upstream's reply and writes that to the client; the
 * upstream answers every request.  Each request makes four send-side calls
 * (write, send, writev) on sockets leakwatch tracks, each recording a
 * last-use stack.  Prints the elapsed seconds.
 * Usage: proxy_workload [CHAINS=2] [REQUESTS=20000]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MSG 64

static int requests;

static void fail(const char *what)
{
	fprintf(stderr, "proxy_workload: %s failed\n", what);
	exit(1);
}

/* upstream: answer every request (writev, as a server writing header + body) */
static void *upstream(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[MSG];
	while (recv_full(fd, buf, MSG) == 0) {
		struct iovec iov[2] = { { buf, 16 }, { buf + 16, MSG - 16 } };
		if (writev(fd, iov, 2) != MSG)
			fail("upstream writev");
	}
	close(fd);
	return NULL;
}

struct chain {
	int client_side;                /* proxy's end of the client connection */
	int upstream_side;              /* proxy's end of the upstream connection */
};

static void *proxy(void *arg)
{
	struct chain *c = arg;
	char buf[MSG];
	while (recv_full(c->client_side, buf, MSG) == 0) {
		if (send(c->upstream_side, buf, MSG, 0) != MSG || recv_full(c->upstream_side, buf, MSG) != 0)
			fail("proxy upstream round trip");
		if (send(c->client_side, buf, MSG, 0) != MSG)
			fail("proxy send to client");
	}
	close(c->client_side);
	close(c->upstream_side);
	return NULL;
}

static void *client(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[MSG];
	memset(buf, 'x', sizeof buf);
	for (int i = 0; i < requests; i++)
		if (write(fd, buf, MSG) != MSG || recv_full(fd, buf, MSG) != 0)
			fail("client request");
	close(fd);
	return NULL;
}

/* pair - a connected loopback TCP pair through lfd: *out_c connects, *out_s accepted */
static void pair(int lfd, const struct sockaddr_in *a, int *out_c, int *out_s)
{
	int one = 1;
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (const struct sockaddr *)a, sizeof *a) != 0)
		fail("connect");
	int s = accept(lfd, NULL, NULL);
	if (s < 0)
		fail("accept");
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	*out_c = c;
	*out_s = s;
}

int main(int argc, char **argv)
{
	int chains = argc > 1 ? atoi(argv[1]) : 2;
	requests = argc > 2 ? atoi(argv[2]) : 20000;
	if (chains < 1 || chains > 32)
		chains = 2;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 64) ||
	    getsockname(lfd, (struct sockaddr *)&a, &len)) {
		perror("proxy_workload: listen");
		return 1;
	}
	static struct chain ch[32];
	pthread_t t[96];
	int n = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < chains; i++) {
		int cl, up;
		pair(lfd, &a, &cl, &ch[i].client_side);
		pair(lfd, &a, &ch[i].upstream_side, &up);
		pthread_create(&t[n++], NULL, upstream, (void *)(intptr_t)up);
		pthread_create(&t[n++], NULL, proxy, &ch[i]);
		pthread_create(&t[n++], NULL, client, (void *)(intptr_t)cl);
	}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(lfd);
	printf("%.4f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
