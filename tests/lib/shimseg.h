/* SPDX-License-Identifier: MIT */
/*
 * shimseg.h — the recorder's own segment, for the shim's unit tests (which
 * link libshimrec.a): g_cfg reset, a fresh directory, segment_create().
 */
#ifndef TESTS_LIB_SHIMSEG_H
#define TESTS_LIB_SHIMSEG_H

#include <stddef.h>
#include <stdint.h>

/*
 * shimseg_create - reset g_cfg (stack depth 32, the given capacities) and
 * create this process's segment in dir: a fresh /tmp/lw-<tag>.XXXXXX
 * written into dir (len bytes), or, with tag NULL, the existing directory
 * already in dir.  Returns segment_create()'s result (0), or -1 when the
 * directory could not be made.
 */
int shimseg_create(char *dir, size_t len, const char *tag, uint32_t max_fds, uint32_t max_stacks,
		   uint32_t max_allocs);

/* shimseg_destroy - detach and unlink the segment, remove dir (if empty). */
void shimseg_destroy(const char *dir);

#endif
