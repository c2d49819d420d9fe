/*
 * Corpus replay: a main() for the libFuzzer harnesses, so that "make
 * check" runs every corpus input through the harness with the normal
 * compiler (and the sanitizers in a sanitizer build).
 *
 *	replay-NAME [FILE|DIR]...
 *
 * Without arguments it replays the corpus the program was built for
 * (FUZZ_CORPUS).  Directories are read in name order.  An empty or
 * missing corpus is an error, so a lost corpus does not pass silently.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
	FILE *f;
	uint8_t *buf;
	long n;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "%s: cannot size\n", path);
		fclose(f);
		return -1;
	}
	/* Exactly n bytes, so that reads past the end are caught. */
	if ((buf = malloc(n > 0 ? (size_t)n : 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "%s: read failed\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

static int
skip_dot(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

/* Number of inputs replayed from path, or -1. */
static long
replay(const char *path)
{
	struct dirent **names;
	struct stat st;
	char *full;
	long count = 0;
	int i, n;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path) == 0 ? 1 : -1;
	if ((n = scandir(path, &names, skip_dot, alphasort)) < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (count >= 0 && asprintf(&full, "%s/%s", path,
		    names[i]->d_name) >= 0) {
			if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
				count = replay_file(full) == 0 ? count + 1 : -1;
			free(full);
		}
		free(names[i]);
	}
	free(names);
	return count;
}

int
main(int argc, char **argv)
{
	const char *def[] = { FUZZ_CORPUS };
	const char *const *paths = (const char *const *)argv + 1;
	int i, n = argc - 1;
	long total = 0, got;

	if (n == 0) {
		paths = def;
		n = 1;
	}
	for (i = 0; i < n; i++) {
		if ((got = replay(paths[i])) < 0)
			return 1;
		printf("%s: %ld inputs\n", paths[i], got);
		total += got;
	}
	if (total == 0) {
		fprintf(stderr, "no inputs to replay\n");
		return 1;
	}
	return 0;
}
