/* SPDX-License-Identifier: MIT */
/*
 * pattern.h - refcounted table of 64-bit same-filled patterns.
 *
 * A slot has 32 bits for its payload, so a same-filled page whose 8-byte
 * word is two equal 32-bit halves (zero, all-ones, 0x01010101..., by far the
 * common cases) keeps the half in the slot itself. Only true 64-bit patterns
 * come here: the slot keeps a pattern id, the table keeps the value and the
 * number of slots using it. One lock: these pages are rare.
 *
 * Cost: 16 bytes per distinct pattern (entry) / load of the entry array
 * (>= 1/2 while growing, >= 1/4 after patterns went away) + 4 bytes / load
 * of the index (>= 3/8 while growing, >= 1/8 after) + 1 bit of free map
 * per entry: at most 32 + 11 bytes per distinct pattern while the table
 * grows, 64 + 32 after deletions, nothing per page; nothing at all once
 * no pattern is left. Both arrays shrink (store/pattern.c).
 */
#ifndef PAGEFOLD_STORE_PATTERN_H
#define PAGEFOLD_STORE_PATTERN_H

#include <stdbool.h>
#include <stdint.h>

#include "mem.h"

struct pattern_table;

struct pattern_table *pattern_create(struct meta_mem *mem);
void pattern_destroy(struct pattern_table *pt);

/* Take a reference on pattern value (adding it if new); *id names it.
 * -ENOSPC / -ENOMEM when the table would have to grow and cannot. */
int pattern_get(struct pattern_table *pt, uint64_t value, uint32_t *id);
/* Drop one reference taken by pattern_get(). */
void pattern_put(struct pattern_table *pt, uint32_t id);
/* Value of a referenced pattern. */
uint64_t pattern_value(struct pattern_table *pt, uint32_t id);
/* References held on id (0 if free); for checks. */
uint32_t pattern_refs(struct pattern_table *pt, uint32_t id);
/* Distinct patterns in the table. */
uint32_t pattern_count(struct pattern_table *pt);

bool pattern_is_valid(struct pattern_table *pt, const char **why);

#endif /* PAGEFOLD_STORE_PATTERN_H */
