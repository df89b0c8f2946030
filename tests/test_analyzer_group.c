/* SPDX-License-Identifier: MIT */
/* Tests for analyzer/group.c and procjoin.c. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>

#include "lib/analyzer.h"

#define SEC 1000000000ull

static const char *const dir = suite_dir; /* the suite's private directory */

static void snap_load(struct fab *f, struct lw_snapshot *s)
{
	char path[PATH_MAX], err[LW_ERR_MAX];
	fab_write(f, dir, fab_segname(), path, sizeof path);
	cr_assert_eq(lw_snapshot_open(s, path, err, sizeof err), 0, "%s", err);
}

/*
 * fds 3,4,5: connect() to 127.0.0.1:5432 from stack 1, ages 10s, 300s, 60s
 * fds 6,7: accepted on 0.0.0.0:8080 from stack 2 (different client ports)
 * fd 8: connected to 127.0.0.1:5432 but from stack 2
 * fd 9: inherited, fd 10: closed, fd 11: unix socket to /run/x.sock
 */
static void fab_mixed(struct fab *f, uint64_t now)
{
	fab_init(f, 8, 4, 32, 4);
	const uint64_t ages[] = { 10, 300, 60 };
	for (int i = 0; i < 3; i++)
		fab_addr_in(&fab_handle(f, 3 + i, LW_ORIGIN_SOCKET, 1, now - ages[i] * SEC)->peer, "127.0.0.1", 5432);
	for (int i = 0; i < 2; i++) {
		struct lw_handle *h = fab_handle(f, 6 + i, LW_ORIGIN_ACCEPT, 2, now - 20 * SEC);
		fab_addr_in(&h->local, "0.0.0.0", 8080);
		fab_addr_in(&h->peer, "10.0.0.9", (uint16_t)(40000 + i));
	}
	fab_addr_in(&fab_handle(f, 8, LW_ORIGIN_SOCKET, 2, now - 5 * SEC)->peer, "127.0.0.1", 5432);
	fab_handle(f, 9, LW_ORIGIN_INHERITED, 0, now - 1000 * SEC);
	fab_handle(f, 10, LW_ORIGIN_SOCKET, 1, now - 1000 * SEC)->state = LW_H_CLOSED;
	struct lw_handle *u = fab_handle(f, 11, LW_ORIGIN_SOCKET, 3, now - 2 * SEC);
	u->family = AF_UNIX;
	fab_addr_un(&u->peer, "/run/x.sock");
}

TestSuite(analyzer_group, .init = suite_dir_setup, .fini = suite_dir_teardown);

Test(analyzer_group, groups_by_stack_and_endpoint)
{
	struct fab f;
	struct lw_snapshot s;
	const uint64_t now = 5000 * SEC;
	fab_mixed(&f, now);
	snap_load(&f, &s);

	struct lw_grouping g;
	cr_assert_eq(lw_group_build(&g, &s, NULL, now, 0, 0), 0);
	cr_assert_eq(g.ngroups, 4);
	cr_assert_eq(g.nsockets, 7);
	cr_assert_eq(g.nleaked, 7);

	const struct lw_group *a = &g.groups[0];
	cr_assert_eq(a->count, 3);
	cr_assert_eq(a->stack_id, 1);
	cr_assert_str_eq(a->endpoint, "127.0.0.1:5432");
	cr_assert_eq(a->role, LW_EP_PEER);
	cr_assert_eq(a->age_min_ns, 10 * SEC);
	cr_assert_eq(a->age_max_ns, 300 * SEC);
	cr_assert_eq(a->nfds, 3);
	cr_assert_eq(a->fds[0], 3);
	cr_assert_eq(a->fds[2], 5);
	cr_assert_eq(a->nstates, 0, "no kernel view: no states");

	const struct lw_group *b = &g.groups[1];
	cr_assert_eq(b->count, 2);
	cr_assert_eq(b->origin, LW_ORIGIN_ACCEPT);
	cr_assert_str_eq(b->endpoint, "0.0.0.0:8080");
	cr_assert_eq(b->role, LW_EP_LOCAL);
	cr_assert_eq(b->npeers_total, 2);
	cr_assert_str_eq(b->peers[0], "10.0.0.9:40000");

	/* count ties broken by the oldest member: fd 8 (5s) vs fd 11 (2s) */
	cr_assert_eq(g.groups[2].fds[0], 8);
	cr_assert_eq(g.groups[2].stack_id, 2);
	cr_assert_str_eq(g.groups[3].endpoint, "/run/x.sock");
	cr_assert_eq(g.groups[3].family, AF_UNIX);
	lw_grouping_free(&g);
	lw_snapshot_free(&s);
	fab_free(&f);
}

