/* SPDX-License-Identifier: MIT */
/*
 * attach.c — the shim loaded into a running process by `leakwatch attach`
 * (analyzer/lib/inject.c calls the target's own dlopen(), then
 * leakwatch_attach()), and taken out again by `leakwatch detach`.
 *
 * Preloaded, the shim's exported functions win every symbol lookup.  Loaded
 * late, every call the program's modules bound already goes to libc, so
 * leakwatch_attach() takes those calls over where they are bound: in each
 * loaded module (but ld.so, the vDSO and the shim), every JUMP_SLOT (PLT)
 * and GLOB_DAT (function pointer) relocation that names a function the
 * shim exports gets the shim's address, under RELRO with an mprotect
 * around the store.  Each store is one aligned word (a thread calling
 * through it sees the old function or the new one), and is kept with the
 * old value, so leakwatch_detach() puts back every entry that still holds
 * ours.  Objects loaded later are taken over when the module table finds
 * them (modules_refresh, before any stack is captured).
 *
 * What this cannot see: calls through pointers the program obtained before
 * (dlsym() results, function pointers it stored), and calls inside a module
 * that binds them directly (-Bsymbolic, static functions).  A block freed
 * through such a pointer stays in the table as live.  The report says so.
 *
 * Nothing here allocates through malloc: the patch list and the export
 * table live in pages of our own (prim_mmap).
 */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include "shim.h"

#define ATTACH_EXPORT __attribute__((visibility("default")))

#if defined(__x86_64__)
#define R_JUMP_SLOT R_X86_64_JUMP_SLOT
#define R_GLOB_DAT  R_X86_64_GLOB_DAT
#define ATTACH_RELA 1
#elif defined(__aarch64__)
#define R_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define R_GLOB_DAT  R_AARCH64_GLOB_DAT
#define ATTACH_RELA 1
#endif

/* The shim's exported functions, sorted by name. */
#define ATTACH_MAX_EXPORTS 512
struct attach_export {
	const char *name;
	void *addr;
};
static struct attach_export g_exp[ATTACH_MAX_EXPORTS];
static size_t g_nexp;

/* One entry taken over. */
struct attach_slot {
	void **slot;
	void *old, *ours;
	int relro;                      /* the page is read-only but for our stores */
};
static struct attach_slot *g_slots;
static size_t g_nslots, g_slots_cap;

/* Objects already patched (their load address and dynamic section). */
#define ATTACH_MAX_OBJECTS 4096
static struct { uintptr_t base; const void *dyn; } g_objs[ATTACH_MAX_OBJECTS];
static size_t g_nobjs;

static uintptr_t g_self_lo, g_self_hi;  /* the shim's own executable range */
static _Atomic int g_attached;          /* 1 between attach and detach */


/* ---- which load is this? ------------------------------------------------- */

struct order_probe {
	uintptr_t self;
	int seen_libc, late;
};

static int object_is(const struct dl_phdr_info *info, uintptr_t addr)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && addr >= lo && addr < lo + ph->p_memsz)
			return 1;
	}
	return 0;
}

static const char *base_name(const char *p)
{
	const char *b = p ? strrchr(p, '/') : NULL;
	return b ? b + 1 : (p ? p : "");
}

static int order_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct order_probe *o = arg;
	(void)size;
	if (object_is(info, o->self)) {
		o->late = o->seen_libc;
		return 1;
	}
	if (strncmp(base_name(info->dlpi_name), "libc.so", 7) == 0)
		o->seen_libc = 1;
	return 0;
}

int attach_late_load(const void *self)
{
	/* LD_PRELOAD objects are loaded before the program's libraries; a
	 * dlopen()ed one after every one of them, libc included */
	struct order_probe o = { (uintptr_t)self, 0, 0 };
	dl_iterate_phdr(order_cb, &o);
	return o.late;
}

/* ---- dynamic sections ----------------------------------------------------- */

struct dyninfo {
	const ElfW(Sym) *symtab;
	const char *strtab;
	const uint32_t *gnu_hash;
	const uint32_t *sysv_hash;
	const void *jmprel;
	size_t pltrelsz;
	const void *rela;
	size_t relasz;
	uintptr_t relro_lo, relro_hi;
	const void *dyn;
};

/* ld.so relocates d_ptr in place for most objects; not the vDSO's */
static const void *dptr(const struct dl_phdr_info *info, ElfW(Addr) v)
{
	return (const void *)(v < info->dlpi_addr ? v + info->dlpi_addr : v);
}

