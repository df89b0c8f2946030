/* SPDX-License-Identifier: MIT */
/*
 * sockdiag.c — what the kernel knows about sockets, by inode.
 *
 * NETLINK_SOCK_DIAG answers in one dump per (family, protocol) what
 * /proc/net/tcp would take a text parse for, and more: tcp_info carries the
 * time since data was last sent and received (tcpi_last_data_sent/_recv, in
 * ms), which is how a socket's idleness is known at zero cost inside the
 * target.  Dumps work unprivileged: the kernel only hides nothing in a dump
 * that /proc/net/tcp would show anyway (no per-user filtering either way).
 *
 * A netlink socket talks to the network namespace it was created in.  For a
 * target in another netns we enter it with setns() just long enough to create
 * the socket (CAP_SYS_ADMIN needed); when that is not permitted, or the dumps
 * fail (a kernel without inet_diag/unix_diag), /proc/PID/net/{tcp,tcp6,udp,
 * udp6,unix} — always the target's own netns — gives states and queues
 * without tcp_info.  The table is built once per report and searched by
 * inode (bsearch).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "kernel.h"
#include "testing.h"

/* include/net/tcp_states.h */
static const char *tcp_state_name(unsigned st)
{
	static const char *const names[] = {
		NULL, "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
		"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING",
		"NEW_SYN_RECV",
	};
	return st < sizeof names / sizeof names[0] ? names[st] : NULL;
}

static const char *inet_state_name(unsigned st, int protocol)
{
	/* An unconnected UDP socket sits in TCP_CLOSE; "CLOSE" would alarm. */
	if (protocol == IPPROTO_UDP && st == 7)
		return "UNCONN";
	return tcp_state_name(st);
}

/* unix sockets reuse the TCP state numbers for sk_state. */
static const char *unix_state_name(unsigned st)
{
	switch (st) {
	case 10: return "LISTEN";
	case 1: return "CONNECTED";
	case 2: return "CONNECTING";
	case 7: return "UNCONNECTED";
	default: return "DISCONNECTING";
	}
}

int lw_sockdiag_add(struct lw_sockdiag *d, const struct lw_sockinfo *k)
{
	if (k->inode == 0)   /* TIME_WAIT and request socks: no file, nothing to join */
		return 0;
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 64;
		struct lw_sockinfo *nv = realloc(d->v, ncap * sizeof *nv);
		if (!nv)
			return -1;
		d->v = nv;
		d->cap = ncap;
	}
	d->v[d->n++] = *k;
	d->sorted = 0;
	return 0;
}

static int sockinfo_cmp(const void *a, const void *b)
{
	const struct lw_sockinfo *x = a, *y = b;
	return (x->inode > y->inode) - (x->inode < y->inode);
}

void lw_sockdiag_sort(struct lw_sockdiag *d)
{
	if (d->n > 1)
		qsort(d->v, d->n, sizeof *d->v, sockinfo_cmp);
	d->sorted = 1;
}

const struct lw_sockinfo *lw_sockdiag_find(const struct lw_sockdiag *d, uint64_t inode)
{
	if (!d || !d->v || inode == 0)
		return NULL;
	if (!d->sorted) {
		for (size_t i = 0; i < d->n; i++)
			if (d->v[i].inode == inode)
				return &d->v[i];
		return NULL;
	}
	size_t lo = 0, hi = d->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->v[mid].inode == inode)
			return &d->v[mid];
		if (d->v[mid].inode < inode)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void lw_sockdiag_free(struct lw_sockdiag *d)
{
	free(d->v);
	memset(d, 0, sizeof *d);
}

const char *lw_sockdiag_source_name(int source)
{
	return source == LW_SD_NETLINK ? "sock_diag" : source == LW_SD_PROC ? "proc" : "none";
}

/* ---- netlink ------------------------------------------------------------- */

typedef int (*nl_cb)(struct lw_sockdiag *d, const struct nlmsghdr *h, int protocol);

