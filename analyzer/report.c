/* SPDX-License-Identifier: MIT */
/*
 * report.c — the pipeline for one segment (snapshot -> kernel join ->
 * groups -> symbolizer), shared by `leakwatch report` and `leakwatch run`.
 */
#include <stdio.h>
#include <string.h>

#include "analyzer.h"

int lw_report_build(struct lw_report *r, const char *path, const struct lw_report_opts *o,
		    char *err, size_t errlen)
{
	memset(r, 0, sizeof *r);
	r->opts = *o;
	if (lw_snapshot_open(&r->snap, path, err, errlen) < 0)
		return -1;
	r->live = lw_snapshot_live(&r->snap);
	r->now_ns = lw_snapshot_now(&r->snap, r->live);
	/* Only a live image has a kernel view; a reused pid would describe a stranger. */
	int pid = (r->live == LW_LIVE_ALIVE || r->live == LW_LIVE_DISABLED) ? r->snap.hdr.pid : 0;
	if (lw_join_proc(&r->join, &r->snap, pid) < 0 ||
	    lw_group_build(&r->grouping, &r->snap, &r->join, r->now_ns, o->older_than_ns, o->all) < 0) {
		snprintf(err, errlen, "out of memory");
		lw_report_free(r);
		return -1;
	}
	/* Without libdw the report is still useful: frames render as module+0xOFF. */
	char symerr[LW_ERR_MAX];
	r->sym = lw_symbolizer_new(&r->snap, symerr, sizeof symerr);
	return 0;
}

void lw_report_free(struct lw_report *r)
{
	lw_symbolizer_free(r->sym);
	r->sym = NULL;
	lw_grouping_free(&r->grouping);
	lw_join_free(&r->join);
	lw_snapshot_free(&r->snap);
}
