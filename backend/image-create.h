/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Creating an image file for a save (image-file.h, symlink policy): off
 * to the side, then linked at its path, so that a crash never leaves a
 * half-initialised file there.
 */
#ifndef CPR_IMAGE_CREATE_H
#define CPR_IMAGE_CREATE_H

#include <stdbool.h>

#include "image-file.h"

/*
 * Build a new image off to the side and link it at @f's path, so that a
 * crash never leaves a half-initialised file there (which every later
 * save would have to refuse as "not ours").  link() never replaces
 * anything: if the path appeared meanwhile, *@lost_race is set and the
 * caller opens that file under the normal policy.  Returns the new
 * file's descriptor.
 */
int cpr_image_create(const CprImage *f, bool *lost_race, char **errp);

/* A new image in @fd: the superblock and record slots, and the size of
 * its first saves, without their blocks (sparse). */
int cpr_image_init(const CprImage *f, int fd, char **errp);

#endif
