/*
 * loadgen — the demo's load generator: HTTP GETs against the api service on
 * 127.0.0.1 at a fixed rate (open loop: traffic does not slow down because the
 * service does, which is what makes a pool exhaustion an incident), one new
 * connection per request, and every second one line of what an on-call
 * dashboard shows: requests, status classes, latency percentiles.
 *
 * The request mix (deterministic, request i):
 *   i % N == N - 1             GET /users/<id> of a user that does not exist
 *                              (404), N = --miss-every
 *   else i % 4 == 3            GET /users/<id>/orders
 *   otherwise                  GET /users/<id> of an existing user (1..997)
 *
 * Usage: loadgen --port N [--rate R] [--duration S] [--miss-every N]
 *                [--max-inflight N] [--timeout-ms N] [--stop-on-errors S]
 *                [--summary-file F] [--quiet]
 *   --stop-on-errors S   stop early once S consecutive seconds had more than
 *                        10% errors (5xx or failed): the load balancer
 *                        takes the instance out of rotation
 *   --summary-file F     write one "key=value ..." line of totals to F
 * Bounded: never more than --max-inflight requests in flight (a request due
 * when that many are pending counts as failed), never past --duration.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_INFLIGHT 2048
#define MAX_SAMPLES (1 << 17)

struct slot {
	int fd;        /* -1: free */
	int sent;      /* request written */
	uint64_t start_ns;
	char status[16];
	size_t got;
	const char *req;
	char reqbuf[128];
};

struct tally {
	long sent, ok2, c404, c5xx, fail;
	double *lat; /* ms of every completed request (any status) */
	size_t nlat;
};

static volatile sig_atomic_t stop;
static struct slot slots[MAX_INFLIGHT];
static int port, max_inflight = 512, timeout_ms = 3000, miss_every = 200;
static struct sockaddr_in target;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* pct - the p-th percentile (nearest rank) of sorted v[0..n), 0 when n == 0 */
static double pct(const double *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	return v[(k > n ? n : k) - 1];
}

static void add_lat(struct tally *t, double ms)
{
	if (t->nlat < MAX_SAMPLES)
		t->lat[t->nlat++] = ms;
}

static void finish(struct slot *s, int epfd, struct tally *sec, struct tally *all, int failed)
{
	double ms = (double)(now_ns() - s->start_ns) / 1e6;
	int code = 0;
	if (!failed && s->got >= 12 && strncmp(s->status, "HTTP/1.", 7) == 0)
		code = atoi(s->status + 9);
	struct tally *ts[2] = { sec, all };
	for (int i = 0; i < 2; i++) {
		if (code >= 200 && code < 300)
			ts[i]->ok2++;
		else if (code == 404)
			ts[i]->c404++;
		else if (code >= 500)
			ts[i]->c5xx++;
		else
			ts[i]->fail++;
		if (code)
			add_lat(ts[i], ms);
	}
	epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = -1;
}

static void start_request(long i, int epfd, struct tally *sec, struct tally *all)
{
	struct slot *s = NULL;
	for (int k = 0; k < max_inflight; k++)
		if (slots[k].fd < 0) {
			s = &slots[k];
			break;
		}
	sec->sent++;
	all->sent++;
	if (!s) { /* client-side limit reached: counts as a failure */
		sec->fail++;
		all->fail++;
		return;
	}
	int id = 1 + (int)((i * 7919) % 997);
	if (miss_every > 0 && i % miss_every == miss_every - 1)
		snprintf(s->reqbuf, sizeof s->reqbuf, "GET /users/%ld HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
			 1000000 + i);
	else if (i % 4 == 3)
		snprintf(s->reqbuf, sizeof s->reqbuf, "GET /users/%d/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", id);
	else
		snprintf(s->reqbuf, sizeof s->reqbuf, "GET /users/%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", id);
	s->req = s->reqbuf;
	s->sent = 0;
	s->got = 0;
	s->start_ns = now_ns();
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		sec->fail++;
		all->fail++;
		return;
	}
	if (connect(s->fd, (struct sockaddr *)&target, sizeof target) != 0 && errno != EINPROGRESS) {
		close(s->fd);
		s->fd = -1;
		sec->fail++;
		all->fail++;
		return;
	}
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = s };
	epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev);
}

