/* SPDX-License-Identifier: MIT */
/* cmd_ps.c — `leakwatch ps`: one line (or JSON object) per segment in the directory. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "heapgroups.h"
#include "json.h"
#include "names.h"
#include "present.h"
#include "render.h"
#include "report.h"
#include "segdir.h"
#include "snapshot.h"

/* file_bytes - what the file at path holds on its filesystem (st_blocks); 0 when it cannot be told. */
static uint64_t file_bytes(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
}

/* ps_command - argv[0] without its directory, then the arguments. */
static void ps_command(const struct lw_snapshot *s, char *out, size_t len)
{
	const char *full = s->hdr.cmdline[0] ? s->hdr.cmdline : s->hdr.exe;
	const char *space = strchr(full, ' ');
	const char *base = full;
	for (const char *p = full; *p && (!space || p < space); p++)
		if (*p == '/')
			base = p + 1;
	snprintf(out, len, "%s", base);
}

/*
 * ps [--format text|json]: one line per segment, or a JSON array of
 * {"pid","state","sockets","fds","heap_mode","heap_records","size_bytes",
 *  "incomplete","command","segment","error"} objects (error: why the file
 * could not be read, else null; heap_records: live blocks in full mode,
 * samples in sampled mode; size_bytes: the space the file holds, from
 * st_blocks — a layout 2 segment is a sparse file of 1 TiB whose st_size
 * says nothing; fds: open descriptors other than sockets recorded).  Text:
 * a FDS column (those descriptors), a SIZE column, and one line after the table for
 * each segment whose tables stopped growing.
 */
/* Defaults of `ps`; each field is one option. */
struct ps_options {
	enum lw_format format;          /* --format text|json */
};

static const struct lw_option ps_options_table[] = {
	{ "format", LW_OPT_FORMAT, LW_ARG_REQUIRED, offsetof(struct ps_options, format), "FMT",
	  "text (default) or json", 0, 0, LW_FMT_BIT(LW_FMT_TEXT) | LW_FMT_BIT(LW_FMT_JSON), "unknown format '*' (text or json)", NULL },
};

const struct lw_command_spec lw_ps_spec = { "ps", LW_CMD_NO_ARGS, NULL, ps_options_table,
					    sizeof ps_options_table / sizeof ps_options_table[0] };

int lw_cmd_ps(int argc, char **argv)
{
	struct ps_options o = { .format = LW_FMT_TEXT };
	if (lw_options_parse(&lw_ps_spec, &o, argc, argv, NULL) < 0)
		return LW_EXIT_USAGE;
	int json = o.format == LW_FMT_JSON;
	const char *dir = lw_segment_dir();
	struct lw_segref *refs = NULL;
	char err[LW_ERR_MAX];
	int n = lw_cli_segments_list(dir, &refs);
	if (n < 0)
		return LW_EXIT_ERROR;
	struct lw_json j;
	lw_json_init(&j, stdout);
	if (json)
		lw_json_begin_array(&j, NULL);
	else
		printf("%7s  %-8s  %7s  %7s  %11s  %9s  %-40s  %s\n", "PID", "STATE", "SOCKETS", "FDS", "HEAP BLOCKS",
		       "SIZE", "COMMAND", "SEGMENT");
	/* the lines about incomplete segments, printed after the table */
	char *notes = NULL;
	size_t notes_len = 0;
	FILE *nf = json ? NULL : open_memstream(&notes, &notes_len);
	for (int i = 0; i < n; i++) {
		struct lw_snapshot s;
		int ok = lw_snapshot_open(&s, refs[i].path, err, sizeof err) == 0;
		char cmd[LW_CMDLINE_MAX], size[32];
		uint64_t bytes = ok ? s.file_bytes : file_bytes(refs[i].path);
		lw_bytes_format((double)bytes, size, sizeof size);
		if (ok)
			ps_command(&s, cmd, sizeof cmd);
		if (json) {
			lw_json_begin_object(&j, NULL);
			lw_json_int(&j, "pid", ok ? s.hdr.pid : refs[i].pid);
			lw_json_str(&j, "state", ok ? lw_live_name(lw_snapshot_live(&s)) : "invalid");
			if (ok) {
				lw_json_uint(&j, "sockets", lw_snapshot_open_count(&s));
				lw_json_uint(&j, "fds", lw_snapshot_open_fds(&s));
				lw_json_str(&j, "heap_mode", lw_heap_mode_name(s.hdr.heap_mode));
				lw_json_uint(&j, "heap_records", s.nallocs);
				lw_json_uint(&j, "size_bytes", bytes);
				lw_render_json_incomplete(&j, "incomplete", &s);
			} else {
				lw_json_null(&j, "sockets");
				lw_json_null(&j, "fds");
				lw_json_null(&j, "heap_mode");
				lw_json_null(&j, "heap_records");
				lw_json_uint(&j, "size_bytes", bytes);
				lw_json_null(&j, "incomplete");
			}
			lw_json_str(&j, "command", ok ? cmd : NULL);
			lw_json_str(&j, "segment", refs[i].path);
			lw_json_str(&j, "error", ok ? NULL : err);
			lw_json_end_object(&j);
		} else if (!ok) {
			printf("%7d  %-8s  %7s  %7s  %11s  %9s  %-40s  %s\n", refs[i].pid, "invalid", "-", "-", "-", size,
			       err, refs[i].path);
		} else {
			char shown[41];
			snprintf(shown, sizeof shown, "%.40s", cmd);
			lw_present_scrub(shown);
			/* live heap records: blocks in full mode, samples in sampled mode */
			char heap[24];
			if (s.hdr.heap_mode == LW_HEAP_OFF)
				snprintf(heap, sizeof heap, "-");
			else if (s.hdr.heap_mode == LW_HEAP_SAMPLED)
				snprintf(heap, sizeof heap, "%zu smp", s.nallocs);
			else
				snprintf(heap, sizeof heap, "%zu", s.nallocs);
			printf("%7d  %-8s  %7zu  %7zu  %11s  %9s  %-40s  %s\n", s.hdr.pid,
			       lw_live_name(lw_snapshot_live(&s)), lw_snapshot_open_count(&s), lw_snapshot_open_fds(&s), heap,
			       size, shown, refs[i].path);
			char inc[256];
			if (nf && lw_present_incomplete(&s, inc, sizeof inc))
				fprintf(nf, "incomplete: pid %d (%s): %s\n", s.hdr.pid, shown, inc);
		}
		lw_snapshot_free(&s);
	}
	if (nf) {
		fclose(nf);
		if (notes_len)
			fputs(notes, stdout);
		free(notes);
	}
	if (json) {
		lw_json_end_array(&j);
		fputc('\n', stdout);
	} else if (n == 0) {
		fprintf(stderr, "leakwatch: no segments in %s\n", dir);
	}
	free(refs);
	return LW_EXIT_OK;
}
