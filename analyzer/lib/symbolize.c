/* SPDX-License-Identifier: MIT */
/*
 * symbolize.c — addresses to function / file:line with libdw (elfutils).
 *
 * Symbolization works from the segment's module table, not from
 * /proc/PID/maps, so stacks of a process that has exited (or of one we may not
 * ptrace) still resolve, as long as the files are on disk.  Each module is
 * reported to an offline Dwfl at the address it was loaded at.  We look the
 * module up ourselves (the table may hold a dlclose()d module and a later one
 * at the same address) and then ask libdw about that Dwfl_Module only.
 *
 * Strings in returned frames point into libdw's data, the snapshot, or the
 * symbolizer's own list of rewritten names; all live as long as the symbolizer.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbolize.h"
#include "heapgroups.h"

struct sym_module {
	const struct lw_module *m;
	const char *path;               /* m->path, or the header's exe for the main program */
	Dwfl_Module *dm;                /* NULL: not reported (vdso, unreadable, libdw refused) */
	int hidden;                     /* libleakwatch.so: the shim's own frames */
	int buildid_mismatch;
};

struct cache_slot {
	uint64_t key;                   /* addr * 2 + (return address ? 1 : 0); 0 = empty */
	size_t first;                   /* index into pool */
	size_t n;                       /* frames (0 = hidden) */
};

struct lw_symbolizer {
	const struct lw_snapshot *s;
	Dwfl *dwfl;
	struct sym_module *mods;
	size_t nmods;
	struct cache_slot *slots;       /* open addressing, power-of-two size */
	size_t nslots;
	size_t used;
	struct lw_frame *pool;
	size_t npool;
	size_t cappool;
	char **strs;                    /* names we had to rewrite (symbol_name) */
	size_t nstrs;
	size_t capstrs;
};

/* dir_trusted - nobody but root and us can create a name in dir (an
 * absent dir is fine: nothing can be found in it). */
static int dir_trusted(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) != 0)
		return 1;
	return (st.st_uid == 0 || st.st_uid == geteuid()) && !(st.st_mode & (S_IWGRP | S_IWOTH));
}

/*
 * find_debuginfo - libdw's standard search for separate debug info (the
 * build-id tree and the .gnu_debuglink name in the module's directory, its
 * .debug/ and the global debug directory), but only for a module whose
 * directory nobody else can write: the search opens every candidate with a
 * plain open(), and a FIFO put under the debuglink name there would block
 * the report forever.  Otherwise the module's own file is all there is.
 */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
			  const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
			  char **debuginfo_file_name)
{
	if (file_name && file_name[0] == '/') {
		char dir[PATH_MAX], sub[PATH_MAX + 8];
		const char *slash = strrchr(file_name, '/');
		size_t n = (size_t)(slash - file_name);
		if (n >= sizeof dir)
			return -1; /* cannot judge it: do not search */
		if (n == 0)
			n = 1; /* the root directory */
		memcpy(dir, file_name, n);
		dir[n] = '\0';
		snprintf(sub, sizeof sub, "%s/.debug", dir);
		if (!dir_trusted(dir) || !dir_trusted(sub))
			return -1;
	}
	return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
					    debuglink_crc, debuginfo_file_name);
}

static const Dwfl_Callbacks offline_callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = find_debuginfo,
	.section_address = dwfl_offline_section_address,
};

