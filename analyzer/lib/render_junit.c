/* SPDX-License-Identifier: MIT */
/*
 * render_junit.c — `run --junit FILE`: what a run left behind as JUnit XML,
 * the format GitLab, Jenkins and most CI systems read as test results.
 *
 * One <testsuite> per traced process, one <testcase> per leak group — open
 * sockets, other descriptors, lost heap blocks, descriptors a Python
 * garbage collector closed — each failing, its message naming the count,
 * the kind and the site (the frame site.h names a stack by, with
 * file:line), its body the stack as the text report prints it.  A process
 * without leaks of a kind gets one passing testcase for that kind, so a
 * clean run shows as passed tests rather than as none.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapgroups.h"
#include "names.h"
#include "present.h"
#include "render.h"
#include "site.h"

/* s as XML character data or attribute text; characters XML 1.0 forbids become '?'. */
static void xml_put(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&apos;", out); break;
		default:
			fputc(c < 0x20 && c != '\n' && c != '\t' ? '?' : c, out);
		}
	}
}

/* "get_user_data (demo/api.c:330)": the frame that names a stack (site.h). */
static void site_of(struct lw_report *r, const struct lw_site_graph *cg, uint32_t stack_id, char *buf, size_t len)
{
	struct lw_frame f[LW_PRESENT_MAX_FRAMES];
	size_t n = lw_present_stack(r, stack_id, f, LW_PRESENT_MAX_FRAMES);
	const struct lw_frame *pick = lw_site_pick(cg, f, n);
	if (!pick || !pick->function) {
		snprintf(buf, len, n ? "an unnamed frame" : "an unknown site");
		return;
	}
	if (pick->file && pick->line > 0)
		snprintf(buf, len, "%s (%s:%d)", pick->function, pick->file, pick->line);
	else
		snprintf(buf, len, "%s", pick->function);
}

/* The stack, as the text report shows it, as the failure's body. */
static void stack_body(FILE *out, struct lw_report *r, uint32_t stack_id, const char *label)
{
	char cwd[4096];
	if (!getcwd(cwd, sizeof cwd))
		cwd[0] = '\0';
	struct lw_frame f[LW_PRESENT_MAX_FRAMES];
	size_t n = lw_present_stack(r, stack_id, f, LW_PRESENT_MAX_FRAMES);
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	if (!m)
		return;
	lw_render_text_frames(m, f, n, label, 12, cwd, "");
	fclose(m);
	xml_put(out, text);
	free(text);
}

static void testcase(FILE *out, const char *cls, const char *name, const char *msg, const char *type,
		     struct lw_report *r, const char *label, uint32_t stack, uint32_t stack2, const char *label2)
{
	fputs("    <testcase classname=\"", out);
	xml_put(out, cls);
	fputs("\" name=\"", out);
	xml_put(out, name);
	fputs("\" time=\"0\"", out);
	if (!msg) {
		fputs("/>\n", out);
		return;
	}
	fputs(">\n      <failure type=\"", out);
	xml_put(out, type);
	fputs("\" message=\"", out);
	xml_put(out, msg);
	fputs("\">", out);
	stack_body(out, r, stack, label);
	if (stack2)
		stack_body(out, r, stack2, label2);
	fputs("</failure>\n    </testcase>\n", out);
}

