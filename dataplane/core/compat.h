/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The few language helpers dataplane/core needs, so that the same headers
 * compile with clang -target bpf (XDP) and with gcc/clang for user space
 * (unit tests, the DPDK fast path). No libc, no libbpf, no DPDK here.
 */
#ifndef AG_CORE_COMPAT_H
#define AG_CORE_COMPAT_H

#include <linux/types.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((__always_inline__))
#endif

/* Fully unroll a short constant loop (the BPF verifier then sees straight code). */
#if defined(__clang__)
#define AG_UNROLL _Pragma("unroll")
#else
#define AG_UNROLL _Pragma("GCC unroll 8")
#endif

#define ag_likely(x)   __builtin_expect(!!(x), 1)
#define ag_unlikely(x) __builtin_expect(!!(x), 0)

/*
 * One load the compiler may neither tear nor repeat: the control plane
 * switches a listener's live lookup slot with a single store while packets
 * read it.
 */
#define AG_READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))

/*
 * Byte order. __builtin_bswap* fold constants, so ag_htons(80) costs nothing,
 * and map to the BPF `be16/be32` instructions.
 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ag_htons(x) ((__be16)__builtin_bswap16((__u16)(x)))
#define ag_ntohs(x) ((__u16)__builtin_bswap16((__u16)(x)))
#define ag_htonl(x) ((__be32)__builtin_bswap32((__u32)(x)))
#define ag_ntohl(x) ((__u32)__builtin_bswap32((__u32)(x)))
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define ag_htons(x) ((__be16)(x))
#define ag_ntohs(x) ((__u16)(x))
#define ag_htonl(x) ((__be32)(x))
#define ag_ntohl(x) ((__u32)(x))
#else
#error "dataplane/core: unknown byte order"
#endif

#endif /* AG_CORE_COMPAT_H */
