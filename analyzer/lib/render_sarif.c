/* SPDX-License-Identifier: MIT */
/*
 * render_sarif.c — SARIF 2.1.0 (OASIS): what `report --format sarif`,
 * `run --format sarif` and `run --sarif FILE` write, for GitHub code
 * scanning and the other tools that read static-analysis results.
 *
 * One log, one run: tool.driver names leakwatch and its four rules (one per
 * kind of leak), each leak group is a result (render_sarif.h: lw_ci_leaks,
 * the same groups `run --junit` lists).  A result is located at the first
 * frame of the repository's own code, carries its whole stack (SARIF
 * `stacks`, and a `codeFlows` path over the frames with source lines, which
 * is what GitHub shows), and partialFingerprints that stay the same from
 * one run to the next: the same leak keeps its alert, a leak at another
 * site gets its own.  Source paths are relative to the base directory
 * (uriBaseId SRCROOT) when they lie under it, as code scanning wants them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapgroups.h"
#include "names.h"
#include "present.h"
#include "render_sarif.h"
#include "site.h"

#define SARIF_SCHEMA "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

/* ---- the rules ---------------------------------------------------------------- */

static const struct rule {
	const char *id, *name, *short_desc, *full_desc, *help;
	int warning;
	const char *tag;
} rules[LW_CI_NRULES] = {
	[LW_CI_SOCKET] = {
		"LW001", "leaked-socket", "Socket left open",
		"A socket the program created (socket, accept, connect, socketpair, received over a "
		"unix socket) was still open when the program exited, or, in a running process, is a "
		"leak suspect: its group keeps growing and sits idle, or the peer hung up (CLOSE_WAIT) "
		"and it was never closed.",
		"Close the socket on every path out of the code that opened it, or give it back to "
		"its pool. The result's stacks show where it was opened and, for sockets taken from a "
		"pool, where it was last used.",
		0, "resource-leak" },
	[LW_CI_FD] = {
		"LW002", "leaked-descriptor", "Descriptor left open",
		"A file, directory, pipe or other descriptor (not a socket) the program opened was "
		"still open when it exited, or, in a running process, is a leak suspect: more of them "
		"open than at the first snapshot.",
		"Close it (close, fclose, closedir, pclose) on every path out of the code that opened "
		"it. The result's stack shows where it was opened.",
		0, "resource-leak" },
	[LW_CI_HEAP] = {
		"LW003", "lost-heap", "Heap memory never freed",
		"Heap blocks the program allocated and never freed: live when it exited and, when "
		"reachability was checked (the default of leakwatch run), lost as valgrind memcheck "
		"says: definitely (no pointer to them is left) or indirectly (only lost blocks point "
		"to them); --leak-kinds chooses the classes. Possibly lost and still reachable blocks "
		"that --leak-kinds counts are warnings.",
		"Free the blocks once they are no longer needed. The result's stack shows where they "
		"were allocated.",
		0, "memory-leak" },
	[LW_CI_GC] = {
		"LW004", "gc-closed", "Descriptor dropped without close()",
		"A Python program dropped a socket or file without closing it; the interpreter's "
		"garbage collector closed it later, at a moment the program does not control.",
		"Close it explicitly (a with statement, or close()). The result's stacks show where it "
		"was opened and where the collector closed it.",
		1, "resource-leak" },
};

const char *lw_ci_rule_id(enum lw_ci_rule rule)
{
	return rule < LW_CI_NRULES ? rules[rule].id : "LW000";
}

const char *lw_ci_rule_name(enum lw_ci_rule rule)
{
	return rule < LW_CI_NRULES ? rules[rule].name : "unknown";
}

/* ---- paths -------------------------------------------------------------------- */

char *lw_ci_base_dir(char *buf, size_t len)
{
	const char *ws = getenv("GITHUB_WORKSPACE");
	if (ws && ws[0] == '/' && strlen(ws) < len)
		snprintf(buf, len, "%s", ws);
	else if (!getcwd(buf, len))
		buf[0] = '\0';
	/* "/repo/" and "/repo" are one directory */
	size_t n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return buf;
}

