/* SPDX-License-Identifier: MIT */
/*
 * `--output FILE` (analyzer/output.c, issue 8 item 9): what happens to FILE.
 * Regular files are replaced atomically and keep their mode; new files get
 * 0666 & ~umask; symlinks are followed, never replaced; character devices
 * and FIFOs are written in place; directories are refused; "-" is stdout; a
 * failed write leaves the old file untouched and no temporary file behind.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>

#include "lib/analyzer.h"

static char dir[64];
static char seg[PATH_MAX];
static char mnt[128];

static void setup(void)
{
	lw_tmpdir(dir, sizeof dir);
	struct fab f;
	fab_init(&f, 4, 4, 16, 4);
	uint64_t fr[2] = { 0x1000, 0x2000 };
	fab_stack(&f, 1, fr, 2);
	fab_handle(&f, 5, LW_ORIGIN_SOCKET, 1, 1);
	fab_write(&f, dir, fab_segname(), seg, sizeof seg);
	fab_free(&f);
	mnt[0] = '\0';
}

static void teardown(void)
{
	if (mnt[0]) {
		umount2(mnt, MNT_DETACH);
		rmdir(mnt);
	}
	lw_rmdir(dir);
}

TestSuite(cli_output, .init = setup, .fini = teardown);

/*
 * report - `leakwatch report SEG --output target [more]` under `mask`, with
 * a deadline so a hang fails instead of blocking.  Returns the exit status (-1:
 * killed); stdout/stderr captured.
 */
static int report(const char *target, mode_t mask, const char *format, char *out, size_t outlen, char *err,
		  size_t errlen)
{
	struct spawn_opts o = { .set_umask = true, .umask = mask, .timeout_s = 20 };
	return cli_run_opts((const char *[]){ "report", seg, "--format", format, "--output", target, NULL }, &o, out,
			    outlen, err, errlen);
}

/* file_text - the file at path (which must exist), valid for two more calls */
static char *file_text(const char *path)
{
	static char *kept[2];
	static unsigned next;
	char **slot = &kept[next++ % 2];
	free(*slot);
	*slot = slurp(path);
	cr_assert_not_null(*slot, "%s: %s", path, strerror(errno));
	return *slot;
}

/* no ".NAME.xxxxxx" temporary file left in d */
static void expect_no_temp(const char *d)
{
	DIR *dd = opendir(d);
	cr_assert_not_null(dd);
	struct dirent *de;
	while ((de = readdir(dd)) != NULL)
		cr_expect(de->d_name[0] != '.' || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."),
			  "temporary file left behind: %s/%s", d, de->d_name);
	closedir(dd);
}

Test(cli_output, new_file_gets_0666_minus_umask)
{
	char path[PATH_MAX], out[4096], err[4096];
	struct stat st;
	mode_t masks[3] = { 022, 077, 002 };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/new%d.json", dir, i);
		int rc = report(path, masks[i], "json", out, sizeof out, err, sizeof err);
		cr_assert_eq(rc, 0, "%s", err);
		cr_assert_eq(stat(path, &st), 0);
		cr_assert(S_ISREG(st.st_mode));
		cr_assert_eq(st.st_mode & 07777, 0666 & ~masks[i], "umask %03o: mode %04o", masks[i],
			     st.st_mode & 07777);
		cr_assert(strstr(file_text(path), lw_pidfmt("\"pid\":%d")), "%s", file_text(path));
		cr_assert_str_eq(out, "", "nothing on stdout");
	}
	expect_no_temp(dir);
}

