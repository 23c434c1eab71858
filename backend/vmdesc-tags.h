/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VM description's entries (FORMAT.md, "VM description"), shared by
 * its encoder (vmdesc-encode.c) and decoder (vmdesc-decode.c): each
 * entry is a tag (LE32), a length (LE32) and that many bytes of value;
 * a RAM block's and a disk's value is a list of entries again.
 */
#ifndef CPR_VMDESC_TAGS_H
#define CPR_VMDESC_TAGS_H

/* Top-level entries. */
enum {
    T_SEED = 1, T_QEMU_VERSION = 2, T_KERNEL_RELEASE = 3, T_MACHINE = 4,
    T_CPU = 5, T_ARGV = 6, T_IMAGE_MEDIA = 7, T_RAM_BLOCK = 8,
    T_DISK = 9,     /* version 2 */
    T_TOP_MAX = 9,
};
/* A disk's entries. */
enum {
    D_NODE = 1, D_FILENAME = 2, D_DRIVER = 3, D_SIZE = 4, D_FLAGS = 5,
    D_FILE = 6, D_SAMPLES = 7,
    D_MAX = 7,
};
#define DISK_FILE_LEN 64u
/* A RAM block's entries. */
enum {
    B_NAME = 1, B_SIZE = 2, B_FLAGS = 3, B_FD_OFFSET = 4, B_MEDIA = 5,
    B_FILE = 6, B_PATH = 7, B_SAMPLES = 8, B_BIRTH = 9,
    B_MAX = 9,
};
#define ENTRY_HEADER 8u
#define FILE_LEN 40u
#define BIRTH_LEN 16u
#define SHORT_STR 256u

#endif
