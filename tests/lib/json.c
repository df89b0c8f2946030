/* SPDX-License-Identifier: MIT */
/* json.c — the tests' one JSON parser (see json.h). */
#include "json.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct tj_parser {
	const char *p;
	int depth;
};

static struct tj *tj_value(struct tj_parser *ps);

static void tj_ws(struct tj_parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\t' || *ps->p == '\r')
		ps->p++;
}

static struct tj *tj_new(enum tj_type t)
{
	struct tj *v = calloc(1, sizeof *v);
	v->type = t;
	return v;
}

void tj_free(struct tj *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		tj_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
	free(v);
}

static char *tj_string(struct tj_parser *ps)
{
	if (*ps->p != '"')
		return NULL;
	ps->p++;
	size_t cap = 16, len = 0;
	char *out = malloc(cap);
	while (*ps->p && *ps->p != '"') {
		char c = *ps->p++;
		if ((unsigned char)c < 0x20) {
			free(out);
			return NULL;
		}
		if (c == '\\') {
			char e = *ps->p++;
			switch (e) {
			case '"': c = '"'; break;
			case '\\': c = '\\'; break;
			case '/': c = '/'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u': {
				unsigned v = 0;
				for (int i = 0; i < 4; i++) {
					if (!isxdigit((unsigned char)ps->p[i])) {
						free(out);
						return NULL;
					}
					v = v * 16 + (unsigned)(isdigit((unsigned char)ps->p[i])
							 ? ps->p[i] - '0'
							 : (tolower((unsigned char)ps->p[i]) - 'a' + 10));
				}
				ps->p += 4;
				c = v < 0x80 ? (char)v : '?';
				break;
			}
			default:
				free(out);
				return NULL;
			}
		}
		if (len + 2 > cap)
			out = realloc(out, cap *= 2);
		out[len++] = c;
	}
	if (*ps->p != '"') {
		free(out);
		return NULL;
	}
	ps->p++;
	out[len] = '\0';
	return out;
}

static void tj_push(struct tj *v, char *key, struct tj *item)
{
	v->items = realloc(v->items, (v->n + 1) * sizeof *v->items);
	if (v->type == TJ_OBJ)
		v->keys = realloc(v->keys, (v->n + 1) * sizeof *v->keys), v->keys[v->n] = key;
	v->items[v->n++] = item;
}

static struct tj *tj_value(struct tj_parser *ps)
{
	tj_ws(ps);
	if (++ps->depth > 64)
		return NULL;
	struct tj *v = NULL;
	const char *p = ps->p;
	if (*p == '{' || *p == '[') {
		int obj = *p == '{';
		v = tj_new(obj ? TJ_OBJ : TJ_ARR);
		ps->p++;
		tj_ws(ps);
		if (*ps->p == (obj ? '}' : ']')) {
			ps->p++;
			goto done;
		}
		for (;;) {
			char *key = NULL;
			tj_ws(ps);
			if (obj) {
				if (!(key = tj_string(ps)))
					goto fail;
				tj_ws(ps);
				if (*ps->p++ != ':') {
					free(key);
					goto fail;
				}
			}
			struct tj *item = tj_value(ps);
			if (!item) {
				free(key);
				goto fail;
			}
			tj_push(v, key, item);
			tj_ws(ps);
			if (*ps->p == ',') {
				ps->p++;
				continue;
			}
			if (*ps->p++ != (obj ? '}' : ']'))
				goto fail;
			break;
		}
	} else if (*p == '"') {
		v = tj_new(TJ_STR);
		if (!(v->str = tj_string(ps)))
			goto fail;
	} else if (!strncmp(p, "true", 4) || !strncmp(p, "false", 5)) {
		v = tj_new(TJ_BOOL);
		v->num = *p == 't';
		ps->p += *p == 't' ? 4 : 5;
	} else if (!strncmp(p, "null", 4)) {
		v = tj_new(TJ_NULL);
		ps->p += 4;
	} else if (*p == '-' || isdigit((unsigned char)*p)) {
		char *end;
		v = tj_new(TJ_NUM);
		v->num = strtod(p, &end);
		if (end == p)
			goto fail;
		ps->p = end;
	} else {
		return NULL;
	}
done:
	ps->depth--;
	return v;
fail:
	tj_free(v);
	return NULL;
}

/* tj_parse - the whole text must be one JSON value (whitespace around ok). */
struct tj *tj_parse(const char *text)
{
	struct tj_parser ps = { text, 0 };
	struct tj *v = tj_value(&ps);
	if (!v)
		return NULL;
	tj_ws(&ps);
	if (*ps.p) {
		tj_free(v);
		return NULL;
	}
	return v;
}

struct tj *tj_get(const struct tj *o, const char *key)
{
	if (!o || o->type != TJ_OBJ)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			return o->items[i];
	return NULL;
}

struct tj *tj_at(const struct tj *a, size_t i)
{
	return a && a->type == TJ_ARR && i < a->n ? a->items[i] : NULL;
}

const char *tj_str(const struct tj *o, const char *key)
{
	struct tj *v = tj_get(o, key);
	return v && v->type == TJ_STR ? v->str : NULL;
}

double tj_num(const struct tj *o, const char *key, double def)
{
	struct tj *v = tj_get(o, key);
	return v && (v->type == TJ_NUM || v->type == TJ_BOOL) ? v->num : def;
}

size_t tj_len(const struct tj *a)
{
	return a && (a->type == TJ_ARR || a->type == TJ_OBJ) ? a->n : 0;
}
