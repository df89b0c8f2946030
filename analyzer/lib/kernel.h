/* SPDX-License-Identifier: MIT */
/*
 * kernel.h — the kernel's view of a traced process, which the shim's tables
 * are checked against: sock_diag (sockdiag.c: states, queues, tcp_info,
 * unix peers; /proc/PID/net fallback) and the /proc/PID/fd join
 * (procjoin.c: which recorded handles are still true, untracked sockets).
 */
#ifndef LEAKWATCH_KERNEL_H
#define LEAKWATCH_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include "snapshot.h"

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

#endif /* LEAKWATCH_KERNEL_H */
