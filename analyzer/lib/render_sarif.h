/* SPDX-License-Identifier: MIT */
/*
 * render_sarif.h — the CI formats: SARIF 2.1.0 (render_sarif.c: `report
 * --format sarif`, `run --format sarif`, `run --sarif FILE`, read by GitHub
 * code scanning and most code-review tools) and GitHub Actions workflow
 * commands (render_github.c: one `::error file=...,line=...::` annotation
 * per leak group when GITHUB_ACTIONS=true).
 *
 * Both name the same leaks the same way: lw_ci_leaks() walks a report's
 * leak groups (sockets, descriptors a Python garbage collector closed,
 * other descriptors, lost heap blocks) as `run --junit` does, and
 * lw_ci_site() picks the frame a leak is shown at.  docs/report-format.md
 * documents the SARIF document.
 */
#ifndef LEAKWATCH_RENDER_SARIF_H
#define LEAKWATCH_RENDER_SARIF_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "json.h"
#include "report.h"
#include "symbolize.h"
#include "leakwatch/segment.h"

/* The rules of the SARIF document: one per kind of leak, in this order. */
enum lw_ci_rule { LW_CI_SOCKET = 0, LW_CI_FD, LW_CI_HEAP, LW_CI_GC, LW_CI_NRULES };

/* lw_ci_rule_id - "LW001".."LW004"; lw_ci_rule_name - "leaked-socket", "leaked-descriptor",
 * "lost-heap", "gc-closed". */
const char *lw_ci_rule_id(enum lw_ci_rule rule);
const char *lw_ci_rule_name(enum lw_ci_rule rule);

/* Where a leak is shown: the frame lw_ci_site() picked. */
struct lw_ci_site {
	int frame;                      /* index into the stack's frames, -1: none */
	const char *function;           /* NULL: the frame has no name (or no frame) */
	char unnamed[LW_PATH_MAX + 32]; /* a frame without a name: "module+0xOFF" */
	char path[PATH_MAX];            /* its source file, relative to the base directory when
	                                   under it, else absolute; "" when unknown */
	int in_base;                    /* path is relative to the base directory */
	int line;                       /* 0: unknown */
};

/* One leak group, as the CI formats report it. */
struct lw_ci_leak {
	enum lw_ci_rule rule;
	int warning;                    /* level "warning" (possibly lost or still reachable heap,
	                                   closed by a garbage collector), else "error" */
	uint32_t stack;                 /* the stack that names it (opening, or last use) */
	const char *label;              /* "opened at", "last used at", "allocated at" */
	uint32_t stack2;                /* a second stack shown with it (0: none) */
	const char *label2;
	const char *discriminator;      /* what else than the rule and stack tells it apart
	                                   ("AF_INET/SOCK_DGRAM", "file"): part of its fingerprint */
	double count;                   /* sockets, descriptors or (estimated) heap blocks */
	char message[2048];             /* "1 socket left open (UDP (no address)), opened at
	                                   new_socket (tests/leak.c:59)" */
	struct lw_ci_site site;         /* the frame of stack it is shown at */
};

/*
 * lw_ci_base_dir - the directory source paths are made relative to: the
 * repository checkout $GITHUB_WORKSPACE when it is set and absolute, else
 * the current directory.  Writes "" when neither is known.  Returns buf.
 */
char *lw_ci_base_dir(char *buf, size_t len);

/*
 * lw_ci_frame_path - the source file of frame f resolved against its
 * compilation directory and normalized ("a/./b/../c" is "a/c"), written to
 * out relative to base when it lies under base, else absolute.  A file that
 * only a relative compilation directory or none names (Python's, or built
 * with -fdebug-prefix-map) is taken as relative to the current directory
 * when it exists there.  Returns 1 (relative to base), 0 (absolute), -1
 * when f has no file (out ""), -2 when it cannot be placed (out: the name
 * as recorded).
 */
int lw_ci_frame_path(const struct lw_frame *f, const char *base, char *out, size_t len);

/*
 * lw_ci_site - the frame a stack is shown at: the first frame with a source
 * line under base (the repository), else the first one of the program's own
 * code with a source line (a module that is not lw_module_is_system; in a
 * stack with Python frames, a Python frame), else the first with a source
 * line in a file lw_ci_frame_path can place, else the first named frame of
 * its own code, else its first frame of its own code, else none.  The C
 * runtime's frames below main() (lw_present_runtime_frame) are never picked.
 */
