/*
 * Benchmark workload: connection churn over loopback, as a client that
 * opens a connection per request does.  ITERS times: socket(), connect()
 * to a loopback listener, close().  A listener thread accepts each
 * connection and closes it.  Every socket, connect and close lands on a
 * socket leakwatch tracks (open and close stacks, addresses).
 * Prints the elapsed seconds.  Usage: churn_workload [ITERS=20000]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int lfd;

static void *acceptor(void *arg)
{
	long n = (long)(intptr_t)arg;
	for (long i = 0; i < n; i++) {
		int s = accept(lfd, NULL, NULL);
		if (s < 0) {
			perror("churn_workload: accept");
			exit(1);
		}
		close(s);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 20000;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 1024) ||
	    getsockname(lfd, (struct sockaddr *)&a, &len)) {
		perror("churn_workload: listen");
		return 1;
	}
	pthread_t t;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_create(&t, NULL, acceptor, (void *)(intptr_t)iters);
	for (long i = 0; i < iters; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) != 0) {
			perror("churn_workload: connect");
			return 1;
		}
		close(c);
	}
	pthread_join(t, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(lfd);
	printf("%.4f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
