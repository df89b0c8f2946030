/* Helpers shared by the bench workloads (each is a program of its own). */
#ifndef LEAKWATCH_BENCH_H
#define LEAKWATCH_BENCH_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* recv_full - receive exactly n bytes; -1 on error or end of stream. */
static inline int recv_full(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = recv(fd, buf + got, n - got, 0);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

#endif
