/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A main for the fuzz targets without libFuzzer: runs LLVMFuzzerTestOneInput
 * once on each file named (a directory: on each regular file in it), as
 * `fuzz-TARGET FILE...` does. Built by the project's compiler with the unit
 * tests' sanitizers, so the committed corpus, regression seeds included,
 * still runs where clang cannot link libFuzzer, and the harnesses are
 * compiled (and analyzed) like the rest of the tree. A failed check aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Run the target on path's bytes; 0 or -errno when it cannot be read. */
static int run_file(const char *path)
{
	uint8_t *buf = NULL;
	int ret = 0;
	long size;
	FILE *f;

	f = fopen(path, "rb");
	if (!f)
		return -errno;
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		ret = -errno;
		goto close_file;
	}
	/* An exact-size block (at least 1 byte for malloc): ASan sees a read past the input. */
	buf = malloc(size ? (size_t)size : 1);
	if (!buf) {
		ret = -ENOMEM;
		goto close_file;
	}
	if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
		ret = -EIO;
		goto free_buf;
	}
	LLVMFuzzerTestOneInput(buf, (size_t)size);
free_buf:
	free(buf);
close_file:
	fclose(f);
	return ret;
}

/* Each regular file of dir; returns how many ran, or -errno. */
static int run_dir(const char *dir)
{
	struct dirent *de;
	int n = 0, ret = 0;
	DIR *d = opendir(dir);

	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		char path[4096];
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		ret = run_file(path);
		if (ret)
			fprintf(stderr, "replay: %s: %s\n", path, strerror(-ret));
		n++;
	}
	closedir(d);
	return ret ? ret : n;
}

int main(int argc, char **argv)
{
	int i, n = 0, ret;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		struct stat st;

		if (!stat(argv[i], &st) && S_ISDIR(st.st_mode)) {
			ret = run_dir(argv[i]);
		} else {
			ret = run_file(argv[i]);
			if (!ret)
				ret = 1;
		}
		if (ret < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(-ret));
			return 1;
		}
		n += ret;
	}
	printf("replay: %d inputs ran, every check held\n", n);
	return 0;
}
