/* SPDX-License-Identifier: MIT */
/*
 * jsonread.c — the strict JSON reader (jsonread.h): recursive descent over a
 * bounded buffer, every step checked against its end, so a truncated or
 * hostile document is an error message and never a read past the input.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonread.h"

struct jp {
	const char *base, *p, *end;
	int depth;
	char *err;
	size_t errlen;
	int failed;
};

static int jp_fail(struct jp *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The first error wins: inner calls report where the input went wrong. */
static int jp_fail(struct jp *j, const char *fmt, ...)
{
	if (j->failed)
		return -1;
	j->failed = 1;
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (j->p >= j->end) {
		snprintf(j->err, j->errlen, "unexpected end of input (truncated?): %s", msg);
		return -1;
	}
	size_t line = 1, col = 1;
	for (const char *q = j->base; q < j->p; q++) {
		if (*q == '\n') {
			line++;
			col = 1;
		} else if (((unsigned char)*q & 0xc0) != 0x80) {
			col++;
		}
	}
	snprintf(j->err, j->errlen, "line %zu, column %zu: %s", line, col, msg);
	return -1;
}

static void jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r'))
		j->p++;
}

/* A growable byte buffer for one string. */
struct sbuf {
	char *s;
	size_t len, cap;
};

static int sbuf_put(struct sbuf *b, const char *src, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 32;
		while (cap < b->len + n + 1) {
			if (cap > SIZE_MAX / 2)
				return -1;
			cap *= 2;
		}
		char *s = realloc(b->s, cap);
		if (!s)
			return -1;
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, src, n);
	b->len += n;
	b->s[b->len] = '\0';
	return 0;
}

/* Length of the valid UTF-8 sequence at p (first byte >= 0x80), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	size_t n;
	unsigned lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;   /* no UTF-16 surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

static int hex4(struct jp *j, unsigned *v)
{
	*v = 0;
	if (j->end - j->p < 4) {
		j->p = j->end;
		return jp_fail(j, "a \\u escape needs four hex digits");
	}
	for (int i = 0; i < 4; i++) {
		char c = j->p[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return jp_fail(j, "a \\u escape needs four hex digits");
		*v = *v * 16 + d;
	}
	j->p += 4;
	return 0;
}

static size_t utf8_put(unsigned cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string at j->p (which is '"'); the decoded text malloc'd in *out. */
static int jp_string(struct jp *j, char **out)
{
	struct sbuf b = { 0 };
	j->p++;
	for (;;) {
		const char *run = j->p;
		while (j->p < j->end && *j->p != '"' && *j->p != '\\' && (unsigned char)*j->p >= 0x20 &&
		       (unsigned char)*j->p < 0x80)
			j->p++;
		if (j->p > run && sbuf_put(&b, run, (size_t)(j->p - run)) < 0)
			goto nomem;
		if (j->p >= j->end) {
			jp_fail(j, "unterminated string");
			goto fail;
		}
		unsigned char c = (unsigned char)*j->p;
		if (c == '"') {
			j->p++;
			break;
		}
		if (c < 0x20) {
			jp_fail(j, "control character 0x%02x in a string", c);
			goto fail;
		}
		if (c >= 0x80) {
			size_t n = utf8_seq((const unsigned char *)j->p, (const unsigned char *)j->end);
			if (!n) {
				jp_fail(j, "invalid UTF-8 in a string");
				goto fail;
			}
			if (sbuf_put(&b, j->p, n) < 0)
				goto nomem;
			j->p += n;
			continue;
		}
		/* a backslash */
		j->p++;
		if (j->p >= j->end) {
			jp_fail(j, "unterminated string");
			goto fail;
		}
		char e = *j->p++, o[4];
		size_t on = 1;
		switch (e) {
		case '"': o[0] = '"'; break;
		case '\\': o[0] = '\\'; break;
		case '/': o[0] = '/'; break;
		case 'b': o[0] = '\b'; break;
		case 'f': o[0] = '\f'; break;
		case 'n': o[0] = '\n'; break;
		case 'r': o[0] = '\r'; break;
		case 't': o[0] = '\t'; break;
		case 'u': {
			unsigned cp, lo;
			if (hex4(j, &cp) < 0)
				goto fail;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				jp_fail(j, "lone low surrogate \\u%04x", cp);
				goto fail;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u') {
					jp_fail(j, "high surrogate \\u%04x without its low half", cp);
					goto fail;
				}
				j->p += 2;
				if (hex4(j, &lo) < 0)
					goto fail;
				if (lo < 0xdc00 || lo > 0xdfff) {
					jp_fail(j, "high surrogate \\u%04x without its low half", cp);
					goto fail;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp == 0) {
				jp_fail(j, "\\u0000 in a string (not supported)");
				goto fail;
			}
			on = utf8_put(cp, o);
			break;
		}
		default:
			j->p--;
			jp_fail(j, "unknown escape '\\%c'", (unsigned char)e >= 0x20 && (unsigned char)e < 0x7f ? e : '?');
			goto fail;
		}
		if (sbuf_put(&b, o, on) < 0)
			goto nomem;
	}
	if (!b.s && sbuf_put(&b, "", 0) < 0)
		goto nomem;
	*out = b.s;
	return 0;
