/* SPDX-License-Identifier: MIT */
/*
 * Tests for analyzer/sockdiag.c against real sockets of this very process:
 * loopback TCP in every interesting state, UDP, unix socketpairs and
 * listeners, compared through NETLINK_SOCK_DIAG and the /proc fallback.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>

#include "lib/analyzer.h"

TestSuite(analyzer_sockdiag, .timeout = 60);

static uint64_t inode_of(int fd)
{
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	return st.st_ino;
}

static int tcp_listen(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A connected pair over loopback: *cli connects, *srv is the accepted end. */
static void tcp_pair(int lfd, uint16_t port, int *cli, int *srv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	*cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(*cli, 0);
	cr_assert_eq(connect(*cli, (struct sockaddr *)&a, sizeof a), 0);
	*srv = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(*srv, 0);
}

static const struct lw_sockinfo *must_find(const struct lw_sockdiag *d, int fd)
{
	const struct lw_sockinfo *k = lw_sockdiag_find(d, inode_of(fd));
	cr_assert_not_null(k, "fd %d (inode %llu) not in the kernel's table", fd, (unsigned long long)inode_of(fd));
	return k;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

Test(analyzer_sockdiag, tcp_states_queues_and_last_data_times)
{
	uint16_t port;
	int lfd = tcp_listen(&port);
	int c1, a1, c2, a2;
	tcp_pair(lfd, port, &c1, &a1);
	tcp_pair(lfd, port, &c2, &a2);
	char data[100];
	memset(data, 'x', sizeof data);
	cr_assert_eq(write(c1, data, sizeof data), (ssize_t)sizeof data);
	/* The peer hangs up, c2 never closes: CLOSE_WAIT once the FIN is in. */
	close(a2);
	struct pollfd p = { c2, POLLRDHUP, 0 };
	cr_assert_eq(poll(&p, 1, 5000), 1);
	sleep_ms(400);

	struct lw_sockdiag d;
	cr_assert_eq(lw_sockdiag_load(&d, getpid()), 0);
	cr_assert_eq(d.source_inet, LW_SD_NETLINK, "inet_diag must work for our own sockets (error %d)", d.error);
	cr_assert_not(d.netns_other);

	const struct lw_sockinfo *k = must_find(&d, lfd);
	cr_assert_str_eq(k->state_name, "LISTEN");
	cr_assert_eq(k->state, 10);
	cr_assert_not(k->has_tcpinfo, "LISTEN has no meaningful last-data times");

	k = must_find(&d, c1);
	cr_assert_str_eq(k->state_name, "ESTABLISHED");
	cr_assert_eq(k->family, AF_INET);
	cr_assert_eq(k->protocol, IPPROTO_TCP);
	cr_assert(k->has_tcpinfo);
	cr_assert_geq(k->last_data_sent_ms, 350, "sent 400ms ago, got %u", k->last_data_sent_ms);
	cr_assert_lt(k->last_data_sent_ms, 10000);
	cr_assert_geq(k->last_data_recv_ms, 350, "nothing received since connect: %u", k->last_data_recv_ms);
	cr_assert_eq(k->wqueue, 0, "loopback delivers at once");

	k = must_find(&d, a1);
	cr_assert_str_eq(k->state_name, "ESTABLISHED");
	cr_assert_eq(k->rqueue, sizeof data, "100 bytes wait unread, got %u", k->rqueue);
	cr_assert_geq(k->last_data_recv_ms, 350);
	cr_assert_lt(k->last_data_recv_ms, 10000);

	k = must_find(&d, c2);
	cr_assert_str_eq(k->state_name, "CLOSE_WAIT");
	cr_assert_eq(k->state, 8);
	lw_sockdiag_free(&d);

	/* Fresh traffic resets the clock. */
	cr_assert_eq(write(c1, data, 1), 1);
	char buf[200];
	cr_assert_eq(read(a1, buf, sizeof buf), (ssize_t)sizeof data + 1);
	cr_assert_eq(lw_sockdiag_load(&d, 0), 0);
	k = must_find(&d, c1);
	cr_assert_lt(k->last_data_sent_ms, 300, "just sent: %u", k->last_data_sent_ms);
	k = must_find(&d, a1);
	cr_assert_lt(k->last_data_recv_ms, 300, "just received: %u", k->last_data_recv_ms);
	cr_assert_eq(k->rqueue, 0, "read everything");
	lw_sockdiag_free(&d);

	close(c1);
	close(a1);
	close(c2);
	close(lfd);
}

Test(analyzer_sockdiag, send_queue_fills_when_the_peer_does_not_read)
{
	uint16_t port;
	int lfd = tcp_listen(&port);
	int rcv = 4096;
	cr_assert_eq(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv), 0);
	int c, a;
	tcp_pair(lfd, port, &c, &a);
	fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
	static char chunk[65536];
	size_t total = 0;
	for (int i = 0; i < 10000; i++) {
		ssize_t n = write(c, chunk, sizeof chunk);
		if (n < 0)
			break;
		total += (size_t)n;
	}
	cr_assert_gt(total, 0);
	sleep_ms(50);
	struct lw_sockdiag d;
	cr_assert_eq(lw_sockdiag_load(&d, getpid()), 0);
	const struct lw_sockinfo *kc = must_find(&d, c), *ka = must_find(&d, a);
	cr_assert_gt(kc->wqueue, 0, "unsent/unacked bytes queue up at the writer");
	cr_assert_gt(ka->rqueue, 0, "and the reader's queue is full");
	cr_assert_leq((size_t)kc->wqueue + ka->rqueue, total);
	lw_sockdiag_free(&d);
	close(c);
	close(a);
	close(lfd);
}

