/* SPDX-License-Identifier: MIT */
/*
 * suppress.h — suppressions: known leaks a report must not count
 * (suppress.c), for every kind leakwatch reports (heap blocks, sockets,
 * other descriptors).
 *
 * Two formats, mixed freely in one file:
 *
 *   valgrind's, as its manual documents it ("Suppressing errors"):
 *
 *     {
 *        name-shown-in-the-report
 *        leakwatch:Heap               (or Socket, Fd; Memcheck:Leak = Heap)
 *        match-leak-kinds: definite   (optional, heap only)
 *        fun:_ZN3foo4initEv           (function: mangled or demangled name)
 *        obj:/usr/lib/libfoo.so.*     (module: full path)
 *        src:foo.c:12                 (source file, optionally :line)
 *        ...                          (zero or more frames)
 *     }
 *
 *   "tool1,tool2:Kind" lists are accepted; Memcheck kinds other than Leak
 *   and other tools' entries are parsed and skipped, so a valgrind file can
 *   be reused as it is.  Patterns are whole-string matches with `*` (any
 *   sequence) and `?` (one character), `\` quoting the next character.  The
 *   frame lines match the stack from its innermost frame (frame 0) on; a
 *   stack with more frames than the lines is matched on its first ones.
 *   Inlined frames count as frames, as in valgrind with inline info.
 *
 *   LeakSanitizer's: `leak:PATTERN` lines.  The pattern is a substring
 *   match with `*`, anchored with a leading `^` and a trailing `$`, against
 *   the function name (and the mangled name), the module path and the
 *   source file of every frame: any frame matching suppresses the stack.
 *   `leak:` applies to every kind; `leakwatch-heap:`, `leakwatch-socket:`
 *   and `leakwatch-fd:` lines (a leakwatch extension, same syntax) to one.
 *
 * `#` lines and blank lines are comments; leading and trailing blanks of a
 * line are ignored.  An empty pattern is an error (in LSan it would match
 * everything).
 *
 * match-leak-kinds: a heap item's class comes from a reachability check
 * (reach.h); without one (LW_REACH_UNKNOWN) it is matched by every entry
 * whose kind set is not empty, with one its class must be in the set.
 *
 * The built-in default set (analyzer/lib/default.supp, compiled in as it
 * is) suppresses what the C/C++ runtime keeps for itself until exit: stdio
 * buffers, atexit tables, loader state, locale and timezone data...
 *
 * A set is not thread-safe: one thread loads, matches and reads counts.
 */
#ifndef LEAKWATCH_SUPPRESS_H
#define LEAKWATCH_SUPPRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "reach.h"
#include "symbolize.h"

/* The origin (lw_supp.file) of the built-in default set's entries. */
#define LW_SUPP_DEFAULT_ORIGIN "<default>"

/* The environment variable naming suppression files (colon-separated). */
#define LW_SUPP_ENV "LEAKWATCH_SUPPRESSIONS"

/* The largest suppression file read (a device or a pipe could give bytes forever). */
#define LW_SUPP_FILE_MAX (16 << 20)

/* What --gen-suppressions writes at most per entry (valgrind's --num-callers). */
#define LW_SUPP_GEN_FRAMES 12

/* The kinds of item a suppression applies to. */
enum lw_supp_kind {
	LW_SUPP_HEAP = 0,
	LW_SUPP_SOCKET,
	LW_SUPP_FD,
	LW_SUPP_NKIND
};
#define LW_SUPP_KIND_BIT(k)    (1u << (k))
#define LW_SUPP_KINDS_ALL      ((1u << LW_SUPP_NKIND) - 1)

/*
 * Heap items carry their reachability class (enum lw_reach, reach.h):
 * match-leak-kinds: sets are LW_REACH_BIT()s of it, and an item of unknown
 * class (LW_REACH_UNKNOWN: no reachability check ran) is matched by every
 * entry whose set is not empty.
 */

/* Which syntax an entry was written in. */
enum lw_supp_format {
	LW_SUPP_VALGRIND = 0,           /* { ... } block */
	LW_SUPP_LSAN,                   /* leak:PATTERN (or leakwatch-KIND:PATTERN) line */
};

struct lw_supp_pattern;                 /* the compiled frame lines (suppress.c) */

/*
 * One suppression.  Everything is read-only for callers; the counters are
 * what lw_supp_match() added up, for the report's "suppressed" lines.
 */
struct lw_supp {
	const char *name;               /* valgrind: the name line; LSan: the whole line */
	const char *file;               /* as given to the loader ("<default>": built-in) */
	int line;                       /* its line in file (1-based): valgrind format the name
					 * line, as valgrind's used_suppression gives it */
	enum lw_supp_format format;
	unsigned kinds;                 /* LW_SUPP_KIND_BIT()s it applies to */
	unsigned leak_kinds;            /* LW_REACH_BIT()s (LW_REACH_KINDS_ALL without match-leak-kinds:) */
	uint64_t groups;                /* times matched (one per group or stack) */
	double items;                   /* blocks / sockets / descriptors suppressed */
	double bytes;                   /* heap bytes suppressed (0 for other kinds) */
	struct lw_supp_pattern *pattern;
};

struct lw_supp_set;

/* lw_supp_set_new - an empty set; NULL on allocation failure. */
struct lw_supp_set *lw_supp_set_new(void);

/* lw_supp_set_free - release the set and its entries; NULL is fine. */
void lw_supp_set_free(struct lw_supp_set *set);