/* An absolute path without "", "." and ".." components (lexically: symlinks are not followed). */
static void path_normalize(const char *in, char *out, size_t len)
{
	size_t o = 0;
	out[0] = '\0';
	for (const char *p = in; *p;) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;   /* the slash before the component */
			out[o] = '\0';
		} else if (o + 1 + n < len) {
			out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
			out[o] = '\0';
		}
		p = e;
	}
	if (o == 0 && len > 1)
		snprintf(out, len, "/");
}

/* An absolute path relative to base when under it (1), else as it is (0). */
static int path_in_base(const char *abs, const char *base, char *out, size_t len)
{
	size_t n = base ? strlen(base) : 0;
	if (n > 1 && base[0] == '/' && strncmp(abs, base, n) == 0 && abs[n] == '/') {
		snprintf(out, len, "%s", abs + n + 1);
		return 1;
	}
	snprintf(out, len, "%s", abs);
	return 0;
}

int lw_ci_frame_path(const struct lw_frame *f, const char *base, char *out, size_t len)
{
	out[0] = '\0';
	if (!f->file || !f->file[0])
		return -1;
	char cwd[PATH_MAX], joined[3 * PATH_MAX], norm[PATH_MAX];
	const char *dir = f->comp_dir;
	if (f->file[0] == '/') {
		snprintf(joined, sizeof joined, "%s", f->file);
	} else if (dir && dir[0] == '/') {
		/* DWARF names files relative to the unit's compilation directory */
		snprintf(joined, sizeof joined, "%s/%s", dir, f->file);
	} else {
		/* a relative compilation directory (-fdebug-prefix-map=$PWD=.) is
		 * relative to a build root the binary does not name, a Python file
		 * name to the process's directory at import: taken as relative to
		 * ours only when the file is there (Debian's libc says "./csu") */
		if (!getcwd(cwd, sizeof cwd))
			cwd[0] = '\0';
		snprintf(joined, sizeof joined, "%s/%s%s%s", cwd, dir && dir[0] ? dir : "", dir && dir[0] ? "/" : "",
			 f->file);
		path_normalize(joined, norm, sizeof norm);
		if (access(norm, F_OK) != 0) {
			snprintf(out, len, "%s", f->file);
			return -2;
		}
	}
	path_normalize(joined, norm, sizeof norm);
	return path_in_base(norm, base, out, len);
}

/* 1 when a stack holds Python frames: the program's own code is those
 * alone, the interpreter's C frames are not (and change with its version). */
static int stack_python(const struct lw_frame *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].python)
			return 1;
	return 0;
}

/* A frame of the program's own code, not the C/C++ runtime's (or the interpreter's). */
static int frame_own(const struct lw_frame *f, int python)
{
	return python ? f->python : !lw_module_is_system(f->module);
}

void lw_ci_site(const struct lw_frame *frames, size_t n, const char *base, struct lw_ci_site *site)
{
	lw_ci_site_named(frames, n, NULL, base, site);
}