static const char *path_basename(const char *p)
{
	const char *b = strrchr(p, '/');
	return b ? b + 1 : p;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/*
 * module_open - open a module file named by the segment for reading, or -1.
 * The path comes from a file anyone may have written: it may name a FIFO
 * (open() would wait for a writer forever), a tty or a device (opening can
 * have effects, reading may never end).  So: never block in open(), never
 * acquire a controlling terminal, and keep only regular files.
 */
static int module_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void module_report(struct lw_symbolizer *sym, struct sym_module *sm)
{
	const struct lw_module *m = sm->m;
	if ((m->flags & LW_MODULE_VDSO) || sm->path[0] != '/')
		return;
	int fd = module_open(sm->path);
	if (fd < 0)
		return;
	/* libdwfl owns fd from a successful report on (dwfl_end closes it) */
	sm->dm = dwfl_report_elf(sym->dwfl, path_basename(sm->path), sm->path, fd, m->base, false);
	if (!sm->dm) {
		close(fd);
		return;
	}
	if (m->build_id_len > 0) {
		const unsigned char *bits;
		GElf_Addr vaddr;
		int len = dwfl_module_build_id(sm->dm, &bits, &vaddr);
		/* The file was replaced since it was loaded (an upgrade): lines may lie. */
		if (len > 0 && ((uint32_t)len != m->build_id_len || memcmp(bits, m->build_id, (size_t)len) != 0))
			sm->buildid_mismatch = 1;
	}
}

/*
 * A failed dwfl_report_elf() over an existing module of the same name can
 * leave that module half torn down (seen with elfutils 0.188), so overlaps
 * are refused here, before libdw sees them.
 */
static int range_taken(const struct lw_symbolizer *sym, const struct sym_module *sm)
{
	for (size_t k = 0; k < sym->nmods; k++) {
		const struct sym_module *o = &sym->mods[k];
		if (o->dm && o != sm && sm->m->start < o->m->end && o->m->start < sm->m->end)
			return 1;
	}
	return 0;
}

struct lw_symbolizer *lw_symbolizer_new(const struct lw_snapshot *s, char *err, size_t errlen)
{
	struct lw_symbolizer *sym = calloc(1, sizeof *sym);
	if (!sym) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sym->s = s;
	sym->dwfl = dwfl_begin(&offline_callbacks);
	if (!sym->dwfl) {
		snprintf(err, errlen, "dwfl_begin: %s", dwfl_errmsg(-1));
		free(sym);
		return NULL;
	}
	sym->nslots = 256;
	sym->slots = calloc(sym->nslots, sizeof *sym->slots);
	sym->mods = s->nmodules ? calloc(s->nmodules, sizeof *sym->mods) : NULL;
	if (!sym->slots || (s->nmodules && !sym->mods)) {
		snprintf(err, errlen, "out of memory");
		lw_symbolizer_free(sym);
		return NULL;
	}
	for (size_t i = 0; i < s->nmodules; i++) {
		struct sym_module *sm = &sym->mods[sym->nmods++];
		sm->m = &s->modules[i];
		sm->path = sm->m->path;
		/* dl_iterate_phdr names only the main program "", flagged MAIN or not. */
		if (sm->path[0] == '\0' && !(sm->m->flags & LW_MODULE_VDSO))
			sm->path = s->hdr.exe;
		sm->hidden = ends_with(sm->path, "/libleakwatch.so") || strcmp(sm->path, "libleakwatch.so") == 0;
	}
	/*
	 * libdw refuses overlapping modules, and a dlclose()d library may share its
	 * range with a later one: report loaded modules first so they win, and let
	 * an entry for the same file at the same place share the Dwfl_Module.
	 */
	dwfl_report_begin(sym->dwfl);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < sym->nmods; i++) {
			struct sym_module *sm = &sym->mods[i];
			if (!!(sm->m->flags & LW_MODULE_UNLOADED) != pass)
				continue;
			for (size_t k = 0; k < sym->nmods && !sm->dm; k++) {
				const struct sym_module *o = &sym->mods[k];
				if (o->dm && o->m->base == sm->m->base && o->m->start == sm->m->start &&
				    strcmp(o->path, sm->path) == 0) {
					sm->dm = o->dm;
					sm->buildid_mismatch = o->buildid_mismatch;
				}
			}
			if (!sm->dm && !range_taken(sym, sm))
				module_report(sym, sm);
		}
	dwfl_report_end(sym->dwfl, NULL, NULL);
	return sym;
}

void lw_symbolizer_free(struct lw_symbolizer *sym)
{
	if (!sym)
		return;
	if (sym->dwfl)
		dwfl_end(sym->dwfl);
	free(sym->mods);
	free(sym->slots);
	free(sym->pool);
	for (size_t i = 0; i < sym->nstrs; i++)
		free(sym->strs[i]);
	free(sym->strs);
	free(sym);
}

