/* SPDX-License-Identifier: MIT */
/*
 * Configuration and diagnostics for code that lives inside another process.
 *
 * `environ` is scanned once at start: getenv() later would race with a host
 * thread calling setenv().  Messages go through a tiny formatter into a stack
 * buffer and one write(2) — no stdio (it locks and allocates), no malloc.
 */
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

extern char **environ;

SHIM_HIDDEN struct shim_config g_cfg;

static unsigned g_log_budget = LW_LIM_LOG_MESSAGES;

/*
 * The shim's options: the one place that gives their defaults and bounds.
 * A value that does not parse or is out of bounds is logged (LEAKWATCH_LOG=1),
 * counted (LW_CTR_CONFIG_INVALID) and replaced by the default: the host
 * runs on, traced as documented.  An empty value is the same as none.
 */
enum opt_type {
	OPT_BOOL,                       /* 1/yes/true or 0/no/false */
	OPT_UINT,                       /* decimal in [lo, hi] */
	OPT_PATH,                       /* a string shorter than LW_PATH_MAX */
	OPT_HEAP,                       /* off | sampled | full */
	OPT_SIZE,                       /* bytes (K, M, G suffixes) or N% of the filesystem */
};

struct opt {
	const char *name;
	enum opt_type type;
	size_t off, size;               /* the field of struct shim_config */
	uint64_t def, lo, hi;           /* def 0 for MAX_ALLOCS: by heap mode */
	const char *help;
};

#define FIELD(f) offsetof(struct shim_config, f), sizeof(((struct shim_config *)0)->f)

static const struct opt g_opts[] = {
	/* first: the others log through it */
	{ "LEAKWATCH_LOG", OPT_BOOL, FIELD(log), 0, 0, 1,
	  "1: the shim prints its own problems on stderr (a few lines at most)" },
	{ "LEAKWATCH_DISABLE", OPT_BOOL, FIELD(disabled), 0, 0, 1, "1: the shim does nothing" },
	{ "LEAKWATCH_DIR", OPT_PATH, FIELD(dir), 0, 0, 0,
	  "where leakwatch.<pid> segments are created (default " LW_DEFAULT_DIR ")" },
	{ "LEAKWATCH_HEAP", OPT_HEAP, FIELD(heap_mode), LW_HEAP_SAMPLED, 0, 0,
	  "heap tracking: off, sampled or full" },
	{ "LEAKWATCH_SAMPLE_BYTES", OPT_UINT, FIELD(sample_bytes), 512 * 1024, 1, 1u << 30,
	  "sampled mode: mean bytes allocated between two samples" },
	{ "LEAKWATCH_MAX_ALLOCS", OPT_UINT, FIELD(max_allocs), 1u << 28, 1024, 1u << 30,
	  "live heap blocks recorded at most (the table grows with the live set up to this)" },
	{ "LEAKWATCH_STACK_DEPTH", OPT_UINT, FIELD(stack_depth), 32, 1, LW_STACK_MAX_FRAMES,
	  "frames captured per stack" },
	{ "LEAKWATCH_MAX_FDS", OPT_UINT, FIELD(max_fds), 1u << 30, 64, 1u << 30,
	  "descriptors recorded: fd numbers from this one up are counted as dropped" },
	{ "LEAKWATCH_MAX_STACKS", OPT_UINT, FIELD(max_stacks), 1u << 22, 64, 1u << 26,
	  "distinct stacks stored at most (the table grows up to this)" },
	{ "LEAKWATCH_BUDGET", OPT_SIZE, FIELD(budget), 25, 0, 0,
	  "space for all segments of the directory: bytes (K, M, G) or N% of its filesystem; 0: no budget" },
	{ "LEAKWATCH_STACK_CACHE", OPT_UINT, FIELD(site_cache), 1, 0, 1,
	  "0 disables the call-site stack cache" },
	{ "LEAKWATCH_PYTHON", OPT_BOOL, FIELD(python), 1, 0, 1,
	  "0: no Python frames in the stacks of a CPython process (C frames only)" },
	{ "LEAKWATCH_KEEP_EMPTY", OPT_BOOL, FIELD(keep_empty), 0, 0, 1,
	  "1 keeps segments of processes that recorded nothing" },
	{ "LEAKWATCH_REACH_WAIT", OPT_UINT, FIELD(reach_wait_ms), 0, 0, 600000,
	  "milliseconds a process with live heap blocks waits at exit for LEAKWATCH_RUN_PID to scan it (0: no wait)" },
	{ "LEAKWATCH_RUN_PID", OPT_UINT, FIELD(run_pid), 0, 0, 1u << 22,
	  "the `leakwatch run` that scans processes at exit (set by it)" },
};

