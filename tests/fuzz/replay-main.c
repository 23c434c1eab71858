/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Without libFuzzer (gcc builds): feed every file of the given corpus
 * directories to the target once, so the seeds run in every build.
 */
#include "fuzz-image.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long len;

    if (!f || fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) < 0 || !(buf = malloc((size_t)len + 1)) ||
        fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "%s: cannot read\n", path);
        if (f) {
            fclose(f);
        }
        free(buf);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)len);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long n = 0;

    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        struct dirent *e;

        if (!d) {
            perror(argv[i]);
            return 1;
        }
        while ((e = readdir(d))) {
            char path[4096];

            if (e->d_name[0] == '.') {
                continue;
            }
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (replay_file(path) < 0) {
                closedir(d);
                return 1;
            }
            n++;
        }
        closedir(d);
    }
    printf("replayed %lu inputs, %lu loaded\n", n, fuzz_loaded);
    /* A corpus where nothing loads would not reach the payload checks. */
    return n > 0 && fuzz_loaded > 0 ? 0 : 1;
}
