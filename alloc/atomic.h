/* SPDX-License-Identifier: MIT */
/*
 * atomic.h - why alloc/ uses the GCC __atomic builtins, not <stdatomic.h>
 * (store/ and fs/ use C11 _Atomic), and the shorthands its .c files share.
 *
 * alloc/ makes single accesses atomic, not objects:
 *  - Most of its shared fields (a shard's counters, the arena's reserve)
 *    are written under a lock and read without one (statistics, hints,
 *    limits). Under the lock they are read and tested as plain fields;
 *    only the store, and the reads made without the lock, need to be
 *    atomic. C11 would make the field _Atomic and every plain access a
 *    seq_cst one.
 *  - Arrays of plain integers and pointers are read lock-free element by
 *    element: the handle table's entries and chunk pointers, the arena's
 *    page map.
 *  - pages_populate() (arena.c) adds 0 to one byte of each page it faults
 *    in, memory that holds objects, never declared atomic; C11 has no
 *    atomic access to an object not declared _Atomic.
 * So the builtins stay, with their memory orders written at each use; the
 * relaxed ones that recur are below. (On x86-64 a relaxed load or store is
 * a plain mov; ADD and SUB are a locked instruction, ADD_LOCKED is not.)
 */
#ifndef PAGEFOLD_ALLOC_ATOMIC_H
#define PAGEFOLD_ALLOC_ATOMIC_H

/* Relaxed load and store of a plain field. */
#define RD(x)          __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WR(x, v)       __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* A field whose writers all hold one lock, read without it: a relaxed load
 * and store, not a read-modify-write. */
#define ADD_LOCKED(x, n) WR(x, RD(x) + (n))

/* A field with writers under different locks (or none): relaxed atomic
 * read-modify-writes; both give the new value. */
#define ADD(x, n)      __atomic_add_fetch(&(x), (n), __ATOMIC_RELAXED)
#define SUB(x, n)      __atomic_sub_fetch(&(x), (n), __ATOMIC_RELAXED)

#endif /* PAGEFOLD_ALLOC_ATOMIC_H */
