/*
 * A socket record the shim fills from what the hook already knows
 * (socket()'s and socketpair()'s arguments, the listener's record, the peer
 * address accept() returned, a peer buffer the shim lends accept()) says
 * exactly what the kernel says of that descriptor: family, type, protocol,
 * local and peer address (except the local address connect() chose for an
 * IP socket that was not bound: unknown, see handle_connected).  The
 * sockkinds fixture prints the kernel's view
 * of each descriptor it leaves open; the segment must agree field by field.
 */
#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/analyzer.h"
#include "lib/testlib.h"

#define FIX(name) LW_BUILD_DIR "/fixtures/" name

static void addr_hex(const struct lw_addr *a, char *out, size_t len)
{
	if (a->len == 0) {
		snprintf(out, len, "-");
		return;
	}
	size_t o = 0;
	for (unsigned i = 0; i < a->len && o + 3 < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%02x", (unsigned char)a->data[i]);
}

Test(shim_sockets, records_say_what_the_kernel_says, .timeout = 60)
{
	char dir[64];
	lw_tmpdir(dir, sizeof dir);
	char envdir[128], envpre[512];
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", dir);
	snprintf(envpre, sizeof envpre, "LD_PRELOAD=%s", lw_shim());
	char *env[] = { envdir, envpre, NULL };
	char *argv[] = { FIX("sockkinds"), NULL };
	struct cmd_result r;
	run_cmd(&r, argv, env, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);

	char pat[128];
	snprintf(pat, sizeof pat, "%s/leakwatch.*", dir);
	glob_t g;
	cr_assert_eq(glob(pat, 0, NULL, &g), 0, "no segment");
	cr_assert_eq(g.gl_pathc, 1);
	struct lw_snapshot s;
	char err[256];
	cr_assert_eq(lw_snapshot_open(&s, g.gl_pathv[0], err, sizeof err), 0, "%s", err);
	globfree(&g);

	int lines = 0, accepted = 0;
	for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
		int fd, fam, type, proto;
		char local[512], peer[512];
		cr_assert_eq(sscanf(line, "fd %d family %d type %d protocol %d local %511s peer %511s", &fd, &fam,
				    &type, &proto, local, peer),
			     6, "%s", line);
		const struct lw_snap_handle *sh = lw_snapshot_handle(&s, fd);
		cr_assert_not_null(sh, "fd %d not recorded", fd);
		const struct lw_handle *h = &sh->h;
		cr_assert_eq(h->state, LW_H_OPEN, "fd %d", fd);
		cr_expect_eq(h->family, fam, "fd %d family", fd);
		cr_expect_eq(h->type, type, "fd %d type", fd);
		cr_expect_eq(h->protocol, proto, "fd %d protocol", fd);
		char got[512];
		/* the record keeps at most LW_ADDR_MAX bytes of an address */
		if (strlen(local) > 2 * LW_ADDR_MAX)
			local[2 * LW_ADDR_MAX] = '\0';
		if (strlen(peer) > 2 * LW_ADDR_MAX)
			peer[2 * LW_ADDR_MAX] = '\0';
		addr_hex(&h->local, got, sizeof got);
		/* an IP socket connect() gave its address (it was not bound)
		 * is recorded with the local address unknown: the shim does not
		 * ask (a system call per connect); every other address is exact */
		int connected_unbound = (fam == AF_INET || fam == AF_INET6) &&
					h->origin == LW_ORIGIN_SOCKET && h->peer.len > 0;
		if (connected_unbound)
			cr_expect_str_eq(got, "-", "fd %d (%s) local address: not taken", fd, line);
		else
			cr_expect_str_eq(got, local, "fd %d (%s) local address", fd, line);
		addr_hex(&h->peer, got, sizeof got);
		cr_expect_str_eq(got, peer, "fd %d (%s) peer address", fd, line);
		accepted += h->origin == LW_ORIGIN_ACCEPT;
		lines++;
	}
	cr_assert_geq(lines, 20, "%s", r.out);
	cr_assert_eq(accepted, 8, "four accepts on each listener");
	lw_snapshot_free(&s);
	cmd_result_free(&r);
	cr_assert_eq(rm_rf(dir), 0);
}
