/* SPDX-License-Identifier: MIT */
/*
 * The module table: every loaded object with its load bias, address range
 * and GNU build-id, so stacks can be symbolized after the process is gone.
 * Scanned at start and after each dlopen/dlclose; append-only, entries of
 * unloaded objects are kept (old stacks still point into them) and flagged.
 */
#include <elf.h>
#include <stddef.h>
#include <link.h>
#include <string.h>

#include "shim.h"

struct scan_ctx {
	uint64_t now;
	uint32_t seen_gen;
};

/* One bit per module slot: seen in the current scan (modules are few). */
static unsigned char g_seen[LW_LIM_MODULES];

static void note_build_id(const struct dl_phdr_info *info, const ElfW(Phdr) *ph,
			  struct lw_module *m)
{
	const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
	const char *end = p + ph->p_memsz;

	while (p + sizeof(ElfW(Nhdr)) <= end) {
		const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
		const char *name = p + sizeof *n;
		const char *desc = name + ((n->n_namesz + 3u) & ~3u);
		const char *next = desc + ((n->n_descsz + 3u) & ~3u);
		if (next > end)
			return;
		if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
			uint32_t len = n->n_descsz < LW_BUILD_ID_MAX ? n->n_descsz : LW_BUILD_ID_MAX;
			memcpy(m->build_id, desc, len);
			m->build_id_len = len;
			return;
		}
		p = next;
	}
}

static int scan_one(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct scan_ctx *ctx = arg;
	struct lw_header *hdr = g_seg.hdr;
	uint64_t lo = UINT64_MAX, hi = 0;
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	uint32_t used = atomic_load_explicit(&hdr->modules.used, memory_order_acquire);

	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uint64_t s = info->dlpi_addr + ph->p_vaddr;
		if (s < lo)
			lo = s;
		if (s + ph->p_memsz > hi)
			hi = s + ph->p_memsz;
	}
	if (hi == 0)
		return 0;

	/* Already recorded and still loaded? */
	for (uint32_t i = 0; i < used; i++) {
		struct lw_module *m = segment_entry(LW_T_MODULES, i);
		if (!m)
			break;
		/* the main program is recorded under the exe path, its dlpi_name is "" */
		int same_name = (m->flags & LW_MODULE_MAIN) ? name[0] == '\0'
							     : strncmp(m->path, name, LW_PATH_MAX - 1) == 0;
		if (!(m->flags & LW_MODULE_UNLOADED) && m->base == info->dlpi_addr && m->start == lo &&
		    same_name) {
			if (i < sizeof g_seen)
				g_seen[i] = 1;
			return 0;
		}
	}
	struct lw_module *m = segment_entry_grow(LW_T_MODULES, used);
	if (!m) {
		segment_counter_add(LW_CTR_DROP_MODULE_FULL, 1);
		return 0;
	}
	/* one scanner at a time (g_scanning): a single writer */
	uint32_t seq = lw_seq_write_begin(&m->seq);
	m->base = info->dlpi_addr;
	m->start = lo;
	m->end = hi;
	m->load_ns = ctx->now;
	m->unload_ns = 0;
	m->flags = 0;
	if (used == 0 && name[0] == '\0') {
		m->flags |= LW_MODULE_MAIN;
		/* the main program: dlpi_name is "", the analyzer uses the header's exe */
		memcpy(m->path, hdr->exe, sizeof m->path);
	} else {
		size_t n = strlen(name);
		if (n >= LW_PATH_MAX)
			n = LW_PATH_MAX - 1;
		memcpy(m->path, name, n);
		m->path[n] = '\0';
		if (strncmp(name, "linux-vdso", 10) == 0 || strncmp(name, "linux-gate", 10) == 0)
			m->flags |= LW_MODULE_VDSO;
	}
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_NOTE && m->build_id_len == 0)
			note_build_id(info, &info->dlpi_phdr[i], m);
	lw_seq_write_end(&m->seq, seq);
	if (used < sizeof g_seen)
		g_seen[used] = 1;
	atomic_store_explicit(&hdr->modules.used, used + 1, memory_order_release);
	(void)size;
	return 0;
}

/*
 * Two threads may dlopen() at once.  Rather than wait, a second scanner
 * leaves a note and the running one scans again before it leaves.
 */
static atomic_flag g_scanning = ATOMIC_FLAG_INIT;
static _Atomic int g_rescan;

_Atomic uint32_t g_modules_epoch;

