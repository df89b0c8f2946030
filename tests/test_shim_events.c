/*
 * The recorder's events (preload/events.c) own the recorder steps: they
 * capture the stacks that handles.c stores, keep errno, record nothing
 * while the shim is not ready or the thread is already recording, and a
 * close records its bad close after the real call failed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "events.h"
#include "lib/shimseg.h"

static char dir[64];

static void setup(void)
{
	cr_assert_eq(shimseg_create(dir, sizeof dir, "shim-events", 4096, 256, 0), 0, "segment_create failed");
	segment_mark_state(LW_STATE_RUNNING);
	atomic_store(&g_ready, 1);
}

static void teardown(void)
{
	atomic_store(&g_ready, 0);
	shimseg_destroy(dir);
}

TestSuite(shim_events, .init = setup, .fini = teardown);

static struct lw_handle slot(int fd)
{
	struct lw_handle h;
	cr_assert(lw_seq_read(segment_entry(LW_T_HANDLES, (uint64_t)fd), &h, sizeof h));
	return h;
}

/* the real close() between the two halves, as the hook runs it */
static int traced_close(int fd)
{
	struct lw_close_note n;
	lw_ev_close_before(fd, &n);
	int r = close(fd);
	if (r != 0)
		lw_ev_close_failed(fd, &n);
	return r;
}

Test(shim_events, open_close_double_close_with_stacks)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	errno = 1234;
	lw_ev_socket_opened(fd, LW_ORIGIN_SOCKET);
	cr_assert_eq(errno, 1234, "errno kept");
	struct lw_handle h = slot(fd);
	cr_assert_eq(h.state, LW_H_OPEN);
	cr_assert_neq(h.stack_id, 0, "the open has its stack");

	cr_assert_eq(traced_close(fd), 0);
	h = slot(fd);
	cr_assert_eq(h.state, LW_H_CLOSED);
	cr_assert_neq(h.close_stack_id, 0, "the close has its stack");

	errno = 0;
	cr_assert_eq(traced_close(fd), -1);
	cr_assert_eq(errno, EBADF, "the real close's errno is what the caller sees");
	cr_assert_eq(atomic_load(&g_seg.hdr->counters[LW_CTR_BAD_CLOSES]), 1);
	struct lw_badclose b;
	cr_assert(lw_seq_read(segment_entry(LW_T_BADCLOSES, 0), &b, sizeof b));
	cr_assert_eq(b.fd, fd);
	cr_assert_eq(b.prev_state, LW_H_CLOSED);
	cr_assert_eq(b.prev_open_stack_id, h.stack_id);
	cr_assert_eq(b.prev_close_stack_id, h.close_stack_id);
	cr_assert_neq(b.stack_id, 0, "the bad close has its stack");

	/* close(-1) is an idiom, not a bad close */
	cr_assert_eq(traced_close(-1), -1);
	cr_assert_eq(atomic_load(&g_seg.hdr->counters[LW_CTR_BAD_CLOSES]), 1);
}

Test(shim_events, dup_and_close_range)
{
	int a = socket(AF_UNIX, SOCK_STREAM, 0);
	lw_ev_socket_opened(a, LW_ORIGIN_SOCKET);
	int b = dup(a);
	lw_ev_dup(a, b);
	struct lw_handle h = slot(b);
	cr_assert_eq(h.state, LW_H_OPEN);
	cr_assert_eq(h.origin, LW_ORIGIN_DUP);
	cr_assert_neq(h.stack_id, 0, "the dup has its stack");

	lw_ev_close_range((unsigned)a, (unsigned)b, CLOSE_RANGE_CLOEXEC);
	cr_assert(handle_is_open(a) && handle_is_open(b), "CLOEXEC closes nothing now");
	lw_ev_close_range((unsigned)a, (unsigned)b, 0);
	cr_assert_not(handle_is_open(a));
	cr_assert_not(handle_is_open(b));
	cr_assert_neq(slot(b).close_stack_id, 0, "closed with a stack");
	close(a);
	close(b);
	/* close_range(fd, fd) of a descriptor seen closed: a double close */
	lw_ev_close_range((unsigned)a, (unsigned)a, 0);
	cr_assert_eq(atomic_load(&g_seg.hdr->counters[LW_CTR_BAD_CLOSES]), 1);
}

Test(shim_events, nothing_recorded_when_not_ready_or_nested)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	atomic_store(&g_ready, 0);
	lw_ev_socket_opened(fd, LW_ORIGIN_SOCKET);
	cr_assert_not(handle_is_open(fd), "not ready: not recorded");
	atomic_store(&g_ready, 1);
	guard_set();
	lw_ev_socket_opened(fd, LW_ORIGIN_SOCKET);
	guard_clear();
	cr_assert_not(handle_is_open(fd), "nested: not recorded");
	cr_assert_eq(atomic_load(&g_seg.hdr->counters[LW_CTR_DROP_REENTRANT]), 1);
	lw_ev_socket_opened(fd, LW_ORIGIN_SOCKET);
	cr_assert(handle_is_open(fd));
	close(fd);
}