nomem:
	jp_fail(j, "out of memory");
fail:
	free(b.s);
	return -1;
}

/* strtod in the C locale whatever LC_NUMERIC the program set. */
static double strtod_c(const char *s)
{
	static locale_t c_locale;
	if (!c_locale)
		c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	return c_locale ? strtod_l(s, NULL, c_locale) : strtod(s, NULL);
}

static int is_digit(const struct jp *j)
{
	return j->p < j->end && *j->p >= '0' && *j->p <= '9';
}

static int jp_number(struct jp *j, struct lw_jv *v)
{
	const char *start = j->p;
	if (*j->p == '-')
		j->p++;
	if (!is_digit(j))
		return jp_fail(j, "expected a digit");
	if (*j->p == '0') {
		j->p++;
		if (is_digit(j))
			return jp_fail(j, "leading zero in a number");
	} else {
		while (is_digit(j))
			j->p++;
	}
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!is_digit(j))
			return jp_fail(j, "expected a digit after '.'");
		while (is_digit(j))
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!is_digit(j))
			return jp_fail(j, "expected a digit in the exponent");
		while (is_digit(j))
			j->p++;
	}
	size_t n = (size_t)(j->p - start);
	char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
	if (!buf)
		return jp_fail(j, "out of memory");
	memcpy(buf, start, n);
	buf[n] = '\0';
	v->type = LW_JV_NUM;
	v->num = strtod_c(buf);
	if (buf != small)
		free(buf);
	if (!isfinite(v->num)) {
		j->p = start;
		return jp_fail(j, "number out of range");
	}
	return 0;
}

static int jp_value(struct jp *j, struct lw_jv *v);

/* Room for one more element in a growing items (and keys) array. */
static int jp_grow(struct jp *j, struct lw_jv *v, size_t *cap, int with_keys)
{
	if (v->n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 8;
	if (nc > SIZE_MAX / sizeof(struct lw_jv))
		return jp_fail(j, "out of memory");
	struct lw_jv *items = realloc(v->items, nc * sizeof *items);
	if (!items)
		return jp_fail(j, "out of memory");
	v->items = items;
	if (with_keys) {
		char **keys = realloc(v->keys, nc * sizeof *keys);
		if (!keys)
			return jp_fail(j, "out of memory");
		v->keys = keys;
	}
	*cap = nc;
	return 0;
}

static int key_cmp(const void *a, const void *b, void *ctx)
{
	char **keys = ctx;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(keys[x], keys[y]);
	return c ? c : (x > y) - (x < y);
}

/* The lookup index of a finished object; refuses duplicate keys. */
static int jp_index(struct jp *j, struct lw_jv *v)
{
	if (!v->n)
		return 0;
	v->order = malloc(v->n * sizeof *v->order);
	if (!v->order)
		return jp_fail(j, "out of memory");
	for (size_t i = 0; i < v->n; i++)
		v->order[i] = i;
	qsort_r(v->order, v->n, sizeof *v->order, key_cmp, v->keys);
	for (size_t i = 1; i < v->n; i++)
		if (!strcmp(v->keys[v->order[i - 1]], v->keys[v->order[i]]))
			return jp_fail(j, "duplicate key \"%.60s\" in an object", v->keys[v->order[i]]);
	return 0;
}

static int jp_container(struct jp *j, struct lw_jv *v)
{
	int obj = *j->p == '{';
	char close = obj ? '}' : ']';
	size_t cap = 0;
	v->type = obj ? LW_JV_OBJ : LW_JV_ARR;
	if (++j->depth > LW_JV_MAX_DEPTH)
		return jp_fail(j, "nested deeper than %d levels", LW_JV_MAX_DEPTH);
	j->p++;
	jp_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		jp_ws(j);
		if (jp_grow(j, v, &cap, obj) < 0)
			return -1;
		char *key = NULL;
		if (obj) {
			if (j->p >= j->end || *j->p != '"')
				return jp_fail(j, "expected a string as object key");
			if (jp_string(j, &key) < 0)
				return -1;
			jp_ws(j);
			if (j->p >= j->end || *j->p != ':') {
				free(key);
				return jp_fail(j, "expected ':' after an object key");
			}
			j->p++;
		}
		struct lw_jv *item = &v->items[v->n];
		memset(item, 0, sizeof *item);
		if (obj)
			v->keys[v->n] = key;
		v->n++;   /* counted before parsing: lw_jv_free releases a half-built item */
		if (jp_value(j, item) < 0)
			return -1;
		jp_ws(j);
		if (j->p >= j->end)
			return jp_fail(j, "expected ',' or '%c'", close);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p != close)
			return jp_fail(j, "expected ',' or '%c'", close);
		j->p++;
		break;
	}
	j->depth--;
	return obj ? jp_index(j, v) : 0;
}