static int dyninfo_get(const struct dl_phdr_info *info, struct dyninfo *d)
{
	memset(d, 0, sizeof *d);
	const ElfW(Dyn) *dyn = NULL;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
		else if (ph->p_type == PT_GNU_RELRO) {
			d->relro_lo = info->dlpi_addr + ph->p_vaddr;
			d->relro_hi = d->relro_lo + ph->p_memsz;
		}
	}
	if (!dyn)
		return -1;
	d->dyn = dyn;
	int pltrel = 0;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		switch (dyn->d_tag) {
		case DT_SYMTAB: d->symtab = dptr(info, dyn->d_un.d_ptr); break;
		case DT_STRTAB: d->strtab = dptr(info, dyn->d_un.d_ptr); break;
		case DT_GNU_HASH: d->gnu_hash = dptr(info, dyn->d_un.d_ptr); break;
		case DT_HASH: d->sysv_hash = dptr(info, dyn->d_un.d_ptr); break;
		case DT_JMPREL: d->jmprel = dptr(info, dyn->d_un.d_ptr); break;
		case DT_PLTRELSZ: d->pltrelsz = dyn->d_un.d_val; break;
		case DT_PLTREL: pltrel = (int)dyn->d_un.d_val; break;
		case DT_RELA: d->rela = dptr(info, dyn->d_un.d_ptr); break;
		case DT_RELASZ: d->relasz = dyn->d_un.d_val; break;
		default: break;
		}
	}
	if (!d->symtab || !d->strtab)
		return -1;
#ifdef ATTACH_RELA
	if (d->jmprel && pltrel != DT_RELA)
		d->jmprel = NULL; /* REL-style PLT relocations: not on these architectures */
#endif
	return 0;
}

/* How many symbols the dynamic symbol table holds (from its hash table). */
static size_t dynsym_count(const struct dyninfo *d)
{
	if (d->sysv_hash)
		return d->sysv_hash[1]; /* nchain */
	if (!d->gnu_hash)
		return 0;
	const uint32_t *h = d->gnu_hash;
	uint32_t nbuckets = h[0], symoffset = h[1], bloom = h[2];
	const uint32_t *buckets = h + 4 + bloom * (sizeof(ElfW(Addr)) / 4);
	const uint32_t *chain = buckets + nbuckets;
	uint32_t last = 0;
	for (uint32_t b = 0; b < nbuckets; b++)
		if (buckets[b] > last)
			last = buckets[b];
	if (last < symoffset)
		return symoffset;
	while (!(chain[last - symoffset] & 1))
		last++;
	return (size_t)last + 1;
}

/* ---- the shim's exports ----------------------------------------------------- */

static int exp_cmp(const struct attach_export *a, const char *name)
{
	return strcmp(a->name, name);
}

static void *export_find(const char *name)
{
	size_t lo = 0, hi = g_nexp;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = exp_cmp(&g_exp[mid], name);
		if (c == 0)
			return g_exp[mid].addr;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int exports_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	if (!object_is(info, (uintptr_t)arg))
		return 0;
	struct dyninfo d;
	if (dyninfo_get(info, &d) != 0)
		return 1;
	size_t n = dynsym_count(&d);
	for (size_t i = 1; i < n && g_nexp < ATTACH_MAX_EXPORTS; i++) {
		const ElfW(Sym) *s = &d.symtab[i];
		if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_shndx == SHN_UNDEF || s->st_value == 0)
			continue;
		const char *name = d.strtab + s->st_name;
		if (strncmp(name, "leakwatch_", 10) == 0)
			continue; /* the control functions are nobody's to call through a GOT */
		/* insertion into the sorted table (a few hundred names, once) */
		size_t k = g_nexp;
		while (k > 0 && strcmp(g_exp[k - 1].name, name) > 0) {
			g_exp[k] = g_exp[k - 1];
			k--;
		}
		g_exp[k].name = name;
		g_exp[k].addr = (void *)(info->dlpi_addr + s->st_value);
		g_nexp++;
	}
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
			g_self_lo = info->dlpi_addr + ph->p_vaddr;
			g_self_hi = g_self_lo + ph->p_memsz;
		}
	}
	return 1;
}

/* ---- patching --------------------------------------------------------------- */

