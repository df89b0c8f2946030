/* SPDX-License-Identifier: MIT */
/*
 * python.c — the Python frames of a CPython 3.11, 3.12 or 3.13 thread,
 * spliced into its native stack where the interpreter's eval loop runs.
 *
 * CPython releases the GIL around socket calls, so nothing here may use its
 * C API.  It does not need to: a thread inside one of our hooks is inside a
 * C call its own interpreter made, and its frame chain cannot change until
 * that call returns.  So a capture reads, in the calling thread's memory:
 *
 *   tstate     pthread_getspecific(_PyRuntime's autoTSSkey): the thread's
 *              PyThreadState (set for every thread the interpreter knows)
 *   frame      tstate->cframe->current_frame (3.11, 3.12) or
 *              tstate->current_frame (3.13): the innermost
 *              _PyInterpreterFrame, then ->previous
 *   code, line frame->f_code (f_executable) and the instruction it is at;
 *              the line from the code object's location table (PEP 626)
 *
 * Every native frame in _PyEval_EvalFrameDefault stands for one run of the
 * interpreter: the Python frames it executes go in its place in the
 * recorded stack, up to the frame that entered it (3.11: is_entry) or the
 * C-stack entry frame the run pushed (3.12, 3.13: owner
 * FRAME_OWNED_BY_CSTACK).  Outside the innermost native frames (the C code
 * that made the call, up to the first Python frame) the interpreter's own
 * frames are left out: they say nothing of the program, and they differ
 * between two calls of the same Python code (a specialized instruction
 * runs __init__ without a new C frame), which would split one call site
 * into several groups.  Frames of other objects (C extensions calling
 * back into Python, libc) stay.
 *
 * A Python frame is one 64-bit word of the stack: LW_PYFRAME_TAG, the id of
 * a *name entry* and the line (segment.h).  A name entry is a stack-table
 * entry whose first word is LW_PYNAME_MAGIC and whose other words hold
 * "qualname\0filename\0": interned by content like any stack, so a code
 * object freed and another one at its address can never be named wrongly
 * (the cache below is checked against the code object's own name objects,
 * and two code objects with the same names share the entry; the line comes
 * from the live code object at each capture).
 *
 * Offsets are CPython's own (offsetof() against each version's internal
 * headers, scripts/pyoffsets.c); every object read is checked to be what
 * it should (a code object's type is PyCode_Type) before it is used, and
 * anything unexpected ends the Python part of that stack: never a wrong
 * frame.  The version comes from the interpreter's Py_Version.
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <link.h>
#include <pthread.h>
#include <string.h>

#include "shim.h"

struct py_layout {
	unsigned minor;
	uint32_t rt_tss;                /* _PyRuntime: Py_tss_t autoTSSkey {int init; pthread_key_t key} */
	uint32_t rt_main;               /* _PyRuntime: interpreters.main */
	uint32_t ts_interp;             /* PyThreadState: interp */
	int32_t ts_cframe;              /* PyThreadState: cframe (-1: none, 3.13) */
	uint32_t cf_current;            /* _PyCFrame: current_frame / PyThreadState: current_frame */
	uint32_t fr_code, fr_previous, fr_instr, fr_owner;
	int32_t fr_is_entry;            /* 3.11 only (-1: the run's entry is a CSTACK frame) */
	uint32_t co_filename, co_qualname, co_linetable, co_code, co_firstlineno;
	uint32_t str_ascii, str_compact; /* sizeof(PyASCIIObject), sizeof(PyCompactUnicodeObject) */
};

#define OWNED_BY_CSTACK 3

static const struct py_layout layouts[] = {
	{ 11, 592, 48, 16, 56, 8, 32, 48, 56, 69, 68, 112, 128, 136, 184, 72, 48, 72 },
	{ 12, 1544, 48, 16, 56, 0, 0, 8, 56, 70, -1, 112, 128, 136, 192, 68, 40, 56 },
	{ 13, 2160, 640, 16, -1, 72, 0, 8, 56, 70, -1, 112, 128, 136, 200, 68, 40, 56 },
};

