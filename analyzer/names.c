/* SPDX-License-Identifier: MIT */
/* names.c — the words for families, socket types, origins, verdicts and groupings, and
 * recorded socket addresses formatted for people (analyzer names.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "analyzer.h"

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
	};
	return origin < LW_ORIGIN_MAX ? names[origin] : "unknown";
}

const char *lw_verdict_name(enum lw_verdict v)
{
	switch (v) {
	case LW_V_LEFT_OPEN: return "left_open";
	case LW_V_LEAK_SUSPECT: return "leak_suspect";
	case LW_V_POOL: return "pool";
	case LW_V_ACTIVE: return "active";
	case LW_V_NEW: return "new";
	case LW_V_LISTENING: return "listening";
	}
	return "unknown";
}

const char *lw_verdict_title(enum lw_verdict v)
{
	switch (v) {
	case LW_V_LEFT_OPEN: return "SOCKETS";
	case LW_V_LEAK_SUSPECT: return "LEAK SUSPECT";
	case LW_V_POOL: return "POOL";
	case LW_V_ACTIVE: return "ACTIVE";
	case LW_V_NEW: return "NEW";
	case LW_V_LISTENING: return "LISTENING";
	}
	return "?";
}

int lw_group_by_parse(const char *s, enum lw_group_by *by)
{
	if (!s)
		return -1;
	if (strcmp(s, "open") == 0)
		*by = LW_BY_OPEN;
	else if (strcmp(s, "use") == 0)
		*by = LW_BY_USE;
	else
		return -1;
	return 0;
}

const char *lw_group_by_name(enum lw_group_by by)
{
	return by == LW_BY_USE ? "use" : "open";
}
