/* SPDX-License-Identifier: MIT */
/*
 * symbolize.h — libdw symbolization of recorded stacks from the snapshot's
 * module table (symbolize.c), offline: it works after the process exited.
 */
#ifndef LEAKWATCH_SYMBOLIZE_H
#define LEAKWATCH_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>
#include "snapshot.h"

struct lw_frame {
	uint64_t addr;                  /* as recorded (return address except frame 0) */
	const char *function;           /* NULL: unknown */
	const char *linkage;            /* raw (mangled) symbol name; NULL: same as function */
	const char *file;               /* as given by DWARF; NULL: unknown */
	const char *comp_dir;           /* DWARF's compilation directory, which a relative
	                                   file is relative to; NULL: unknown */
	int line;                       /* 0: unknown */
	const char *module;             /* module path; NULL: no module */
	uint64_t module_off;            /* addr - module base */
	int inlined;                    /* function was inlined into the next frame */
	int buildid_mismatch;           /* file on disk is not what was loaded */
	int python;                     /* a Python frame (function: qualified name, file, line) */
};

struct lw_symbolizer;
struct lw_snapshot;

/* lw_python_frame - a recorded Python frame word (LW_IS_PYFRAME) as a
 * frame: its name entry's qualname and file, its line.  0, or -1 (entry
 * missing: function NULL, python set). */
int lw_python_frame(const struct lw_snapshot *s, uint64_t word, struct lw_frame *out);

/*
 * lw_symbolizer_new - set up libdw for the snapshot's module table (offline:
 * works after the process exited).  Unreadable modules are skipped.  Returns
 * NULL only when libdw itself cannot start (err set).  The snapshot must
 * outlive the symbolizer.
 */
struct lw_symbolizer *lw_symbolizer_new(const struct lw_snapshot *s, char *err, size_t errlen);

/* lw_symbolizer_free - release everything, including strings in returned frames. */
void lw_symbolizer_free(struct lw_symbolizer *sym);

/*
 * lw_symbolize_stack - symbolize frames[0..depth), expanding inlined calls
 * into extra frames and hiding frames inside libleakwatch.so.  Writes at most
 * max frames to out and returns how many; strings stay valid until
 * lw_symbolizer_free().  Never fails: unknown frames come back with
 * function == NULL.
 */
size_t lw_symbolize_stack(struct lw_symbolizer *sym, const uint64_t *frames, size_t depth,
			  struct lw_frame *out, size_t max);

/*
 * lw_symbol_demangle - the demangled form of a C++ symbol ("_ZN3foo3barEi"
 * -> "foo::bar(int)") as a malloc'd string, or NULL when name does not start
 * with "_Z" or is not a valid mangled name.
 */
char *lw_symbol_demangle(const char *name);

/*
 * lw_frame_format_location - "module+0xOFF" (module basename) or "0xADDR"
 * for a frame without a function; returns buf.
 */
char *lw_frame_format_location(const struct lw_frame *f, char *buf, size_t len);

#endif /* LEAKWATCH_SYMBOLIZE_H */
