/*
 * Benchmark workload: an open/close-heavy program (a server that opens a
 * file per request, a build tool stat-ing its inputs).  ITERS times:
 * open() a small file, fstat() it, close() it.  Every open and close lands
 * on a descriptor leakwatch records (kind, path, creation stack).
 * Prints the elapsed seconds.  Usage: open_workload [ITERS=200000]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 200000;
	char path[] = "/tmp/leakwatch-open-bench.XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, "small file\n", 11) != 11) {
		perror("open_workload: mkstemp");
		return 1;
	}
	close(fd);
	struct timespec t0, t1;
	struct stat st;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < iters; i++) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) != 0 || st.st_size != 11) {
			perror("open_workload: open");
			unlink(path);
			return 1;
		}
		close(fd);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	unlink(path);
	printf("%.4f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