static int inet_msg(struct lw_sockdiag *d, const struct nlmsghdr *h, int protocol)
{
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		return 0;
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	struct lw_sockinfo k;
	memset(&k, 0, sizeof k);
	k.inode = m->idiag_inode;
	k.family = m->idiag_family;
	k.protocol = (uint8_t)protocol;
	k.state = m->idiag_state;
	const char *name = inet_state_name(m->idiag_state, protocol);
	snprintf(k.state_name, sizeof k.state_name, "%s", name ? name : "UNKNOWN");
	k.rqueue = m->idiag_rqueue;
	k.wqueue = m->idiag_wqueue;
	k.has_queues = 1;
	k.source = LW_SD_NETLINK;
	size_t alen = m->idiag_family == AF_INET6 ? 16 : 4;
	memcpy(k.local_addr, m->id.idiag_src, alen);
	memcpy(k.remote_addr, m->id.idiag_dst, alen);
	k.local_port = ntohs(m->id.idiag_sport);
	k.remote_port = ntohs(m->id.idiag_dport);
	k.has_addrs = 1;
	int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
	for (const struct rtattr *a = (const struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type != INET_DIAG_INFO || protocol != IPPROTO_TCP)
			continue;
		/* Older kernels send a shorter tcp_info: take what is there. */
		struct tcp_info ti;
		size_t plen = RTA_PAYLOAD(a);
		memset(&ti, 0, sizeof ti);
		memcpy(&ti, RTA_DATA(a), plen < sizeof ti ? plen : sizeof ti);
		if (plen >= offsetof(struct tcp_info, tcpi_last_data_recv) + sizeof ti.tcpi_last_data_recv &&
		    m->idiag_state != 10 /* LISTEN: the fields mean nothing */) {
			k.has_tcpinfo = 1;
			k.last_data_sent_ms = ti.tcpi_last_data_sent;
			k.last_data_recv_ms = ti.tcpi_last_data_recv;
		}
	}
	return lw_sockdiag_add(d, &k);
}

static int unix_msg(struct lw_sockdiag *d, const struct nlmsghdr *h, int protocol)
{
	(void)protocol;
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
		return 0;
	const struct unix_diag_msg *m = NLMSG_DATA(h);
	struct lw_sockinfo k;
	memset(&k, 0, sizeof k);
	k.inode = m->udiag_ino;
	k.family = AF_UNIX;
	k.state = m->udiag_state;
	snprintf(k.state_name, sizeof k.state_name, "%s", unix_state_name(m->udiag_state));
	k.source = LW_SD_NETLINK;
	int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
	for (const struct rtattr *a = (const struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(a) >= sizeof(uint32_t)) {
			uint32_t peer;
			memcpy(&peer, RTA_DATA(a), sizeof peer);
			k.peer_inode = peer;
		} else if (a->rta_type == UNIX_DIAG_RQLEN && RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
			struct unix_diag_rqlen rq;
			memcpy(&rq, RTA_DATA(a), sizeof rq);
			k.rqueue = rq.udiag_rqueue;
			k.wqueue = rq.udiag_wqueue;
			k.has_queues = 1;
		}
	}
	return lw_sockdiag_add(d, &k);
}

/* Send one dump request and feed every answer to cb.  0, or -errno. */
static int nl_dump(int fd, void *req, size_t reqlen, nl_cb cb, struct lw_sockdiag *d, int protocol)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct nlmsghdr *rh = req;
	struct iovec iov = { req, reqlen };
	struct msghdr msg = { .msg_name = &sa, .msg_namelen = sizeof sa, .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t s;
	do
		s = sendmsg(fd, &msg, 0);
	while (s < 0 && errno == EINTR);
	if (s < 0)
		return -errno;
	/* 64 KiB: a dump message never exceeds a page, but the kernel batches them. */
	static long buf[65536 / sizeof(long)];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		int left = (int)n;
		for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf; NLMSG_OK(h, left);
		     h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_seq != rh->nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				return h->nlmsg_len >= NLMSG_LENGTH(sizeof *e) && e->error ? e->error : -EIO;
			}
			if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && cb(d, h, protocol) < 0)
				return -ENOMEM;
		}
	}
}

static unsigned g_seq = 1;

static int dump_inet(int fd, struct lw_sockdiag *d, int family, int protocol)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req;
	memset(&req, 0, sizeof req);
	req.h.nlmsg_len = sizeof req;
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.h.nlmsg_seq = g_seq++;
	req.r.sdiag_family = (uint8_t)family;
	req.r.sdiag_protocol = (uint8_t)protocol;
	req.r.idiag_states = ~0u;
	if (protocol == IPPROTO_TCP)
		req.r.idiag_ext = 1u << (INET_DIAG_INFO - 1);
	return nl_dump(fd, &req, sizeof req, inet_msg, d, protocol);
}