Test(cli_output, existing_file_keeps_its_mode_and_owner)
{
	char path[PATH_MAX], out[4096], err[4096];
	struct stat st;
	snprintf(path, sizeof path, "%s/old.txt", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(write(fd, "old\n", 4), 4);
	close(fd);
	cr_assert_eq(chmod(path, 0600), 0);
	if (getuid() == 0)
		cr_assert_eq(chown(path, 65534, 65534), 0);
	int rc = report(path, 022, "text", out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %04o", st.st_mode & 07777);
	if (getuid() == 0) {
		cr_assert_eq(st.st_uid, 65534);
		cr_assert_eq(st.st_gid, 65534);
	}
	cr_assert(strstr(file_text(path), lw_pidfmt("pid %d")), "%s", file_text(path));
	expect_no_temp(dir);

	/* and under umask 077 a 0644 file stays 0644 */
	cr_assert_eq(chmod(path, 0644), 0);
	rc = report(path, 077, "text", out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0644, "mode %04o", st.st_mode & 07777);
}

Test(cli_output, symlink_is_followed_not_replaced)
{
	char target[PATH_MAX], link[PATH_MAX], dangling[PATH_MAX], out[4096], err[4096];
	struct stat st;
	snprintf(target, sizeof target, "%s/target.txt", dir);
	snprintf(link, sizeof link, "%s/link.txt", dir);
	close(open(target, O_WRONLY | O_CREAT, 0640));
	cr_assert_eq(chmod(target, 0640), 0);
	cr_assert_eq(symlink("target.txt", link), 0); /* relative, resolved from the link's directory */
	int rc = report(link, 022, "text", out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(lstat(link, &st), 0);
	cr_assert(S_ISLNK(st.st_mode), "the link is still a link");
	cr_assert_eq(lstat(target, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0640);
	cr_assert(strstr(file_text(target), lw_pidfmt("pid %d")), "%s", file_text(target));

	/* a dangling link: its target is created */
	snprintf(dangling, sizeof dangling, "%s/dangling", dir);
	snprintf(target, sizeof target, "%s/created.txt", dir);
	cr_assert_eq(symlink(target, dangling), 0);
	rc = report(dangling, 022, "text", out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(lstat(dangling, &st), 0);
	cr_assert(S_ISLNK(st.st_mode));
	cr_assert(strstr(file_text(target), lw_pidfmt("pid %d")));
	expect_no_temp(dir);
}

Test(cli_output, char_device_is_written_in_place)
{
	if (getuid() != 0)
		cr_skip_test("needs root for mknod");
	/* a private /dev/null: the system's must never be at stake in a test */
	char null[PATH_MAX], out[4096], err[4096];
	struct stat st;
	snprintf(null, sizeof null, "%s/null", dir);
	cr_assert_eq(mknod(null, S_IFCHR | 0666, makedev(1, 3)), 0, "%s", strerror(errno));
	int rc = report(null, 022, "json", out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(lstat(null, &st), 0);
	cr_assert(S_ISCHR(st.st_mode), "still a character device (mode %o)", st.st_mode);
	cr_assert_eq(st.st_rdev, makedev(1, 3));
	expect_no_temp(dir);

	/* a symlink to it: followed, the device stays */
	char link[PATH_MAX];
	snprintf(link, sizeof link, "%s/tonull", dir);
	cr_assert_eq(symlink(null, link), 0);
	rc = report(link, 022, "json", out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(lstat(null, &st), 0);
	cr_assert(S_ISCHR(st.st_mode));
	cr_assert_eq(lstat(link, &st), 0);
	cr_assert(S_ISLNK(st.st_mode));
}

Test(cli_output, full_device_is_a_one_line_error)
{
	if (getuid() != 0)
		cr_skip_test("needs root for mknod");
	/* a private /dev/full: code that renames over its target must not take the system's */
	char full[PATH_MAX], out[4096], err[4096], want[PATH_MAX + 64];
	struct stat st;
	snprintf(full, sizeof full, "%s/full", dir);
	cr_assert_eq(mknod(full, S_IFCHR | 0666, makedev(1, 7)), 0, "%s", strerror(errno));
	int rc = report(full, 022, "json", out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 2, "exit %d, stderr '%s'", rc, err);
	cr_assert_eq(count_lines(err), 1, "%s", err);
	snprintf(want, sizeof want, "leakwatch: write error on %s: No space left on device", full);
	cr_assert(strstr(err, want), "%s", err);
	cr_assert_eq(lstat(full, &st), 0);
	cr_assert(S_ISCHR(st.st_mode), "still a device (mode %o)", st.st_mode);
	expect_no_temp(dir);
}

Test(cli_output, fifo_with_and_without_reader, .timeout = 60)
{
	char fifo[PATH_MAX], out[4096], err[4096];
	struct stat st;
	snprintf(fifo, sizeof fifo, "%s/pipe", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);

	/* nobody reads: an error now, not a wait forever */
	int rc = report(fifo, 022, "json", out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 2, "exit %d (-1: hung), stderr '%s'", rc, err);
	cr_assert_eq(count_lines(err), 1, "%s", err);
	cr_assert(strstr(err, "FIFO has no reader"), "%s", err);
	cr_assert_eq(lstat(fifo, &st), 0);
	cr_assert(S_ISFIFO(st.st_mode), "still a FIFO");

	/* a reader: the report goes through the FIFO */
	int rd = open(fifo, O_RDONLY | O_NONBLOCK);
	cr_assert_geq(rd, 0);
	rc = report(fifo, 022, "json", out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	char buf[16384];
	ssize_t n = read(rd, buf, sizeof buf - 1);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_assert(strstr(buf, lw_pidfmt("\"pid\":%d")), "%s", buf);
	close(rd);
	cr_assert_eq(lstat(fifo, &st), 0);
	cr_assert(S_ISFIFO(st.st_mode), "still a FIFO");
	expect_no_temp(dir);
}

Test(cli_output, directory_socket_and_missing_dir_are_refused)
{
	char path[PATH_MAX], out[4096], err[4096];
	int rc = report(dir, 022, "json", out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 2, "%s", err);
	cr_assert_eq(count_lines(err), 1, "%s", err);
	cr_assert(strstr(err, "is a directory"), "%s", err);

	snprintf(path, sizeof path, "%s/sock", dir);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	cr_assert_lt(strlen(path), sizeof sun.sun_path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	cr_assert_eq(bind(s, (struct sockaddr *)&sun, sizeof sun), 0);
	rc = report(path, 022, "json", out, sizeof out, err, sizeof err);
	close(s);
	cr_assert_eq(rc, 2, "%s", err);
	cr_assert_eq(count_lines(err), 1, "%s", err);
	cr_assert(strstr(err, "is a socket"), "%s", err);
	struct stat st;
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode), "the socket is still there");

	snprintf(path, sizeof path, "%s/no/such/dir/r.json", dir);
	rc = report(path, 022, "json", out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 2, "%s", err);
	cr_assert_eq(count_lines(err), 1, "%s", err);
	cr_assert(strstr(err, "No such file or directory"), "%s", err);
	expect_no_temp(dir);
}

Test(cli_output, dash_means_stdout)
{
	char out[16384], err[4096];
	int rc = report("-", 022, "json", out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, lw_pidfmt("\"pid\":%d")), "%s", out);
	struct stat st;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/-", dir);
	cr_assert_neq(lstat(path, &st), 0, "no file named '-'");
	cr_assert_neq(lstat("-", &st), 0, "no file named '-' here either");
}

Test(cli_output, full_filesystem_leaves_old_file_untouched, .timeout = 60)
{
	if (getuid() != 0)
		cr_skip_test("needs root to mount a small tmpfs");
	char out[4096], err[4096], path[256], fill[256];
	snprintf(mnt, sizeof mnt, "%s/small", dir);
	cr_assert_eq(mkdir(mnt, 0755), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") != 0) {
		rmdir(mnt);
		mnt[0] = '\0';
		cr_skip_test("cannot mount tmpfs: %s", strerror(errno));
	}
	snprintf(path, sizeof path, "%s/report.json", mnt);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	cr_assert_eq(write(fd, "previous report\n", 16), 16);
	close(fd);
	/* fill the rest: the new report cannot fit */
	snprintf(fill, sizeof fill, "%s/fill", mnt);
	fd = open(fill, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char block[4096];
	memset(block, 'x', sizeof block);
	while (write(fd, block, sizeof block) > 0) {
	}
	close(fd);

	int rc = report(path, 022, "json", out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 2, "exit %d, stderr '%s'", rc, err);
	cr_assert_eq(count_lines(err), 1, "%s", err);
	cr_assert(strstr(err, "No space left on device"), "%s", err);
	cr_assert_str_eq(file_text(path), "previous report\n", "the old file is untouched");
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0640);
	expect_no_temp(mnt);
}
