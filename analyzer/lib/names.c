/* SPDX-License-Identifier: MIT */
/*
 * names.c — names and formatting for people (names.h): DUR arguments and
 * ages, byte counts, recorded socket addresses, and the words for address
 * families, socket types and origins.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "names.h"

char *lw_addr_format(const struct lw_addr *a, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	buf[0] = '\0';
	size_t alen = a->len > LW_ADDR_MAX ? LW_ADDR_MAX : a->len;
	if (alen < sizeof(sa_family_t))
		return buf;
	sa_family_t fam;
	memcpy(&fam, a->data, sizeof fam);
	char ip[INET6_ADDRSTRLEN];
	if (fam == AF_INET && alen >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;
		memcpy(&sin, a->data, sizeof sin);
		inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof ip);
		snprintf(buf, len, "%s:%u", ip, ntohs(sin.sin_port));
	} else if (fam == AF_INET6 && alen >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, a->data, sizeof sin6);
		inet_ntop(AF_INET6, &sin6.sin6_addr, ip, sizeof ip);
		snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6.sin6_port));
	} else if (fam == AF_UNIX) {
		size_t off = offsetof(struct sockaddr_un, sun_path);
		if (alen <= off) {
			snprintf(buf, len, "unnamed");
		} else if (a->data[off] == '\0') {
			/* Abstract names are not NUL-terminated and may hold NULs: show '@'. */
			size_t n = alen - off - 1, k = 0;
			if (len > 1)
				buf[k++] = '@';
			for (size_t i = 0; i < n && k + 1 < len; i++) {
				unsigned char c = a->data[off + 1 + i];
				buf[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '@';
			}
			buf[k] = '\0';
		} else {
			size_t n = strnlen((const char *)a->data + off, alen - off);
			snprintf(buf, len, "%.*s", (int)n, (const char *)a->data + off);
		}
	}
	return buf;
}

const char *lw_family_name(unsigned family)
{
	switch (family) {
	case AF_UNIX: return "AF_UNIX";
	case AF_INET: return "AF_INET";
	case AF_INET6: return "AF_INET6";
	case AF_NETLINK: return "AF_NETLINK";
	case AF_PACKET: return "AF_PACKET";
	case AF_UNSPEC: return "AF_UNSPEC";
	default: return "AF_OTHER";
	}
}

const char *lw_type_name(unsigned type)
{
	switch (type) {
	case SOCK_STREAM: return "SOCK_STREAM";
	case SOCK_DGRAM: return "SOCK_DGRAM";
	case SOCK_SEQPACKET: return "SOCK_SEQPACKET";
	case SOCK_RAW: return "SOCK_RAW";
	default: return "SOCK_OTHER";
	}
}

const char *lw_origin_name(unsigned origin)
{
	static const char *const names[] = {
		[LW_ORIGIN_NONE] = "unknown",
		[LW_ORIGIN_SOCKET] = "socket",
		[LW_ORIGIN_SOCKETPAIR] = "socketpair",
		[LW_ORIGIN_ACCEPT] = "accept",
		[LW_ORIGIN_DUP] = "dup",
		[LW_ORIGIN_SCM_RIGHTS] = "scm_rights",
		[LW_ORIGIN_INHERITED] = "inherited",
		[LW_ORIGIN_FORK] = "fork",
		[LW_ORIGIN_OPEN] = "open",
		[LW_ORIGIN_ATTACH] = "before_attach",
	};
	return origin < LW_ORIGIN_MAX ? names[origin] : "unknown";
}

/* ---- byte counts ---- */

char *lw_bytes_format(double bytes, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	if (len == 0)
		return buf;
	if (bytes < 1024.0) {
		snprintf(buf, len, "%.0f B", bytes < 0 ? 0.0 : bytes);
		return buf;
	}
	double v = bytes / 1024.0;
	size_t u = 0;
	/* 1023.96 KiB would print as "1024.0 KiB": move up before rounding does. */
	while (v >= 1023.95 && u + 1 < sizeof units / sizeof units[0]) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

/* ---- durations ---- */

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
