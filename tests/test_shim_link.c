/*
 * The recorder (libshimrec.a: preload/ minus the hook objects) reaches the
 * system only through preload/prim.h: it must not reference libc's
 * descriptor, I/O or allocation functions, which are libleakwatch.so's own
 * hooks (close, write, malloc...) or could be another preloaded library's.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "lib/spawn.h"

static const char *const forbidden[] = {
	"open", "open64", "openat", "openat64", "creat", "close", "close_range", "closefrom",
	"read", "pread", "pread64", "readv", "write", "writev", "pwrite", "pwrite64",
	"dup", "dup2", "dup3", "fcntl", "fcntl64", "ioctl",
	"socket", "socketpair", "accept", "accept4", "connect", "bind", "listen",
	"send", "sendto", "sendmsg", "sendmmsg", "recv", "recvfrom", "recvmsg",
	"getsockname", "getpeername", "getsockopt",
	"stat", "stat64", "fstat", "fstat64", "lstat", "lstat64", "fstatat", "statvfs", "fstatvfs",
	"opendir", "readdir", "closedir", "getdents64", "readlink", "unlink", "rename", "renameat2",
	"ftruncate", "fallocate", "mmap", "mmap64", "munmap", "mprotect", "madvise",
	"getpid", "getppid", "gettid", "geteuid",
	"malloc", "calloc", "realloc", "free", "posix_memalign", "aligned_alloc", "memalign",
	"fopen", "fclose", "fprintf", "printf", "puts", "perror",
	"execve", "exit", "_exit", "_Exit", "abort",
};

static int is_forbidden(const char *sym)
{
	for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
		if (strcmp(sym, forbidden[i]) == 0)
			return 1;
	return 0;
}

Test(shim_link, recorder_calls_no_libc_fd_functions, .timeout = 60)
{
	struct cmd_result r;
	run_cmd(&r, (char *[]){ "nm", "-u", LW_BUILD_DIR "/libshimrec.a", NULL }, NULL, 60);
	char line[512], object[256] = "?", bad[4096] = "";
	size_t syms = 0, objects = 0;
	for (char *next = r.out, *eol; *next; next = *eol ? eol + 1 : eol) {
		eol = next + strcspn(next, "\n");
		snprintf(line, sizeof line, "%.*s", (int)(eol - next), next);
		size_t n = strlen(line);
		if (n > 3 && strcmp(line + n - 3, ".o:") == 0) {
			snprintf(object, sizeof object, "%.*s", (int)(n - 1), line);
			objects++;
			continue;
		}
		char type[8], sym[256];
		if (sscanf(line, " %7s %255s", type, sym) != 2 || strcmp(type, "U") != 0)
			continue;
		syms++;
		char *at = strchr(sym, '@'); /* versioned: close@GLIBC_2.2.5 */
		if (at)
			*at = '\0';
		if (is_forbidden(sym) && strlen(bad) + strlen(object) + strlen(sym) + 4 < sizeof bad) {
			strcat(bad, object);
			strcat(bad, " ");
			strcat(bad, sym);
			strcat(bad, "; ");
		}
	}
	int st = r.status;
	cmd_result_free(&r);
	cr_assert_eq(st, 0, "nm failed (status %d)", st);
	cr_assert_geq(objects, 5, "nm listed %zu objects", objects);
	cr_assert_gt(syms, 0);
	cr_assert_str_empty(bad, "the recorder bypasses prim.h: %s", bad);
}

/* The shim maps no library of its own into the program (each one is five
 * mappings that every fork copies and every child unmaps): libgcc's
 * unwinder is linked in, and none of its symbols is exported, so the
 * program's own exceptions keep using the program's unwinder. */
Test(shim_link, shim_needs_only_libc_and_exports_no_unwinder, .timeout = 60)
{
	struct cmd_result r;
	run_cmd(&r, (char *[]){ "readelf", "-dW", LW_BUILD_DIR "/libleakwatch.so", NULL }, NULL, 60);
	cr_assert_eq(r.status, 0, "readelf: %s", r.err);
	int needed = 0;
	for (char *p = strstr(r.out, "(NEEDED)"); p; p = strstr(p + 1, "(NEEDED)")) {
		needed++;
		char lib[128] = "";
		const char *b = strchr(p, '[');
		cr_assert_not_null(b);
		sscanf(b + 1, "%127[^]]", lib);
		cr_assert(strncmp(lib, "libc.so", 7) == 0 || strncmp(lib, "ld-linux", 8) == 0,
			  "libleakwatch.so needs %s", lib);
	}
	cr_assert_geq(needed, 1);
	cmd_result_free(&r);

	run_cmd(&r, (char *[]){ "nm", "-D", "--defined-only", LW_BUILD_DIR "/libleakwatch.so", NULL }, NULL, 60);
	cr_assert_eq(r.status, 0, "nm: %s", r.err);
	cr_assert_null(strstr(r.out, "_Unwind_"), "exports the unwinder:\n%s", r.out);
	cr_assert_null(strstr(r.out, "__register_frame"), "exports the unwinder:\n%s", r.out);
	cr_assert_not_null(strstr(r.out, " T socket\n"), "the hooks are exported:\n%s", r.out);
	cmd_result_free(&r);
}

/* A fork child writes g_seg.hdr and g_fork before anything else: on one
 * page they cost it one copy-on-write fault. */
Test(shim_link, fork_child_state_shares_a_page_with_the_segment, .timeout = 60)
{
	struct cmd_result r;
	run_cmd(&r, (char *[]){ "nm", "-S", LW_BUILD_DIR "/libleakwatch.so", NULL }, NULL, 60);
	cr_assert_eq(r.status, 0, "nm: %s", r.err);
	unsigned long long seg = 0, fork = 0, fork_size = 0, v, sz;
	char type[8], sym[256];
	for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
		if (sscanf(line, "%llx %llx %7s %255s", &v, &sz, type, sym) != 4)
			continue;
		if (strcmp(sym, "g_seg") == 0)
			seg = v;
		else if (strcmp(sym, "g_fork") == 0)
			fork = v, fork_size = sz;
	}
	cmd_result_free(&r);
	cr_assert(seg && fork && fork_size, "g_seg %llx g_fork %llx", seg, fork);
	cr_assert_eq(seg / 4096, fork / 4096, "g_seg at %llx, g_fork at %llx", seg, fork);
	cr_assert_eq(seg / 4096, (fork + fork_size - 1) / 4096);
}
