/* SPDX-License-Identifier: MIT */
/*
 * kernel.h — the kernel's view of a traced process, which the shim's tables
 * are checked against: sock_diag (sockdiag.c: states, queues, tcp_info,
 * unix peers; /proc/PID/net fallback) and the /proc/PID/fd join
 * (procjoin.c: which recorded handles are still true, untracked sockets),
 * and who still waits on a socket (watch.c: epoll sets, blocked threads).
 */
#ifndef LEAKWATCH_KERNEL_H
#define LEAKWATCH_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include "snapshot.h"

struct lw_supp;                         /* suppress.h */

/* ---- sockdiag.c ---- */

/* Where a socket's kernel view came from. */
enum lw_sockdiag_source { LW_SD_NONE = 0, LW_SD_NETLINK, LW_SD_PROC };

/* What the kernel says about one socket. */
struct lw_sockinfo {
	uint64_t inode;
	uint16_t family;                /* AF_INET, AF_INET6, AF_UNIX */
	uint8_t protocol;               /* IPPROTO_TCP, IPPROTO_UDP; 0 for unix */
	uint8_t state;                  /* sk_state, numbered as include/net/tcp_states.h */
	char state_name[LW_STATE_NAME_MAX]; /* "ESTABLISHED", "CLOSE_WAIT", "LISTEN", "UNCONN"
	                                       (UDP), "CONNECTED"/"UNCONNECTED" (unix)... */
	uint8_t source;                 /* enum lw_sockdiag_source */
	uint8_t has_queues;             /* rqueue/wqueue valid */
	uint8_t has_tcpinfo;            /* last_data_* valid (TCP over sock_diag, not LISTEN) */
	uint32_t rqueue;                /* bytes not yet read (LISTEN: accept backlog) */
	uint32_t wqueue;                /* bytes not yet acknowledged/sent (LISTEN: max backlog) */
	uint32_t last_data_sent_ms;     /* tcp_info: ms since data was last sent (or since connect) */
	uint32_t last_data_recv_ms;     /* tcp_info: ms since data was last received (or since connect) */
	uint64_t peer_inode;            /* unix: the peer socket's inode, 0 unknown */
	/* TCP/UDP: both ends as the kernel has them (has_addrs).  The shim's
	 * record has no local address once connect() picked one (pgjoin.c
	 * joins a database client by it). */
	uint8_t has_addrs;
	uint16_t local_port, remote_port;       /* host byte order */
	uint8_t local_addr[16], remote_addr[16]; /* network byte order; AF_INET: the first 4 bytes */
};

/* An inode-indexed table of lw_sockinfo. */
struct lw_sockdiag {
	struct lw_sockinfo *v;
	size_t n, cap;
	int sorted;                     /* v sorted by inode (lw_sockdiag_sort) */
	int source_inet;                /* LW_SD_NETLINK or LW_SD_PROC: how TCP/UDP were loaded */
	int source_unix;                /* ...and unix sockets */
	int netns_other;                /* the target is in another network namespace */
	int error;                      /* errno of the netlink failure that forced a fallback */
};

/*
 * lw_sockdiag_load - the kernel's view of every TCP, UDP (v4 and v6) and unix
 * socket in the network namespace of pid (pid <= 0: ours).  One
 * NETLINK_SOCK_DIAG dump per (family, protocol), with tcp_info for TCP and
 * peer + queue lengths for unix (UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN).  A
 * target in another netns is reached with setns() when permitted; otherwise,
 * or when a dump fails, /proc/PID/net/... is parsed instead (states and
 * queues, no tcp_info).  Returns 0 with d filled and sorted (free with
 * lw_sockdiag_free), or -1 on allocation failure (d empty).
 */
int lw_sockdiag_load(struct lw_sockdiag *d, int pid);

/* lw_sockdiag_add - append a copy of k (inode 0 is ignored); 0 or -1 (no memory). */
int lw_sockdiag_add(struct lw_sockdiag *d, const struct lw_sockinfo *k);

/* lw_sockdiag_sort - sort by inode so lookups bisect. */
void lw_sockdiag_sort(struct lw_sockdiag *d);

/* lw_sockdiag_find - the entry for inode, or NULL (d may be NULL). */
const struct lw_sockinfo *lw_sockdiag_find(const struct lw_sockdiag *d, uint64_t inode);

/* lw_sockdiag_free - release; safe on a zeroed table. */
void lw_sockdiag_free(struct lw_sockdiag *d);

/* lw_sockdiag_source_name - "sock_diag", "proc", "none". */
const char *lw_sockdiag_source_name(int source);

/* ---- watch.c ---- */