/* env_value - value of NAME in env, or NULL. */
static const char *env_value(char *const *env, const char *name)
{
	size_t n = strlen(name);
	if (!env)
		return NULL;
	for (char *const *e = env; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* parse_uint - decimal v in [lo, hi] into *out; -1 when it is not one. */
static int parse_uint(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t x = 0;
	for (; *v; v++) {
		if (*v < '0' || *v > '9' || x > 0xffffffffull)
			return -1;
		x = x * 10 + (uint64_t)(*v - '0');
	}
	if (x < lo || x > hi)
		return -1;
	*out = x;
	return 0;
}

/* parse_size - "N", "N[KMG]" (binary units) or "N%" (1..100): bytes into
 * *out with *pct 0, or a percentage into *out with *pct 1. */
static int parse_size(const char *v, uint64_t *out, uint32_t *pct)
{
	uint64_t x = 0;
	const char *p = v;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (x > (1ull << 40))
			return -1;
		x = x * 10 + (uint64_t)(*p - '0');
	}
	if (p == v)
		return -1;
	*pct = 0;
	switch (*p) {
	case '\0': break;
	case 'k': case 'K': x <<= 10; p++; break;
	case 'm': case 'M': x <<= 20; p++; break;
	case 'g': case 'G': x <<= 30; p++; break;
	case '%':
		if (x < 1 || x > 100)
			return -1;
		*pct = 1;
		p++;
		break;
	default: return -1;
	}
	if (*p)
		return -1;
	*out = x;
	return 0;
}

static int parse_word(const char *v, const char *const *words, uint64_t *out)
{
	for (uint64_t i = 0; words[i]; i++)
		if (strcmp(v, words[i]) == 0) {
			*out = i;
			return 0;
		}
	return -1;
}

static void field_set(const struct opt *o, uint64_t v)
{
	char *f = (char *)&g_cfg + o->off;
	if (o->size == sizeof(uint64_t)) {
		memcpy(f, &v, sizeof v);
	} else {
		uint32_t w = (uint32_t)v;
		memcpy(f, &w, sizeof w);
	}
}

/* opt_apply - set o from its value v (NULL: unset).  Returns -1 when v is
 * invalid (the default is set then). */
static int opt_apply(const struct opt *o, const char *v)
{
	static const char *const bools[] = { "0", "1", "no", "yes", "false", "true", NULL };
	static const char *const heap[] = { "off", "sampled", "full", NULL };
	int bad = 0;
	uint64_t x = o->def;

	if (o->type == OPT_PATH) {
		const char *dir = LW_DEFAULT_DIR;
		if (v && *v && strlen(v) < sizeof g_cfg.dir)
			dir = v;
		else if (v && *v)
			bad = 1;
		memcpy(g_cfg.dir, dir, strlen(dir) + 1);
		return bad ? -1 : 0;
	}
	if (v && *v) {
		switch (o->type) {
		case OPT_BOOL:
			bad = parse_word(v, bools, &x) != 0;
			x &= 1; /* the words alternate false, true */
			break;
		case OPT_HEAP:
			/* enum lw_heap_mode follows the words */
			bad = parse_word(v, heap, &x) != 0;
			break;
		case OPT_SIZE: {
			uint32_t pct = 0;
			bad = parse_size(v, &x, &pct) != 0;
			if (!bad && pct) {
				g_cfg.budget_pct = (uint32_t)x;
				x = 0;
			} else if (!bad) {
				g_cfg.budget_pct = 0;
			}
			break;
		}
		default:
			bad = parse_uint(v, o->lo, o->hi, &x) != 0;
			break;
		}
	}
	if (bad)
		x = o->def;
	if (o->type == OPT_SIZE && (bad || !v || !*v)) {
		/* the default is a share of the filesystem */
		g_cfg.budget_pct = (uint32_t)o->def;
		x = 0;
	}
	field_set(o, x);
	return bad ? -1 : 0;
}

/* opt_complain - log a rejected value and what was expected. */
static void opt_complain(const struct opt *o, const char *v)
{
	switch (o->type) {
	case OPT_UINT:
		shim_log("%s=%s: not a number in %lu..%lu (%s); using the default", o->name, v,
			 (unsigned long)o->lo, (unsigned long)o->hi, o->help);
		break;
	case OPT_BOOL:
		shim_log("%s=%s: not 0, 1, no, yes, false or true; using the default", o->name, v);
		break;
	case OPT_HEAP:
		shim_log("%s=%s: not off, sampled or full; using the default", o->name, v);
		break;
	case OPT_SIZE:
		shim_log("%s=%s: not bytes (K, M, G) or a percentage 1%%..100%%; using %u%%", o->name, v,
			 (unsigned)o->def);
		break;
	case OPT_PATH:
		shim_log("%s: longer than %u bytes; using " LW_DEFAULT_DIR, o->name,
			 (unsigned)LW_PATH_MAX - 1);
		break;
	}
}

void config_parse(char *const *env)
{
	memset(&g_cfg, 0, sizeof g_cfg);
	for (size_t i = 0; i < sizeof g_opts / sizeof g_opts[0]; i++) {
		const struct opt *o = &g_opts[i];
		const char *v = env_value(env, o->name);
		if (opt_apply(o, v) != 0) {
			g_cfg.invalid++;
			opt_complain(o, v);
		}
	}
	if (g_cfg.heap_mode == LW_HEAP_OFF)
		g_cfg.max_allocs = 0;
}

void config_load(void)
{
	config_parse(environ);
}

/* buf_put - append s to buf, never past cap - 1. */
static size_t buf_put(char *buf, size_t len, size_t cap, const char *s)
{
	while (*s && len + 1 < cap)
		buf[len++] = *s++;
	return len;
}

static size_t buf_num(char *buf, size_t len, size_t cap, uint64_t v, unsigned base, int neg)
{
	char tmp[24];
	int i = 0;
	do {
		tmp[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && i < (int)sizeof tmp);
	if (neg && len + 1 < cap)
		buf[len++] = '-';
	while (i > 0 && len + 1 < cap)
		buf[len++] = tmp[--i];
	return len;
}

void shim_log(const char *fmt, ...)
{
	char buf[LW_LIM_LOG_LINE];
	size_t len = 0;
	va_list ap;

	if (!g_cfg.log || g_log_budget == 0)
		return;
	g_log_budget--;
	len = buf_put(buf, len, sizeof buf, "leakwatch[shim]: ");
	va_start(ap, fmt);
	for (const char *p = fmt; *p && len + 1 < sizeof buf; p++) {
		if (*p != '%') {
			buf[len++] = *p;
			continue;
		}
		p++;
		if (*p == 'l')
			p++;
		switch (*p) {
		case 's': len = buf_put(buf, len, sizeof buf, va_arg(ap, const char *)); break;
		case 'd': {
			long v = p[-1] == 'l' ? va_arg(ap, long) : va_arg(ap, int);
			len = buf_num(buf, len, sizeof buf, v < 0 ? (uint64_t)-v : (uint64_t)v, 10, v < 0);
			break;
		}
		case 'u': {
			uint64_t v = p[-1] == 'l' ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
			len = buf_num(buf, len, sizeof buf, v, 10, 0);
			break;
		}
		case 'x': {
			uint64_t v = p[-1] == 'l' ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
			len = buf_num(buf, len, sizeof buf, v, 16, 0);
			break;
		}
		case '\0': p--; break;
		default: buf[len++] = *p; break;
		}
	}
	va_end(ap);
	if (len + 1 < sizeof buf)
		buf[len++] = '\n';
	ssize_t r = prim_write(2, buf, len);
	(void)r;
}
