/* SPDX-License-Identifier: MIT */
/*
 * util.h — conventions shared by every stage of the reader library.
 *
 * Error convention: functions that can fail on input return -1 (or NULL)
 * and write a one-line, lower-case message without a trailing newline into a
 * caller-provided buffer of LW_ERR_MAX bytes; the caller prints
 * "leakwatch: <what>: <msg>".  Nothing in the library aborts on bad input,
 * prints, or exits: the CLI (analyzer/cli/) decides what the user sees.
 */
#ifndef LEAKWATCH_UTIL_H
#define LEAKWATCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "leakwatch/segment.h"

#define LW_ERR_MAX 512          /* error message buffers */
#define LW_STATE_NAME_MAX 16    /* "ESTABLISHED", "CLOSE_WAIT", ... */
#define LW_ENDPOINT_MAX 128     /* a formatted address */

#endif /* LEAKWATCH_UTIL_H */