void lw_ci_site_named(const struct lw_frame *frames, size_t n, const struct lw_frame *named, const char *base,
		      struct lw_ci_site *site)
{
	char path[PATH_MAX];
	int pick = -1, py = stack_python(frames, n);
	memset(site, 0, sizeof *site);
	site->frame = -1;
	/* the frame that names the stack (site.h: the one top's WHERE and the
	 * exporter show), when it has a source line the reader can open */
	if (named && named->function && named->line > 0 && named->file &&
	    (frame_own(named, py) || lw_ci_frame_path(named, base, path, sizeof path) == 1))
		pick = (int)(named - frames);
	/*
	 * 0: a line in base; 1: a line of its own code; 2: a line of a file we
	 * can place; 3: a named frame of its own; 4: any frame of its own.  The
	 * C runtime's frames below main() never name a leak.
	 */
	for (int pass = 0; pass < 5 && pick < 0; pass++)
		for (size_t i = 0; i < n && pick < 0; i++) {
			const struct lw_frame *f = &frames[i];
			if (f->function && lw_present_runtime_frame(f->function))
				continue;
			int own = frame_own(f, py), lined = f->line > 0 && f->file;
			int rel = lined ? lw_ci_frame_path(f, base, path, sizeof path) : -1;
			if ((pass == 0 && lined && rel == 1) || (pass == 1 && lined && own) ||
			    (pass == 2 && lined && rel >= 0) || (pass == 3 && f->function && own) || (pass == 4 && own))
				pick = (int)i;
		}
	if (pick < 0)
		return;
	const struct lw_frame *f = &frames[pick];
	site->frame = pick;
	site->function = f->function;
	if (!f->function)
		lw_frame_format_location(f, site->unnamed, sizeof site->unnamed);
	site->in_base = lw_ci_frame_path(f, base, site->path, sizeof site->path) == 1;
	site->line = f->line;
}

/* ---- the leak groups ------------------------------------------------------------ */

/* "get_user_data (demo/api.c:330)": the site in a message. */
static void site_text(const struct lw_ci_site *s, size_t nframes, char *buf, size_t len)
{
	int w;
	if (s->frame >= 0 && !s->function)
		w = snprintf(buf, len, "%s", s->unnamed);
	else if (!s->function)
		w = snprintf(buf, len, nframes ? "an unnamed frame" : "an unknown site");
	else if (s->path[0] && s->line > 0)
		w = snprintf(buf, len, "%s (%s:%d)", s->function, s->path, s->line);
	else
		w = snprintf(buf, len, "%s", s->function);
	if (w >= (int)len && len >= 4)
		memcpy(buf + len - 4, "...", 4);   /* a very long path: cut visibly */
}

/* Fill l->site from l->stack, and the site's words for the message. */
static void leak_site(struct lw_report *r, const struct lw_site_graph *cg, struct lw_ci_leak *l, const char *base,
		      char *text, size_t len)
{
	struct lw_frame f[LW_PRESENT_MAX_FRAMES];
	size_t n = lw_present_stack(r, l->stack, f, LW_PRESENT_MAX_FRAMES);
	lw_ci_site_named(f, n, lw_site_pick(cg, f, n), base, &l->site);
	site_text(&l->site, n, text, len);
	lw_present_scrub(text);
}

