/*
 * pyoffsets.c — the CPython offsets preload/python.c reads, printed as its
 * layout row, from a version's own internal headers.  For a new version:
 *
 *   cc -I/path/to/include/python3.N -o /tmp/pyoffsets scripts/pyoffsets.c && /tmp/pyoffsets
 *
 * (pyenv installs keep the internal headers under include/python3.N/internal;
 * Debian's in python3.N-dev.)  Not built by the Makefile: the rows are
 * checked in, and tests/test_python.c checks them against the interpreters
 * it finds.
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_runtime.h>
#include <internal/pycore_frame.h>
#include <internal/pycore_code.h>
#include <stddef.h>
#include <stdio.h>

int main(void)
{
#if PY_VERSION_HEX >= 0x030C0000
	size_t tss = offsetof(_PyRuntimeState, autoTSSkey);
#else
	size_t tss = offsetof(_PyRuntimeState, gilstate.autoTSSkey);
#endif
#if PY_VERSION_HEX >= 0x030D0000
	long cframe = -1;
	size_t current = offsetof(PyThreadState, current_frame);
	size_t code = offsetof(_PyInterpreterFrame, f_executable), instr = offsetof(_PyInterpreterFrame, instr_ptr);
#else
	long cframe = (long)offsetof(PyThreadState, cframe);
	size_t current = offsetof(_PyCFrame, current_frame);
	size_t code = offsetof(_PyInterpreterFrame, f_code), instr = offsetof(_PyInterpreterFrame, prev_instr);
#endif
#if PY_VERSION_HEX < 0x030C0000
	long is_entry = (long)offsetof(_PyInterpreterFrame, is_entry);
#else
	long is_entry = -1;
#endif
	printf("\t{ %d, %zu, %zu, %zu, %ld, %zu, %zu, %zu, %zu, %zu, %ld, %zu, %zu, %zu, %zu, %zu, %zu, %zu },\n",
	       PY_MINOR_VERSION, tss, offsetof(_PyRuntimeState, interpreters.main), offsetof(PyThreadState, interp),
	       cframe, current, code, offsetof(_PyInterpreterFrame, previous), instr,
	       offsetof(_PyInterpreterFrame, owner), is_entry, offsetof(PyCodeObject, co_filename),
	       offsetof(PyCodeObject, co_qualname), offsetof(PyCodeObject, co_linetable),
	       offsetof(PyCodeObject, co_code_adaptive), offsetof(PyCodeObject, co_firstlineno), sizeof(PyASCIIObject),
	       sizeof(PyCompactUnicodeObject));
	return 0;
}
