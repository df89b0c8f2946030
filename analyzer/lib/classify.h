/* SPDX-License-Identifier: MIT */
/*
 * classify.h — grouping open sockets by one explicit key and deciding one
 * verdict per group from evidence (classify.c; the rules are at its top).
 */
#ifndef LEAKWATCH_CLASSIFY_H
#define LEAKWATCH_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>
#include "kernel.h"
#include "snapshot.h"

enum lw_endpoint_role { LW_EP_NONE = 0, LW_EP_PEER, LW_EP_LOCAL };

#define LW_GROUP_MAX_STATES 8
#define LW_GROUP_MAX_PEERS 16

/* The grouping key's stack (--by): where sockets were created, or last used. */
enum lw_group_by { LW_BY_OPEN = 0, LW_BY_USE };

/* Verdict of a group (classify.c).  LW_V_LEFT_OPEN: the image ended, so every
 * socket still open is a leak (`run` semantics) and nothing else is judged. */
enum lw_verdict {
	LW_V_LEFT_OPEN = 0,
	LW_V_LEAK_SUSPECT,
	LW_V_POOL,
	LW_V_ACTIVE,
	LW_V_NEW,
	LW_V_WATCHED,                   /* idle, but the program waits on every member (watch.c) */
	LW_V_LISTENING,
};

/* Where a member's idle time came from (best first). */
enum lw_idle_source { LW_IDLE_AGE = 0, LW_IDLE_SHIM, LW_IDLE_KERNEL };

/* One socket of a group with the evidence about it. */
struct lw_member {
	int fd;
	uint16_t origin;
	char peer[LW_ENDPOINT_MAX];     /* formatted peer address ("" unknown) */
	uint64_t inode;
	uint64_t age_ns;
	uint32_t stack_id;              /* creation stack (0: unknown or inherited) */
	uint32_t last_use_stack_id;     /* most recent send-side call; 0: never used since opened */
	uint64_t last_use_ns;           /* 0: never used */
	int has_kernel;                 /* k is valid */
	struct lw_sockinfo k;
	struct lw_watch watch;          /* who waits on it (watch.c); inode 0: nobody seen */
	/* lw_verdict_apply() */
	uint64_t idle_ns;               /* time since the last I/O known (<= age) */
	enum lw_idle_source idle_source;
};

/* Reasons behind LW_V_LEAK_SUSPECT (bit mask). */
#define LW_REASON_IDLE       0x1u   /* members idle >= idle_for */
#define LW_REASON_CLOSE_WAIT 0x2u   /* members in CLOSE_WAIT */
#define LW_REASON_GROWING    0x4u   /* the group keeps growing (see classify.c) */

/* Everything a verdict was decided on (classify.c). */
struct lw_evidence {
	uint64_t idle_for_ns;           /* the threshold used */
	size_t idle;                    /* members idle >= idle_for */
	size_t close_wait;              /* members in CLOSE_WAIT */
	size_t listening;
	size_t young;                   /* members younger than idle_for */
	size_t used_recently;           /* members with I/O within idle_for */
	size_t idle_kernel, idle_shim, idle_age; /* members by source of their idle time */
	uint64_t idle_min_ns, idle_max_ns;
	size_t kernel_known;            /* members the kernel described */
	size_t watched;                 /* members the program waits on (in an epoll set or a
	                                   thread blocked on them): watched_epoll + _thread, once each */
	size_t watched_epoll, watched_thread;
	size_t watched_peer;            /* ...of those, by the other end's process (kernel.h: peer_pid) */
	uint64_t rqueue, wqueue;        /* sums over members (bytes) */
	unsigned reasons;               /* LW_REASON_* (leak suspects) */
	int growing;                    /* the key group keeps growing */
	size_t key_count;               /* members of the whole key group (before any split) */
	uint64_t stack_opened;          /* creation stack totals (by open) */
	uint64_t stack_closed;
	/* --interval: two snapshots interval_ns apart (have_interval) */
	int have_interval;
	uint64_t interval_ns;
	size_t count_start, count_end;  /* the key group's open count at both ends */
	uint64_t opened, closed;        /* creation stack total deltas over the interval (by open) */
};

struct lw_group {
	int inherited;                  /* origin INHERITED/FORK: opened before leakwatch */
	uint32_t stack_id;              /* creation stack (by use: the most common one) */
	uint16_t family;
	uint16_t type;
	uint16_t origin;                /* origin of the first member */
	uint32_t origin_mask;           /* 1u << origin for every member */
	char endpoint[LW_ENDPOINT_MAX];
	enum lw_endpoint_role role;
	size_t count;
	uint64_t age_min_ns;
	uint64_t age_max_ns;
	struct { char name[LW_STATE_NAME_MAX]; size_t n; } states[LW_GROUP_MAX_STATES];
	size_t nstates;                 /* only states the kernel reported */
	int *fds;                       /* ascending */
	size_t nfds;
	size_t fds_cap;
	char (*peers)[LW_ENDPOINT_MAX]; /* distinct peers when role != PEER */
	size_t npeers;                  /* stored (capped at LW_GROUP_MAX_PEERS) */
	size_t npeers_total;            /* distinct peers seen before the cap */
	/* added with verdicts */
	enum lw_group_by by;            /* which stack is the key */
	uint32_t use_stack_id;          /* last-use stack (by open: the most common one; 0: never used) */
	size_t use_share;               /* members whose last-use stack is use_stack_id */
	size_t open_share;              /* members whose creation stack is stack_id */
	struct lw_member *members;      /* count entries, in fd order (parallel to fds) */
	int split;                      /* carved out of a larger key group by the verdict rules */
	const struct lw_supp *supp;     /* the suppression its members' creation stack matched
					 * (part of the key); not counted in nleaked */
	enum lw_verdict verdict;
	struct lw_evidence ev;
};

