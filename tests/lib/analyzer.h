/* SPDX-License-Identifier: MIT */
/* analyzer.h — what the analyzer's unit tests include: its headers, the
 * test seams (testing.h), the fabricator, and the system headers they use. */
#ifndef TESTS_LIB_ANALYZER_H
#define TESTS_LIB_ANALYZER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "classify.h"
#include "cli.h"
#include "heapgroups.h"
#include "kernel.h"
#include "names.h"
#include "render.h"
#include "report.h"
#include "segdir.h"
#include "snapshot.h"
#include "symbolize.h"
#include "testing.h"

#include "fab.h"
#include "fixtures.h"

#endif