static void on_event(struct slot *s, uint32_t events, int epfd, struct tally *sec, struct tally *all)
{
	if (!s->sent && (events & EPOLLOUT)) {
		size_t n = strlen(s->req);
		if (write(s->fd, s->req, n) != (ssize_t)n) {
			finish(s, epfd, sec, all, 1);
			return;
		}
		s->sent = 1;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
		epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		char buf[4096];
		ssize_t r = read(s->fd, buf, sizeof buf);
		if (r > 0) {
			size_t take = (size_t)r;
			if (s->got < sizeof s->status - 1) {
				size_t room = sizeof s->status - 1 - s->got;
				memcpy(s->status + s->got, buf, take < room ? take : room);
				s->got += take < room ? take : room;
				s->status[s->got] = '\0';
			}
			return;
		}
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		finish(s, epfd, sec, all, s->got < 12); /* EOF: the answer is complete */
	}
}

static void print_line(long second, struct tally *t)
{
	qsort(t->lat, t->nlat, sizeof *t->lat, cmp_double);
	printf("%5lds %6ld %6ld %6ld %6ld %6ld %9.1f %9.1f %9.1f\n", second, t->sent, t->ok2, t->c404,
	       t->c5xx, t->fail, pct(t->lat, t->nlat, 50), pct(t->lat, t->nlat, 95),
	       pct(t->lat, t->nlat, 99));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	double rate = 200, duration = 10;
	int stop_on_errors = 0, quiet = 0;
	const char *summary_file = NULL;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--quiet")) {
			quiet = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "loadgen: %s needs a value\n", argv[i]);
			return 2;
		}
		if (!strcmp(argv[i], "--port"))
			port = atoi(v);
		else if (!strcmp(argv[i], "--rate"))
			rate = atof(v);
		else if (!strcmp(argv[i], "--duration"))
			duration = atof(v);
		else if (!strcmp(argv[i], "--miss-every"))
			miss_every = atoi(v);
		else if (!strcmp(argv[i], "--max-inflight"))
			max_inflight = atoi(v);
		else if (!strcmp(argv[i], "--timeout-ms"))
			timeout_ms = atoi(v);
		else if (!strcmp(argv[i], "--stop-on-errors"))
			stop_on_errors = atoi(v);
		else if (!strcmp(argv[i], "--summary-file"))
			summary_file = v;
		else {
			fprintf(stderr, "loadgen: unknown option %s\n", argv[i]);
			return 2;
		}
		i++;
	}
	if (port <= 0 || port > 65535 || rate <= 0 || rate > 20000 || duration <= 0 ||
	    duration > 600 || max_inflight < 1 || max_inflight > MAX_INFLIGHT) {
		fprintf(stderr, "usage: loadgen --port N [--rate 1..20000] [--duration 1..600] "
				"[--miss-every N] [--max-inflight 1..%d] [--timeout-ms N] "
				"[--stop-on-errors S] [--summary-file F] [--quiet]\n",
			MAX_INFLIGHT);
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	target = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				       .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	for (int k = 0; k < MAX_INFLIGHT; k++)
		slots[k].fd = -1;
	struct tally sec = { .lat = malloc(MAX_SAMPLES * sizeof(double)) };
	struct tally all = { .lat = malloc(MAX_SAMPLES * sizeof(double)) };
	double *first_lat = malloc(MAX_SAMPLES * sizeof(double));
	size_t nfirst = 0;
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!sec.lat || !all.lat || !first_lat || epfd < 0) {
		fprintf(stderr, "loadgen: out of resources\n");
		return 1;
	}
	if (!quiet) {
		printf("loadgen: %.0f req/s for up to %.0f s to 127.0.0.1:%d, one request in %d for a "
		       "missing user\n", rate, duration, port, miss_every);
		printf("%6s %6s %6s %6s %6s %6s %9s %9s %9s\n", "time", "req", "2xx", "404", "5xx",
		       "failed", "p50 ms", "p95 ms", "p99 ms");
		fflush(stdout);
	}

	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(duration * 1e9), next_sec = t0 + 1000000000u;
	uint64_t interval = (uint64_t)(1e9 / rate);
	long issued = 0, second = 0;
	int bad_seconds = 0, stopped_early = 0, sending = 1, inflight;
	double max_p99 = 0;
	for (;;) {
		uint64_t now = now_ns();
		if (stop || now >= end)
			sending = 0;
		while (sending && t0 + (uint64_t)issued * interval <= now)
			start_request(issued++, epfd, &sec, &all);
		/* time out slow requests; count what is in flight */
		now = now_ns();
		inflight = 0;
		for (int k = 0; k < max_inflight; k++) {
			if (slots[k].fd < 0)
				continue;
			if (now - slots[k].start_ns > (uint64_t)timeout_ms * 1000000u)
				finish(&slots[k], epfd, &sec, &all, 1);
			else
				inflight++;
		}
		if (now >= next_sec) {
			second++;
			long errors = sec.c5xx + sec.fail, done = sec.ok2 + sec.c404 + errors;
			if (second <= 2 && nfirst + sec.nlat <= MAX_SAMPLES) {
				memcpy(first_lat + nfirst, sec.lat, sec.nlat * sizeof(double));
				nfirst += sec.nlat;
			}
			if (!quiet)
				print_line(second, &sec);
			else
				qsort(sec.lat, sec.nlat, sizeof *sec.lat, cmp_double);
			if (pct(sec.lat, sec.nlat, 99) > max_p99)
				max_p99 = pct(sec.lat, sec.nlat, 99);
			bad_seconds = done > 0 && errors * 10 > done ? bad_seconds + 1 : 0;
			if (sending && stop_on_errors > 0 && bad_seconds >= stop_on_errors) {
				stopped_early = 1;
				sending = 0;
				if (!quiet)
					printf("loadgen: more than 10%% errors for %d s: the load balancer takes "
					       "the instance out of rotation; traffic stops\n", bad_seconds);
			}
			free(sec.lat);
			sec = (struct tally){ .lat = malloc(MAX_SAMPLES * sizeof(double)) };
			if (!sec.lat)
				return 1;
			next_sec += 1000000000u;
		}
		if (!sending && inflight == 0)
			break;
		struct epoll_event evs[64];
		uint64_t next = sending ? t0 + (uint64_t)issued * interval : now + 50000000u;
		if (next > next_sec)
			next = next_sec;
		int wait_ms = next > now ? (int)((next - now) / 1000000u) : 0;
		int n = epoll_wait(epfd, evs, 64, wait_ms);
		for (int e = 0; e < n; e++)
			on_event(evs[e].data.ptr, evs[e].events, epfd, &sec, &all);
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	qsort(all.lat, all.nlat, sizeof *all.lat, cmp_double);
	qsort(first_lat, nfirst, sizeof *first_lat, cmp_double);
	char line[512];
	snprintf(line, sizeof line,
		 "sent=%ld ok=%ld not_found=%ld s5xx=%ld failed=%ld seconds=%.1f p50_ms=%.1f "
		 "p99_ms=%.1f p99_first_ms=%.1f p99_max_ms=%.1f stopped_early=%d\n",
		 all.sent, all.ok2, all.c404, all.c5xx, all.fail, secs, pct(all.lat, all.nlat, 50),
		 pct(all.lat, all.nlat, 99), pct(first_lat, nfirst, 99), max_p99, stopped_early);
	if (!quiet)
		printf("loadgen: %s", line);
	if (summary_file) {
		FILE *f = fopen(summary_file, "w");
		if (!f || fputs(line, f) < 0 || fclose(f) != 0) {
			fprintf(stderr, "loadgen: cannot write %s\n", summary_file);
			return 1;
		}
	}
	close(epfd);
	return 0;
}