static void modules_scan_once(void)
{
	struct scan_ctx ctx = { .now = prim_now_ns() };
	struct lw_header *hdr = g_seg.hdr;

	uint32_t before = atomic_load_explicit(&hdr->modules.used, memory_order_acquire);
	memset(g_seen, 0, before < sizeof g_seen ? before : sizeof g_seen);
	dl_iterate_phdr(scan_one, &ctx);
	uint32_t used = atomic_load_explicit(&hdr->modules.used, memory_order_acquire);
	for (uint32_t i = 0; i < used && i < sizeof g_seen; i++) {
		struct lw_module *m = segment_entry(LW_T_MODULES, i);
		if (m && !g_seen[i] && !(m->flags & LW_MODULE_UNLOADED)) {
			uint32_t s = lw_seq_write_begin(&m->seq);
			m->flags |= LW_MODULE_UNLOADED;
			m->unload_ns = ctx.now;
			lw_seq_write_end(&m->seq, s);
		}
	}
	segment_counter_add(LW_CTR_MODULE_RESCANS, 1);
}

void modules_scan(void)
{
	if (!g_seg.hdr)
		return;
	atomic_store(&g_rescan, 1);
	while (atomic_load(&g_rescan)) {
		if (atomic_flag_test_and_set_explicit(&g_scanning, memory_order_acquire))
			return; /* the thread inside will see g_rescan */
		atomic_store(&g_rescan, 0);
		modules_scan_once();
		atomic_fetch_add_explicit(&g_modules_epoch, 1, memory_order_release);
		atomic_flag_clear_explicit(&g_scanning, memory_order_release);
	}
}

void modules_after_fork(const struct shim_segment *parent)
{
	/*
	 * The child has the parent's mappings: copy its table rather than scan.
	 * dl_iterate_phdr() takes the loader's lock, which glibc does not reset
	 * in a fork child: if another parent thread held it at fork time, a
	 * scan here would hang the child forever.
	 */
	atomic_flag_clear(&g_scanning);
	atomic_store(&g_rescan, 0);
	if (!g_seg.hdr || !parent->hdr)
		return;
	uint32_t used = atomic_load_explicit(&parent->hdr->modules.used, memory_order_acquire);
	uint32_t i = 0;
	for (; i < used; i++) {
		struct lw_module m;
		const struct lw_module *pm = segment_entry_in(parent, LW_T_MODULES, i);
		struct lw_module *cm = segment_entry_grow(LW_T_MODULES, i);
		if (!cm)
			break;
		if (!pm || !lw_seq_read(pm, &m, sizeof m))
			memset(&m, 0, sizeof m);
		uint32_t s = lw_seq_write_begin(&cm->seq);
		memcpy((char *)cm + sizeof m.seq, (char *)&m + sizeof m.seq, sizeof m - sizeof m.seq);
		lw_seq_write_end(&cm->seq, s);
	}
	atomic_store_explicit(&g_seg.hdr->modules.used, i, memory_order_release);
	atomic_fetch_add_explicit(&g_modules_epoch, 1, memory_order_release);
}

static int module_has(const struct lw_module *m, uint64_t pc)
{
	/* a return address may sit just past its object's last byte */
	return !(m->flags & LW_MODULE_UNLOADED) && pc >= m->start && pc <= m->end;
}

int modules_cover(const uint64_t *pcs, unsigned n)
{
	struct lw_header *hdr = g_seg.hdr;
	if (!hdr)
		return 1;
	uint32_t used = atomic_load_explicit(&hdr->modules.used, memory_order_acquire);
	uint32_t last = 0;
	for (unsigned f = 0; f < n; f++) {
		if (LW_IS_PYFRAME(pcs[f]))
			continue; /* a Python frame (python.c): not an address */
		/* neighbouring frames mostly share an object */
		const struct lw_module *m = segment_entry(LW_T_MODULES, last);
		if (last < used && m && module_has(m, pcs[f]))
			continue;
		uint32_t i = 0;
		while (i < used && (m = segment_entry(LW_T_MODULES, i)) != NULL && !module_has(m, pcs[f]))
			i++;
		if (i == used || !m)
			return 0;
		last = i;
	}
	return 1;
}

/*
 * Objects loaded by dlopen() after start must be in the module table for
 * their frames to be symbolized.  Hooking dlopen() would change the caller
 * that $ORIGIN and RTLD_NEXT resolve against, so instead the loader's own
 * adds/subs counters are checked before a stack is captured.
 */
static unsigned long long g_dl_adds, g_dl_subs;

static int dl_counts(struct dl_phdr_info *info, size_t size, void *arg)
{
	unsigned long long *out = arg;
	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
		out[0] = info->dlpi_adds;
		out[1] = info->dlpi_subs;
	}
	return 1; /* the counters are global: the first object is enough */
}

void modules_refresh(void)
{
	if (stack_unwind_disabled())
		return; /* fork child of a threaded parent: the loader lock may be stuck */
	unsigned long long c[2] = { 0, 0 };
	sigset_t old;
	shim_signals_block(&old);
	dl_iterate_phdr(dl_counts, c);
	if (c[0] != g_dl_adds || c[1] != g_dl_subs) {
		g_dl_adds = c[0];
		g_dl_subs = c[1];
		modules_scan();
		attach_refresh(); /* attached: take over the new objects' calls */
	}
	shim_signals_restore(&old);
}

