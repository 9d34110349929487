// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The live bench's meter on the client's veth: counts the SYN-ACKs that reach the client and
 * drops them there (the flood's sources are not the client's, and its stack would answer each
 * with a RST: work on the bench's cores that is no part of what is measured, the same for
 * every handler). Everything else goes on to the client's stack.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* SYN-ACKs seen, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lab_synacks SEC(".maps");

SEC("xdp")
int lab_count_synacks(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *t;
	__u32 zero = 0;
	__u64 *n;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP || ip->ihl != 5)
			return XDP_PASS;
		t = (void *)(ip + 1);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return XDP_PASS;
		t = (void *)(ip6 + 1);
	} else {
		return XDP_PASS;
	}
	if ((void *)(t + 1) > end || (((__u8 *)t)[13] & 0x17) != 0x12)
		return XDP_PASS;
	n = bpf_map_lookup_elem(&lab_synacks, &zero);
	if (n)
		(*n)++;
	return XDP_DROP;
}

char _license[] SEC("license") = "Dual BSD/GPL";
