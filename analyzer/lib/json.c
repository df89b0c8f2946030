/* SPDX-License-Identifier: MIT */
/* json.c — the JSON writer (json.h). */
#include <math.h>
#include <stdio.h>

#include "json.h"

/* Length of a valid UTF-8 sequence at s, or 0 (so invalid bytes become U+FFFD). */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1f; }
	else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0f; }
	else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07; }
	else return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void lw_json_string(FILE *out, const char *s)
{
	if (!s) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			fputc('\\', out);
			fputc(c, out);
			p++;
		} else if (c == '\n') {
			fputs("\\n", out);
			p++;
		} else if (c == '\t') {
			fputs("\\t", out);
			p++;
		} else if (c == '\r') {
			fputs("\\r", out);
			p++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c);
			p++;
		} else {
			size_t n = utf8_len(p);
			if (n == 0) {
				fputs("\\ufffd", out);
				p++;
			} else {
				fwrite(p, 1, n, out);
				p += n;
			}
		}
	}
	fputc('"', out);
}

void lw_json_init(struct lw_json *j, FILE *out)
{
	j->out = out;
	j->depth = 0;
	j->has_member[0] = 0;
}

/* The comma and key in front of every value: the one place commas are decided. */
static void value_begin(struct lw_json *j, const char *key)
{
	int d = j->depth < LW_JSON_MAX_DEPTH ? j->depth : LW_JSON_MAX_DEPTH - 1;
	if (j->depth > 0 && j->has_member[d])
		fputc(',', j->out);
	j->has_member[d] = 1;
	if (key) {
		lw_json_string(j->out, key);
		fputc(':', j->out);
	}
}

static void open_level(struct lw_json *j, const char *key, char c)
{
	value_begin(j, key);
	fputc(c, j->out);
	j->depth++;
	if (j->depth < LW_JSON_MAX_DEPTH)
		j->has_member[j->depth] = 0;
}

static void close_level(struct lw_json *j, char c)
{
	if (j->depth > 0)
		j->depth--;
	fputc(c, j->out);
}

void lw_json_begin_object(struct lw_json *j, const char *key) { open_level(j, key, '{'); }
void lw_json_begin_array(struct lw_json *j, const char *key) { open_level(j, key, '['); }
void lw_json_end_object(struct lw_json *j) { close_level(j, '}'); }
void lw_json_end_array(struct lw_json *j) { close_level(j, ']'); }

void lw_json_str(struct lw_json *j, const char *key, const char *s)
{
	value_begin(j, key);
	lw_json_string(j->out, s);
}

void lw_json_int(struct lw_json *j, const char *key, long long v)
{
	value_begin(j, key);
	fprintf(j->out, "%lld", v);
}

void lw_json_uint(struct lw_json *j, const char *key, unsigned long long v)
{
	value_begin(j, key);
	fprintf(j->out, "%llu", v);
}

void lw_json_fixed3(struct lw_json *j, const char *key, double v)
{
	value_begin(j, key);
	if (isfinite(v))
		fprintf(j->out, "%.3f", v);
	else
		fputs("null", j->out);
}

void lw_json_seconds(struct lw_json *j, const char *key, uint64_t ns)
{
	lw_json_fixed3(j, key, (double)ns / 1e9);
}

void lw_json_count(struct lw_json *j, const char *key, double v)
{
	value_begin(j, key);
	fprintf(j->out, "%.0f", v < 0 || !isfinite(v) ? 0.0 : round(v));
}

void lw_json_hex(struct lw_json *j, const char *key, uint64_t v)
{
	value_begin(j, key);
	fprintf(j->out, "\"0x%llx\"", (unsigned long long)v);
}

void lw_json_bool(struct lw_json *j, const char *key, int v)
{
	value_begin(j, key);
	fputs(v ? "true" : "false", j->out);
}

void lw_json_null(struct lw_json *j, const char *key)
{
	value_begin(j, key);
	fputs("null", j->out);
}

int lw_json_error(const struct lw_json *j)
{
	return ferror(j->out) ? -1 : 0;
}