static int dump_unix(int fd, struct lw_sockdiag *d)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req;
	memset(&req, 0, sizeof req);
	req.h.nlmsg_len = sizeof req;
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.h.nlmsg_seq = g_seq++;
	req.r.sdiag_family = AF_UNIX;
	req.r.udiag_states = ~0u;
	req.r.udiag_show = UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN;
	return nl_dump(fd, &req, sizeof req, unix_msg, d, 0);
}

static int nl_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -1;
	/* A kernel that never answers must not hang a report. */
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

/* ---- /proc fallback --------------------------------------------------------- */

static void proc_path(char *buf, size_t len, int pid, const char *file)
{
	if (pid > 0)
		snprintf(buf, len, "/proc/%d/net/%s", pid, file);
	else
		snprintf(buf, len, "/proc/self/net/%s", file);
}

/*
 * An address of /proc/net/{tcp,udp}[6]: "0100007F:1F90" (v4) or 32 hex
 * digits and the port (v6).  The kernel prints each 32-bit word of the
 * address as a native integer ("%08X"), so copying the parsed word back in
 * native order gives the network-order bytes.  1 when parsed.
 */
static int proc_parse_addr(const char *s, int family, uint8_t addr[16], uint16_t *port)
{
	size_t words = family == AF_INET6 ? 4 : 1;
	for (size_t i = 0; i < words; i++) {
		uint32_t w = 0;
		for (int d = 0; d < 8; d++, s++) {
			int v = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10 :
				*s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : -1;
			if (v < 0)
				return 0;
			w = w << 4 | (uint32_t)v;
		}
		memcpy(addr + 4 * i, &w, 4);
	}
	unsigned p;
	if (*s != ':' || sscanf(s + 1, "%4x", &p) != 1)
		return 0;
	*port = (uint16_t)p;
	return 1;
}

