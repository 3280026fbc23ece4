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
 * A 16- or 32-bit load from an address that may not be aligned, as one
 * instruction on both targets. clang's BPF backend turns a memcpy from a
 * pointer it cannot prove aligned into byte loads and shifts, while the JIT
 * on x86 loads an unaligned word as it is (no strict alignment): the typed
 * load. In user space the memcpy is one load already, and a misaligned typed
 * load is undefined (UBSan says so).
 */
#if defined(__bpf__)
#define ag_load32(p) (*(const __u32 *)(const void *)(p))
#define ag_load16(p) (*(const __u16 *)(const void *)(p))
#else
static __always_inline __u32 ag_load32(const void *p)
{
	__u32 v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static __always_inline __u16 ag_load16(const void *p)
{
	__u16 v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}
#endif

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