static int slots_reserve(void)
{
	if (g_nslots < g_slots_cap)
		return 0;
	size_t cap = g_slots_cap ? g_slots_cap * 2 : 1024;
	void *p = prim_mmap(NULL, cap * sizeof *g_slots, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	if (g_slots) {
		memcpy(p, g_slots, g_nslots * sizeof *g_slots);
		prim_munmap(g_slots, g_slots_cap * sizeof *g_slots);
	}
	g_slots = p;
	g_slots_cap = cap;
	return 0;
}

/* Store v at *slot, making its page writable for the store when it is in
 * RELRO (read-only again after).  0, or -1 when the page stays read-only. */
static int slot_store(void **slot, void *v, int relro)
{
	uintptr_t page = (uintptr_t)slot & ~(uintptr_t)4095;
	if (relro && prim_mprotect((void *)page, 4096, PROT_READ | PROT_WRITE) != 0)
		return -1;
	__atomic_store_n(slot, v, __ATOMIC_RELEASE);
	if (relro)
		prim_mprotect((void *)page, 4096, PROT_READ);
	return 0;
}

static void patch_relocs(const struct dl_phdr_info *info, const struct dyninfo *d, const void *rel, size_t sz,
			 int *oom)
{
#ifdef ATTACH_RELA
	const ElfW(Rela) *r = rel, *end = (const ElfW(Rela) *)((const char *)rel + sz);
	for (; r < end; r++) {
		unsigned type = (unsigned)ELF64_R_TYPE(r->r_info);
		if (type != R_JUMP_SLOT && type != R_GLOB_DAT)
			continue;
		size_t si = ELF64_R_SYM(r->r_info);
		if (si == 0)
			continue;
		void *ours = export_find(d->strtab + d->symtab[si].st_name);
		if (!ours)
			continue;
		void **slot = (void **)(info->dlpi_addr + r->r_offset);
		void *old = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
		if (old == ours)
			continue;
		if (slots_reserve() != 0) {
			*oom = 1;
			return;
		}
		int relro = (uintptr_t)slot >= d->relro_lo && (uintptr_t)slot < d->relro_hi;
		if (slot_store(slot, ours, relro) == 0)
			g_slots[g_nslots++] = (struct attach_slot){ slot, old, ours, relro };
	}
#else
	(void)info, (void)d, (void)rel, (void)sz, (void)oom;
#endif
}

static int patch_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	int *oom = arg;
	(void)size;
	if (*oom)
		return 1;
	const char *b = base_name(info->dlpi_name);
	/* not ld.so (its own allocator and calls), not the vDSO, not us */
	if ((getauxval(AT_BASE) && info->dlpi_addr == getauxval(AT_BASE)) || strncmp(b, "ld-linux", 8) == 0 ||
	    strncmp(b, "linux-vdso", 10) == 0 || strncmp(b, "linux-gate", 10) == 0 || object_is(info, g_self_lo))
		return 0;
	struct dyninfo d;
	if (dyninfo_get(info, &d) != 0)
		return 0;
	for (size_t i = 0; i < g_nobjs; i++)
		if (g_objs[i].base == info->dlpi_addr && g_objs[i].dyn == d.dyn)
			return 0; /* done already */
	if (g_nobjs < ATTACH_MAX_OBJECTS)
		g_objs[g_nobjs++].base = info->dlpi_addr, g_objs[g_nobjs - 1].dyn = d.dyn;
	if (d.jmprel)
		patch_relocs(info, &d, d.jmprel, d.pltrelsz, oom);
	if (d.rela)
		patch_relocs(info, &d, d.rela, d.relasz, oom);
	return 0;
}

static void patch_all(int *oom)
{
	sigset_t old;
	shim_signals_block(&old);
	dl_iterate_phdr(patch_cb, oom);
	shim_signals_restore(&old);
	if (g_seg.hdr)
		g_seg.hdr->attach_patched = (uint32_t)g_nslots;
}

SHIM_HIDDEN _Atomic int g_attach_rescan;
static _Atomic uint64_t g_attach_last_scan;

void attach_rescan_maybe(void)
{
	uint64_t now = prim_coarse_ns(), last = atomic_load_explicit(&g_attach_last_scan, memory_order_relaxed);
	if (now - last < LW_LIM_ATTACH_RESCAN_NS ||
	    !atomic_compare_exchange_strong(&g_attach_last_scan, &last, now))
		return;
	modules_refresh();
}

void attach_refresh(void)
{
	if (!atomic_load(&g_attached))
		return;
	int oom = 0;
	patch_all(&oom);
}

/* What the modules' malloc entries hold now (the first one found): the
 * allocator the program is bound to. */
