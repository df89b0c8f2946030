/* SPDX-License-Identifier: MIT */
/*
 * Configuration and diagnostics for code that lives inside another process.
 *
 * `environ` is scanned once at start: getenv() later would race with a host
 * thread calling setenv().  Messages go through a tiny formatter into a stack
 * buffer and one write(2) — no stdio (it locks and allocates), no malloc.
 */
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

extern char **environ;

SHIM_HIDDEN struct shim_config g_cfg;

static unsigned g_log_budget = LW_LIM_LOG_MESSAGES;

/* env_value - value of NAME in environ, or NULL. */
static const char *env_value(const char *name)
{
	size_t n = strlen(name);
	if (!environ)
		return NULL;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* env_uint - parse a decimal value in [lo, hi], or return def. */
static uint32_t env_uint(const char *name, uint32_t def, uint32_t lo, uint32_t hi)
{
	const char *v = env_value(name);
	uint64_t x = 0;
	if (!v || !*v)
		return def;
	for (; *v; v++) {
		if (*v < '0' || *v > '9' || x > 0xffffffffull)
			return def;
		x = x * 10 + (uint64_t)(*v - '0');
	}
	if (x < lo || x > hi)
		return def;
	return (uint32_t)x;
}

static int env_true(const char *name)
{
	const char *v = env_value(name);
	return v && (strcmp(v, "1") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0);
}

void config_load(void)
{
	const char *dir = env_value("LEAKWATCH_DIR");
	if (!dir || !*dir || strlen(dir) >= sizeof g_cfg.dir)
		dir = LW_DEFAULT_DIR;
	memcpy(g_cfg.dir, dir, strlen(dir) + 1);
	g_cfg.stack_depth = env_uint("LEAKWATCH_STACK_DEPTH", 32, 1, LW_STACK_MAX_FRAMES);
	g_cfg.max_fds = env_uint("LEAKWATCH_MAX_FDS", 65536, 64, 1u << 22);
	g_cfg.max_stacks = env_uint("LEAKWATCH_MAX_STACKS", 16384, 64, 1u << 22);
	g_cfg.disabled = env_true("LEAKWATCH_DISABLE");
	g_cfg.log = env_true("LEAKWATCH_LOG");
	g_cfg.keep_empty = env_true("LEAKWATCH_KEEP_EMPTY");
	g_cfg.site_cache = env_uint("LEAKWATCH_STACK_CACHE", 1, 0, 1);

	const char *heap = env_value("LEAKWATCH_HEAP");
	if (heap && strcmp(heap, "off") == 0)
		g_cfg.heap_mode = LW_HEAP_OFF;
	else if (heap && strcmp(heap, "full") == 0)
		g_cfg.heap_mode = LW_HEAP_FULL;
	else
		g_cfg.heap_mode = LW_HEAP_SAMPLED; /* the production default */
	g_cfg.sample_bytes = env_uint("LEAKWATCH_SAMPLE_BYTES", 512 * 1024, 1, 1u << 30);
	/* full mode needs room for every live block; sampled mode for few */
	uint32_t def = g_cfg.heap_mode == LW_HEAP_FULL ? 1u << 20 : 1u << 16;
	uint32_t n = env_uint("LEAKWATCH_MAX_ALLOCS", def, 1024, 1u << 28);
	uint32_t pow2 = 1024;
	while (pow2 < n)
		pow2 <<= 1;
	g_cfg.max_allocs = g_cfg.heap_mode == LW_HEAP_OFF ? 0 : pow2;
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