/* What a thread is blocked in, as far as it concerns a descriptor. */
enum lw_wait_call {
	LW_WAIT_NONE = 0,
	LW_WAIT_READ,                   /* read, readv, pread64, recvfrom, recvmsg, recvmmsg on fd */
	LW_WAIT_ACCEPT,                 /* accept, accept4 on fd */
	LW_WAIT_POLL,                   /* poll, ppoll: fds in a pollfd array in its memory */
	LW_WAIT_EPOLL,                  /* epoll_wait, epoll_pwait, epoll_pwait2 on an epoll fd */
	LW_WAIT_SELECT,                 /* select, pselect6: not attributed (fd_set bitmaps) */
};

/* One line of /proc/PID/task/TID/syscall of a thread blocked in a system call. */
struct lw_task_syscall {
	long nr;
	uint64_t args[6];
	uint64_t sp, pc;
};

/*
 * lw_watch_parse_syscall - parse a /proc/PID/task/TID/syscall text:
 * "NR 0xA1 ... 0xA6 0xSP 0xPC".  Returns 1 with sc filled for a thread
 * blocked in system call NR, 0 for "running" or "-1 0xSP 0xPC" (blocked
 * outside a system call), -1 for anything else (truncated, garbage,
 * numbers out of range): ignored by the caller.
 */
int lw_watch_parse_syscall(const char *text, struct lw_task_syscall *sc);

/*
 * lw_watch_syscall_kind - what system call nr (of the host architecture:
 * <sys/syscall.h>) waits on: LW_WAIT_NONE for every call not listed above.
 */
enum lw_wait_call lw_watch_syscall_kind(long nr);

/* One registration in an epoll set: a "tfd:" line of /proc/PID/fdinfo/EPFD. */
struct lw_epoll_item {
	int tfd;                        /* fd number in the process that registered it */
	uint32_t events;                /* the interest mask (EPOLLIN...; private bits included) */
	uint64_t ino;                   /* inode of the watched file; 0: not shown (old kernels) */
};

/*
 * lw_watch_parse_epoll - the "tfd:" lines of an eventpoll fdinfo text
 * ("tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x"); other
 * lines, and malformed or truncated "tfd:" lines, are skipped.  Writes at
 * most max items to out and returns how many well-formed items the text
 * holds (which may exceed max).
 */
size_t lw_watch_parse_epoll(const char *text, struct lw_epoll_item *out, size_t max);

/* lw_watch_epoll_armed - 1 when an item can report anything: an interest bit
 * besides EPOLLET/EPOLLONESHOT/EPOLLWAKEUP/EPOLLEXCLUSIVE (a fired
 * EPOLLONESHOT item that was never re-armed has none). */
int lw_watch_epoll_armed(uint32_t events);

/* The kernel's evidence that the program still waits on one socket. */
struct lw_watch {
	uint64_t inode;
	int epoll_fd;                   /* the lowest epoll fd whose set holds it armed; -1: none */
	int epoll_tid;                  /* a thread waiting in epoll_wait on epoll_fd; 0: none seen */
	int tid;                        /* a thread blocked on the socket itself; 0: none */
	uint8_t call;                   /* enum lw_wait_call of tid (READ, ACCEPT, POLL) */
	int peer_pid;                   /* > 0: the evidence is of the other end of a unix
					 * socket, held and waited on by this process (a fork
					 * child's or parent's channel: nginx's workers) */
};

#define LW_WATCH_MAX_UNATTRIBUTED 8

/* Watch evidence of one process, by socket inode. */
struct lw_watchset {
	struct lw_watch *v;
	size_t n, cap;
	int sorted;
	int loaded;                     /* gathered from /proc (or installed by a test) */
	size_t nepoll;                  /* epoll instances whose fdinfo was read */
	int epoll_errno;                /* the first fdinfo that could not be read (0: none) */
	size_t nthreads;                /* threads whose syscall was read */
	int task_errno;                 /* the first thread whose syscall could not be read (0: none) */
	/* threads blocked in poll or select whose descriptors are not known */
	int unattributed[LW_WATCH_MAX_UNATTRIBUTED];
	uint8_t unattributed_call[LW_WATCH_MAX_UNATTRIBUTED];
	size_t nunattributed;           /* all of them (the arrays keep the first ones) */
};

/*
 * lw_watch_load - gather pid's evidence: every epoll set of the process
 * (/proc/PID/fd links "anon_inode:[eventpoll]", their fdinfo), matched to
 * the process's sockets by inode (by tfd when the kernel shows no inode),
 * and every thread blocked on a socket (/proc/PID/task/TID/syscall; poll
 * arrays read with process_vm_readv and believed only when the thread's
 * syscall line is unchanged afterwards).  What cannot be read is noted in
 * epoll_errno / task_errno and skipped.  Returns 0 with w filled and sorted
 * (free with lw_watch_free), or -1 on allocation failure (w empty).
 */
int lw_watch_load(struct lw_watchset *w, int pid);

/* lw_watch_add - merge x into w (the lowest epoll fd, the first thread win); 0 or -1 (no memory). */
int lw_watch_add(struct lw_watchset *w, const struct lw_watch *x);