/* /proc/net/{tcp,udp}[6]: "sl local rem st tx_queue:rx_queue tr:when retr uid timeout inode". */
static int proc_load_inet(struct lw_sockdiag *d, int pid, const char *file, int family, int protocol)
{
	char path[96], line[512];
	proc_path(path, sizeof path, pid, file);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	int rc = 0;
	if (!fgets(line, sizeof line, f)) { /* column titles */
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof line, f)) {
		unsigned st, tx, rx;
		unsigned long long ino;
		char la[64], ra[64];
		if (sscanf(line, "%*s %63s %63s %x %x:%x %*s %*s %*s %*s %llu", la, ra, &st, &tx, &rx, &ino) != 6)
			continue;
		const char *name = inet_state_name(st, protocol);
		if (!name)
			continue;
		struct lw_sockinfo k;
		memset(&k, 0, sizeof k);
		k.inode = ino;
		k.family = (uint16_t)family;
		k.protocol = (uint8_t)protocol;
		k.state = (uint8_t)st;
		snprintf(k.state_name, sizeof k.state_name, "%s", name);
		k.rqueue = rx;
		k.wqueue = tx;
		k.has_queues = 1;
		k.source = LW_SD_PROC;
		k.has_addrs = proc_parse_addr(la, family, k.local_addr, &k.local_port) &&
			      proc_parse_addr(ra, family, k.remote_addr, &k.remote_port);
		if (lw_sockdiag_add(d, &k) < 0) {
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path". */
static int proc_load_unix(struct lw_sockdiag *d, int pid)
{
	char path[96], line[512];
	proc_path(path, sizeof path, pid, "unix");
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	int rc = 0;
	if (!fgets(line, sizeof line, f)) {
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof line, f)) {
		unsigned flags, type, st;
		unsigned long long ino;
		if (sscanf(line, "%*s %*s %*s %x %x %x %llu", &flags, &type, &st, &ino) != 4)
			continue;
		const char *name;
		unsigned kst;
		if (flags & 0x10000u) {   /* __SO_ACCEPTCON: listen() was called */
			name = "LISTEN";
			kst = 10;
		} else if (st == 1) {     /* socket->state SS_UNCONNECTED ... */
			name = "UNCONNECTED";
			kst = 7;
		} else if (st == 2) {
			name = "CONNECTING";
			kst = 2;
		} else if (st == 3) {
			name = "CONNECTED";
			kst = 1;
		} else if (st == 4) {
			name = "DISCONNECTING";
			kst = 0;
		} else {
			continue;
		}
		struct lw_sockinfo k;
		memset(&k, 0, sizeof k);
		k.inode = ino;
		k.family = AF_UNIX;
		k.state = (uint8_t)kst;
		snprintf(k.state_name, sizeof k.state_name, "%s", name);
		k.source = LW_SD_PROC;
		if (lw_sockdiag_add(d, &k) < 0) {
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* ---- namespaces ------------------------------------------------------------------ */

/* 1: same netns as ours, 0: another one, -1: cannot tell (no access). */
static int netns_same(int pid)
{
	char path[64];
	struct stat a, b;
	if (pid <= 0)
		return 1;
	snprintf(path, sizeof path, "/proc/%d/ns/net", pid);
	if (stat(path, &a) < 0 || stat("/proc/self/ns/net", &b) < 0)
		return -1;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/*
 * A sock_diag socket in the netns of pid: setns() there, create, come back.
 * Returns the fd or -1 (not permitted, or the way back failed — then the
 * socket is not used either, and we stay wherever setns left us: the
 * caller falls back to /proc, which does not depend on our netns).
 */
static int nl_open_in(int pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/ns/net", pid);
	int target = open(path, O_RDONLY | O_CLOEXEC);
	if (target < 0)
		return -1;
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		close(target);
		return -1;
	}
	int fd = -1;
	if (setns(target, CLONE_NEWNET) == 0) {
		fd = nl_open();
		if (setns(self, CLONE_NEWNET) != 0 && fd >= 0) {
			close(fd);
			fd = -1;
		}
	}
	close(self);
	close(target);
	return fd;
}

int lw_sockdiag_load(struct lw_sockdiag *d, int pid)
{
	memset(d, 0, sizeof *d);
	int fd = -1;
	int same = netns_same(pid);
	if (same == 1)
		fd = nl_open();
	else if (same == 0)
		fd = nl_open_in(pid);
	d->netns_other = same == 0;

	int inet_ok = 0, unix_ok = 0;
	if (fd >= 0) {
		size_t mark = d->n;
		inet_ok = 1;
		static const int fams[] = { AF_INET, AF_INET6 };
		static const int protos[] = { IPPROTO_TCP, IPPROTO_UDP };
		for (int f = 0; f < 2 && inet_ok; f++)
			for (int p = 0; p < 2 && inet_ok; p++) {
				int rc = dump_inet(fd, d, fams[f], protos[p]);
				/* No IPv6 in this kernel: nothing to report, not a failure. */
				if (rc == -EAFNOSUPPORT && fams[f] == AF_INET6)
					continue;
				if (rc == -ENOMEM) {
					close(fd);
					return -1;
				}
				if (rc < 0) {
					d->error = -rc;
					inet_ok = 0;
				}
			}
		if (!inet_ok)
			d->n = mark;   /* a half dump would hide sockets the fallback finds */
		mark = d->n;
		int rc = dump_unix(fd, d);
		if (rc == -ENOMEM) {
			close(fd);
			return -1;
		}
		unix_ok = rc == 0;
		if (!unix_ok)
			d->n = mark;
		close(fd);
	} else if (same != -1 || pid <= 0) {
		d->error = errno ? errno : EPERM;
	}
	d->source_inet = inet_ok ? LW_SD_NETLINK : LW_SD_PROC;
	d->source_unix = unix_ok ? LW_SD_NETLINK : LW_SD_PROC;
	if (!inet_ok &&
	    (proc_load_inet(d, pid, "tcp", AF_INET, IPPROTO_TCP) < 0 ||
	     proc_load_inet(d, pid, "tcp6", AF_INET6, IPPROTO_TCP) < 0 ||
	     proc_load_inet(d, pid, "udp", AF_INET, IPPROTO_UDP) < 0 ||
	     proc_load_inet(d, pid, "udp6", AF_INET6, IPPROTO_UDP) < 0))
		return -1;
	if (!unix_ok && proc_load_unix(d, pid) < 0)
		return -1;
	lw_sockdiag_sort(d);
	return 0;
}

int lw_sockdiag_load_proc(struct lw_sockdiag *d, int pid)
{
	memset(d, 0, sizeof *d);
	d->source_inet = d->source_unix = LW_SD_PROC;
	if (proc_load_inet(d, pid, "tcp", AF_INET, IPPROTO_TCP) < 0 ||
	    proc_load_inet(d, pid, "tcp6", AF_INET6, IPPROTO_TCP) < 0 ||
	    proc_load_inet(d, pid, "udp", AF_INET, IPPROTO_UDP) < 0 ||
	    proc_load_inet(d, pid, "udp6", AF_INET6, IPPROTO_UDP) < 0 || proc_load_unix(d, pid) < 0)
		return -1;
	lw_sockdiag_sort(d);
	return 0;
}