void lw_ci_site(const struct lw_frame *frames, size_t n, const char *base, struct lw_ci_site *site);

/* lw_ci_site_named - as lw_ci_site, but `named` (a frame of frames, or
 * NULL: the frame site.h's lw_site_pick names the stack by) comes first
 * when it has a source line of the program's own code or under base. */
void lw_ci_site_named(const struct lw_frame *frames, size_t n, const struct lw_frame *named, const char *base,
		      struct lw_ci_site *site);

/*
 * lw_ci_leaks - call fn once per leak group of r that --kind covers and no
 * suppression took, in the order sockets, descriptors closed by a garbage
 * collector, other descriptors, heap.  A socket or descriptor group counts
 * when it was not inherited and, unless left_behind (`run`: everything
 * still open at exit is left behind) or r's process has ended, when its
 * verdict is leak suspect; a heap group when lw_heap_group_is_leak.  An
 * exec'd image has none (its descriptors are counted in the next image).
 * Returns the number of groups.
 */
size_t lw_ci_leaks(struct lw_report *r, int left_behind, const char *base,
		   void (*fn)(void *ctx, struct lw_report *r, const struct lw_ci_leak *leak), void *ctx);

/* ---- SARIF 2.1.0 (render_sarif.c) ---- */

/* The `run`'s identity for the invocation object (NULL members: unknown). */
struct lw_sarif_invocation {
	char *const *argv;              /* the traced command line (run), or NULL */
	int exited;                     /* the command exited with exit_status */
	int exit_status;
	int signal;                     /* ... or was killed by this signal (0: neither known) */
	int successful;                 /* executionSuccessful: every process was traced and
	                                   every segment read */
	const char *notes;              /* lines for toolExecutionNotifications (one each), or NULL */
};

/* One SARIF document being written: lw_sarif_begin, lw_sarif_add per report, lw_sarif_end. */
struct lw_sarif {
	struct lw_json j;
	char base[PATH_MAX];            /* lw_ci_base_dir() */
	size_t nresults;
	int left_behind;                /* `run`: every group still open counts */
};

/*
 * lw_sarif_begin - start a SARIF log on out: $schema, version 2.1.0, one run
 * with tool.driver (leakwatch, version, the four rules) and
 * originalUriBaseIds (SRCROOT: the base directory), then its results.
 */
void lw_sarif_begin(struct lw_sarif *s, FILE *out, const char *tool_version, int left_behind);

/*
 * lw_sarif_add - one result per leak group of r (lw_ci_leaks): ruleId,
 * level, message, the location of its site, the stacks (SARIF stacks, and a
 * codeFlow over the frames with source lines), partialFingerprints that
 * depend only on the rule and the program's own frames (function, file,
 * line: never addresses, pids, counts or times) and properties (pid,
 * command, count).
 */
void lw_sarif_add(struct lw_sarif *s, struct lw_report *r);

/* lw_sarif_end - close the results, add the invocation (inv may be NULL) and
 * finish the document with a newline.  Returns 0, or -1 on a write error. */
int lw_sarif_end(struct lw_sarif *s, const struct lw_sarif_invocation *inv);

/* ---- GitHub Actions annotations (render_github.c) ---- */

/* lw_github_wanted - 1 when GITHUB_ACTIONS is "true" in the environment. */
int lw_github_wanted(void);

/*
 * lw_github_annotations - one workflow command per leak group of r
 * (lw_ci_leaks), "::error file=PATH,line=N,title=leakwatch LW001
 * leaked-socket::MESSAGE" ("::warning" for warnings; file and line only when
 * the site lies under the base directory), escaped as GitHub's toolkit
 * does.  Returns the number of lines written.
 */
size_t lw_github_annotations(FILE *out, struct lw_report *r, int left_behind);

/* lw_github_escape_data / lw_github_escape_property - s escaped for a workflow
 * command's message (% CR LF as %25 %0D %0A) or property value (also : and ,
 * as %3A %2C) into buf, cut to fit.  Returns buf. */
char *lw_github_escape_data(const char *s, char *buf, size_t len);
char *lw_github_escape_property(const char *s, char *buf, size_t len);

#endif /* LEAKWATCH_RENDER_SARIF_H */