size_t lw_ci_leaks(struct lw_report *r, int left_behind, const char *base,
		   void (*fn)(void *ctx, struct lw_report *r, const struct lw_ci_leak *leak), void *ctx)
{
	/* an exec'd image's descriptors died with exec or live on in the next image */
	if (r->live == LW_LIVE_EXECED)
		return 0;
	int ended = left_behind || lw_report_ended(r);
	size_t found = 0;
	char site[1024], desc[LW_ENDPOINT_MAX + LW_FDPATH_MAX + 64], disc[64];
	struct lw_ci_leak *l = malloc(sizeof *l);
	if (!l)
		return 0;
	struct lw_site_graph cg = { 0 };
	lw_site_graph_update(&cg, r);
	if (lw_kind_sockets(r->opts.kind))
		for (size_t i = 0; i < r->grouping.ngroups; i++) {
			const struct lw_group *g = &r->grouping.groups[i];
			if (g->inherited || g->supp || (!ended && g->verdict != LW_V_LEAK_SUSPECT))
				continue;
			memset(l, 0, sizeof *l);
			l->rule = LW_CI_SOCKET;
			int by_use = lw_present_use_first(g) && g->use_stack_id;
			l->stack = by_use ? g->use_stack_id : g->stack_id;
			l->label = by_use ? "last used at" : "opened at";
			l->stack2 = by_use ? g->stack_id : g->use_stack_id;
			l->label2 = by_use ? "opened at" : "last used at";
			snprintf(disc, sizeof disc, "%s/%s", lw_family_name(g->family), lw_type_name(g->type));
			l->discriminator = disc;
			l->count = (double)g->count;
			lw_present_group(g, LW_DESCRIBE_FULL, desc, sizeof desc);
			leak_site(r, &cg, l, base, site, sizeof site);
			snprintf(l->message, sizeof l->message, "%zu socket%s %s (%s), %s %s", g->count,
				 g->count == 1 ? "" : "s", ended ? "left open" : "open, leak suspect", desc, l->label, site);
			fn(ctx, r, l);
			found++;
		}
	for (size_t i = 0; i < r->ngc; i++) {
		const struct lw_gc_group *g = &r->gc[i];
		if (g->kind == LW_FD_SOCKET ? !lw_kind_sockets(r->opts.kind) : !lw_kind_fds(r->opts.kind))
			continue;
		memset(l, 0, sizeof *l);
		l->rule = LW_CI_GC;
		l->warning = rules[LW_CI_GC].warning;
		l->stack = g->open_stack;
		l->label = "opened at";
		l->stack2 = g->close_stack;
		l->label2 = "dropped at";
		l->discriminator = lw_fd_kind_name(g->kind);
		l->count = (double)g->count;
		leak_site(r, &cg, l, base, site, sizeof site);
		snprintf(l->message, sizeof l->message,
			 "%zu %s%s never closed by the program (closed by the garbage collector), opened at %s", g->count,
			 lw_fd_kind_name(g->kind), g->count == 1 ? "" : "s", site);
		fn(ctx, r, l);
		found++;
	}
	if (lw_kind_fds(r->opts.kind))
		for (size_t i = 0; i < r->fds.ngroups; i++) {
			const struct lw_fd_group *g = &r->fds.groups[i];
			if (g->inherited || g->supp || (!ended && g->verdict != LW_FDV_LEAK_SUSPECT))
				continue;
			memset(l, 0, sizeof *l);
			l->rule = LW_CI_FD;
			l->stack = g->stack_id;
			l->label = "opened at";
			/* the recorded kind: what /proc says now may differ between runs */
			l->discriminator = lw_fd_kind_name(g->kind);
			l->count = (double)g->count;
			const char *kind = lw_fd_kind_name(lw_fd_group_kind(g));
			snprintf(desc, sizeof desc, "%s", g->members[0].path[0] ? g->members[0].path : kind);
			lw_present_scrub(desc);
			leak_site(r, &cg, l, base, site, sizeof site);
			snprintf(l->message, sizeof l->message, "%zu %s descriptor%s %s (%s), opened at %s", g->count, kind,
				 g->count == 1 ? "" : "s", ended ? "left open" : "open, leak suspect", desc, site);
			fn(ctx, r, l);
			found++;
		}
	const struct lw_heap *h = &r->heap;
	/* live memory of a running process is not a leak by itself: only what a
	 * reachability check found lost */
	if (lw_kind_heap(r->opts.kind) && h->mode != LW_HEAP_OFF && (ended || h->reach_checked))
		for (size_t i = 0; i < h->ngroups; i++) {
			const struct lw_heap_group *g = &h->groups[i];
			if (!lw_heap_group_is_leak(h, g))
				continue;
			memset(l, 0, sizeof *l);
			l->rule = LW_CI_HEAP;
			l->warning = g->reach == LW_REACH_POSSIBLE || g->reach == LW_REACH_REACHABLE;
			l->stack = g->stack_id;
			l->label = "allocated at";
			l->discriminator = "";
			l->count = round(g->blocks);
			char bytes[32], kind[48] = "";
			lw_bytes_format(g->bytes, bytes, sizeof bytes);
			if (h->reach_checked)
				snprintf(kind, sizeof kind, ", %s", lw_reach_label(g->reach));
			leak_site(r, &cg, l, base, site, sizeof site);
			snprintf(l->message, sizeof l->message, "%s%.0f heap block%s (%s%s) %s%s, at %s", h->estimated ? "~" : "",
				 round(g->blocks), round(g->blocks) == 1 ? "" : "s", h->estimated ? "~" : "", bytes,
				 ended ? "left allocated" : "allocated", kind, site);
			fn(ctx, r, l);
			found++;
		}
	free(l);
	lw_site_graph_free(&cg);
	return found;
}

