/* SPDX-License-Identifier: MIT */
/*
 * jsonread.h — the analyzer's JSON reader (jsonread.c): a whole document
 * parsed into a tree, for reading back what json.h wrote (`leakwatch diff`,
 * `report --baseline`).
 *
 * Strict RFC 8259: one value with only whitespace around it; no comments,
 * trailing commas, leading zeros, NaN or single quotes; strings must be valid
 * UTF-8 without raw control characters, \u escapes are decoded to UTF-8
 * (surrogate pairs joined; a lone surrogate and \u0000 are refused, so every
 * string is a C string); duplicate keys in an object are refused.  Nesting
 * deeper than LW_JV_MAX_DEPTH is refused instead of recursing further.
 * Malformed input of any kind is an error with its line and column, never a
 * crash; there is no other limit on the input's size than memory.
 */
#ifndef LEAKWATCH_JSONREAD_H
#define LEAKWATCH_JSONREAD_H

#include <stddef.h>
#include <stdint.h>

/* Arrays and objects nested deeper than this are refused (a report nests about 8 deep). */
#define LW_JV_MAX_DEPTH 256

enum lw_jv_type { LW_JV_NULL = 0, LW_JV_BOOL, LW_JV_NUM, LW_JV_STR, LW_JV_ARR, LW_JV_OBJ };

struct lw_jv {
	enum lw_jv_type type;
	int boolean;                    /* LW_JV_BOOL */
	double num;                     /* LW_JV_NUM */
	char *str;                      /* LW_JV_STR: NUL-terminated UTF-8 */
	size_t n;                       /* LW_JV_ARR elements, LW_JV_OBJ members */
	struct lw_jv *items;            /* LW_JV_ARR, LW_JV_OBJ values (in document order) */
	char **keys;                    /* LW_JV_OBJ: keys[i] names items[i] */
	size_t *order;                  /* LW_JV_OBJ: member indexes sorted by key (lookup) */
};

/*
 * lw_jv_parse - parse text[0..len) (need not be NUL-terminated) into *out.
 * Returns 0 (free with lw_jv_free), or -1 with *out zeroed and a one-line
 * message in err: "line 3, column 17: expected ':' after an object key",
 * "unexpected end of input (truncated?)", "out of memory".
 */
int lw_jv_parse(const char *text, size_t len, struct lw_jv *out, char *err, size_t errlen);

/* lw_jv_free - release what lw_jv_parse built (the value itself is the caller's); safe on zeroed. */
void lw_jv_free(struct lw_jv *v);

/* lw_jv_get - member `key` of an object; NULL when v is not an object or has no such member. */
const struct lw_jv *lw_jv_get(const struct lw_jv *v, const char *key);

/* lw_jv_at - element i of an array; NULL when v is not an array or i is out of range. */
const struct lw_jv *lw_jv_at(const struct lw_jv *v, size_t i);

/* lw_jv_len - elements of an array or members of an object; 0 for anything else (or NULL). */
size_t lw_jv_len(const struct lw_jv *v);

/* lw_jv_str - the string member `key` of object v; NULL when absent, null or not a string. */
const char *lw_jv_str(const struct lw_jv *v, const char *key);

/* lw_jv_num - the number member `key` of object v into *out; 0, or -1 (absent, null, not a number). */
int lw_jv_num(const struct lw_jv *v, const char *key, double *out);

/* lw_jv_bool - the boolean member `key` of object v; def when absent or not a boolean. */
int lw_jv_bool(const struct lw_jv *v, const char *key, int def);

#endif /* LEAKWATCH_JSONREAD_H */
