/* SPDX-License-Identifier: MIT */
/* shimseg.c — the recorder's segment for the shim's unit tests (see shimseg.h). */
#include "shimseg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

int shimseg_create(char *dir, size_t len, const char *tag, uint32_t max_fds, uint32_t max_stacks,
		   uint32_t max_allocs)
{
	if (tag) {
		snprintf(dir, len, "/tmp/lw-%s.XXXXXX", tag);
		if (!mkdtemp(dir))
			return -1;
	}
	memset(&g_cfg, 0, sizeof g_cfg);
	snprintf(g_cfg.dir, sizeof g_cfg.dir, "%s", dir);
	g_cfg.stack_depth = 32;
	g_cfg.max_fds = max_fds;
	g_cfg.max_stacks = max_stacks;
	g_cfg.max_allocs = max_allocs;
	return segment_create(NULL);
}

void shimseg_destroy(const char *dir)
{
	char path[sizeof g_seg.path];
	strcpy(path, g_seg.path);
	segment_detach(&g_seg);
	unlink(path);
	rmdir(dir);
}
