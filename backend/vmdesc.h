/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VM description: what a save records about the VM it belongs to
 * (FORMAT.md, "VM description"), stored in the payload after the stream
 * and covered by the payload checksum.  Pure encode and decode: the
 * decoder accepts any bytes (a fuzzing target), never reads outside the
 * buffer, bounds every count and length, and allocates at most a small
 * multiple of its input.
 */
#ifndef CPR_VMDESC_H
#define CPR_VMDESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CPR_VMDESC_MAGIC "QCPRVMDS"
/* Version 2 added the disks (tag 9); version 1 descriptions still load. */
#define CPR_VMDESC_VERSION 2u
#define CPR_VMDESC_HEADER 16u
/* At most this long (a record claiming more is not valid). */
#define CPR_VMDESC_MAX (16u << 20)

/* Bounds a decoder enforces (and the writer respects). */
#define CPR_VMDESC_MAX_BLOCKS 4096u
#define CPR_VMDESC_MAX_SAMPLES 64u
#define CPR_VMDESC_PAGE 4096u
#define CPR_VMDESC_MAX_STR 4096u          /* paths; names and versions less */
#define CPR_VMDESC_MAX_NAME 256u          /* QEMU's RAMBlock idstr */
#define CPR_VMDESC_MAX_DETAIL 64u         /* a media class's detail */
#define CPR_VMDESC_MAX_ARGV (4u << 20)
#define CPR_VMDESC_MAX_ARGS 65536u
#define CPR_VMDESC_MAX_DISKS 4096u

/* Media classes: what survives a host reboot (BINDING.md). */
typedef enum CprMedia {
    CPR_MEDIA_PMEM = 1,         /* DAX mapped with MAP_SYNC: durable */
    CPR_MEDIA_PAGE_CACHE = 2,   /* disk filesystem: durable once synced */
    CPR_MEDIA_VOLATILE = 3,     /* tmpfs, hugetlbfs, anonymous: lost */
} CprMedia;

const char *cpr_media_name(uint32_t media);

/* RAM block flags, as recorded (the ABI's QEMU_TRANSPORT_RAM_*). */
#define CPR_RAM_SHARED   (1u << 0)
#define CPR_RAM_PMEM     (1u << 1)
#define CPR_RAM_PREALLOC (1u << 2)
#define CPR_RAM_FLAGS_KNOWN (CPR_RAM_SHARED | CPR_RAM_PMEM | CPR_RAM_PREALLOC)

typedef struct CprVmdescSample {
    uint64_t index;             /* page number in the block */
    uint64_t xxh3;              /* XXH3-64 of the page, seeded */
} CprVmdescSample;

/* The file behind a block, at the save. */
typedef struct CprVmdescFile {
    uint64_t dev, ino, size;
    int64_t mtime_sec;
    uint32_t mtime_nsec;
    uint32_t nlink;
    char *path;                 /* readlink of /proc/self/fd/N; may be "" */
    /* Birth time, where the filesystem keeps one (statx STATX_BTIME):
     * tells a new file from the old one whose inode number it reused. */
    bool has_birth;
    int64_t birth_sec;
    uint32_t birth_nsec;
} CprVmdescFile;

typedef struct CprVmdescBlock {
    char *name;
    uint64_t size;
    uint32_t flags;             /* CPR_RAM_* */
    uint64_t fd_offset;
    uint32_t media;             /* CprMedia */
    char *media_detail;         /* "tmpfs", "ext4, DAX, MAP_SYNC", ... */
    bool has_file;              /* false: anonymous memory */
    CprVmdescFile file;
    uint32_t nr_samples;
    CprVmdescSample samples[CPR_VMDESC_MAX_SAMPLES];
} CprVmdescBlock;

/* Disk flags, as recorded (the ABI's QEMU_TRANSPORT_DISK_*). */
#define CPR_DISK_READ_ONLY (1u << 0)
#define CPR_DISK_PROTOCOL  (1u << 1)
#define CPR_DISK_FLAGS_KNOWN (CPR_DISK_READ_ONLY | CPR_DISK_PROTOCOL)

/*
 * A block node's file at the save (BINDING.md, "Disks"), or a node that
 * is not a file (a network protocol): then only its names are kept.
 */
typedef struct CprVmdescDisk {
    char *node;                 /* QEMU's node name; may be "" */
    char *filename;             /* what the node opens */
    char *driver;               /* "file", "host_device", "nbd", ... */
    uint64_t size;              /* the node's size as QEMU gave it */
    uint32_t flags;             /* CPR_DISK_* */
    bool has_file;              /* false: not checked */
    uint64_t dev, ino, file_size;
    int64_t mtime_sec, ctime_sec;
    uint32_t mtime_nsec, ctime_nsec;
    uint32_t nr_samples;
    CprVmdescSample samples[CPR_VMDESC_MAX_SAMPLES];
} CprVmdescDisk;

typedef struct CprVmdesc {
    uint32_t version;
    uint64_t seed;
    char *qemu_version;
    char *kernel_release;
    char *machine;
    char *cpu;
    char *argv;                 /* each argument followed by a NUL */
    size_t argv_len;
    uint32_t image_media;
    char *image_media_detail;
    uint32_t nr_blocks;
    CprVmdescBlock *blocks;
    /* version >= 2 only: a version-1 description recorded no disk */
    uint32_t nr_disks;
    CprVmdescDisk *disks;
} CprVmdesc;

/* Number of pages of a block of @size bytes (the last may be partial). */
static inline uint64_t cpr_vmdesc_pages(uint64_t size)
{
    return size / CPR_VMDESC_PAGE + (size % CPR_VMDESC_PAGE != 0);
}

/* How many pages a block of @size bytes must have sampled. */
static inline uint32_t cpr_vmdesc_nr_samples(uint64_t size)
{
    uint64_t pages = cpr_vmdesc_pages(size);

    return pages < CPR_VMDESC_MAX_SAMPLES ? (uint32_t)pages :
           CPR_VMDESC_MAX_SAMPLES;
}

/*
 * Encode @d (which must satisfy what the decoder checks) into a new
 * malloc()ed buffer; NULL if out of memory.
 */
uint8_t *cpr_vmdesc_encode(const CprVmdesc *d, size_t *len);

typedef enum CprVmdescResult {
    CPR_VMDESC_OK,
    CPR_VMDESC_MALFORMED,
    CPR_VMDESC_TOO_NEW,         /* intact header, a version we do not know */
    CPR_VMDESC_NOMEM,
} CprVmdescResult;

/*
 * Decode buf[0, len) into a new description (*@out, free it with
 * cpr_vmdesc_free).  On failure *@out is NULL and *@why (static text)
 * says what is wrong.
 */
CprVmdescResult cpr_vmdesc_decode(const uint8_t *buf, size_t len,
                                  CprVmdesc **out, const char **why);

void cpr_vmdesc_free(CprVmdesc *d);

/* Number of arguments in d->argv. */
uint32_t cpr_vmdesc_argc(const CprVmdesc *d);

#endif
