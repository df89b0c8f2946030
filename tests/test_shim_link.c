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