/* Loaded modules win over dlclose()d ones at the same address; later over earlier. */
static const struct sym_module *module_find(const struct lw_symbolizer *sym, uint64_t addr)
{
	const struct sym_module *best = NULL;
	for (size_t i = 0; i < sym->nmods; i++) {
		const struct sym_module *sm = &sym->mods[i];
		if (addr < sm->m->start || addr >= sm->m->end)
			continue;
		if (!best || !(sm->m->flags & LW_MODULE_UNLOADED) ||
		    (best->m->flags & LW_MODULE_UNLOADED))
			best = sm;
	}
	return best;
}

static int pool_push(struct lw_symbolizer *sym, const struct lw_frame *f)
{
	if (sym->npool == sym->cappool) {
		size_t ncap = sym->cappool ? sym->cappool * 2 : 128;
		struct lw_frame *np = realloc(sym->pool, ncap * sizeof *np);
		if (!np)
			return -1;
		sym->pool = np;
		sym->cappool = ncap;
	}
	sym->pool[sym->npool++] = *f;
	return 0;
}

static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	/* Inlined instances carry their name only on the abstract origin. */
	if (dwarf_attr_integrate(die, DW_AT_name, &attr))
		return dwarf_formstring(&attr);
	return NULL;
}

static const char *call_file(Dwarf_Die *cudie, Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	Dwarf_Word idx;
	Dwarf_Files *files;
	size_t nfiles;
	if (!dwarf_attr(die, DW_AT_call_file, &attr) || dwarf_formudata(&attr, &idx) != 0)
		return NULL;
	if (dwarf_getsrcfiles(cudie, &files, &nfiles) != 0 || idx >= nfiles)
		return NULL;
	return dwarf_filesrc(files, idx, NULL, NULL);
}

static int call_line(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	Dwarf_Word line;
	if (!dwarf_attr(die, DW_AT_call_line, &attr) || dwarf_formudata(&attr, &line) != 0)
		return 0;
	return (int)line;
}

/* libstdc++'s demangler (the Itanium C++ ABI one), called from C. */
char *__cxa_demangle(const char *mangled, char *out, size_t *len, int *status);

char *lw_symbol_demangle(const char *name)
{
	int status = 0;
	if (!name || strncmp(name, "_Z", 2) != 0)
		return NULL;
	char *d = __cxa_demangle(name, NULL, NULL, &status);
	if (status != 0) {
		free(d);
		return NULL;
	}
	return d;
}

/* Keep a malloc'd string for the symbolizer's lifetime; returns it, or NULL (freed). */
static const char *intern(struct lw_symbolizer *sym, char *copy)
{
	if (sym->nstrs == sym->capstrs) {
		size_t ncap = sym->capstrs ? sym->capstrs * 2 : 16;
		char **ns = realloc(sym->strs, ncap * sizeof *ns);
		if (!ns) {
			free(copy);
			return NULL;
		}
		sym->strs = ns;
		sym->capstrs = ncap;
	}
	sym->strs[sym->nstrs++] = copy;
	return copy;
}

/*
 * "__libc_start_main@@GLIBC_2.34" -> "__libc_start_main": the version is noise
 * in a stack.  C++ names are demangled ("_ZN3foo3barEi" -> "foo::bar(int)");
 * then *linkage is the mangled name without its version (valgrind's fun:
 * suppression patterns are written against it), else NULL.  Rewritten names
 * are interned in the symbolizer.
 */
static const char *symbol_name(struct lw_symbolizer *sym, const char *name, const char **linkage)
{
	*linkage = NULL;
	if (!name)
		return NULL;
	const char *at = strchr(name, '@');
	char *base = NULL;
	if (at && at != name) {
		base = strndup(name, (size_t)(at - name));
		if (!base)
			return name;
	}
	char *dem = lw_symbol_demangle(base ? base : name);
	if (dem) {
		const char *r = intern(sym, dem);
		if (!r) {
			free(base);
			return name;
		}
		*linkage = base ? intern(sym, base) : name;
		return r;
	}
	if (!base)
		return name;
	const char *r = intern(sym, base);
	return r ? r : name;
}

/* DW_AT_linkage_name of a function DIE (the mangled name of a C++ function), or NULL. */
static const char *die_linkage(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
	    dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
		return dwarf_formstring(&attr);
	return NULL;
}