/* ---- SARIF ---------------------------------------------------------------------- */

/* A path as a URI reference: RFC 3986 unreserved characters and "/" as they
 * are, every other byte percent-encoded (':' too, so that a relative path
 * never reads as a scheme); absolute paths as file:// URIs. */
static void json_uri(struct lw_json *j, const char *key, const char *path, int relative)
{
	char buf[3 * PATH_MAX + 16];
	size_t o = 0;
	if (!relative)
		o = (size_t)snprintf(buf, sizeof buf, "file://");
	for (const unsigned char *p = (const unsigned char *)path; *p && o + 4 < sizeof buf; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~/", *p))
			buf[o++] = (char)*p;
		else
			o += (size_t)snprintf(buf + o, sizeof buf - o, "%%%02X", *p);
	}
	buf[o] = '\0';
	lw_json_str(j, key, buf);
}

/* Where a path is: in the base directory, absolute, or a name relative to nothing known. */
enum where { W_ABSOLUTE = 0, W_IN_BASE = 1, W_NAME = 2 };

/* {"artifactLocation": {...}, "region": {"startLine": N}} of a resolved path. */
static void json_physical(struct lw_json *j, const char *path, enum where w, int line)
{
	lw_json_begin_object(j, "physicalLocation");
	lw_json_begin_object(j, "artifactLocation");
	json_uri(j, "uri", path, w != W_ABSOLUTE);
	if (w == W_IN_BASE)
		lw_json_str(j, "uriBaseId", "SRCROOT");
	lw_json_end_object(j);
	if (line > 0) {
		lw_json_begin_object(j, "region");
		lw_json_int(j, "startLine", line);
		lw_json_end_object(j);
	}
	lw_json_end_object(j);
}

static void json_message(struct lw_json *j, const char *key, const char *text)
{
	lw_json_begin_object(j, key);
	lw_json_str(j, "text", text);
	lw_json_end_object(j);
}

/* A frame as a SARIF location: its source line, its function as a logical location. */
static void json_frame_location(struct lw_json *j, const struct lw_frame *f, const char *base, int with_message)
{
	char path[PATH_MAX], loc[LW_PATH_MAX + 32];
	int rel = lw_ci_frame_path(f, base, path, sizeof path);
	lw_json_begin_object(j, "location");
	if (rel >= 0)
		json_physical(j, path, rel == 1 ? W_IN_BASE : W_ABSOLUTE, f->line);
	const char *name = f->function ? f->function : lw_frame_format_location(f, loc, sizeof loc);
	lw_json_begin_array(j, "logicalLocations");
	lw_json_begin_object(j, NULL);
	lw_json_str(j, "name", name);
	if (f->linkage)
		lw_json_str(j, "decoratedName", f->linkage);
	if (f->function)
		lw_json_str(j, "kind", "function");
	lw_json_end_object(j);
	lw_json_end_array(j);
	if (with_message)
		json_message(j, "message", name);
	lw_json_end_object(j);
}