static int jp_word(struct jp *j, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
		return jp_fail(j, "unexpected '%c'",
			       (unsigned char)*j->p >= 0x20 && (unsigned char)*j->p < 0x7f ? *j->p : '?');
	j->p += n;
	return 0;
}

static int jp_value(struct jp *j, struct lw_jv *v)
{
	jp_ws(j);
	if (j->p >= j->end)
		return jp_fail(j, "expected a value");
	switch (*j->p) {
	case '{':
	case '[':
		return jp_container(j, v);
	case '"':
		v->type = LW_JV_STR;
		return jp_string(j, &v->str);
	case 't':
		v->type = LW_JV_BOOL;
		v->boolean = 1;
		return jp_word(j, "true");
	case 'f':
		v->type = LW_JV_BOOL;
		return jp_word(j, "false");
	case 'n':
		v->type = LW_JV_NULL;
		return jp_word(j, "null");
	default:
		if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))
			return jp_number(j, v);
		return jp_fail(j, "unexpected '%c'",
			       (unsigned char)*j->p >= 0x20 && (unsigned char)*j->p < 0x7f ? *j->p : '?');
	}
}

int lw_jv_parse(const char *text, size_t len, struct lw_jv *out, char *err, size_t errlen)
{
	struct jp j = { .base = text, .p = text, .end = text + len, .err = err, .errlen = errlen };
	memset(out, 0, sizeof *out);
	if (jp_value(&j, out) == 0) {
		jp_ws(&j);
		if (j.p == j.end)
			return 0;
		jp_fail(&j, "text after the JSON value");
	}
	lw_jv_free(out);
	return -1;
}

void lw_jv_free(struct lw_jv *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		lw_jv_free(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->order);
	free(v->str);
	memset(v, 0, sizeof *v);
}

const struct lw_jv *lw_jv_get(const struct lw_jv *v, const char *key)
{
	if (!v || v->type != LW_JV_OBJ || !v->order)
		return NULL;
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(v->keys[v->order[mid]], key);
		if (c == 0)
			return &v->items[v->order[mid]];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct lw_jv *lw_jv_at(const struct lw_jv *v, size_t i)
{
	return v && v->type == LW_JV_ARR && i < v->n ? &v->items[i] : NULL;
}

size_t lw_jv_len(const struct lw_jv *v)
{
	return v && (v->type == LW_JV_ARR || v->type == LW_JV_OBJ) ? v->n : 0;
}

const char *lw_jv_str(const struct lw_jv *v, const char *key)
{
	const struct lw_jv *m = lw_jv_get(v, key);
	return m && m->type == LW_JV_STR ? m->str : NULL;
}

int lw_jv_num(const struct lw_jv *v, const char *key, double *out)
{
	const struct lw_jv *m = lw_jv_get(v, key);
	if (!m || m->type != LW_JV_NUM)
		return -1;
	*out = m->num;
	return 0;
}

int lw_jv_bool(const struct lw_jv *v, const char *key, int def)
{
	const struct lw_jv *m = lw_jv_get(v, key);
	return m && m->type == LW_JV_BOOL ? m->boolean : def;
}