static const struct py_layout *g_py;
static const char *g_rt;                /* &_PyRuntime */
static const void *g_code_type;         /* &PyCode_Type */
static uintptr_t g_eval_lo, g_eval_hi;  /* _PyEval_EvalFrameDefault */
static uintptr_t g_interp_lo, g_interp_hi; /* the executable code of the object it is in */
static uintptr_t g_fin_lo, g_fin_hi;    /* PyObject_CallFinalizerFromDealloc */
static uintptr_t g_dea_lo, g_dea_hi;    /* _Py_Dealloc (io objects finalize from their dealloc directly) */
static uintptr_t g_cf_lo, g_cf_hi;      /* PyObject_CallFinalizer (calls tp_finalize; inlined in Debian's) */

static void sym_range(const char *name, uintptr_t *lo, uintptr_t *hi)
{
	Dl_info info;
	const ElfW(Sym) *s = NULL;
	void *p = dlsym(RTLD_DEFAULT, name);
	*lo = *hi = 0;
	if (p && dladdr1(p, &info, (void **)&s, RTLD_DL_SYMENT) && s && s->st_size) {
		*lo = (uintptr_t)p;
		*hi = *lo + s->st_size;
	}
}

static int interp_range(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size, (void)arg;
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	int mine = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
		if (g_eval_lo >= s && g_eval_lo < e)
			mine = 1;
		if (s < lo)
			lo = s;
		if (e > hi)
			hi = e;
	}
	if (!mine)
		return 0;
	g_interp_lo = lo;
	g_interp_hi = hi;
	return 1;
}

SHIM_HIDDEN int g_python_on;

