/* SPDX-License-Identifier: MIT */
/*
 * names.h — names and formatting for people (names.c): DUR arguments and
 * ages, byte counts, recorded socket addresses, families, types, origins.
 * Pure functions: no I/O, no allocation.
 */
#ifndef LEAKWATCH_NAMES_H
#define LEAKWATCH_NAMES_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"

/*
 * lw_duration_parse - parse "500ms", "30s", "5m", "2h", "1d", "250us",
 * "10ns", compounds like "1h30m", or a bare "0".
 * Returns 0 and stores nanoseconds in *ns; -1 on empty, negative, junk,
 * missing unit (other than "0") or overflow, leaving *ns untouched.
 */
int lw_duration_parse(const char *s, uint64_t *ns);

/*
 * lw_duration_format - format an age compactly: "850ms", "42s", "5m03s",
 * "5h59m", "2d03h".  Writes at most len bytes (always NUL-terminated when
 * len > 0) and returns buf.
 */
char *lw_duration_format(uint64_t ns, char *buf, size_t len);

/*
 * lw_addr_format - render a recorded sockaddr: "1.2.3.4:80", "[::1]:80",
 * "/path", "@abstract", "unnamed"; "" when len is 0 or the family is unknown.
 * Returns buf.
 */
char *lw_addr_format(const struct lw_addr *a, char *buf, size_t len);

/* lw_family_name / lw_type_name / lw_origin_name - "AF_INET", "SOCK_STREAM", "accept"... */
const char *lw_family_name(unsigned family);
const char *lw_type_name(unsigned type);
const char *lw_origin_name(unsigned origin);

/*
 * lw_bytes_format - "512 B", "64.0 KiB", "2.0 MiB", "1.5 GiB", "3.0 TiB"
 * (binary units, one decimal above bytes).  Returns buf.
 */
char *lw_bytes_format(double bytes, char *buf, size_t len);

#endif /* LEAKWATCH_NAMES_H */
