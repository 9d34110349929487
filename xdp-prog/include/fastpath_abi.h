/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ABI shared by the XDP program and its Rust loader (xdp-prog/src/abi.rs mirrors every
 * struct here with #[repr(C)] and size assertions). Byte order is in each field's comment.
 *
 * Two generations of every table (suffix _0 and _1): the loader fills the inactive one, then
 * flips fp_gen with one map update, so the kernel sees the whole old or the whole new
 * configuration, never a mix.
 */
#ifndef FASTPATH_ABI_H
#define FASTPATH_ABI_H

#include <linux/types.h>

/* Reasons: the numbering of fastpath::verdict::Reason (only append). */
enum fp_reason {
	FP_NOT_IP = 0,
	FP_MALFORMED = 1,
	FP_NOT_OURS = 2,
	FP_FRAGMENT = 3,
	FP_NO_BINDING = 4,
	FP_UNCONFIGURED_PORT = 5,
	FP_UNCONFIGURED_PROTOCOL = 6,
	FP_HANDED_OFF = 14,	/* a segment of a flow a kernel socket owns: passed to it */
	FP_NO_SOCKET = 15,	/* to be redirected, but no AF_XDP socket on this queue: dropped */
	FP_REASONS = 16,
};

/* Counter slots after the reasons. */
#define FP_CTR_REDIRECTED 16      /* handed to the queue's AF_XDP socket */
#define FP_CTR_DROP_ALL 17        /* the plain XDP_DROP program of the benchmarks */
#define FP_COUNTERS 18

/* One counter slot (per CPU). */
struct fp_counter {
	__u64 packets;
	__u64 bytes;
};

/* LPM keys: prefix length, then the address (big-endian). */
struct fp_lpm_v4 {
	__u32 prefixlen;	/* host order, as the LPM trie requires */
	__u8 addr[4];		/* big-endian */
};

struct fp_lpm_v6 {
	__u32 prefixlen;	/* host order */
	__u8 addr[16];		/* big-endian */
};

/* fp_dest.kind */
#define FP_DEST_PREFIX 0	/* onboarded, no binding: no_binding */
#define FP_DEST_BINDING 1	/* a binding covers it */

/* fp_dest.service */
#define FP_SVC_CDN 0
#define FP_SVC_SPECTRUM 1

/* fp_dest.flags */
#define FP_DEST_RESET 0x01	/* unconfigured ports get a reset: hand them to userspace */
#define FP_DEST_EDGE 0x02	/* a Spectrum edge IP: ports_id names its port sets */
#define FP_DEST_INLINE_TCP 0x04	/* the served TCP ports are ranges[0] (no port-set lookup) */
#define FP_DEST_INLINE_UDP 0x08	/* the served UDP ports are ranges[1] */

/* Port ranges kept in the destination entry itself, per protocol: one map lookup per packet
 * where an edge IP (or the CDN) serves few ranges, the port set otherwise. */
#define FP_INLINE_RANGES 12

/* An inclusive port range, host order. */
struct fp_range {
	__u16 lo;
	__u16 hi;
};

/* The value of a destination entry. */
struct fp_dest {
	__u8 kind;
	__u8 service;
	__u8 flags;
	__u8 pad;
	__u32 ports_id;		/* host order; key of fp_ports_key for edge IPs */
	__u8 n_ranges[2];	/* inline ranges in use: [0] TCP, [1] UDP */
	__u8 pad2[2];
	struct fp_range ranges[2][FP_INLINE_RANGES];
};

/* Port sets: id 0 is the CDN's, ids from 1 are edge IPs'. */
struct fp_ports_key {
	__u32 id;		/* host order */
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad[3];
};

/* 65536 bits, bit p set: port p (host order) goes to userspace. */
struct fp_ports {
	__u64 bits[1024];
};

#endif /* FASTPATH_ABI_H */
