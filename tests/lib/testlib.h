/* SPDX-License-Identifier: MIT */
/*
 * testlib.h — the test helper library (tests/lib/, each .c compiled once and linked into
 * build/tests/leakwatch-tests): spawn.h runs programs, json.h parses
 * reports, fixtures.h finds binaries, markers, temp dirs and a dead pid;
 * fab.h (via analyzer.h) fabricates segments.  Also the POSIX headers
 * most suites use.
 */
#ifndef TESTS_LIB_TESTLIB_H
#define TESTS_LIB_TESTLIB_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixtures.h"
#include "json.h"
#include "spawn.h"

#endif
