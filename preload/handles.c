/* SPDX-License-Identifier: MIT */
/*
 * The handle table: one slot per file descriptor number, written under the
 * slot's sequence counter (see the reader protocol in segment.h).
 *
 * Every kind of descriptor is recorded (enum lw_fd_kind): sockets with
 * their addresses, the others with the path their call was given, and
 * neither asks the kernel anything (no fstat: the call says what it made).
 * Descriptor numbers are unique among open fds,
 * so two threads rarely write one slot; when they do (a close racing a dup2
 * onto the same number) the CAS on seq serialises them and a writer that
 * cannot get in within a bounded number of spins drops its event and counts
 * it rather than wait.
 *
 * Every function here receives the stack ids it stores (events.c captures
 * them, before any slot is held: a thread holds one slot at a time, see
 * seq_lock, and interning a stack takes one too).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "shim.h"

/* handle_at - fd's slot, NULL when its chunk does not exist (no record). */
static inline struct lw_handle *handle_at(int fd)
{
	return fd < 0 ? NULL : (struct lw_handle *)segment_entry(LW_T_HANDLES, (uint64_t)fd);
}

/* slot_lock_at - lock fd's slot; `grow`: make it exist first (a new record). */
static inline __attribute__((always_inline)) struct lw_handle *slot_lock_at(int fd, uint32_t *seq_out,
									     int grow)
{
	if (!g_seg.hdr || fd < 0)
		return NULL;
	struct lw_handle *h = grow ? segment_entry_grow(LW_T_HANDLES, (uint64_t)fd) : handle_at(fd);
	if (!h) {
		if (grow)
			segment_counter_add(LW_CTR_DROP_HANDLE_FULL, 1);
		return NULL;
	}
	if (seq_lock_spin(&h->seq, seq_out, LW_LIM_HANDLE_SPINS))
		return h;
	segment_counter_add(LW_CTR_DROP_BUSY, 1);
	return NULL;
}

static struct lw_handle *slot_lock(int fd, uint32_t *seq_out)
{
	return slot_lock_at(fd, seq_out, 0);
}

/*
 * The fork mirror.  A fork child copies its parent's open records, but the
 * shared table goes on changing under it: in an accept-fork-close server the
 * parent closes the child's connection the moment fork() returns, while the
 * child is still setting up.  So every change of a slot is also written to a
 * private mapping, which fork() copies as it was at the instant of the fork.
 * Its seq is odd while a copy is half done (a fork by another thread, or a
 * handler that forks, in the middle of it).
 *
 * A process that never forks never needs it, and on a socket-churning one
 * it is an eighth of the shim's instructions: it starts at the first fork
 * (handles_before_fork), with a copy of every open record, and follows
 * every change from then on.
 */
static struct lw_handle *g_mirror[LW_CHUNKS_MAX];
static _Atomic int g_mirror_on;  /* writers mirror their changes */
static int g_mirror_ready;       /* the mirror holds every open record: a child may trust it */
/* Chunk 0 (a small process's whole table) lives here rather than in a
 * mapping of its own: one mapping fewer for every fork to copy. */
#define MIRROR0_SHIFT 4u
static struct lw_handle g_mirror0[1u << MIRROR0_SHIFT];

static void mirror_store(int fd, const struct lw_handle *src);

void handles_before_fork(void)
{
	if (g_mirror_ready || !g_seg.hdr)
		return;
	/* From here on every writer mirrors its change (under its slot's
	 * lock); the copy below takes each open slot's lock too, so a change
	 * and the copy of the same slot never cross.  A slot that stays busy
	 * is mirrored by its writer when it lets go. */
	atomic_store(&g_mirror_on, 1);
	uint32_t hw = atomic_load_explicit(&g_seg.hdr->handles.used, memory_order_acquire);
	for (uint32_t fd = 0; fd < hw; fd++) {
		struct lw_handle *h = handle_at((int)fd);
		if (!h || __atomic_load_n(&h->state, __ATOMIC_RELAXED) != LW_H_OPEN)
			continue;
		uint32_t seq;
		if (!seq_lock_spin(&h->seq, &seq, LW_LIM_HANDLE_SPINS))
			continue;
		if (h->state == LW_H_OPEN)
			mirror_store((int)fd, h);
		seq_unlock(&h->seq, seq);
	}
	/* a fork from a handler that interrupted the copy finds it not ready
	 * and copies from the live table, as a fork before the mirror did */
	atomic_signal_fence(memory_order_seq_cst);
	g_mirror_ready = 1;
}

/* mirror_at - fd's mirror slot; `make`: map its chunk (private, like the
 * segment's, made on the first write into it). */