void python_init(void)
{
	g_py = NULL;
	g_python_on = 0;
	const unsigned long *ver = dlsym(RTLD_DEFAULT, "Py_Version");
	void *eval = dlsym(RTLD_DEFAULT, "_PyEval_EvalFrameDefault");
	if (!g_seg.hdr || !g_cfg.python)
		return;
	if (!ver || !eval) {
		/* a CPython older than 3.11 (no Py_Version), or no Python at all */
		if (dlsym(RTLD_DEFAULT, "Py_Initialize"))
			g_seg.hdr->py_frames = LW_PY_UNSUPPORTED;
		return;
	}
	unsigned long v = *ver;
	g_seg.hdr->py_version = (uint32_t)v;
	unsigned minor = (unsigned)(v >> 16) & 0xff;
	const struct py_layout *l = NULL;
	for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
		if ((v >> 24) == 3 && layouts[i].minor == minor)
			l = &layouts[i];
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	g_rt = dlsym(RTLD_DEFAULT, "_PyRuntime");
	g_code_type = dlsym(RTLD_DEFAULT, "PyCode_Type");
	if (!l || !g_rt || !g_code_type || !dladdr1(eval, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym ||
	    !sym->st_size) {
		g_seg.hdr->py_frames = LW_PY_UNSUPPORTED;
		return;
	}
	g_eval_lo = (uintptr_t)eval;
	g_eval_hi = g_eval_lo + sym->st_size;
	g_interp_lo = g_interp_hi = 0;
	dl_iterate_phdr(interp_range, NULL);
	sym_range("PyObject_CallFinalizerFromDealloc", &g_fin_lo, &g_fin_hi);
	sym_range("_Py_Dealloc", &g_dea_lo, &g_dea_hi);
	sym_range("PyObject_CallFinalizer", &g_cf_lo, &g_cf_hi);
	g_seg.hdr->py_frames = LW_PY_FRAMES;
	g_py = l;
	g_python_on = 1;
}

static inline uintptr_t rd(uintptr_t p, uint32_t off)
{
	return *(const uintptr_t *)(p + off);
}

static int plausible(uintptr_t p)
{
	return p >= 4096 && (p & 7) == 0 && p < (1ull << 47);
}

/* The calling thread's innermost interpreter frame, or 0. */
static uintptr_t current_frame(void)
{
	const struct py_layout *l = g_py;
	const int *tss = (const int *)(g_rt + l->rt_tss);
	if (tss[0] != 1) /* not initialized (yet) */
		return 0;
	unsigned key = (unsigned)tss[1];
	if (key >= 1024)
		return 0;
	uintptr_t ts = (uintptr_t)pthread_getspecific((pthread_key_t)key);
	if (!plausible(ts) || rd(ts, l->ts_interp) != rd((uintptr_t)g_rt, l->rt_main))
		return 0;
	uintptr_t at = ts;
	if (l->ts_cframe >= 0) {
		at = rd(ts, (uint32_t)l->ts_cframe);
		if (!plausible(at))
			return 0;
	}
	uintptr_t f = rd(at, l->cf_current);
	return plausible(f) ? f : 0;
}

/* A Python str as UTF-8 (at most cap - 1 bytes, NUL-terminated); 0 or -1. */
static int str_utf8(uintptr_t s, char *out, size_t cap)
{
	const struct py_layout *l = g_py;
	if (!plausible(s) || cap == 0)
		return -1;
	int64_t len = *(const int64_t *)(s + 16);
	uint32_t state = *(const uint32_t *)(s + 32);
	unsigned kind = (state >> 2) & 7, compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
	if (!compact || len < 0 || len > 4096 || (kind != 1 && kind != 2 && kind != 4))
		return -1;
	const unsigned char *d = (const unsigned char *)(s + (ascii ? l->str_ascii : l->str_compact));
	size_t n = 0;
	for (int64_t i = 0; i < len; i++) {
		uint32_t c = kind == 1 ? d[i] : kind == 2 ? ((const uint16_t *)d)[i] : ((const uint32_t *)d)[i];
		unsigned char b[4];
		size_t k;
		if (c < 0x80)
			b[0] = (unsigned char)c, k = 1;
		else if (c < 0x800)
			b[0] = (unsigned char)(0xc0 | c >> 6), b[1] = (unsigned char)(0x80 | (c & 63)), k = 2;
		else if (c < 0x10000)
			b[0] = (unsigned char)(0xe0 | c >> 12), b[1] = (unsigned char)(0x80 | ((c >> 6) & 63)),
			b[2] = (unsigned char)(0x80 | (c & 63)), k = 3;
		else
			b[0] = (unsigned char)(0xf0 | c >> 18), b[1] = (unsigned char)(0x80 | ((c >> 12) & 63)),
			b[2] = (unsigned char)(0x80 | ((c >> 6) & 63)), b[3] = (unsigned char)(0x80 | (c & 63)), k = 4;
		if (n + k >= cap)
			break;
		memcpy(out + n, b, k);
		n += k;
	}
	out[n] = '\0';
	return 0;
}

/* PEP 626 location table: the line of code unit `lasti` (0: none). */
static int code_line(uintptr_t code, int64_t lasti)
{
	const struct py_layout *l = g_py;
	uintptr_t lt = rd(code, l->co_linetable);
	if (!plausible(lt))
		return 0;
	int64_t size = *(const int64_t *)(lt + 16);
	const unsigned char *p = (const unsigned char *)(lt + 32), *end = p + (size > 0 && size < (1 << 24) ? size : 0);
	int line = *(const int *)(code + l->co_firstlineno);
	int64_t addr = 0;
	while (p < end) {
		unsigned char first = *p++;
		if (!(first & 0x80))
			return 0; /* not at an entry: the table is not what it should be */
		unsigned code_kind = (first >> 3) & 15, len = (first & 7) + 1u;
		int delta = 0, none = 0;
#define VARINT(v)                                                                                      \
	do {                                                                                           \
		unsigned _b = p < end ? *p++ : 0, _s = 0;                                              \
		v = _b & 63;                                                                           \
		while ((_b & 64) && p < end && _s < 30) {                                              \
			_b = *p++;                                                                     \
			_s += 6;                                                                       \
			v |= (unsigned)(_b & 63) << _s;                                                \
		}                                                                                      \
	} while (0)
		if (code_kind == 15) {
			none = 1;
		} else if (code_kind == 14) {
			unsigned u, skip;
			VARINT(u);
			delta = (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
			VARINT(skip);
			VARINT(skip);
			VARINT(skip);
		} else if (code_kind == 13) {
			unsigned u;
			VARINT(u);
			delta = (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
		} else if (code_kind >= 10) {
			delta = (int)code_kind - 10;
			p += 2;
		} else {
			p += 1;
		}
#undef VARINT
		line += delta;
		if (lasti < addr + len)
			return none ? 0 : line;
		addr += len;
	}
	return 0;
}

/* The name entry of a code object (see the top), through a small cache. */
#define NAME_CACHE 512
static struct { uintptr_t code, qual, file; uint32_t id; uint64_t gen; } g_names[NAME_CACHE];

static uint32_t code_name_id(uintptr_t code)
{
	const struct py_layout *l = g_py;
	uintptr_t qual = rd(code, l->co_qualname), file = rd(code, l->co_filename);
	unsigned h = (unsigned)((code >> 4) ^ (code >> 13)) % NAME_CACHE;
	if (g_names[h].code == code && g_names[h].qual == qual && g_names[h].file == file && g_names[h].gen == g_seg.gen)
		return g_names[h].id;
	uint64_t words[LW_STACK_MAX_FRAMES];
	char *buf = (char *)&words[1];
	size_t cap = sizeof words - sizeof words[0];
	memset(words, 0, sizeof words);
	words[0] = LW_PYNAME_MAGIC;
	if (str_utf8(qual, buf, 160) != 0)
		return 0;
	size_t n = strlen(buf) + 1;
	if (str_utf8(file, buf + n, cap - n) != 0)
		return 0;
	n += strlen(buf + n) + 1;
	uint32_t id = stack_intern(words, (unsigned)(1 + (n + 7) / 8));
	if (id) {
		/* a torn entry (a signal handler's capture meanwhile) only costs a miss */
		g_names[h].code = 0;
		g_names[h].qual = qual;
		g_names[h].file = file;
		g_names[h].id = id;
		g_names[h].gen = g_seg.gen;
		g_names[h].code = code;
	}
	return id;
}

/* One Python frame's word, or 0 when the frame is not one to show. */
static uint64_t frame_word(uintptr_t f)
{
	const struct py_layout *l = g_py;
	uintptr_t code = rd(f, l->fr_code);
	if (!plausible(code) || rd(code, 8) != (uintptr_t)g_code_type)
		return 0;
	uintptr_t instr = rd(f, l->fr_instr);
	int64_t lasti = ((int64_t)instr - (int64_t)(code + l->co_code)) / 2;
	if (lasti < 0 || lasti > (1 << 24))
		return 0; /* a frame that has not started */
	uint32_t id = code_name_id(code);
	if (!id || id > LW_PYFRAME_ID_MAX)
		return 0;
	unsigned line = (unsigned)code_line(code, lasti);
	return LW_PYFRAME_TAG | (uint64_t)id << 24 | (line & 0xffffffu);
}

unsigned python_splice(const uint64_t *in, unsigned n, uint64_t *out, unsigned max)
{
	const struct py_layout *l = g_py;
	unsigned k = 0;
	uintptr_t f = 0;
	int have = 0, python_seen = 0;
	for (unsigned i = 0; i < n && k < max; i++) {
		int eval = in[i] >= g_eval_lo && in[i] < g_eval_hi;
		if (eval) {
			if (!have) {
				f = current_frame();
				have = 1;
			}
			/* the frames this run of the interpreter executes */
			for (unsigned guard = 0; f && k < max && guard < 256; guard++) {
				unsigned char owner = *(const unsigned char *)(f + l->fr_owner);
				uintptr_t prev = rd(f, l->fr_previous);
				if (!plausible(prev))
					prev = 0;
				if (l->fr_is_entry < 0 && owner == OWNED_BY_CSTACK) {
					f = prev;
					break;
				}
				uint64_t w = frame_word(f);
				if (w) {
					out[k++] = w;
					python_seen = 1;
				}
				int entry = l->fr_is_entry >= 0 && *(const unsigned char *)(f + (uint32_t)l->fr_is_entry);
				f = prev;
				if (entry)
					break;
			}
		}
		/* the eval frame itself and, above the first Python frame, the
		 * interpreter's other frames: left out (see the top) */
		if (eval && python_seen)
			continue;
		if (python_seen && in[i] >= g_interp_lo && in[i] < g_interp_hi)
			continue;
		if (k < max)
			out[k++] = in[i];
	}
	return k;
}

uint64_t python_chain_hash(void)
{
	const struct py_layout *l = g_py;
	uintptr_t f = current_frame();
	uint64_t h = 0x9e3779b97f4a7c15ull;
	for (unsigned guard = 0; f && guard < 256; guard++) {
		h = (h ^ rd(f, l->fr_code)) * 0x100000001b3ull;
		h = (h ^ rd(f, l->fr_instr)) * 0x100000001b3ull;
		uintptr_t prev = rd(f, l->fr_previous);
		f = plausible(prev) ? prev : 0;
	}
	return h;
}

/* Where finalizers call close(): the return addresses of close calls made
 * by a function CPython called as an object's tp_finalize from
 * PyObject_CallFinalizerFromDealloc or PyObject_CallFinalizer (socket's
 * sock_finalize).  The cycle
 * collector calls the same tp_finalize directly from gc_collect_main, a
 * function with no symbol in any build, so such a close is known by its
 * call site, learnt from the dealloc path: the closing function itself is a
 * finalizer, whoever called it.  A close made through a shared helper
 * (FileIO's internal_close, also the program's own close path) is never
 * learnt: its caller's caller is not CallFinalizerFromDealloc. */
#define FIN_SITES 16
static _Atomic uintptr_t g_fin_sites[FIN_SITES];

static int fin_site_known(uintptr_t ra)
{
	for (unsigned i = 0; i < FIN_SITES; i++) {
		uintptr_t v = atomic_load_explicit(&g_fin_sites[i], memory_order_relaxed);
		if (v == ra)
			return 1;
		if (!v)
			return 0;
	}
	return 0;
}

static void fin_site_learn(uintptr_t ra)
{
	for (unsigned i = 0; i < FIN_SITES; i++) {
		uintptr_t v = 0;
		if (atomic_compare_exchange_strong_explicit(&g_fin_sites[i], &v, ra, memory_order_relaxed,
							    memory_order_relaxed) ||
		    v == ra)
			return;
	}
}

int python_close_by_gc(uint32_t stack)
{
	const struct lw_stack *s = stack_slot(stack);
	if (!s || (!g_fin_hi && !g_dea_hi))
		return 0;
	unsigned depth = s->depth < LW_STACK_MAX_FRAMES ? s->depth : LW_STACK_MAX_FRAMES;
	if (depth && !LW_IS_PYFRAME(s->frames[0]) && fin_site_known(s->frames[0]))
		return 1;
	/* the native frames under the first Python frame: a dealloc's */
	for (unsigned i = 0; i < depth; i++) {
		uint64_t w = s->frames[i];
		if (LW_IS_PYFRAME(w))
			return 0;
		/* a return address: just past a call */
		int cf = w > g_cf_lo && w <= g_cf_hi;
		if ((w > g_fin_lo && w <= g_fin_hi) || cf) {
			if (i == 1 && !LW_IS_PYFRAME(s->frames[0]))
				fin_site_learn(s->frames[0]);
			return 1;
		}
		if (w > g_dea_lo && w <= g_dea_hi)
			return 1;
	}
	return 0;
}
