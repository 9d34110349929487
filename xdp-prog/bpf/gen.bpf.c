// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `fastpath gen --engine kernel`: the flood generator that runs inside the kernel.
 *
 * Userspace runs this program with BPF_PROG_RUN in live-frames mode
 * (BPF_F_TEST_XDP_LIVE_FRAMES, as xdp-trafficgen does): the kernel hands it the template frame
 * `repeat` times, in batches, and every XDP_TX is sent out of the interface named by the
 * context's ingress_ifindex. Per packet the program makes the frame distinct, in place:
 *   - source address: the prefix in gen_cfg with the host bits at random;
 *   - source port: at random in [sport_lo, sport_hi]; destination port in [dport_lo, dport_hi];
 *   - SYN flood: a random ISN; ACK flood: random sequence and acknowledgement numbers;
 * and keeps the IPv4 header checksum and the TCP/UDP checksum right by incremental update
 * (RFC 1624, eqn. 3) from whatever the frame holds now.
 *
 * Known gap: the kernel recycles the frame's page without copying the template again, so
 * each update starts from the previous packet's values, not from the template: the update is
 * incremental for exactly that reason. Anything but Ethernet II + IPv4 (no options) or IPv6
 * (no extension headers) + TCP/UDP is dropped and counted as GEN_CTR_BAD.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define GEN_UDP 1
#define GEN_SYN 2
#define GEN_ACK 3

#define GEN_CTR_SENT 0
#define GEN_CTR_BAD 1
#define GEN_COUNTERS 2

/* Mirrored by `GenConfig` in xdp-prog/src/gen.rs (48 bytes). */
struct gen_cfg {
	__u32 kind;		/* GEN_UDP, GEN_SYN or GEN_ACK */
	__u32 pad;
	__be32 src[4];		/* source prefix, host bits zero (IPv4: src[0]) */
	__be32 mask[4];		/* host bits: set where the source is random */
	__u16 sport_lo;		/* host order, inclusive */
	__u16 sport_hi;
	__u16 dport_lo;
	__u16 dport_hi;
};

/* What to make of the template; written once by userspace before the run. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_cfg);
} gen_cfg SEC(".maps");

/* Packets sent (GEN_CTR_SENT) and templates refused (GEN_CTR_BAD), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GEN_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} gen_counters SEC(".maps");

static __always_inline __u16 csum_fold(__u32 c)
{
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)c;
}

/* The one's-complement difference of replacing 32 bits `from` by `to` (memory order). */
static __always_inline __u32 diff32(__u32 from, __u32 to)
{
	return (~from & 0xffff) + (~from >> 16) + (to & 0xffff) + (to >> 16);
}

static __always_inline __u32 diff16(__u16 from, __u16 to)
{
	return (__u16)~from + (__u32)to;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'); `d` is the sum of ~m + m' over the changed words. */
static __always_inline __u16 csum_apply(__u16 sum, __u32 d)
{
	return (__u16)~csum_fold((__u32)(__u16)~sum + d);
}

static __always_inline __u16 in_range(__u16 lo, __u16 hi)
{
	__u32 span = (__u32)hi - lo + 1;

	if (hi <= lo)
		return lo;
	return lo + (__u16)(bpf_get_prandom_u32() % span);
}

static __always_inline __u64 bump(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&gen_counters, &slot);

	if (c)
		*c += 1;
	return 0;
}

SEC("xdp")
int gen_flood(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct gen_cfg *cfg;
	__u32 zero = 0, d = 0;
	void *l4;
	__u8 proto;

	cfg = bpf_map_lookup_elem(&gen_cfg, &zero);
	if (!cfg)
		goto bad;
	if ((void *)(eth + 1) > data_end)
		goto bad;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 from, to;

		if ((void *)(ip + 1) > data_end || ip->ihl != 5)
			goto bad;
		from = ip->saddr;
		to = cfg->src[0] | (bpf_get_prandom_u32() & cfg->mask[0]);
		ip->saddr = to;
		ip->check = csum_apply(ip->check, diff32(from, to));
		d += diff32(from, to);
		proto = ip->protocol;
		l4 = ip + 1;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		int i;

		if ((void *)(ip6 + 1) > data_end)
			goto bad;
#pragma unroll
		for (i = 0; i < 4; i++) {
			__u32 from = ip6->saddr.in6_u.u6_addr32[i], to;

			if (!cfg->mask[i])
				continue;
			to = cfg->src[i] | (bpf_get_prandom_u32() & cfg->mask[i]);
			ip6->saddr.in6_u.u6_addr32[i] = to;
			d += diff32(from, to);
		}
		proto = ip6->nexthdr;
		l4 = ip6 + 1;
	} else {
		goto bad;
	}

	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		__u16 sport, dport;
		__u32 seq;

		if ((void *)(th + 1) > data_end)
			goto bad;
		sport = bpf_htons(in_range(cfg->sport_lo, cfg->sport_hi));
		dport = bpf_htons(in_range(cfg->dport_lo, cfg->dport_hi));
		d += diff16(th->source, sport) + diff16(th->dest, dport);
		th->source = sport;
		th->dest = dport;
		seq = bpf_get_prandom_u32();
		d += diff32(th->seq, seq);
		th->seq = seq;
		if (cfg->kind == GEN_ACK) {
			__u32 ack = bpf_get_prandom_u32();

			d += diff32(th->ack_seq, ack);
			th->ack_seq = ack;
		}
		th->check = csum_apply(th->check, d);
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		__u16 sport, dport;

		if ((void *)(uh + 1) > data_end)
			goto bad;
		sport = bpf_htons(in_range(cfg->sport_lo, cfg->sport_hi));
		dport = bpf_htons(in_range(cfg->dport_lo, cfg->dport_hi));
		d += diff16(uh->source, sport) + diff16(uh->dest, dport);
		uh->source = sport;
		uh->dest = dport;
		/* Zero is "no checksum" (IPv4 only); a computed zero is sent as 0xffff. */
		if (uh->check) {
			__u16 c = csum_apply(uh->check, d);

			uh->check = c ? c : 0xffff;
		}
	} else {
		goto bad;
	}
	bump(GEN_CTR_SENT);
	return XDP_TX;
bad:
	bump(GEN_CTR_BAD);
	return XDP_DROP;
}

char _license[] SEC("license") = "Dual BSD/GPL";
