/* SPDX-License-Identifier: MIT */
/*
 * backing.h - the disk tier: pages written back to a backing file (store
 * internal; the public calls are in store.h, "The disk tier").
 *
 * A written-back page keeps its slot (cluster.h: an OBJ slot with
 * SLOT_DISK set) and nothing else in memory: the payload names the
 * object's place in the file in 16-byte granules (+1, so it is never 0),
 * the size field its compressed size. Objects are written as they were
 * held in the pool (LZ4, zstd or raw), packed one after the other into a
 * batch of whole 4 KiB blocks written with one pwrite.
 *
 * Space: the file is an array of 4 KiB blocks; per block one uint16_t,
 *   bits 0..12  live bytes of objects in it (an object crossing a block
 *               boundary counts in both, by the bytes in each)
 *   bit  15     allocated (written by a batch, not yet punched out)
 * 2 bytes per 4 KiB of file. A batch only goes to blocks that are wholly
 * free, so live objects are never rewritten. A block whose live bytes
 * fall to 0 is queued, and punched out (FALLOC_FL_PUNCH_HOLE) and made
 * free at the next batch or backing_flush(): not at once, since a reader
 * may still be reading it (reads hold io for reading across their pread;
 * batches and punches take it for writing).
 *
 * Invariants (backing_is_valid): sum of live over blocks == sum over live
 * objects of their size; allocated blocks == file_blocks; a block with
 * live > 0 is allocated; every block queued for punching is allocated
 * with live == 0; refs table holds objects with 2 or more references (a
 * folded object written once, named by several slots).
 */
#ifndef PAGEFOLD_STORE_BACKING_H
#define PAGEFOLD_STORE_BACKING_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster.h"

struct store;
struct backing;

/* Slot helpers for the disk bit (cluster.h). */
static inline bool slot_on_disk(slot_t s)
{
	return (s & SLOT_DISK) != 0;
}

struct backing *backing_create(struct store *st);
void backing_destroy(struct backing *bd);
int backing_start(struct backing *bd);	/* the writeback policy thread */
void backing_stop(struct backing *bd);
/* Memory the backing space map and the writeback walk's buffers hold
 * (counted in mem_used_total). */
uint64_t backing_mem_bytes(struct backing *bd);

/* Punch out the blocks freed since the last batch (compact, shrink). */
void backing_reclaim(struct backing *bd);

/* Drop one reference to the object of a disk slot (slot_release()). */
void backing_put(struct backing *bd, slot_t s);

/* Reading a disk slot: begin under the cluster lock (holds io for
 * reading), then read after dropping it; end in all cases. */
void backing_read_begin(struct backing *bd);
int backing_read(struct backing *bd, slot_t s, void *page);
void backing_read_end(struct backing *bd);
/* The calling thread's read buffer (64 KiB), made now if a backing file
 * is attached (store_thread_prepare()); else at its first read. */
int backing_thread_prepare(struct backing *bd);

/* Checker: the space map against the disk slots found by the store's
 * check (their objects, as granule/size pairs; shared ones repeated). */
bool backing_is_valid(struct backing *bd, uint64_t disk_slots,
		      const char **why);

#endif /* PAGEFOLD_STORE_BACKING_H */
