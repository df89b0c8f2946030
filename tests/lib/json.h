/* SPDX-License-Identifier: MIT */
/*
 * A small strict JSON reader for the tests: parses `leakwatch --format json`
 * output into a tree so assertions can name fields instead of grepping text.
 * Rejects malformed input (returns NULL), which makes every parse an
 * assertion that the analyzer's JSON is well formed.
 */
#ifndef TESTS_LIB_JSON_H
#define TESTS_LIB_JSON_H

#include <stddef.h>

enum tj_type { TJ_NULL, TJ_BOOL, TJ_NUM, TJ_STR, TJ_ARR, TJ_OBJ };

struct tj {
	enum tj_type type;
	double num;           /* TJ_NUM, TJ_BOOL (0/1) */
	char *str;            /* TJ_STR */
	char **keys;          /* TJ_OBJ */
	struct tj **items;    /* TJ_ARR, TJ_OBJ values */
	size_t n;
};

/* tj_parse - the whole text must be one JSON value (whitespace around ok);
 * NULL when it is not well formed. */
struct tj *tj_parse(const char *text);
void tj_free(struct tj *v);
struct tj *tj_get(const struct tj *o, const char *key);   /* member, or NULL */
struct tj *tj_at(const struct tj *a, size_t i);           /* element, or NULL */
const char *tj_str(const struct tj *o, const char *key);  /* string member, or NULL */
double tj_num(const struct tj *o, const char *key, double def);
size_t tj_len(const struct tj *a);                        /* elements or members */

#endif