Test(analyzer_group, older_than_and_inherited)
{
	struct fab f;
	struct lw_snapshot s;
	const uint64_t now = 5000 * SEC;
	fab_mixed(&f, now);
	snap_load(&f, &s);

	struct lw_grouping g;
	cr_assert_eq(lw_group_build(&g, &s, NULL, now, 60 * SEC, 0), 0);
	cr_assert_eq(g.ngroups, 1);
	cr_assert_eq(g.groups[0].count, 2, "only the 300s and 60s sockets");
	cr_assert_eq(g.groups[0].age_min_ns, 60 * SEC);
	lw_grouping_free(&g);

	cr_assert_eq(lw_group_build(&g, &s, NULL, now, 0, 1), 0);
	cr_assert_eq(g.ngroups, 5);
	cr_assert_eq(g.nsockets, 8);
	cr_assert_eq(g.nleaked, 7);
	const struct lw_group *last = &g.groups[g.ngroups - 1];
	cr_assert(last->inherited, "inherited groups sort after the others");
	cr_assert_eq(last->fds[0], 9);
	cr_assert_eq(last->stack_id, 0);
	lw_grouping_free(&g);
	lw_snapshot_free(&s);
	fab_free(&f);
}

Test(analyzer_group, fork_copies_are_inherited)
{
	struct fab f;
	struct lw_snapshot s;
	fab_init(&f, 4, 4, 16, 4);
	fab_handle(&f, 3, LW_ORIGIN_FORK, 1, 10);
	fab_handle(&f, 4, LW_ORIGIN_DUP, 1, 10);
	snap_load(&f, &s);
	struct lw_grouping g;
	cr_assert_eq(lw_group_build(&g, &s, NULL, 100, 0, 0), 0);
	cr_assert_eq(g.nleaked, 1);
	cr_assert_eq(g.groups[0].fds[0], 4);
	lw_grouping_free(&g);
	lw_snapshot_free(&s);
	fab_free(&f);
}

Test(analyzer_group, age_reference)
{
	struct lw_snapshot s;
	memset(&s, 0, sizeof s);
	s.hdr.start_monotonic_ns = 100 * SEC;
	s.hdr.start_realtime_ns = 1700000000ull * SEC;
	s.hdr.end_monotonic_ns = 160 * SEC;
	cr_assert_eq(lw_snapshot_now(&s, LW_LIVE_EXITED), 160 * SEC);
	s.hdr.end_monotonic_ns = 0;
	s.mtime.tv_sec = 1700000030; /* killed 30 s after start */
	cr_assert_eq(lw_snapshot_now(&s, LW_LIVE_DEAD), 130 * SEC);
	uint64_t before = fab_now();
	uint64_t live = lw_snapshot_now(&s, LW_LIVE_ALIVE);
	cr_assert(live >= before && live <= fab_now());
}

Test(analyzer_group, addr_format)
{
	struct lw_addr a;
	char b[LW_ENDPOINT_MAX];
	memset(&a, 0, sizeof a);
	cr_assert_str_eq(lw_addr_format(&a, b, sizeof b), "");
	fab_addr_in(&a, "192.168.1.20", 443);
	cr_assert_str_eq(lw_addr_format(&a, b, sizeof b), "192.168.1.20:443");

	struct sockaddr_in6 s6;
	memset(&s6, 0, sizeof s6);
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons(8443);
	s6.sin6_addr = in6addr_loopback;
	memset(&a, 0, sizeof a);
	memcpy(a.data, &s6, sizeof s6);
	a.len = sizeof s6;
	cr_assert_str_eq(lw_addr_format(&a, b, sizeof b), "[::1]:8443");

	fab_addr_un(&a, "/tmp/sock");
	cr_assert_str_eq(lw_addr_format(&a, b, sizeof b), "/tmp/sock");

	struct sockaddr_un sun;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, "\0abs\nx", 6);
	memset(&a, 0, sizeof a);
	memcpy(a.data, &sun, sizeof sun);
	a.len = (uint16_t)(offsetof(struct sockaddr_un, sun_path) + 6);
	cr_assert_str_eq(lw_addr_format(&a, b, sizeof b), "@abs@x");

	a.len = sizeof(sa_family_t); /* socketpair: unnamed */
	cr_assert_str_eq(lw_addr_format(&a, b, sizeof b), "unnamed");

	a.len = 60000; /* garbage length from a confused writer: clamped */
	fab_addr_in(&a, "1.2.3.4", 1);
	a.len = 60000;
	cr_assert_str_eq(lw_addr_format(&a, b, sizeof b), "1.2.3.4:1");
}

