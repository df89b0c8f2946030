/* SPDX-License-Identifier: MIT */
/*
 * output.h — where a command's report goes (--output FILE|-), atomically (output.c).
 */
#ifndef LEAKWATCH_OUTPUT_H
#define LEAKWATCH_OUTPUT_H

#include <stddef.h>

/*
 * lw_output_begin - send stdout where `--output path` says (NULL: do
 * nothing; "-": stdout).  A regular or missing file is written through a
 * temporary file beside it (renamed into place by lw_output_end; a new file
 * gets 0666 & ~umask, an existing one keeps its mode and, where permitted,
 * owner); a symlink is followed; a character device or a FIFO is written in
 * place (a FIFO without a reader is an error, never a wait); a directory,
 * socket or block device is refused.  Returns 0, or -1 with a one-line
 * message in err ("cannot write FILE: ...") and stdout unchanged.
 */
int lw_output_begin(const char *path, char *err, size_t errlen);

/*
 * lw_output_end - finish an lw_output_begin(): flush, restore stdout, and
 * rename the temporary file into place when ok, else remove it (the old file
 * is untouched).  Returns 0, or -1 when writing or renaming failed (message
 * printed: "leakwatch: write error on FILE: ...").  No-op without a begin.
 */
int lw_output_end(int ok);

#endif /* LEAKWATCH_OUTPUT_H */