static void json_stack(struct lw_json *j, const struct lw_frame *f, size_t n, const char *label, const char *base)
{
	lw_json_begin_object(j, NULL);
	json_message(j, "message", label);
	lw_json_begin_array(j, "frames");
	for (size_t i = 0; i < n; i++) {
		lw_json_begin_object(j, NULL);
		json_frame_location(j, &f[i], base, 0);
		if (f[i].module)
			lw_json_str(j, "module", f[i].module);
		lw_json_begin_object(j, "properties");
		if (f[i].module)
			lw_json_hex(j, "moduleOffset", f[i].module_off);
		if (f[i].inlined)
			lw_json_bool(j, "inlined", 1);
		if (f[i].python)
			lw_json_bool(j, "python", 1);
		lw_json_end_object(j);
		lw_json_end_object(j);
	}
	lw_json_end_array(j);
	lw_json_end_object(j);
}

/* The frames a codeFlow walks: with a source line of a known file, above the C runtime's start. */
static int flow_frame(const struct lw_frame *f, const char *base)
{
	char path[PATH_MAX];
	return f->line > 0 && !(f->function && lw_present_runtime_frame(f->function)) &&
	       lw_ci_frame_path(f, base, path, sizeof path) >= 0;
}

/* The stack as a path from the outermost call to the leak: what GitHub shows. */
static void json_code_flow(struct lw_json *j, const struct lw_frame *f, size_t n, const char *label, const char *base)
{
	size_t shown = 0;
	for (size_t i = 0; i < n; i++)
		shown += flow_frame(&f[i], base);
	if (!shown)
		return;   /* threadFlow.locations needs one at least */
	lw_json_begin_object(j, NULL);
	json_message(j, "message", label);
	lw_json_begin_array(j, "threadFlows");
	lw_json_begin_object(j, NULL);
	lw_json_begin_array(j, "locations");
	for (size_t i = n; i-- > 0;) {
		if (!flow_frame(&f[i], base))
			continue;
		lw_json_begin_object(j, NULL);
		json_frame_location(j, &f[i], base, 1);
		lw_json_end_object(j);
	}
	lw_json_end_array(j);
	lw_json_end_object(j);
	lw_json_end_array(j);
	lw_json_end_object(j);
}

/* FNV-1a, 64 bits: a fingerprint needs to be stable and spread, not secret. */
static void fnv_add(uint64_t *h, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		*h ^= *p;
		*h *= 0x100000001b3ULL;
	}
	*h ^= 0xff;   /* a field separator no UTF-8 text contains */
	*h *= 0x100000001b3ULL;
}

/*
 * The frames that identify a leak from one run to the next: the program's
 * own (a stack with Python frames: those alone, the interpreter's C frames
 * change with its version), not the C runtime's below main().  Each as its
 * function (or module+offset), and for `with_lines` its file and line.
 */
static uint64_t fingerprint(const struct lw_ci_leak *l, const struct lw_frame *f, size_t n, const char *base,
			    int with_lines)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	char path[PATH_MAX], loc[LW_PATH_MAX + 32], line[16];
	int python = stack_python(f, n), own = 0;
	for (size_t i = 0; i < n; i++)
		own |= frame_own(&f[i], python);
	fnv_add(&h, lw_ci_rule_id(l->rule));
	fnv_add(&h, l->discriminator ? l->discriminator : "");
	for (size_t i = 0; i < n; i++) {
		if (own && !frame_own(&f[i], python))
			continue;
		if (f[i].function && lw_present_runtime_frame(f[i].function))
			continue;
		if (f[i].function) {
			fnv_add(&h, f[i].function);
		} else {
			/* a module's own offset is stable for the same build; its address is not */
			const char *m = f[i].module ? strrchr(f[i].module, '/') : NULL;
			snprintf(loc, sizeof loc, "%s+0x%llx", m ? m + 1 : f[i].module ? f[i].module : "?",
				 (unsigned long long)f[i].module_off);
			fnv_add(&h, loc);
		}
		if (with_lines) {
			lw_ci_frame_path(&f[i], base, path, sizeof path);
			fnv_add(&h, path);
			snprintf(line, sizeof line, "%d", f[i].line);
			fnv_add(&h, line);
		}
	}
	return h;
}