/*
 * Append the frames for one address: the innermost inlined function first
 * (at the line the pc maps to), then each caller it was inlined into at the
 * call site recorded on the inline instance, ending with the real function.
 */
static int frames_resolve(struct lw_symbolizer *sym, uint64_t addr, uint64_t pc)
{
	struct lw_frame f;
	memset(&f, 0, sizeof f);
	f.addr = addr;

	const struct sym_module *sm = module_find(sym, addr);
	if (!sm)
		return pool_push(sym, &f);
	if (sm->hidden)
		return 0;
	f.module = sm->path;
	f.module_off = addr - sm->m->base;
	f.buildid_mismatch = sm->buildid_mismatch;
	if (!sm->dm)
		return pool_push(sym, &f);

	GElf_Off off;
	GElf_Sym elfsym;
	const char *elflinkage;
	const char *elfname = symbol_name(sym, dwfl_module_addrinfo(sm->dm, pc, &off, &elfsym, NULL, NULL, NULL),
					  &elflinkage);
	Dwfl_Line *line = dwfl_module_getsrc(sm->dm, pc);
	const char *file = NULL;
	int lineno = 0;
	if (line) {
		file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
		/* the call sites of inlined frames are files of the same unit */
		f.comp_dir = dwfl_line_comp_dir(line);
	}

	Dwarf_Addr bias = 0;
	Dwarf_Die *cudie = dwfl_module_addrdie(sm->dm, pc, &bias);
	Dwarf_Die *scopes = NULL;
	int nscopes = cudie ? dwarf_getscopes(cudie, pc - bias, &scopes) : 0;
	/*
	 * Past an inlined instance, dwarf_getscopes() continues with the scopes of
	 * the inlined function's abstract definition, not with the function it was
	 * inlined into; dwarf_getscopes_die() on the innermost instance gives the
	 * concrete nesting (inlined_subroutine ... subprogram ... CU).
	 */
	for (int i = 0; i < nscopes; i++) {
		int tag = dwarf_tag(&scopes[i]);
		if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
			continue;
		if (tag == DW_TAG_inlined_subroutine) {
			Dwarf_Die inner = scopes[i];
			Dwarf_Die *concrete = NULL;
			int nc = dwarf_getscopes_die(&inner, &concrete);
			if (nc > 0) {
				free(scopes);
				scopes = concrete;
				nscopes = nc;
			} else {
				free(concrete);
			}
		}
		break;
	}

	/* Function-like scopes up to and including the enclosing real function. */
	int chain[64], nchain = 0;
	for (int i = 0; i < nscopes && nchain < (int)(sizeof chain / sizeof chain[0]); i++) {
		int tag = dwarf_tag(&scopes[i]);
		if (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_subprogram)
			chain[nchain++] = i;
		if (tag == DW_TAG_subprogram)
			break;
	}

	int rc = 0;
	if (nchain == 0) {
		f.function = elfname;
		f.linkage = elflinkage;
		f.file = file;
		f.line = lineno;
		rc = pool_push(sym, &f);
	} else {
		const char *cur_file = file;
		int cur_line = lineno;
		for (int c = 0; c < nchain && rc == 0; c++) {
			Dwarf_Die *die = &scopes[chain[c]];
			int inl = dwarf_tag(die) == DW_TAG_inlined_subroutine;
			f.inlined = inl;
			f.function = die_name(die);
			f.linkage = die_linkage(die);
			/* The real function: the ELF symbol is what nm and perf show. */
			if (!inl && elfname) {
				f.function = elfname;
				f.linkage = elflinkage;
			}
			if (f.linkage && f.function && strcmp(f.linkage, f.function) == 0)
				f.linkage = NULL;
			f.file = cur_file;
			f.line = cur_line;
			rc = pool_push(sym, &f);
			if (inl) {
				cur_file = call_file(cudie, die);
				cur_line = call_line(die);
			}
		}
	}
	free(scopes);
	return rc;
}

static uint64_t key_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return k;
}