/* ---- procjoin: against this very process ---- */

static uint64_t fd_inode(int fd)
{
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	return st.st_ino;
}

Test(analyzer_group, join_with_proc)
{
	/* a listening socket, a connected pair, and one socket we "forget" to record */
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sin;
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sin, sizeof sin), 0);
	cr_assert_eq(listen(lfd, 4), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	int cfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(cfd, (struct sockaddr *)&sin, sizeof sin), 0);
	int afd = accept(lfd, NULL, NULL);
	cr_assert_geq(afd, 0);
	int ufd = socket(AF_UNIX, SOCK_DGRAM, 0);
	int stale_fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in usin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(stale_fd, (struct sockaddr *)&usin, sizeof usin), 0); /* unbound UDP is not listed */
	cr_assert(lfd < 64 && cfd < 64 && afd < 64 && ufd < 64 && stale_fd < 64);

	struct fab f;
	struct lw_snapshot s;
	fab_init(&f, 4, 4, 64, 4);
	fab_handle(&f, lfd, LW_ORIGIN_SOCKET, 0, 1)->inode = fd_inode(lfd);
	fab_handle(&f, cfd, LW_ORIGIN_SOCKET, 0, 1)->inode = fd_inode(cfd);
	fab_handle(&f, afd, LW_ORIGIN_ACCEPT, 0, 1)->inode = fd_inode(afd);
	fab_handle(&f, stale_fd, LW_ORIGIN_SOCKET, 0, 1)->inode = fd_inode(stale_fd) + 1; /* fd reused */
	fab_handle(&f, 63, LW_ORIGIN_SOCKET, 0, 1); /* closed behind our back */
	snap_load(&f, &s);

	struct lw_join j;
	cr_assert_eq(lw_join_proc(&j, &s, getpid()), 0);
	cr_assert(j.fd_ok);
	cr_assert_eq(j.nstale, 2);
	int found_u = 0, found_stale = 0;
	for (size_t i = 0; i < j.nuntracked; i++) {
		found_u |= j.untracked[i].fd == ufd && j.untracked[i].inode == fd_inode(ufd);
		found_stale |= j.untracked[i].fd == stale_fd;
		cr_assert_neq(j.untracked[i].fd, lfd);
		cr_assert_neq(j.untracked[i].fd, cfd);
	}
	cr_assert(found_u, "the unrecorded unix socket is untracked");
	cr_assert(found_stale, "a reused fd's real socket is untracked");
	for (size_t i = 0; i < s.nhandles; i++) {
		int fd = s.handles[i].fd;
		cr_assert_eq(lw_join_valid(&j, &s, i), fd == lfd || fd == cfd || fd == afd, "fd %d", fd);
	}

	cr_assert_str_eq(sockstate_lookup(&j, fd_inode(lfd)), "LISTEN");
	cr_assert_str_eq(sockstate_lookup(&j, fd_inode(cfd)), "ESTABLISHED");
	cr_assert_str_eq(sockstate_lookup(&j, fd_inode(afd)), "ESTABLISHED");
	cr_assert_str_eq(sockstate_lookup(&j, fd_inode(stale_fd)), "UNCONN");
	cr_assert_str_eq(sockstate_lookup(&j, fd_inode(ufd)), "UNCONNECTED");
	cr_assert_null(sockstate_lookup(&j, 1));

	struct lw_grouping g;
	cr_assert_eq(lw_group_build(&g, &s, &j, 10, 0, 0), 0);
	cr_assert_eq(g.nsockets, 3);
	size_t listen_n = 0, est_n = 0;
	for (size_t k = 0; k < g.ngroups; k++)
		for (size_t m = 0; m < g.groups[k].nstates; m++) {
			if (strcmp(g.groups[k].states[m].name, "LISTEN") == 0)
				listen_n += g.groups[k].states[m].n;
			if (strcmp(g.groups[k].states[m].name, "ESTABLISHED") == 0)
				est_n += g.groups[k].states[m].n;
		}
	cr_assert_eq(listen_n, 1);
	cr_assert_eq(est_n, 2);
	lw_grouping_free(&g);
	lw_join_free(&j);

	/* no kernel view (pid 0): OPEN entries are believed */
	cr_assert_eq(lw_join_proc(&j, &s, 0), 0);
	cr_assert(!j.fd_ok);
	cr_assert_eq(j.nstale, 0);
	cr_assert_null(sockstate_lookup(&j, fd_inode(lfd)));
	lw_join_free(&j);

	lw_snapshot_free(&s);
	fab_free(&f);
	close(lfd);
	close(cfd);
	close(afd);
	close(ufd);
	close(stale_fd);
}