static void sarif_result(void *ctx, struct lw_report *r, const struct lw_ci_leak *l)
{
	struct lw_sarif *s = ctx;
	struct lw_json *j = &s->j;
	struct lw_frame *f = malloc(2 * LW_PRESENT_MAX_FRAMES * sizeof *f), *f2 = f + LW_PRESENT_MAX_FRAMES;
	if (!f)
		return;
	size_t n = lw_present_stack(r, l->stack, f, LW_PRESENT_MAX_FRAMES);
	size_t n2 = l->stack2 ? lw_present_stack(r, l->stack2, f2, LW_PRESENT_MAX_FRAMES) : 0;
	char hex[24];

	lw_json_begin_object(j, NULL);
	lw_json_str(j, "ruleId", lw_ci_rule_id(l->rule));
	lw_json_int(j, "ruleIndex", l->rule);
	lw_json_str(j, "level", l->warning ? "warning" : "error");
	json_message(j, "message", l->message);
	/* GitHub code scanning refuses a whole upload when one result has no
	 * physicalLocation: without a source line, the binary it is in, or the
	 * program's executable */
	const struct lw_frame *sf = l->site.frame >= 0 ? &f[l->site.frame] : NULL;
	char path[PATH_MAX];
	int rel = sf ? lw_ci_frame_path(sf, s->base, path, sizeof path) : -1;
	lw_json_begin_array(j, "locations");
	lw_json_begin_object(j, NULL);
	if (rel >= 0) {
		json_physical(j, path, rel == 1 ? W_IN_BASE : W_ABSOLUTE, sf->line);
	} else {
		const char *bin = sf && sf->module && sf->module[0] == '/' ? sf->module : r->snap.hdr.exe;
		enum where w = W_NAME;   /* no absolute path known at all: the command's name */
		if (bin[0] == '/')
			w = path_in_base(bin, s->base, path, sizeof path) ? W_IN_BASE : W_ABSOLUTE;
		else
			snprintf(path, sizeof path, "%s", bin[0] ? bin : "unknown");
		json_physical(j, path, w, 0);
	}
	if (sf && sf->function) {
		lw_json_begin_array(j, "logicalLocations");
		lw_json_begin_object(j, NULL);
		lw_json_str(j, "name", sf->function);
		lw_json_str(j, "kind", "function");
		lw_json_end_object(j);
		lw_json_end_array(j);
	}
	lw_json_end_object(j);
	lw_json_end_array(j);
	lw_json_begin_object(j, "partialFingerprints");
	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fingerprint(l, f, n, s->base, 1));
	lw_json_str(j, "leakwatchStack/v1", hex);
	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fingerprint(l, f, n, s->base, 0));
	lw_json_str(j, "leakwatchFunctions/v1", hex);
	lw_json_end_object(j);
	if (n) {
		lw_json_begin_array(j, "stacks");
		json_stack(j, f, n, l->label, s->base);
		if (n2)
			json_stack(j, f2, n2, l->label2, s->base);
		lw_json_end_array(j);
		lw_json_begin_array(j, "codeFlows");
		json_code_flow(j, f, n, l->label, s->base);
		if (n2)
			json_code_flow(j, f2, n2, l->label2, s->base);
		lw_json_end_array(j);
	}
	lw_json_begin_object(j, "properties");
	lw_json_int(j, "pid", r->snap.hdr.pid);
	lw_json_str(j, "command", lw_present_command(&r->snap));
	lw_json_str(j, "rule", lw_ci_rule_name(l->rule));
	lw_json_count(j, "count", l->count);
	lw_json_end_object(j);
	lw_json_end_object(j);
	free(f);
	s->nresults++;
}

