/* SPDX-License-Identifier: MIT */
/*
 * json.h — the one JSON writer of the analyzer: every JSON document
 * leakwatch writes (report, run, ps) goes through it.
 *
 * Compact output (no spaces), members in the order written.  Every value
 * call takes the member's key: non-NULL inside an object, NULL inside an
 * array or for the top-level value.  The writer puts the commas; strings are
 * escaped (control characters, quotes, backslash) and invalid UTF-8 becomes
 * U+FFFD, so a recorded string from the target can never break the document.
 *
 * Errors: the writer never fails itself; a write error of the stream is
 * sticky in the FILE and lw_json_error() reports it at the end.
 */
#ifndef LEAKWATCH_JSON_H
#define LEAKWATCH_JSON_H

#include <stdint.h>
#include <stdio.h>

/* Nesting the writer tracks commas for; deeper documents are not written here. */
#define LW_JSON_MAX_DEPTH 32

struct lw_json {
	FILE *out;
	int depth;
	unsigned char has_member[LW_JSON_MAX_DEPTH];  /* per level: something was written */
};

/* lw_json_init - start a document on out (nothing is written yet). */
void lw_json_init(struct lw_json *j, FILE *out);

/* lw_json_begin_object / lw_json_begin_array - "{" / "[", as member key (NULL: element). */
void lw_json_begin_object(struct lw_json *j, const char *key);
void lw_json_begin_array(struct lw_json *j, const char *key);

/* lw_json_end_object / lw_json_end_array - "}" / "]" closing the innermost one. */
void lw_json_end_object(struct lw_json *j);
void lw_json_end_array(struct lw_json *j);

/* lw_json_str - a string (escaped); s == NULL writes null. */
void lw_json_str(struct lw_json *j, const char *key, const char *s);

/* lw_json_int / lw_json_uint - an integer. */
void lw_json_int(struct lw_json *j, const char *key, long long v);
void lw_json_uint(struct lw_json *j, const char *key, unsigned long long v);

/* lw_json_seconds - nanoseconds as seconds with three decimals ("1.500"). */
void lw_json_seconds(struct lw_json *j, const char *key, uint64_t ns);

/* lw_json_fixed3 - a number with three decimals ("12.345"). */
void lw_json_fixed3(struct lw_json *j, const char *key, double v);

/* lw_json_count - an estimate rounded to a whole number, never negative ("1000", not "999.9999"). */
void lw_json_count(struct lw_json *j, const char *key, double v);

/* lw_json_hex - an address as a string "0x1f". */
void lw_json_hex(struct lw_json *j, const char *key, uint64_t v);

/* lw_json_bool / lw_json_null - true/false, null. */
void lw_json_bool(struct lw_json *j, const char *key, int v);
void lw_json_null(struct lw_json *j, const char *key);

/* lw_json_error - -1 when the stream had a write error, else 0. */
int lw_json_error(const struct lw_json *j);

/*
 * lw_json_string - the escaping primitive: write s as a quoted JSON string
 * to out (NULL: null).  Invalid UTF-8 bytes become \ufffd.
 */
void lw_json_string(FILE *out, const char *s);

#endif /* LEAKWATCH_JSON_H */
