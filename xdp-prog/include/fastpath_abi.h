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
	FP_FIREWALL_BLOCK = 7,	/* an access rule blocks the source (cookie gate in XDP) */
	FP_SYN_COOKIE = 9,	/* a SYN answered with a SYN-ACK carrying a cookie (XDP_TX) */
	FP_OUT_OF_STATE = 12,	/* a TCP segment of no flow, not a valid cookie ACK */
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
#define FP_DEST_FW_TCP 0x10	/* every TCP port served here is behind the access rules */
#define FP_DEST_FW_TCP_MIXED 0x20 /* some TCP ports are, some not: the gate stays userspace's */
#define FP_DEST_HTTPS_ONLY 0x40	/* the CDN answers TCP port 80 with a RST: userspace sends it */

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

/* The access rules' verdict for a source prefix (the longest match decides). */
#define FP_ACCESS_ALLOW 0
#define FP_ACCESS_BLOCK 1

struct fp_access {
	__u32 action;		/* FP_ACCESS_* */
};

/*
 * The SYN-cookie gate (fastpath/src/syncookie/mod.rs is the reference; the XDP program
 * computes the same cookie, SipHash-1-3 under the secret of the epoch). Userspace writes the
 * secrets of the epochs around now, the secrets retired by rotations on demand, and what the
 * SYN-ACK says; the program never derives a secret itself.
 */
#define FP_COOKIE_KEYS 4	/* epochs now-1 .. now+2, at index epoch % 4 */
#define FP_COOKIE_RETIRED 6	/* fastpath::syncookie::RETIRED_SECRETS */

struct fp_cookie_key {
	__u64 epoch;		/* the epoch this slot holds (u64::MAX: none) */
	__u64 k0;		/* SipHash key */
	__u64 k1;
	__u32 check;		/* 1: cookies of this epoch validate with this key */
	__u32 pad;
};

struct fp_cookie_retired {
	__u64 epoch;
	__u64 k0;
	__u64 k1;
	__u64 until;		/* Unix second from which it no longer validates; 0: empty */
};

struct fp_cookies {
	__u32 enabled;		/* 0: SYNs and ACKs go to userspace (--cookies userspace) */
	__u32 rotate_secs;	/* seconds per secret epoch (>= 1) */
	__u16 window;		/* the SYN-ACK's window */
	__u8 wscale;		/* our window-scale shift, offered when the client asks */
	__u8 pad;
	__u16 mss4;		/* the MSS we announce over IPv4 */
	__u16 mss6;		/* ... over IPv6 */
	__s64 clock_offset_ns;	/* Unix time = bpf_ktime_get_ns() + this */
	__u64 fixed_now_ns;	/* nonzero: the clock stands at this Unix time (tests, replay) */
	struct fp_cookie_key keys[FP_COOKIE_KEYS];
	struct fp_cookie_retired retired[FP_COOKIE_RETIRED];
};

/* A TCP flow whose cookie ACK the program validated (the userspace gate holds it since). */
struct fp_flow_key {
	__u8 v6;
	__u8 pad;
	__be16 sport;
	__be16 dport;
	__u8 pad2[2];
	__u8 src[16];		/* IPv4: the first 4 bytes */
	__u8 dst[16];
};

#endif /* FASTPATH_ABI_H */