/*
 * lw_supp_load_string - parse suppressions from text[0..len) (NUL bytes are
 * an error, not an end) and append them to the set; `origin` names the
 * text in entries and messages ("<default>", a path).  Returns the number
 * of entries added (skipped entries of other tools not counted), or -1 with
 * a one-line message "ORIGIN:LINE: problem" in err; on error nothing of
 * this text is added.
 */
int lw_supp_load_string(struct lw_supp_set *set, const char *text, size_t len, const char *origin,
			char *err, size_t errlen);

/*
 * lw_supp_load_file - read `path` and parse it as lw_supp_load_string()
 * does, with path as the origin.  Returns the number of entries added, or
 * -1 with err set ("PATH: strerror" when it cannot be read, "PATH:LINE:
 * problem" when it does not parse); on error nothing of the file is added.
 */
int lw_supp_load_file(struct lw_supp_set *set, const char *path, char *err, size_t errlen);

/*
 * lw_supp_load_list - load every file of a colon-separated list (the value
 * of LW_SUPP_ENV; empty items are skipped, NULL or "" loads nothing), in
 * order.  Returns the number of entries added, or -1 with err set by the
 * first file that failed; the files before it stay loaded.
 */
int lw_supp_load_list(struct lw_supp_set *set, const char *list, char *err, size_t errlen);

/* lw_supp_default_text - the built-in default set (default.supp), NUL-terminated. */
const char *lw_supp_default_text(void);

/*
 * lw_supp_load_default - append the built-in default set (origin
 * "<default>").  Returns the number of entries added, or -1 with err set
 * (allocation failure).
 */
int lw_supp_load_default(struct lw_supp_set *set, char *err, size_t errlen);

/* lw_supp_set_size - how many entries the set holds. */
size_t lw_supp_set_size(const struct lw_supp_set *set);

/* lw_supp_set_entry - entry i (0 <= i < size) in load order, or NULL past the end. */
const struct lw_supp *lw_supp_set_entry(const struct lw_supp_set *set, size_t i);

/*
 * lw_supp_find - the first entry (in load order) that suppresses an item
 * of `kind` (and, for heap, of leak kind `leak`; else pass LW_REACH_UNKNOWN)
 * allocated at frames[0..n) (innermost first), or NULL.  Counts nothing.
 */
const struct lw_supp *lw_supp_find(const struct lw_supp_set *set, enum lw_supp_kind kind,
				   enum lw_reach leak, const struct lw_frame *frames, size_t n);

/*
 * lw_supp_match - lw_supp_find(), and when an entry matches, add one to its
 * groups, `items` to its items and `bytes` to its bytes (the caller's
 * weights: a group's blocks and bytes, sampled estimates included).
 * Returns the entry or NULL.
 */
const struct lw_supp *lw_supp_match(struct lw_supp_set *set, enum lw_supp_kind kind,
				    enum lw_reach leak, const struct lw_frame *frames, size_t n,
				    double items, double bytes);

/* lw_supp_is_default - 1 when e comes from the built-in default set. */
int lw_supp_is_default(const struct lw_supp *e);

/* lw_supp_count - add one match of `items` (and `bytes`) to e's counters, as lw_supp_match does. */
void lw_supp_count(struct lw_supp_set *set, const struct lw_supp *e, double items, double bytes);

/* lw_supp_reset_counts - zero every entry's counters. */
void lw_supp_reset_counts(struct lw_supp_set *set);

/*
 * lw_supp_write_valgrind - write a ready-to-paste valgrind-format entry for
 * the stack frames[0..n): `name` (NULL: "<insert_a_suppression_name_here>",
 * as valgrind does), leakwatch:Heap|Socket|Fd, for heap with a known `leak`
 * a match-leak-kinds: line, then one line per frame for at most max_frames
 * frames (0: LW_SUPP_GEN_FRAMES): fun:LINKAGE-OR-FUNCTION, or obj:MODULE
 * when the function is unknown, or obj:* when both are.  Wildcard
 * characters in names are quoted, so the entry matches this stack.
 * Returns 0, or -1 when writing failed.
 */
int lw_supp_write_valgrind(FILE *out, const char *name, enum lw_supp_kind kind,
			   enum lw_reach leak, const struct lw_frame *frames, size_t n,
			   size_t max_frames);

/*
 * lw_supp_write_lsan - write one LSan-style line for the stack: the
 * innermost frame outside the C/C++ runtime (lw_module_is_system) with a
 * function name, anchored so that it means that function only: heap
 * "leak:^NAME$" (LeakSanitizer reads it too), socket and fd
 * "leakwatch-socket:^NAME$" / "leakwatch-fd:^NAME$" (`leak:` would suppress
 * every kind).  Falls back to the innermost named frame, then to the
 * innermost module path.  Returns 0, 1 when the stack has nothing to name
 * (nothing written), -1 when writing failed.
 */
int lw_supp_write_lsan(FILE *out, enum lw_supp_kind kind, const struct lw_frame *frames, size_t n);

/*
 * lw_supp_name_frame - the function that names a stack: the innermost one
 * outside the C/C++ runtime (lw_module_is_system), else the innermost named
 * one, else NULL.  lw_supp_write_lsan writes it.
 */
const char *lw_supp_name_frame(const struct lw_frame *frames, size_t n);

/* lw_supp_kind_name - "Heap", "Socket", "Fd" (the valgrind-format kind names). */
const char *lw_supp_kind_name(enum lw_supp_kind kind);

#endif /* LEAKWATCH_SUPPRESS_H */