void lw_sarif_begin(struct lw_sarif *s, FILE *out, const char *tool_version, int left_behind)
{
	memset(s, 0, sizeof *s);
	lw_ci_base_dir(s->base, sizeof s->base);
	s->left_behind = left_behind;
	struct lw_json *j = &s->j;
	lw_json_init(j, out);
	lw_json_begin_object(j, NULL);
	lw_json_str(j, "$schema", SARIF_SCHEMA);
	lw_json_str(j, "version", "2.1.0");
	lw_json_begin_array(j, "runs");
	lw_json_begin_object(j, NULL);
	lw_json_begin_object(j, "tool");
	lw_json_begin_object(j, "driver");
	lw_json_str(j, "name", "leakwatch");
	lw_json_str(j, "version", tool_version);
	lw_json_begin_array(j, "rules");
	for (int i = 0; i < LW_CI_NRULES; i++) {
		const struct rule *ru = &rules[i];
		lw_json_begin_object(j, NULL);
		lw_json_str(j, "id", ru->id);
		lw_json_str(j, "name", ru->name);
		json_message(j, "shortDescription", ru->short_desc);
		json_message(j, "fullDescription", ru->full_desc);
		json_message(j, "help", ru->help);
		lw_json_begin_object(j, "defaultConfiguration");
		lw_json_str(j, "level", ru->warning ? "warning" : "error");
		lw_json_end_object(j);
		lw_json_begin_object(j, "properties");
		lw_json_begin_array(j, "tags");
		lw_json_str(j, NULL, "reliability");
		lw_json_str(j, NULL, ru->tag);
		lw_json_end_array(j);
		lw_json_str(j, "precision", "high");
		lw_json_end_object(j);
		lw_json_end_object(j);
	}
	lw_json_end_array(j);
	lw_json_end_object(j);
	lw_json_end_object(j);
	if (s->base[0] == '/') {
		lw_json_begin_object(j, "originalUriBaseIds");
		lw_json_begin_object(j, "SRCROOT");
		char uri[PATH_MAX + 2];
		snprintf(uri, sizeof uri, "%s%s", s->base, strcmp(s->base, "/") ? "/" : "");
		json_uri(j, "uri", uri, 0);   /* a base URI ends with a slash */
		lw_json_end_object(j);
		lw_json_end_object(j);
	}
	lw_json_begin_array(j, "results");
}

void lw_sarif_add(struct lw_sarif *s, struct lw_report *r)
{
	lw_ci_leaks(r, s->left_behind, s->base, sarif_result, s);
}

int lw_sarif_end(struct lw_sarif *s, const struct lw_sarif_invocation *inv)
{
	struct lw_json *j = &s->j;
	lw_json_end_array(j);
	lw_json_begin_array(j, "invocations");
	lw_json_begin_object(j, NULL);
	lw_json_bool(j, "executionSuccessful", inv ? inv->successful : 1);
	if (inv && inv->notes && inv->notes[0]) {
		lw_json_begin_array(j, "toolExecutionNotifications");
		for (const char *p = inv->notes; *p;) {
			const char *e = strchrnul(p, '\n');
			char line[1024];
			snprintf(line, sizeof line, "%.*s", (int)(e - p), p);
			if (line[0]) {
				lw_json_begin_object(j, NULL);
				json_message(j, "message", line);
				lw_json_str(j, "level", "error");
				lw_json_end_object(j);
			}
			p = *e ? e + 1 : e;
		}
		lw_json_end_array(j);
	}
	if (inv && inv->argv) {
		lw_json_begin_object(j, "properties");
		lw_json_begin_array(j, "command");
		for (char *const *a = inv->argv; *a; a++)
			lw_json_str(j, NULL, *a);
		lw_json_end_array(j);
		if (inv->exited)
			lw_json_int(j, "commandExitStatus", inv->exit_status);
		if (inv->signal)
			lw_json_int(j, "commandSignal", inv->signal);
		lw_json_end_object(j);
	}
	lw_json_end_object(j);
	lw_json_end_array(j);
	lw_json_end_object(j);
	lw_json_end_array(j);
	lw_json_end_object(j);
	fputc('\n', j->out);
	return lw_json_error(j);
}