/* lw_watch_sort - sort by inode so lookups bisect. */
void lw_watch_sort(struct lw_watchset *w);

/* lw_watch_find - the evidence about inode, or NULL (w may be NULL). */
const struct lw_watch *lw_watch_find(const struct lw_watchset *w, uint64_t inode);

/* lw_watch_free - release; safe on a zeroed set. */
void lw_watch_free(struct lw_watchset *w);

/* lw_wait_call_name - "reading", "in accept", "in poll", "in epoll_wait", "in select", "". */
const char *lw_wait_call_name(int call);

/* lw_wait_call_word - JSON word: "read", "accept", "poll", "epoll_wait", "select", "none". */
const char *lw_wait_call_word(int call);

/* ---- procjoin.c ---- */

struct lw_untracked {
	int fd;
	uint64_t inode;
};

struct lw_join {
	int pid;
	int fd_ok;                      /* /proc/PID/fd was read */
	int fd_errno;                   /* why not, when !fd_ok (EACCES, ENOENT...) */
	unsigned char *valid;           /* per snapshot handle: 1 = kernel agrees */
	uint64_t *inode;                /* per snapshot handle: its socket inode (the record's,
					 * or /proc's for a record made without one) */
	char **link;                    /* per snapshot handle of another kind than a socket:
					 * what /proc/PID/fd/N names now (malloc'd; NULL unknown) */
	size_t nlink;                   /* entries of link[] and now_kind[] */
	unsigned char *now_kind;        /* ...and the enum lw_fd_kind that tells (a file
					 * opened without O_DIRECTORY may be a directory, a FIFO) */
	size_t nstale;                  /* OPEN entries whose fd no longer matches */
	struct lw_untracked *untracked; /* socket fds the shim never recorded */
	size_t nuntracked;
	/* lw_join_sockinfo() cache: the kernel's view of every socket, by inode */
	int diag_loaded;
	struct lw_sockdiag diag;
	/* lw_join_watch() cache: who waits on which socket (watch.c) */
	int watch_loaded;
	struct lw_watchset watch;
	/* ...and in the related processes (children, parent) that may hold
	 * the other end of a unix socket, loaded on first need */
	int related_loaded;
	size_t nrelated;
	struct lw_related { int pid; struct lw_watchset w; } *related;
	struct lw_watch peer_scratch;   /* what lw_join_watch returns for a peer's evidence */
	/* per snapshot handle: the suppression that covers its creation stack
	 * (report.c sets it; NULL array or entry: none).  Freed with the join. */
	const struct lw_supp **supp;
};

/*
 * lw_join_proc - join the snapshot with /proc/PID/fd.  pid <= 0 (or a process
 * that is not this image any more) gives a join with fd_ok = 0 where every
 * OPEN entry is considered valid.  Returns 0, or -1 only on allocation failure.
 */
int lw_join_proc(struct lw_join *j, const struct lw_snapshot *s, int pid);

/* lw_join_free - release a join; safe on a zeroed one. */
void lw_join_free(struct lw_join *j);

/*
 * lw_join_valid - 1 when the handle at snapshot index i is to be believed:
 * it is OPEN and (no kernel view or the kernel shows the same inode there).
 */
int lw_join_valid(const struct lw_join *j, const struct lw_snapshot *s, size_t i);

/*
 * lw_join_inode - the socket inode of snapshot handle i: the one the shim
 * recorded, or for a record made without one (inode 0: sockets from
 * socket(), accept(), socketpair()) the one /proc/PID/fd shows there now;
 * 0 when neither is known.
 */
uint64_t lw_join_inode(const struct lw_join *j, const struct lw_snapshot *s, size_t i);

/*
 * lw_join_sockinfo - the kernel's view of a socket inode, or NULL when
 * unknown.  Loads the whole table once (lw_sockdiag_load for the join's
 * pid) on first use; only for a live process whose /proc/PID/fd was read,
 * unless a table was installed with lw_join_set_sockdiag().
 */
const struct lw_sockinfo *lw_join_sockinfo(struct lw_join *j, uint64_t inode);

/*
 * sockstate_lookup - the kernel's state name for a socket inode
 * ("ESTABLISHED", "CLOSE_WAIT", "LISTEN", "CONNECTED", "UNCONN"...) or NULL
 * when unknown: lw_join_sockinfo()->state_name.
 */
const char *sockstate_lookup(struct lw_join *j, uint64_t inode);

/*
 * lw_join_watch - the kernel's evidence that the program waits on a socket
 * inode, or NULL when there is none.  Gathers it once (lw_watch_load for the
 * join's pid) on first use; only for a live process whose /proc/PID/fd was
 * read, unless evidence was installed with lw_join_set_watch().
 */
const struct lw_watch *lw_join_watch(struct lw_join *j, uint64_t inode);

#endif /* LEAKWATCH_KERNEL_H */
