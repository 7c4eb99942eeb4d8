/* SPDX-License-Identifier: MIT */
/*
 * backing.h - the disk tier's file as the daemon opens it: the store's
 * store_backing_open(), plus the refusal of a file on a pagefold mount,
 * which only fs/ can tell (writeback through pagefold would wait on
 * itself, or fill one compressed store with another).
 */
#ifndef PAGEFOLD_FS_BACKING_H
#define PAGEFOLD_FS_BACKING_H

#include "store.h"

/* Open path as a backing file, as store_backing_open() does, in *fd.
 * -EDEADLK for a path on a pagefold mount (by its name, before anything is
 * opened, or by the file's device); else store_backing_open()'s errors. */
int pf_backing_open(const char *path, int *fd);

/* Make path (NULL: none) st's backing file: pf_backing_open() and
 * store_set_backing_fd(). */
int pf_backing_attach(struct store *st, const char *path);

#endif /* PAGEFOLD_FS_BACKING_H */