static struct lw_handle *mirror_at(int fd, int make)
{
	uint64_t within;
	uint32_t shift = g_seg.shift[LW_T_HANDLES];
	if (!atomic_load_explicit(&g_mirror_on, memory_order_relaxed) || fd < 0 || !shift)
		return NULL;
	unsigned k = lw_chunk_of(shift, (uint64_t)fd, &within);
	if (k >= LW_CHUNKS_MAX)
		return NULL;
	struct lw_handle *c = __atomic_load_n(&g_mirror[k], __ATOMIC_ACQUIRE);
	if (!c && make && k == 0 && shift == MIRROR0_SHIFT) {
		struct lw_handle *none = NULL;
		(void)__atomic_compare_exchange_n(&g_mirror[0], &none, g_mirror0, 0, __ATOMIC_ACQ_REL,
						  __ATOMIC_ACQUIRE);
		c = __atomic_load_n(&g_mirror[0], __ATOMIC_ACQUIRE);
	} else if (!c && make) {
		size_t len = lw_chunk_bytes(shift, k, sizeof(struct lw_handle));
		void *m = prim_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		struct lw_handle *none = NULL;
		if (__atomic_compare_exchange_n(&g_mirror[k], &none, (struct lw_handle *)m, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			c = m;
		} else {
			prim_munmap(m, len);
			c = none;
		}
	}
	return c ? &c[within] : NULL;
}

/* payload_copy - every field of src but seq into dst, the addresses only as
 * far as their lengths (a record is 360 bytes, an IPv4 one uses 130 of
 * them; bytes past an address's len are never read).  reserved stays as
 * dst has it (zero). */
static inline void payload_copy(struct lw_handle *dst, const struct lw_handle *src)
{
	const size_t head = offsetof(struct lw_handle, local) - sizeof src->seq;
	memcpy((char *)dst + sizeof dst->seq, (const char *)src + sizeof src->seq, head);
	if (src->kind != LW_FD_SOCKET) {
		/* the path overlays the addresses: as far as its length */
		size_t n = src->path.len <= LW_FDPATH_MAX ? src->path.len : LW_FDPATH_MAX;
		memcpy(&dst->path, &src->path, offsetof(struct lw_fdpath, data) + n);
		return;
	}
	size_t ll = src->local.len <= LW_ADDR_MAX ? src->local.len : LW_ADDR_MAX;
	size_t pl = src->peer.len <= LW_ADDR_MAX ? src->peer.len : LW_ADDR_MAX;
	memcpy(&dst->local, &src->local, offsetof(struct lw_addr, data) + ll);
	memcpy(&dst->peer, &src->peer, offsetof(struct lw_addr, data) + pl);
}

static void mirror_store(int fd, const struct lw_handle *src)
{
	/* no fork yet: one load (mirror_at's chunk arithmetic comes after) */
	if (!atomic_load_explicit(&g_mirror_on, memory_order_relaxed))
		return;
	struct lw_handle *m = mirror_at(fd, src != NULL);
	if (!m)
		return;
	uint32_t s = lw_seq_write_begin(&m->seq);
	if (src)
		payload_copy(m, src);
	else
		memset((char *)m + sizeof m->seq, 0, sizeof *m - sizeof m->seq);
	lw_seq_write_end(&m->seq, s);
}

static void slot_unlock(int fd, struct lw_handle *h, uint32_t s)
{
	mirror_store(fd, h);
	seq_unlock(&h->seq, s);
}

/* slot_unlock_closed - slot_unlock() after a close: a fork child reads
 * nothing but the state of a record that is not open, so the mirror gets
 * only that. */
static inline __attribute__((always_inline)) void slot_unlock_closed(int fd, struct lw_handle *h,
								      uint32_t s)
{
	struct lw_handle *m = atomic_load_explicit(&g_mirror_on, memory_order_relaxed) ? mirror_at(fd, 0) : NULL;
	if (m) {
		uint32_t ms = lw_seq_write_begin(&m->seq);
		m->state = h->state;
		lw_seq_write_end(&m->seq, ms);
	}
	seq_unlock(&h->seq, s);
}

/* handles.used is a high-water mark of fd + 1 so readers scan only that far. */
static void note_high_water(int fd)
{
	struct lw_header *hdr = g_seg.hdr;
	uint32_t want = (uint32_t)fd + 1, cur = atomic_load_explicit(&hdr->handles.used,
									memory_order_relaxed);
	while (cur < want && !atomic_compare_exchange_weak_explicit(&hdr->handles.used, &cur, want,
								     memory_order_relaxed,
								     memory_order_relaxed))
		;
}

static inline __attribute__((always_inline)) void stack_count(uint32_t id, int opened)
{
	struct lw_stack *s = stack_slot(id);
	if (!s)
		return;
	atomic_fetch_add_explicit(opened ? &s->sock_opened : &s->sock_closed, 1, memory_order_relaxed);
}

/* ctr_add / event_at - segment_counter_add(c, 1) and segment_event_at()
 * inline, for the open and close paths */
static inline void ctr_add(enum lw_counter c)
{
	atomic_fetch_add_explicit(&g_seg.hdr->counters[c], 1, memory_order_relaxed);
}

static inline void event_at(uint64_t now)
{
	struct lw_header *hdr = g_seg.hdr;
	atomic_fetch_add_explicit(&hdr->counters[LW_CTR_EVENTS], 1, memory_order_relaxed);
	/* the coarse clock moves every few ms: most events find it stored */
	if (atomic_load_explicit(&hdr->last_active_ns, memory_order_relaxed) != now)
		atomic_store_explicit(&hdr->last_active_ns, now, memory_order_relaxed);
}

static void addr_get(int fd, struct lw_addr *a, int peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int r = peer ? prim_getpeername(fd, (struct sockaddr *)&ss, &len)
		     : prim_getsockname(fd, (struct sockaddr *)&ss, &len);
	if (r != 0 || len == 0) {
		a->len = 0;
		return;
	}
	if (len > LW_ADDR_MAX)
		len = LW_ADDR_MAX;
	memcpy(a->data, &ss, len);
	a->len = (uint16_t)len;
}

static void addr_set(struct lw_addr *a, const struct sockaddr *sa, socklen_t len)
{
	if (!sa || len == 0) {
		a->len = 0;
		return;
	}
	if (len > LW_ADDR_MAX)
		len = LW_ADDR_MAX;
	memcpy(a->data, sa, len);
	a->len = (uint16_t)len;
}

/* A record found open where a new open lands means the fd was closed
 * somewhere no hook sees (inside libc, or a raw syscall). */
static void retire_stale(struct lw_handle *h)
{
	if (h->state == LW_H_OPEN) {
		stack_count(h->stack_id, 0);
		segment_counter_add(LW_CTR_STALE_CLOSES, 1);
		segment_counter_add(h->kind == LW_FD_SOCKET ? LW_CTR_SOCK_CLOSED : LW_CTR_FD_CLOSED, 1);
	}
}

/* addr_is_unbound - an IP address with neither address nor port (what
 * known_unbound() records for a new socket). */
static int addr_is_unbound(const struct lw_addr *a)
{
	static const uint8_t zero[LW_ADDR_MAX];
	sa_family_t f;
	if (a->len < sizeof f)
		return 0;
	memcpy(&f, a->data, sizeof f);
	if (f == AF_INET && a->len >= sizeof(struct sockaddr_in))
		return memcmp(a->data + sizeof f, zero, sizeof(struct sockaddr_in) - sizeof f) == 0;
	if (f == AF_INET6 && a->len >= sizeof(struct sockaddr_in6))
		return memcmp(a->data + sizeof f, zero, sizeof(struct sockaddr_in6) - sizeof f) == 0;
	return 0;
}

/* known_unbound - the address a new socket has before any bind or
 * connect, as getsockname() gives it; 0 for families not handled here. */
static int known_unbound(int family, struct lw_addr *a)
{
	socklen_t len;
	switch (family) {
	case AF_INET: len = sizeof(struct sockaddr_in); break;
	case AF_INET6: len = sizeof(struct sockaddr_in6); break;
	case AF_UNIX: len = sizeof(sa_family_t); break;
	default: return 0;
	}
	memset(a->data, 0, len);
	sa_family_t f = (sa_family_t)family;
	memcpy(a->data, &f, sizeof f);
	a->len = (uint16_t)len;
	return 1;
}

/*
 * fill_socket - populate identity fields from the kernel, except those the
 * caller already knows (k, may be NULL: see struct handle_known).  The
 * socket options below are not interposed, so this never recurses into the
 * hooks.
 */
static int fill_socket(int fd, struct lw_handle *out, const struct handle_known *k)
{
	struct stat st;
	struct lw_handle like;
	int v;

	int have_like = 0;

	/* A descriptor socket() or accept() just returned is a socket: its
	 * inode is left for the analyzer to read from /proc/PID/fd (0 here). */
	if (k && k->new_socket) {
		out->inode = 0;
	} else {
		if (prim_fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
			return -1;
		out->inode = (uint64_t)st.st_ino;
	}
	if (k && k->family > 0) {
		out->family = (uint16_t)k->family;
		out->type = (uint16_t)k->type;
		out->protocol = k->protocol;
	} else if (k && k->like_fd >= 0 && handle_at(k->like_fd) &&
		   lw_seq_read(handle_at(k->like_fd), &like, sizeof like) && like.state == LW_H_OPEN &&
		   like.family != 0) {
		out->family = like.family;
		out->type = like.type;
		out->protocol = like.protocol;
		have_like = 1;
	} else {
		out->family = prim_getsockopt_int(fd, SOL_SOCKET, SO_DOMAIN, &v) == 0 ? (uint16_t)v : 0;
		out->type = prim_getsockopt_int(fd, SOL_SOCKET, SO_TYPE, &v) == 0 ? (uint16_t)v : 0;
		out->protocol = prim_getsockopt_int(fd, SOL_SOCKET, SO_PROTOCOL, &v) == 0 ? v : 0;
	}
	/* a socket() or socketpair() end: unbound, and connected only to its
	 * unbound twin */
	if (k && k->fresh && known_unbound(out->family, &out->local)) {
		if (k->fresh == HANDLE_PAIRED)
			(void)known_unbound(out->family, &out->peer);
		else
			out->peer.len = 0;
		return 0;
	}
	/* An accepted socket is recorded with its listener's address (the
	 * listener's as bound: 0.0.0.0:8080 stays the wildcard). */
	if (have_like && like.local.len > 0)
		out->local = like.local;
	else
		addr_get(fd, &out->local, 0);
	if (k && k->peer && k->peer_len > 0)
		addr_set(&out->peer, k->peer, k->peer_len);
	else
		addr_get(fd, &out->peer, 1);
	return 0;
}

/* record_close - mark an open slot closed (caller holds the slot);
 * record_close_ev: and count it as an event (a close() call). */
static inline __attribute__((always_inline)) void record_close_ev(struct lw_handle *h,
								  uint32_t stack, int event)
{
	uint64_t now = prim_event_ns();
	h->state = LW_H_CLOSED;
	h->close_stack_id = stack;
	h->close_ns = now;
	h->close_tid = prim_gettid();
	stack_count(h->stack_id, 0);
	ctr_add(h->kind == LW_FD_SOCKET ? LW_CTR_SOCK_CLOSED : LW_CTR_FD_CLOSED);
	if (event)
		event_at(now);
}

static void record_close(struct lw_handle *h, uint32_t stack)
{
	record_close_ev(h, stack, 0);
}

/* handle_write_open - publish a new open record for fd.  A record still
 * open there was closed implicitly (dup2 onto it: replaced_by != 0 gives the
 * stack of that call) or behind our back (stale). */
static void handle_write_open(int fd, const struct lw_handle *src, uint32_t stack_id,
			      uint32_t replaced_by)
{
	uint32_t seq;
	struct lw_handle *h = slot_lock_at(fd, &seq, 1);
	if (!h)
		return;
	if (replaced_by && h->state == LW_H_OPEN)
		record_close(h, replaced_by);
	else
		retire_stale(h);
	uint64_t gen = h->generation + 1;
	payload_copy(h, src);
	h->state = LW_H_OPEN;
	h->generation = gen;
	h->stack_id = stack_id;
	slot_unlock(fd, h, seq);
	note_high_water(fd);
	stack_count(stack_id, 1);
	int sock = src->kind == LW_FD_SOCKET;
	segment_counter_add(sock ? LW_CTR_SOCK_OPENED : LW_CTR_FD_OPENED, 1);
	if (src->origin == LW_ORIGIN_INHERITED || src->origin == LW_ORIGIN_FORK) {
		/* src->open_ns is the parent's: the event is now */
		if (sock)
			segment_counter_add(LW_CTR_SOCK_INHERITED, 1);
		segment_counter_add(LW_CTR_EVENTS, 1);
	} else {
		segment_event_at(src->open_ns);
	}
}

void handle_open_socket(int fd, uint16_t origin, int dup_of, uint32_t stack_id)
{
	handle_open_socket_known(fd, origin, dup_of, stack_id, NULL);
}

void handle_open_socket_known(int fd, uint16_t origin, int dup_of, uint32_t stack_id,
			      const struct handle_known *k)
{
	struct lw_handle tmp;

	if (!g_seg.hdr)
		return;
	/* everything payload_copy() reads: the head and the address lengths */
	memset(&tmp, 0, offsetof(struct lw_handle, local));
	tmp.local.len = tmp.local.reserved = 0;
	tmp.peer.len = tmp.peer.reserved = 0;
	if (fill_socket(fd, &tmp, k) != 0)
		return;
	tmp.origin = origin;
	tmp.dup_of = dup_of;
	tmp.tid = prim_gettid();
	tmp.open_ns = prim_event_ns();
	if (tmp.peer.len)
		tmp.connect_ns = tmp.open_ns;
	handle_write_open(fd, &tmp, stack_id, 0);
}

/*
 * handle_open_fd writes the record in place, every field of the head and
 * the path, rather than building it aside and copying it in as the other
 * opens do (bench/open_workload under callgrind: with the inline counters
 * below, 1280 -> 1020 shim instructions per open+close; 1.15x -> 1.12x of
 * native time).
 */
SHIM_HOT void handle_open_fd(int fd, const struct handle_fd *d, uint32_t stack_id)
{
	if (!g_seg.hdr)
		return;
	size_t n = 0;
	uint16_t kflags = 0;
	if (d->path) {
		/* libc's strnlen, like the memcpy below: neither is a hook's;
		 * a loop by hand cost 5 instructions a byte */
		n = strnlen(d->path, LW_FDPATH_MAX + 1);
		if (n > LW_FDPATH_MAX) {
			n = LW_FDPATH_MAX;
			kflags = LW_HK_PATH_TRUNCATED;
		}
	}
	uint64_t now = prim_event_ns();
	int32_t tid = prim_gettid();
	uint32_t seq;
	struct lw_handle *h = slot_lock_at(fd, &seq, 1);
	if (!h)
		return;
	retire_stale(h);
	h->state = LW_H_OPEN;
	h->origin = d->origin ? d->origin : LW_ORIGIN_OPEN;
	h->family = 0;
	h->type = 0;
	h->oflags = d->oflags;
	h->stack_id = stack_id;
	h->tid = tid;
	h->inode = 0;
	h->open_ns = now;
	h->generation++;
	h->connect_stack_id = 0;
	h->last_use_stack_id = 0;
	h->connect_ns = 0;
	h->last_use_ns = 0;
	h->close_stack_id = 0;
	h->close_tid = 0;
	h->close_ns = 0;
	h->dup_of = -1;
	h->kind = (uint16_t)d->kind;
	h->kflags = kflags;
	h->path.len = (uint16_t)n;
	h->path.reserved = 0;
	if (n)
		memcpy(h->path.data, d->path, n);
	slot_unlock(fd, h, seq);
	note_high_water(fd);
	stack_count(stack_id, 1);
	ctr_add(LW_CTR_FD_OPENED);
	event_at(now);
}

/* kind_of_mode - what fstat() tells of a descriptor the shim did not see
 * made (received, inherited): anonymous inodes have no file type. */
static int kind_of_mode(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFSOCK: return LW_FD_SOCKET;
	case S_IFDIR: return LW_FD_DIR;
	case S_IFIFO: return LW_FD_PIPE;
	case 0: return LW_FD_OTHER;
	default: return LW_FD_FILE;
	}
}

void handle_open_received(int fd, uint16_t origin, uint32_t stack_id)
{
	struct stat st;
	if (!g_seg.hdr || prim_fstat(fd, &st) != 0)
		return;
	int kind = kind_of_mode(st.st_mode);
	if (kind == LW_FD_SOCKET) {
		handle_open_socket(fd, origin, -1, stack_id);
		return;
	}
	struct handle_fd d = { .kind = kind, .origin = origin };
	handle_open_fd(fd, &d, stack_id);
}

void handle_dup(int oldfd, int newfd, uint32_t stack)
{
	struct lw_handle src;
	struct lw_header *hdr = g_seg.hdr;

	if (!hdr || oldfd < 0 || newfd < 0 || oldfd == newfd)
		return;
	const struct lw_handle *old = handle_at(oldfd);
	if (old && lw_seq_read(old, &src, sizeof src) && src.state == LW_H_OPEN) {
		src.origin = LW_ORIGIN_DUP;
		src.dup_of = oldfd;
		src.tid = prim_gettid();
		src.open_ns = prim_event_ns();
		src.last_use_stack_id = 0;
		src.last_use_ns = 0;
		handle_write_open(newfd, &src, stack, stack);
		return;
	}
	/* The source is not a tracked socket: the new fd number now names
	 * something else, so an old record there is finished. */
	uint32_t seq;
	if (handle_is_open(newfd)) {
		struct lw_handle *h = slot_lock(newfd, &seq);
		if (!h)
			return;
		if (h->state == LW_H_OPEN)
			record_close(h, stack);
		slot_unlock(newfd, h, seq);
	}
}

void handle_connected(int fd, const struct sockaddr *addr, socklen_t len, uint32_t stack)
{
	uint32_t seq;
	if (!handle_is_open(fd))
		return;
	struct lw_handle *h = slot_lock(fd, &seq);
	if (!h)
		return;
	if (h->state == LW_H_OPEN && h->kind == LW_FD_SOCKET) {
		/* An IP socket that was not bound gets its address from
		 * connect(): the record says "unknown" (len 0) rather than
		 * ask (a system call per connect); the kernel tells it while
		 * the socket lives (sock_diag).  A bound one keeps its own. */
		if ((h->family == AF_INET || h->family == AF_INET6) && addr_is_unbound(&h->local))
			h->local.len = 0;
		addr_set(&h->peer, addr, len);
		uint64_t now = prim_event_ns();
		h->connect_stack_id = stack;
		h->connect_ns = now;
		slot_unlock(fd, h, seq);
		segment_event_at(now);
		return;
	}
	slot_unlock(fd, h, seq);
	segment_counter_add(LW_CTR_EVENTS, 1);
}

int handle_is_open(int fd)
{
	const struct lw_handle *h = g_seg.hdr ? handle_at(fd) : NULL;
	return h && __atomic_load_n(&h->state, __ATOMIC_RELAXED) == LW_H_OPEN;
}

int handle_is_open_socket(int fd)
{
	const struct lw_handle *h = g_seg.hdr ? handle_at(fd) : NULL;
	return h && __atomic_load_n(&h->state, __ATOMIC_RELAXED) == LW_H_OPEN &&
	       __atomic_load_n(&h->kind, __ATOMIC_RELAXED) == LW_FD_SOCKET;
}

int handle_names_peers(int fd)
{
	struct lw_handle h;
	const struct lw_handle *slot = g_seg.hdr ? handle_at(fd) : NULL;
	/* state, family and protocol: the head of the record is enough */
	if (!slot || !lw_seq_read(slot, &h, offsetof(struct lw_handle, stack_id)) ||
	    h.state != LW_H_OPEN)
		return 0;
	return h.family == AF_UNIX ||
	       ((h.family == AF_INET || h.family == AF_INET6) && h.protocol == IPPROTO_TCP);
}

static void prev_of(struct handle_prev *prev, const struct lw_handle *h)
{
	prev->open_stack = h->stack_id;
	prev->open_ns = h->open_ns;
	prev->close_stack = h->close_stack_id;
	prev->close_ns = h->close_ns;
	prev->origin = h->origin;
	prev->kind = 0; /* the open path below fills it */
}

/* One entry of the bad-close ring (a failing close, or a garbage collector's). */
static int badclose_append(int fd, int prev_state, const struct handle_prev *prev, uint32_t stack, uint16_t what,
			   uint16_t kind)
{
	uint32_t n = atomic_fetch_add_explicit(&g_seg.hdr->badcloses.used, 1, memory_order_relaxed);
	struct lw_badclose *b = segment_entry_grow(LW_T_BADCLOSES, n % LW_BADCLOSE_RING);
	if (!b)
		return -1;
	uint32_t s;
	if (!seq_lock(&b->seq, &s)) {
		segment_counter_add(LW_CTR_DROP_BUSY, 1);
		return -1;
	}
	b->fd = fd;
	b->tid = prim_gettid();
	b->stack_id = stack;
	b->ns = prim_event_ns();
	b->prev_state = (uint16_t)prev_state;
	b->prev_origin = prev->origin;
	b->prev_open_stack_id = prev_state == LW_H_FREE ? 0 : prev->open_stack;
	b->prev_open_ns = prev_state == LW_H_FREE ? 0 : prev->open_ns;
	b->prev_close_stack_id = prev_state == LW_H_CLOSED ? prev->close_stack : 0;
	b->prev_close_ns = prev_state == LW_H_CLOSED ? prev->close_ns : 0;
	b->what = what;
	b->fd_kind = kind;
	seq_unlock(&b->seq, s);
	return 0;
}

void handle_gc_close(int fd, const struct handle_prev *prev, uint32_t stack)
{
	if (g_seg.hdr)
		(void)badclose_append(fd, LW_H_OPEN, prev, stack, LW_BADCLOSE_GC, prev->kind);
}

SHIM_HOT int handle_before_close(int fd, uint32_t stack, struct handle_prev *prev)
{
	struct lw_handle *h = g_seg.hdr ? handle_at(fd) : NULL;
	if (!h)
		return LW_H_FREE;
	uint32_t seq;
	/* An open record is removed before the real close: once the kernel
	 * frees the number, another thread may get it from socket() at once.
	 * Its fields for a bad-close report are read under the same lock. */
	if (__atomic_load_n(&h->state, __ATOMIC_RELAXED) == LW_H_OPEN &&
	    seq_lock_spin(&h->seq, &seq, LW_LIM_HANDLE_SPINS)) {
		prev_of(prev, h);
		prev->kind = h->kind;
		int state = h->state;
		if (state == LW_H_OPEN) {
			record_close_ev(h, stack, 1); /* the close is an event */
			slot_unlock_closed(fd, h, seq);
		} else {
			seq_unlock(&h->seq, seq); /* closed meanwhile: nothing written */
		}
		return state;
	}
	/* not open, or a writer held it all along: what prev needs ends with
	 * close_ns, so the record is read that far */
	struct lw_handle snap;
	if (!lw_seq_read(h, &snap, offsetof(struct lw_handle, dup_of))) {
		memset(prev, 0, sizeof *prev);
		segment_counter_add(LW_CTR_DROP_BUSY, 1);
		return LW_H_OPEN;
	}
	prev_of(prev, &snap);
	if (snap.state == LW_H_OPEN) /* opened since: held by its writer */
		segment_counter_add(LW_CTR_DROP_BUSY, 1);
	return snap.state;
}

void handle_bad_close(int fd, int prev_state, const struct handle_prev *prev, uint32_t stack)
{
	struct lw_header *hdr = g_seg.hdr;
	if (!hdr)
		return;
	/* Like valgrind: a close of a number never seen open (nor closed) is
	 * no double close: the defensive close loops of daemons and shells.
	 * Counted, not reported. */
	if (prev_state == LW_H_FREE) {
		segment_counter_add(LW_CTR_UNSEEN_CLOSES, 1);
		return;
	}
	if (badclose_append(fd, prev_state, prev, stack, LW_BADCLOSE_EBADF, 0) == 0)
		segment_counter_add(LW_CTR_BAD_CLOSES, 1);
}

/* range_clip - [first, *last] within the high-water mark; the bound. */
static uint32_t range_clip(unsigned *last)
{
	uint32_t hw = atomic_load_explicit(&g_seg.hdr->handles.used, memory_order_relaxed);
	if (*last >= hw)
		*last = hw ? hw - 1 : 0;
	return hw;
}

int handle_any_open(unsigned first, unsigned last)
{
	if (!g_seg.hdr)
		return 0;
	uint32_t hw = range_clip(&last);
	for (unsigned fd = first; fd <= last && fd < hw; fd++)
		if (handle_is_open((int)fd))
			return 1;
	return 0;
}

void handle_close_range(unsigned first, unsigned last, uint32_t stack)
{
	if (!g_seg.hdr)
		return;
	uint32_t hw = range_clip(&last);
	for (unsigned fd = first; fd <= last && fd < hw; fd++) {
		uint32_t seq;
		if (!handle_is_open((int)fd))
			continue;
		struct lw_handle *h = slot_lock((int)fd, &seq);
		if (!h)
			continue;
		if (h->state == LW_H_OPEN)
			record_close(h, stack);
		slot_unlock((int)fd, h, seq);
	}
}

/* getdents64 (prim.h): opendir() would allocate through the (possibly
 * hooked) allocator. */
struct linux_dirent64 {
	uint64_t d_ino;
	int64_t  d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* What is open when the shim is attached: sockets, and every other kind
 * with what the kernel names it now (no stack, no call's flags). */
static void scan_attached_one(int fd)
{
	struct stat st;
	if (prim_fstat(fd, &st) != 0)
		return;
	int kind = kind_of_mode(st.st_mode);
	if (kind == LW_FD_SOCKET) {
		handle_open_socket(fd, LW_ORIGIN_ATTACH, -1, 0);
		return;
	}
	char link[40], path[LW_FDPATH_MAX + 1], digits[12];
	int k = 0;
	for (unsigned v = (unsigned)fd; k == 0 || v; v /= 10)
		digits[k++] = (char)('0' + v % 10);
	/* "/proc/self/fd/N" and "/proc/self/fdinfo/N" */
	int n = 0;
	for (const char *p = "/proc/self/fd/"; *p; p++)
		link[n++] = *p;
	for (int i = k; i > 0; i--)
		link[n++] = digits[i - 1];
	link[n] = '\0';
	ssize_t len = prim_readlink(link, path, sizeof path - 1);
	path[len > 0 ? len : 0] = '\0';
	/* the open flags, from fdinfo's "flags:\t0100002" (octal) */
	n = 0;
	for (const char *p = "/proc/self/fdinfo/"; *p; p++)
		link[n++] = *p;
	for (int i = k; i > 0; i--)
		link[n++] = digits[i - 1];
	link[n] = '\0';
	int oflags = 0;
	char info[256];
	int ifd = prim_open(link, O_RDONLY | O_CLOEXEC, 0);
	if (ifd >= 0) {
		ssize_t r = prim_read(ifd, info, sizeof info - 1);
		prim_close(ifd);
		info[r > 0 ? r : 0] = '\0';
		for (char *p = info; *p; p++)
			if (p[0] == 'f' && p[1] == 'l' && p[2] == 'a' && p[3] == 'g' && p[4] == 's' && p[5] == ':') {
				for (p += 6; *p == '\t' || *p == ' '; p++)
					;
				for (; *p >= '0' && *p <= '7'; p++)
					oflags = oflags * 8 + (*p - '0');
				break;
			}
	}
	struct handle_fd d = { .kind = kind, .origin = LW_ORIGIN_ATTACH, .oflags = oflags & ~O_CLOEXEC,
			       .path = len > 0 ? path : NULL };
	handle_open_fd(fd, &d, 0);
}

void handle_scan_inherited(void)
{
	handle_scan_open(LW_ORIGIN_INHERITED);
}

void handle_scan_open(uint16_t origin)
{
	char buf[4096];
	int dfd = prim_open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	long n;
	if (dfd < 0)
		return;
	while ((n = prim_getdents64(dfd, buf, sizeof buf)) > 0) {
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
			off += d->d_reclen;
			int fd = 0;
			const char *p = d->d_name;
			if (*p < '0' || *p > '9')
				continue;
			while (*p >= '0' && *p <= '9')
				fd = fd * 10 + (*p++ - '0');
			if (fd == dfd || handle_is_open(fd))
				continue;
			if (origin == LW_ORIGIN_ATTACH)
				scan_attached_one(fd);
			else
				handle_open_socket(fd, origin, -1, 0);
		}
	}
	prim_close(dfd);
}

/* fork_view - fd's record as it was when the parent forked: from the
 * mirror, or from the live table when the mirror's copy was half done. */
static int fork_view(const struct shim_segment *parent, uint32_t fd, struct lw_handle *out)
{
	const struct lw_handle *m = g_mirror_ready ? mirror_at((int)fd, 0) : NULL;
	if (m && !(atomic_load_explicit(&m->seq, memory_order_relaxed) & 1u)) {
		memcpy(out, m, sizeof *out);
		return 1;
	}
	const struct lw_handle *h = segment_entry_in(parent, LW_T_HANDLES, fd);
	if (!h) {
		memset(out, 0, sizeof *out);
		return 1;
	}
	return lw_seq_read(h, out, sizeof *out);
}

/* fork_kind_matches - may a record of this kind describe a descriptor of
 * mode m?  The kind came from the call, so a file opened without
 * O_DIRECTORY may be anything but a socket. */
static int fork_kind_matches(unsigned kind, mode_t m)
{
	int now = kind_of_mode(m);
	switch (kind) {
	case LW_FD_SOCKET: return now == LW_FD_SOCKET;
	case LW_FD_DIR: return now == LW_FD_DIR;
	case LW_FD_PIPE:
	case LW_FD_FIFO: return now == LW_FD_PIPE;
	case LW_FD_FILE: return now != LW_FD_SOCKET && now != LW_FD_OTHER;
	case LW_FD_MEMFD: return now == LW_FD_FILE;
	default: return now == LW_FD_OTHER;
	}
}

void handle_copy_from(const struct shim_segment *parent, const int *skip, unsigned nskip)
{
	const struct lw_header *ph = parent->hdr;
	if (!ph || !g_seg.hdr)
		return;
	uint32_t hw = atomic_load_explicit(&((struct lw_header *)ph)->handles.used,
					   memory_order_acquire);
	for (uint32_t fd = 0; fd < hw; fd++) {
		struct lw_handle src;
		struct lw_stack st;
		int ok = fork_view(parent, fd, &src);
		/* the mirror must describe this child's table from now on */
		mirror_store((int)fd, NULL);
		if (!ok || src.state != LW_H_OPEN)
			continue;
		/* A number the creating call just returned was closed in this
		 * child before: a socket there now is not the parent's. */
		int fresh = 0;
		for (unsigned i = 0; i < nskip; i++)
			fresh |= skip[i] == (int)fd;
		if (fresh)
			continue;
		/* A socket the parent closed with a raw syscall must not be copied
		 * (a record without an inode: one that is no socket now).  Other
		 * kinds: the descriptor there must be of a compatible type. */
		struct stat sb;
		if (prim_fstat((int)fd, &sb) != 0 || !fork_kind_matches(src.kind, sb.st_mode) ||
		    (src.kind == LW_FD_SOCKET && src.inode != 0 && (uint64_t)sb.st_ino != src.inode))
			continue;
		if (src.kind == LW_FD_SOCKET)
			src.inode = (uint64_t)sb.st_ino;
		uint32_t id = 0;
		const struct lw_stack *ps = src.stack_id ?
			segment_entry_in(parent, LW_T_STACKS, (uint64_t)src.stack_id - 1) : NULL;
		if (ps && lw_seq_read(ps, &st, sizeof st) &&
		    atomic_load_explicit(&st.seq, memory_order_relaxed) == 2)
			id = stack_intern(st.frames, st.depth);
		src.origin = LW_ORIGIN_FORK;
		src.connect_stack_id = 0;
		src.last_use_stack_id = 0;
		src.close_stack_id = 0;
		src.generation = 0;
		handle_write_open((int)fd, &src, id, 0);
	}
}

void handle_bound(int fd)
{
	uint32_t seq;
	struct lw_handle *h = slot_lock(fd, &seq);
	if (!h)
		return;
	if (h->state == LW_H_OPEN && h->kind == LW_FD_SOCKET)
		addr_get(fd, &h->local, 0);
	slot_unlock(fd, h, seq);
}

void handle_used(int fd, uint32_t stack_id)
{
	uint32_t seq;
	struct lw_handle *h = slot_lock(fd, &seq);
	if (!h)
		return;
	if (h->state == LW_H_OPEN && h->kind == LW_FD_SOCKET) {
		h->last_use_stack_id = stack_id;
		h->last_use_ns = prim_event_ns();
	}
	/* not slot_unlock(): a fork child does not inherit last use, so the
	 * mirror need not follow (this is the hot path of every send) */
	seq_unlock(&h->seq, seq);
	struct lw_stack *st = stack_slot(stack_id);
	if (st)
		atomic_fetch_add_explicit(&st->uses, 1, memory_order_relaxed);
	segment_counter_add(LW_CTR_SEND_CALLS, 1);
}