/* Records of sockets from socket(), accept() and socketpair() carry no inode
 * (the shim does not fstat them): the join believes one while a socket is
 * behind its fd, takes that socket's inode for the kernel's view, and calls
 * it stale when the fd is gone or names something that is no socket. */
Test(analyzer_group, join_records_without_inode)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sin;
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sin, sizeof sin), 0);
	cr_assert_eq(listen(lfd, 4), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	int cfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(cfd, (struct sockaddr *)&sin, sizeof sin), 0);
	int afd = accept(lfd, NULL, NULL);
	int file_fd = open("/dev/null", O_RDONLY); /* a socket record's number, now a file */
	int gone_fd = dup(cfd);
	cr_assert(afd >= 0 && file_fd >= 0 && gone_fd >= 0);
	close(gone_fd);                            /* closed behind the shim's back */
	cr_assert(lfd < 64 && cfd < 64 && afd < 64 && file_fd < 64 && gone_fd < 64);

	struct fab f;
	struct lw_snapshot s;
	fab_init(&f, 4, 4, 64, 4);
	fab_handle(&f, lfd, LW_ORIGIN_SOCKET, 0, 1)->inode = 0;
	fab_handle(&f, cfd, LW_ORIGIN_SOCKET, 0, 1)->inode = 0;
	fab_handle(&f, afd, LW_ORIGIN_ACCEPT, 0, 1)->inode = 0;
	fab_handle(&f, file_fd, LW_ORIGIN_SOCKET, 0, 1)->inode = 0;
	fab_handle(&f, gone_fd, LW_ORIGIN_SOCKET, 0, 1)->inode = 0;
	snap_load(&f, &s);

	struct lw_join j;
	cr_assert_eq(lw_join_proc(&j, &s, getpid()), 0);
	cr_assert(j.fd_ok);
	cr_assert_eq(j.nstale, 2, "the file and the closed fd");
	for (size_t i = 0; i < s.nhandles; i++) {
		int fd = s.handles[i].fd;
		int sock = fd == lfd || fd == cfd || fd == afd;
		cr_assert_eq(lw_join_valid(&j, &s, i), sock, "fd %d", fd);
		if (sock)
			cr_assert_eq(lw_join_inode(&j, &s, i), fd_inode(fd), "fd %d takes /proc's inode", fd);
	}
	for (size_t i = 0; i < j.nuntracked; i++)
		cr_assert(j.untracked[i].fd != lfd && j.untracked[i].fd != cfd && j.untracked[i].fd != afd,
			  "fd %d: recorded, not untracked", j.untracked[i].fd);

	/* the kernel's view reaches the groups through the adopted inode */
	struct lw_grouping g;
	cr_assert_eq(lw_group_build(&g, &s, &j, 10, 0, 0), 0);
	cr_assert_eq(g.nsockets, 3);
	size_t listen_n = 0, est_n = 0;
	for (size_t k = 0; k < g.ngroups; k++)
		for (size_t m = 0; m < g.groups[k].nstates; m++) {
			listen_n += strcmp(g.groups[k].states[m].name, "LISTEN") == 0 ? g.groups[k].states[m].n : 0;
			est_n += strcmp(g.groups[k].states[m].name, "ESTABLISHED") == 0 ? g.groups[k].states[m].n : 0;
		}
	cr_assert_eq(listen_n, 1);
	cr_assert_eq(est_n, 2);
	lw_grouping_free(&g);
	lw_join_free(&j);
	lw_snapshot_free(&s);
	fab_free(&f);
	close(lfd);
	close(cfd);
	close(afd);
	close(file_fd);
}
