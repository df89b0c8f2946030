/* SPDX-License-Identifier: MIT */
/* duration.c — DUR arguments ("5m", "1h30m") and compact age formatting. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "analyzer.h"

struct unit {
	const char *name;
	uint64_t ns;
};

/* Longest names first so "ms" is not read as "m" followed by junk "s". */
static const struct unit units[] = {
	{ "ns", 1ull },
	{ "us", 1000ull },
	{ "ms", 1000000ull },
	{ "s", 1000000000ull },
	{ "m", 60ull * 1000000000ull },
	{ "h", 3600ull * 1000000000ull },
	{ "d", 86400ull * 1000000000ull },
};

static const struct unit *unit_match(const char *p, size_t *len)
{
	const struct unit *best = NULL;
	size_t best_len = 0;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		size_t n = strlen(units[i].name);
		if (n > best_len && strncmp(p, units[i].name, n) == 0) {
			best = &units[i];
			best_len = n;
		}
	}
	*len = best_len;
	return best;
}

int lw_duration_parse(const char *s, uint64_t *ns)
{
	if (!s || !*s)
		return -1;
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	uint64_t total = 0;
	const char *p = s;
	while (*p) {
		/* Only plain digits: strtoull would accept "-5" and " 5". */
		if (*p < '0' || *p > '9')
			return -1;
		uint64_t v = 0;
		while (*p >= '0' && *p <= '9') {
			unsigned d = (unsigned)(*p - '0');
			if (v > (UINT64_MAX - d) / 10)
				return -1;
			v = v * 10 + d;
			p++;
		}
		size_t ulen;
		const struct unit *u = unit_match(p, &ulen);
		if (!u)
			return -1;
		p += ulen;
		if (v != 0 && v > UINT64_MAX / u->ns)
			return -1;
		uint64_t part = v * u->ns;
		if (total > UINT64_MAX - part)
			return -1;
		total += part;
	}
	*ns = total;
	return 0;
}

char *lw_duration_format(uint64_t ns, char *buf, size_t len)
{
	const uint64_t ms = 1000000ull, sec = 1000000000ull;
	const uint64_t min = 60 * sec, hour = 60 * min, day = 24 * hour;

	if (len == 0)
		return buf;
	if (ns < sec)
		snprintf(buf, len, "%llums", (unsigned long long)(ns / ms));
	else if (ns < min)
		snprintf(buf, len, "%llus", (unsigned long long)(ns / sec));
	else if (ns < hour)
		snprintf(buf, len, "%llum%02llus", (unsigned long long)(ns / min),
			 (unsigned long long)(ns % min / sec));
	else if (ns < day)
		snprintf(buf, len, "%lluh%02llum", (unsigned long long)(ns / hour),
			 (unsigned long long)(ns % hour / min));
	else
		snprintf(buf, len, "%llud%02lluh", (unsigned long long)(ns / day),
			 (unsigned long long)(ns % day / hour));
	return buf;
}