static int bound_malloc_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	void **out = arg;
	const char *b = base_name(info->dlpi_name);
	if ((getauxval(AT_BASE) && info->dlpi_addr == getauxval(AT_BASE)) || strncmp(b, "ld-linux", 8) == 0 ||
	    strncmp(b, "linux-vdso", 10) == 0 || object_is(info, (uintptr_t)&bound_malloc_cb))
		return 0;
	struct dyninfo d;
	if (dyninfo_get(info, &d) != 0)
		return 0;
#ifdef ATTACH_RELA
	const void *tabs[2] = { d.jmprel, d.rela };
	size_t sizes[2] = { d.pltrelsz, d.relasz };
	for (int t = 0; t < 2; t++) {
		const ElfW(Rela) *r = tabs[t], *end = (const ElfW(Rela) *)((const char *)tabs[t] + sizes[t]);
		for (; r && r < end; r++) {
			unsigned type = (unsigned)ELF64_R_TYPE(r->r_info);
			size_t si = ELF64_R_SYM(r->r_info);
			if ((type != R_JUMP_SLOT && type != R_GLOB_DAT) || si == 0 ||
			    strcmp(d.strtab + d.symtab[si].st_name, "malloc") != 0)
				continue;
			void *v = *(void **)(info->dlpi_addr + r->r_offset);
			/* a lazy PLT slot not yet bound points back into the object's own PLT */
			if (type == R_JUMP_SLOT && object_is(info, (uintptr_t)v))
				continue;
			*out = v;
			return 1;
		}
	}
#endif
	return 0;
}

/* ---- the two entry points ------------------------------------------------------ */

/* Called in the target by `leakwatch attach` / `detach` (inject.c): 0, or an enum lw_attach_error. */
ATTACH_EXPORT int leakwatch_attach(void);
ATTACH_EXPORT int leakwatch_detach(void);

ATTACH_EXPORT int leakwatch_attach(void)
{
#if !defined(ATTACH_RELA)
	return LW_ATTACH_E_ARCH;
#else
	if (atomic_load(&g_attached))
		return LW_ATTACH_E_ATTACHED;
	if (g_seg.hdr && atomic_load(&g_seg.hdr->detach_monotonic_ns))
		return LW_ATTACH_E_DETACHED;
	if (atomic_load(&g_ready) || !attach_late_load((const void *)&leakwatch_attach))
		return LW_ATTACH_E_PRELOADED;
	/* a program bound to an allocator of its own (jemalloc, tcmalloc, or
	 * one it defines): the hooks forward to libc's (RTLD_NEXT), so a block
	 * made before would be freed by the wrong allocator.  Refused. */
	void *bound = NULL, *next = dlsym(RTLD_NEXT, "malloc");
	dl_iterate_phdr(bound_malloc_cb, &bound);
	if (bound && next && bound != next)
		return LW_ATTACH_E_ALLOCATOR;
	if (g_nexp == 0)
		dl_iterate_phdr(exports_cb, (void *)&leakwatch_attach);
	int rc = lifecycle_attach();
	if (rc != LW_ATTACH_OK)
		return rc;
	int oom = 0;
	atomic_store(&g_attached, 1);
	patch_all(&oom);
	atomic_store(&g_attach_last_scan, prim_coarse_ns());
	atomic_store(&g_attach_rescan, 1);
	return oom ? LW_ATTACH_E_MEMORY : LW_ATTACH_OK;
#endif
}

ATTACH_EXPORT int leakwatch_detach(void)
{
	if (!atomic_exchange(&g_attached, 0))
		return LW_ATTACH_E_NOT_ATTACHED;
	atomic_store(&g_attach_rescan, 0);
	sigset_t old;
	shim_signals_block(&old);
	for (size_t i = g_nslots; i-- > 0;) {
		struct attach_slot *s = &g_slots[i];
		if (__atomic_load_n(s->slot, __ATOMIC_ACQUIRE) != s->ours)
			continue; /* someone else changed it since: theirs now */
		(void)slot_store(s->slot, s->old, s->relro);
	}
	g_nslots = 0;
	g_nobjs = 0;
	shim_signals_restore(&old);
	/* stop recording: the hooks still reached through pointers pass through */
	if (g_seg.hdr)
		atomic_store(&g_seg.hdr->detach_monotonic_ns, prim_now_ns());
	atomic_store_explicit(&g_ready, 0, memory_order_release);
	return LW_ATTACH_OK;
}