struct lw_grouping {
	struct lw_group *groups;        /* sorted (see lw_group_sort) */
	size_t ngroups;
	size_t nsockets;                /* open sockets counted into groups */
	size_t nleaked;                 /* of those, not inherited and not suppressed */
	size_t nsuppressed;             /* not inherited but suppressed */
	enum lw_group_by by;
};

/*
 * lw_group_build - group the valid OPEN sockets of a snapshot by creation
 * stack.  Sockets younger than older_than_ns are skipped; inherited ones
 * (INHERITED, FORK) only with include_inherited.  now_ns is the age reference
 * on the header's monotonic clock.  j may be NULL (no kernel view: no
 * states).  Returns 0, or -1 on allocation failure.
 */
int lw_group_build(struct lw_grouping *g, const struct lw_snapshot *s, struct lw_join *j,
		   uint64_t now_ns, uint64_t older_than_ns, int include_inherited);

/*
 * lw_group_build_by - as lw_group_build, keyed by creation stack (LW_BY_OPEN)
 * or by last-use stack (LW_BY_USE: sockets never used share key 0).  Each
 * group also records its members with their kernel view (from j) and the
 * most common stack of the other kind.  Verdicts are not decided here
 * (lw_verdict_apply).  Returns 0, or -1 on allocation failure.
 */
int lw_group_build_by(struct lw_grouping *g, const struct lw_snapshot *s, struct lw_join *j,
		      uint64_t now_ns, uint64_t older_than_ns, int include_inherited, enum lw_group_by by);

/*
 * lw_group_from_members - (re)compute a group's derived fields (count, ages,
 * fds, states, peers, shares) from g->members[0..n), which it takes over.
 * Key fields (inherited, family, type, role, endpoint, by, stack ids) are
 * left as they are.  Returns 0 or -1 (no memory).
 */
int lw_group_from_members(struct lw_group *g, struct lw_member *members, size_t n);

/*
 * The grouping key, explicit: sockets with equal keys form one group.  A
 * view of a group's (or a socket's) key fields; endpoint is not owned.
 */
struct lw_group_key {
	enum lw_group_by by;
	int inherited;
	uint16_t family, type;
	enum lw_endpoint_role role;
	uint32_t stack;                 /* creation stack (by open) or last-use stack (by use) */
	const char *endpoint;
	const struct lw_supp *supp;     /* suppressed by (NULL: not) */
};

/* lw_group_key_of - the key of g (endpoint points into g). */
struct lw_group_key lw_group_key_of(const struct lw_group *g);

/* lw_group_set_key - copy a key into g's key fields (the other stack id is set to 0). */
void lw_group_set_key(struct lw_group *g, const struct lw_group_key *k);

/*
 * lw_group_key_cmp - the one comparison of keys: a total order, 0 exactly
 * when the keys are equal (by, inherited, family, type, role, stack, endpoint).
 */
int lw_group_key_cmp(const struct lw_group_key *a, const struct lw_group_key *b);

/* lw_group_same_key - 1 when a and b have the same grouping key (lw_group_key_cmp == 0). */
int lw_group_same_key(const struct lw_group *a, const struct lw_group *b);

/* lw_group_sort - deterministic order: verdict (leak suspects first), not
 * inherited before inherited, count desc, oldest desc, stack ids, endpoint, first fd. */
void lw_group_sort(struct lw_grouping *g);

/* lw_group_by_parse - "open" or "use"; 0 with *by set, or -1. */
int lw_group_by_parse(const char *s, enum lw_group_by *by);

/* lw_group_by_name - "open", "use". */
const char *lw_group_by_name(enum lw_group_by by);

/* lw_grouping_free - release groups; safe on a zeroed one. */
void lw_grouping_free(struct lw_grouping *g);

#define LW_IDLE_FOR_DEFAULT_NS (5ull * 60 * 1000000000ull)   /* --idle-for default: 5m */

struct lw_verdict_opts {
	uint64_t now_ns;                /* age/idle reference, the snapshot's clock */
	uint64_t idle_for_ns;           /* --idle-for */
	int ended;                      /* the image ended: every group is LW_V_LEFT_OPEN */
	const struct lw_snapshot *snap; /* creation stack totals (may be NULL) */
	/* --interval: the first snapshot, grouped with the same key (NULL: no interval) */
	const struct lw_grouping *prev;
	const struct lw_snapshot *prev_snap;
	uint64_t interval_ns;           /* time between the two snapshots */
};

/*
 * lw_verdict_apply - decide every group's verdict by the rules documented at
 * the top of classify.c: splits key groups into listening / leak suspect
 * (per last-use stack in the pool case) / the rest, fills each group's
 * evidence and sorts the grouping (lw_group_sort).  Returns 0, or -1 on
 * allocation failure (the grouping is then emptied).
 */
int lw_verdict_apply(struct lw_grouping *g, const struct lw_verdict_opts *o);

/* lw_member_watched - 1 when the kernel shows the program waiting on m (watch.c). */
int lw_member_watched(const struct lw_member *m);

/* lw_verdict_name - JSON word: "leak_suspect", "pool", "active", "new", "watched", "listening",
 * "left_open". */
const char *lw_verdict_name(enum lw_verdict v);

/* lw_verdict_title - text tag: "LEAK SUSPECT", "POOL", "ACTIVE", "NEW", "WATCHED", "LISTENING",
 * "SOCKETS". */
const char *lw_verdict_title(enum lw_verdict v);

#endif /* LEAKWATCH_CLASSIFY_H */