Test(analyzer_sockdiag, udp_and_ipv6)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(u, (struct sockaddr *)&a, sizeof a), 0);
	int l6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int have6 = l6 >= 0 && bind(l6, (struct sockaddr *)&a6, sizeof a6) == 0 && listen(l6, 1) == 0;
	struct lw_sockdiag d;
	cr_assert_eq(lw_sockdiag_load(&d, getpid()), 0);
	const struct lw_sockinfo *k = must_find(&d, u);
	cr_assert_str_eq(k->state_name, "UNCONN", "a bound, unconnected UDP socket");
	cr_assert_eq(k->protocol, IPPROTO_UDP);
	cr_assert_not(k->has_tcpinfo);
	if (have6) {
		k = must_find(&d, l6);
		cr_assert_str_eq(k->state_name, "LISTEN");
		cr_assert_eq(k->family, AF_INET6);
	}
	lw_sockdiag_free(&d);
	close(u);
	if (l6 >= 0)
		close(l6);
}

Test(analyzer_sockdiag, unix_peer_and_queue)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(write(sv[0], "0123456789", 10), 10);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path + 1, sizeof sun.sun_path - 1, "lw-sockdiag-test-%d", getpid());
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(l, (struct sockaddr *)&sun, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
								   strlen(sun.sun_path + 1))), 0);
	cr_assert_eq(listen(l, 4), 0);

	struct lw_sockdiag d;
	cr_assert_eq(lw_sockdiag_load(&d, getpid()), 0);
	const struct lw_sockinfo *k0 = must_find(&d, sv[0]), *k1 = must_find(&d, sv[1]);
	cr_assert_str_eq(k0->state_name, "CONNECTED");
	cr_assert_str_eq(k1->state_name, "CONNECTED");
	cr_assert_str_eq(must_find(&d, l)->state_name, "LISTEN");
	if (d.source_unix == LW_SD_NETLINK) {
		cr_assert_eq(k0->peer_inode, inode_of(sv[1]));
		cr_assert_eq(k1->peer_inode, inode_of(sv[0]));
		cr_assert(k1->has_queues);
		cr_assert_eq(k1->rqueue, 10, "10 bytes unread at the peer, got %u", k1->rqueue);
		cr_assert_gt(k0->wqueue, 0, "...still charged to the writer");
	} else {
		cr_assert_eq(d.source_unix, LW_SD_PROC, "unix_diag missing: /proc fallback");
	}
	lw_sockdiag_free(&d);
	close(sv[0]);
	close(sv[1]);
	close(l);
}

Test(analyzer_sockdiag, proc_fallback_agrees_on_states)
{
	uint16_t port;
	int lfd = tcp_listen(&port);
	int c, a;
	tcp_pair(lfd, port, &c, &a);
	close(a);
	struct pollfd p = { c, POLLRDHUP, 0 };
	cr_assert_eq(poll(&p, 1, 5000), 1);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);

	struct lw_sockdiag nl, pr;
	cr_assert_eq(lw_sockdiag_load(&nl, getpid()), 0);
	cr_assert_eq(lw_sockdiag_load_proc(&pr, getpid()), 0);
	cr_assert_eq(pr.source_inet, LW_SD_PROC);
	int fds[] = { lfd, c, sv[0] };
	for (size_t i = 0; i < 3; i++) {
		const struct lw_sockinfo *x = must_find(&nl, fds[i]), *y = must_find(&pr, fds[i]);
		cr_assert_str_eq(x->state_name, y->state_name, "fd %d", fds[i]);
		cr_assert_eq(y->source, LW_SD_PROC);
		cr_assert_not(y->has_tcpinfo, "/proc has no tcp_info");
	}
	cr_assert_str_eq(must_find(&pr, c)->state_name, "CLOSE_WAIT");
	cr_assert_null(lw_sockdiag_find(&pr, 1));
	lw_sockdiag_free(&nl);
	lw_sockdiag_free(&pr);
	close(c);
	close(lfd);
	close(sv[0]);
	close(sv[1]);
}

Test(analyzer_sockdiag, table_lookup_and_join)
{
	struct lw_sockdiag d;
	memset(&d, 0, sizeof d);
	fab_kernel_tcp(&d, 30, 1, 5, 0, 0);
	fab_kernel_tcp(&d, 10, 8, 5, 3, 0);
	fab_kernel_tcp(&d, 0, 1, 5, 0, 0);   /* inode 0: TIME_WAIT-like, dropped */
	fab_kernel_tcp(&d, 20, 10, UINT32_MAX, 0, 0);
	cr_assert_eq(d.n, 3);
	cr_assert_str_eq(lw_sockdiag_find(&d, 10)->state_name, "CLOSE_WAIT", "unsorted: linear search");
	lw_sockdiag_sort(&d);
	cr_assert_eq(d.v[0].inode, 10);
	cr_assert_eq(d.v[2].inode, 30);
	cr_assert_str_eq(lw_sockdiag_find(&d, 20)->state_name, "LISTEN");
	cr_assert_null(lw_sockdiag_find(&d, 25));
	cr_assert_null(lw_sockdiag_find(NULL, 25));

	/* Installed into a join, it answers sockstate_lookup() without asking the kernel. */
	struct lw_join j;
	struct lw_snapshot s;
	memset(&s, 0, sizeof s);
	cr_assert_eq(lw_join_proc(&j, &s, 0), 0);
	cr_assert_null(sockstate_lookup(&j, 10), "no kernel view without a process");
	lw_join_set_sockdiag(&j, &d);
	cr_assert_null(d.v, "ownership moved");
	cr_assert_str_eq(sockstate_lookup(&j, 30), "ESTABLISHED");
	cr_assert_eq(lw_join_sockinfo(&j, 10)->rqueue, 3);
	lw_join_free(&j);
}
