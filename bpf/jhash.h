/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one hash both sides compute the same way: Bob Jenkins' lookup3 hashword() over 32-bit
 * words (the function behind the kernel's jhash2()). The tc programs hash a new flow's tuple
 * with it to find its Maglev table entry; lb/maglev.cpp hashes backend identities with it for
 * the table's permutations; tests compute the entry a crafted packet must get. Pure
 * arithmetic, no BPF types or helpers, so it compiles as BPF C and as C++.
 */
#pragma once

#include <linux/types.h>

#include "bpf/abi.h"

#ifdef __bpf__
#define SY_HASH_INLINE static __always_inline
#else
#define SY_HASH_INLINE static inline
#endif

#define SY_JHASH_INITVAL 0xdeadbeefu

SY_HASH_INLINE __u32 sy_rol32(__u32 w, unsigned int s)
{
	return (w << s) | (w >> (32 - s));
}

#define SY_JHASH_MIX(a, b, c)                         \
	do {                                          \
		a -= c; a ^= sy_rol32(c, 4);  c += b; \
		b -= a; b ^= sy_rol32(a, 6);  a += c; \
		c -= b; c ^= sy_rol32(b, 8);  b += a; \
		a -= c; a ^= sy_rol32(c, 16); c += b; \
		b -= a; b ^= sy_rol32(a, 19); a += c; \
		c -= b; c ^= sy_rol32(b, 4);  b += a; \
	} while (0)

#define SY_JHASH_FINAL(a, b, c)                   \
	do {                                      \
		c ^= b; c -= sy_rol32(b, 14);     \
		a ^= c; a -= sy_rol32(c, 11);     \
		b ^= a; b -= sy_rol32(a, 25);     \
		c ^= b; c -= sy_rol32(b, 16);     \
		a ^= c; a -= sy_rol32(c, 4);      \
		b ^= a; b -= sy_rol32(a, 14);     \
		c ^= b; c -= sy_rol32(b, 24);     \
	} while (0)

/* hashword(k, n, initval). n is a compile-time constant at every call site, so the BPF
 * compiler unrolls the loop. */
SY_HASH_INLINE __u32 sy_jhash_words(const __u32 *k, __u32 n, __u32 initval)
{
	__u32 a, b, c;

	a = b = c = SY_JHASH_INITVAL + (n << 2) + initval;
	while (n > 3) {
		a += k[0];
		b += k[1];
		c += k[2];
		SY_JHASH_MIX(a, b, c);
		n -= 3;
		k += 3;
	}
	switch (n) {
	case 3:
		c += k[2];
		/* fall through */
	case 2:
		b += k[1];
		/* fall through */
	case 1:
		a += k[0];
		SY_JHASH_FINAL(a, b, c);
		break;
	default:
		break;
	}
	return c;
}

/* The hash that picks a new flow's Maglev entry (abi.h, struct sy_maglev_tuple): its ten
 * words as they lie in memory (addresses and ports in network order). */
SY_HASH_INLINE __u32 sy_maglev_hash(const struct sy_maglev_tuple *t, __u32 seed)
{
	return sy_jhash_words((const __u32 *)t, sizeof(*t) / 4, seed);
}
