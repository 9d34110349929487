/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The maps of the XDP program (BTF-defined). The loader (xdp-prog/src/loader.rs) writes them. */
#ifndef FASTPATH_MAPS_H
#define FASTPATH_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "fastpath_abi.h"

#define FP_MAX_DESTS 65536
#define FP_MAX_PORT_SETS 8192
#define FP_MAX_QUEUES 256
#define FP_MAX_ACCESS 1048576
#define FP_MAX_FLOWS 131072

/* Which generation of the tables below is live (0 or 1); flipped by one update. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fp_gen SEC(".maps");

/* IPv4 destinations (prefixes, bindings, edge IPs), generation 0. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FP_MAX_DESTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fp_lpm_v4);
	__type(value, struct fp_dest);
} fp_dest4_0 SEC(".maps");

/* IPv4 destinations, generation 1. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FP_MAX_DESTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fp_lpm_v4);
	__type(value, struct fp_dest);
} fp_dest4_1 SEC(".maps");

/* IPv6 destinations, generation 0. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FP_MAX_DESTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fp_lpm_v6);
	__type(value, struct fp_dest);
} fp_dest6_0 SEC(".maps");

/* IPv6 destinations, generation 1. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FP_MAX_DESTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fp_lpm_v6);
	__type(value, struct fp_dest);
} fp_dest6_1 SEC(".maps");

/* Port sets (the CDN's is id 0; edge IPs' from 1), generation 0. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FP_MAX_PORT_SETS);
	__type(key, struct fp_ports_key);
	__type(value, struct fp_ports);
} fp_ports_0 SEC(".maps");

/* Port sets, generation 1. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FP_MAX_PORT_SETS);
	__type(key, struct fp_ports_key);
	__type(value, struct fp_ports);
} fp_ports_1 SEC(".maps");

/* Access rules by IPv4 source prefix, generation 0. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FP_MAX_ACCESS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fp_lpm_v4);
	__type(value, struct fp_access);
} fp_access4_0 SEC(".maps");

/* Access rules by IPv4 source prefix, generation 1. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FP_MAX_ACCESS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fp_lpm_v4);
	__type(value, struct fp_access);
} fp_access4_1 SEC(".maps");

/* Access rules by IPv6 source prefix, generation 0. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FP_MAX_ACCESS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fp_lpm_v6);
	__type(value, struct fp_access);
} fp_access6_0 SEC(".maps");

/* Access rules by IPv6 source prefix, generation 1. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FP_MAX_ACCESS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fp_lpm_v6);
	__type(value, struct fp_access);
} fp_access6_1 SEC(".maps");

/* The SYN-cookie gate: two slots, userspace writes the one fp_cookie_live does not name, then
 * flips it (as fp_gen does for the tables). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct fp_cookies);
} fp_cookies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fp_cookie_live SEC(".maps");

/* TCP flows whose cookie ACK the program validated: their later segments go to userspace
 * (which holds the flow) without a second check. Only a valid cookie inserts, so a flood
 * cannot fill it; the least recently used entry goes first. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FP_MAX_FLOWS);
	__type(key, struct fp_flow_key);
	__type(value, __u64);
} fp_flows SEC(".maps");

/* Packets and bytes per reason and per outcome slot (FP_COUNTERS), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FP_COUNTERS);
	__type(key, __u32);
	__type(value, struct fp_counter);
} fp_counters SEC(".maps");

/* The AF_XDP socket of each RX queue. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, FP_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} fp_xsks SEC(".maps");

#endif /* FASTPATH_MAPS_H */