static struct cache_slot *cache_find(struct lw_symbolizer *sym, uint64_t key)
{
	size_t mask = sym->nslots - 1;
	for (size_t i = key_hash(key) & mask;; i = (i + 1) & mask)
		if (sym->slots[i].key == key || sym->slots[i].key == 0)
			return &sym->slots[i];
}

static int cache_grow(struct lw_symbolizer *sym)
{
	struct cache_slot *old = sym->slots;
	size_t nold = sym->nslots;
	struct cache_slot *ns = calloc(nold * 2, sizeof *ns);
	if (!ns)
		return -1;
	sym->slots = ns;
	sym->nslots = nold * 2;
	for (size_t i = 0; i < nold; i++)
		if (old[i].key)
			*cache_find(sym, old[i].key) = old[i];
	free(old);
	return 0;
}

/* The frames for one recorded address, resolved once; NULL on allocation failure. */
static const struct cache_slot *frames_get(struct lw_symbolizer *sym, uint64_t addr, int is_return)
{
	/* addr * 2 + flag is never 0 for addr > 0; address 0 is not cached. */
	uint64_t key = addr * 2 + (is_return ? 1 : 0);
	if (key == 0)
		return NULL;
	if ((sym->used + 1) * 2 > sym->nslots && cache_grow(sym) < 0)
		return NULL;
	struct cache_slot *slot = cache_find(sym, key);
	if (slot->key == key)
		return slot;
	size_t first = sym->npool;
	/* A return address points after the call, possibly at the next line or function. */
	if (frames_resolve(sym, addr, is_return ? addr - 1 : addr) < 0) {
		sym->npool = first;
		return NULL;
	}
	slot->key = key;
	slot->first = first;
	slot->n = sym->npool - first;
	sym->used++;
	return slot;
}

int lw_python_frame(const struct lw_snapshot *s, uint64_t word, struct lw_frame *out)
{
	memset(out, 0, sizeof *out);
	out->addr = word;
	out->python = 1;
	const struct lw_snap_stack *st = lw_snapshot_stack(s, LW_PYFRAME_ID(word));
	if (!st || st->depth < 2 || st->frames[0] != LW_PYNAME_MAGIC)
		return -1;
	/* "qualname\0filename\0" in the words after the magic, maybe cut */
	const char *b = (const char *)&st->frames[1], *end = (const char *)&st->frames[st->depth];
	const char *q_end = memchr(b, '\0', (size_t)(end - b));
	if (!q_end)
		return -1;
	out->function = b;
	const char *f = q_end + 1;
	if (f < end && memchr(f, '\0', (size_t)(end - f)) && *f)
		out->file = f;
	out->line = (int)LW_PYFRAME_LINE(word);
	return 0;
}

size_t lw_symbolize_stack(struct lw_symbolizer *sym, const uint64_t *frames, size_t depth,
			  struct lw_frame *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < depth && n < max; i++) {
		if (frames[i] == 0)
			continue;
		if (LW_IS_PYFRAME(frames[i])) {
			if (sym)
				lw_python_frame(sym->s, frames[i], &out[n]);
			else
				memset(&out[n], 0, sizeof out[n]), out[n].addr = frames[i], out[n].python = 1;
			n++;
			continue;
		}
		/* Every recorded frame is a return address: the shim drops its own
		 * frames, so even frame 0 is where the hooked libc call returns to.
		 * Looking up addr - 1 keeps `close(fd);` on its own line instead of
		 * the line of the next statement. */
		const struct cache_slot *slot = sym ? frames_get(sym, frames[i], 1) : NULL;
		if (!slot) {
			memset(&out[n], 0, sizeof out[n]);
			out[n++].addr = frames[i];
			continue;
		}
		for (size_t k = 0; k < slot->n && n < max; k++)
			out[n++] = sym->pool[slot->first + k];
	}
	return n;
}

char *lw_frame_format_location(const struct lw_frame *f, char *buf, size_t len)
{
	if (f->python)
		snprintf(buf, len, "python");
	else if (f->module)
		snprintf(buf, len, "%s+0x%llx", path_basename(f->module), (unsigned long long)f->module_off);
	else
		snprintf(buf, len, "0x%llx", (unsigned long long)f->addr);
	return buf;
}