void lw_render_junit_suite(FILE *out, struct lw_report *r, size_t *tests, size_t *failures)
{
	char proc[64], cls[96], name[1024], msg[1280], site[400];
	lw_report_process_name(r, proc, sizeof proc);
	size_t t = 0, f = 0;
	char *body = NULL;
	size_t blen = 0;
	FILE *b = open_memstream(&body, &blen);
	if (!b)
		return;
	struct lw_site_graph cg = { 0 };
	lw_site_graph_update(&cg, r);
	if (lw_kind_sockets(r->opts.kind)) {
		snprintf(cls, sizeof cls, "leakwatch.%s.sockets", proc);
		size_t before = f;
		for (size_t i = 0; i < r->grouping.ngroups; i++) {
			const struct lw_group *g = &r->grouping.groups[i];
			if (g->inherited || g->supp)
				continue;
			char desc[LW_ENDPOINT_MAX + 64];
			lw_present_group(g, LW_DESCRIBE_FULL, desc, sizeof desc);
			site_of(r, &cg, g->stack_id, site, sizeof site);
			snprintf(name, sizeof name, "%s opened at %s", desc, site);
			snprintf(msg, sizeof msg, "%zu socket%s left open (%s), opened at %s", g->count,
				 g->count == 1 ? "" : "s", desc, site);
			testcase(b, cls, name, msg, "socket-leak", r, "opened at", g->stack_id, g->use_stack_id, "last used at");
			t++, f++;
		}
		for (size_t i = 0; i < r->ngc; i++) {
			const struct lw_gc_group *g = &r->gc[i];
			site_of(r, &cg, g->open_stack, site, sizeof site);
			snprintf(name, sizeof name, "%s dropped without close, opened at %s", lw_fd_kind_name(g->kind), site);
			snprintf(msg, sizeof msg, "%zu %s%s never closed by the program (closed by the garbage collector), opened at %s",
				 g->count, lw_fd_kind_name(g->kind), g->count == 1 ? "" : "s", site);
			testcase(b, cls, name, msg, "gc-closed", r, "opened at", g->open_stack, g->close_stack, "dropped at");
			t++, f++;
		}
		if (f == before) {
			testcase(b, cls, "no socket left open", NULL, NULL, r, NULL, 0, 0, NULL);
			t++;
		}
	}
	if (lw_kind_fds(r->opts.kind)) {
		snprintf(cls, sizeof cls, "leakwatch.%s.fds", proc);
		size_t before = f;
		for (size_t i = 0; i < r->fds.ngroups; i++) {
			const struct lw_fd_group *g = &r->fds.groups[i];
			if (g->inherited || g->supp)
				continue;
			const char *path = g->members[0].path[0] ? g->members[0].path : lw_fd_kind_name(lw_fd_group_kind(g));
			site_of(r, &cg, g->stack_id, site, sizeof site);
			snprintf(name, sizeof name, "%s opened at %s", path, site);
			snprintf(msg, sizeof msg, "%zu %s descriptor%s left open (%s), opened at %s", g->count,
				 lw_fd_kind_name(lw_fd_group_kind(g)), g->count == 1 ? "" : "s", path, site);
			testcase(b, cls, name, msg, "fd-leak", r, "opened at", g->stack_id, 0, NULL);
			t++, f++;
		}
		if (f == before) {
			testcase(b, cls, "no descriptor left open", NULL, NULL, r, NULL, 0, 0, NULL);
			t++;
		}
	}
	if (lw_kind_heap(r->opts.kind) && r->heap.mode != LW_HEAP_OFF) {
		snprintf(cls, sizeof cls, "leakwatch.%s.heap", proc);
		size_t before = f;
		const struct lw_heap *h = &r->heap;
		for (size_t i = 0; i < h->ngroups; i++) {
			const struct lw_heap_group *g = &h->groups[i];
			if (!lw_heap_group_is_leak(h, g))
				continue;
			char bytes[32], kind[48] = "";
			lw_bytes_format(g->bytes, bytes, sizeof bytes);
			if (h->reach_checked)
				snprintf(kind, sizeof kind, ", %s", lw_reach_label(g->reach));
			site_of(r, &cg, g->stack_id, site, sizeof site);
			snprintf(name, sizeof name, "heap blocks allocated at %s%s", site, kind);
			snprintf(msg, sizeof msg, "%s%.0f heap block%s (%s%s) left allocated%s, at %s", h->estimated ? "~" : "",
				 round(g->blocks), round(g->blocks) == 1 ? "" : "s", h->estimated ? "~" : "", bytes, kind, site);
			testcase(b, cls, name, msg, "heap-leak", r, "allocated at", g->stack_id, 0, NULL);
			t++, f++;
		}
		if (f == before) {
			testcase(b, cls, "no heap block left allocated", NULL, NULL, r, NULL, 0, 0, NULL);
			t++;
		}
	}
	fclose(b);
	lw_site_graph_free(&cg);
	fprintf(out, "  <testsuite name=\"leakwatch: pid %d (", r->snap.hdr.pid);
	xml_put(out, lw_present_command(&r->snap));
	fprintf(out, ")\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"0\">\n", t, f);
	if (body)
		fputs(body, out);
	free(body);
	fputs("  </testsuite>\n", out);
	*tests += t;
	*failures += f;
}
