// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The fast path's XDP program: drops what no configuration asks for before it costs a
 * userspace cycle, passes what belongs to the kernel, and redirects the rest to the queue's
 * AF_XDP socket.
 *
 * It mirrors the first checks of the userspace pipeline (fastpath/src/pipeline/mod.rs), in the
 * same order and with the same reason numbers:
 *   1. not Ethernet II + up to two VLAN tags carrying IPv4/IPv6  -> XDP_PASS  not_ip
 *      too short for its headers                                  -> XDP_DROP  malformed
 *   2. invalid IPv4 / IPv6 header (incl. > 8 extension headers)   -> XDP_DROP  malformed
 *   3. destination outside our prefixes                           -> XDP_PASS  not_ours
 *   4. fragment                                                   -> XDP_DROP  fragment
 *   5. TCP/UDP header cut short                                   -> XDP_DROP  malformed
 *   6. no binding                                                 -> XDP_DROP  no_binding
 *   7. not TCP/UDP                                                -> XDP_DROP  unconfigured_protocol
 *      TCP/UDP port nobody serves (binding without reset)         -> XDP_DROP  unconfigured_port
 * Then, for TCP without SYN, one step userspace never sees:
 *   9a. a segment of a flow that a kernel socket owns (the proxy workers made it from the
 *       validating ACK with TCP_REPAIR)                          -> XDP_PASS  handed_off
 *       (VLAN tags stripped first: the kernel has no VLAN device for them; its replies follow
 *       its routes). Only sockets in a synchronized state count: never a listener, never
 *       TIME_WAIT (a client that reuses its port must reach the cookie check again).
 * Everything else (and unconfigured ports of reset bindings, which userspace answers) goes to
 * the AF_XDP socket of the receiving queue; a queue without a socket drops it (no_socket):
 * the edge prefixes are local routes, so the kernel would answer them.
 *
 * No SYN ever reaches the kernel's TCP stack.
 *
 * Known gap: access rules (step 8) and the SYN-cookie gate (step 9) are userspace's.
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

#include "fastpath_abi.h"
#include "maps.h"

#define ETH_P_8021AD_OLD 0x9100
#define IPV6_MAX_EXT 8

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct cursor {
	void *pos;
	void *end;
};

static __always_inline int count(struct xdp_md *ctx, __u32 slot, int action)
{
	struct fp_counter *c = bpf_map_lookup_elem(&fp_counters, &slot);

	if (c) {
		c->packets++;
		c->bytes += (__u64)(ctx->data_end - ctx->data);
	}
	return action;
}

static __always_inline __u32 active_gen(void)
{
	__u32 zero = 0;
	__u32 *g = bpf_map_lookup_elem(&fp_gen, &zero);

	return g ? (*g & 1) : 0;
}

static __always_inline struct fp_dest *lookup_v4(__u32 gen, struct fp_lpm_v4 *k)
{
	return gen ? bpf_map_lookup_elem(&fp_dest4_1, k) : bpf_map_lookup_elem(&fp_dest4_0, k);
}

static __always_inline struct fp_dest *lookup_v6(__u32 gen, struct fp_lpm_v6 *k)
{
	return gen ? bpf_map_lookup_elem(&fp_dest6_1, k) : bpf_map_lookup_elem(&fp_dest6_0, k);
}

static __always_inline struct fp_ports *lookup_ports(__u32 gen, struct fp_ports_key *k)
{
	return gen ? bpf_map_lookup_elem(&fp_ports_1, k) : bpf_map_lookup_elem(&fp_ports_0, k);
}

/* barrier_var() (bpf_helpers.h) keeps clang from folding a bounds check into arithmetic on
 * data_end, which the verifier refuses. */

/* The IPv4 header checksum over hl bytes (20..60) must fold to 0xffff. The caller checked
 * that the fixed 20 bytes are in the packet; options are read 4 bytes at a time. */
static __always_inline int ipv4_csum_ok(struct iphdr *ip, __u32 hl, void *end)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;

	sum += w[0] + w[1] + w[2] + w[3] + w[4] + w[5] + w[6] + w[7] + w[8] + w[9];
	for (int i = 0; i < 10; i++) {
		__u16 *q;

		if (20 + i * 4 >= hl)
			break;
		q = (__u16 *)(ip + 1) + i * 2;
		barrier_var(q);
		if ((void *)(q + 2) > end)
			return 0;
		sum += q[0] + q[1];
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* What the L3 parser found. */
struct l3 {
	__u8 proto;
	__u8 fragment;
	__u16 l4_off;		/* offset of the upper-layer header from data */
	__u16 end_off;		/* offset of the end of the IP packet from data */
	struct fp_dest *dest;	/* NULL: not ours */
};

/*
 * Parses the IPv4 header at off. Returns -1 for malformed, 0 otherwise (with dest NULL when
 * the destination is not ours).
 */
static __always_inline int parse_ipv4(void *data, void *end, __u32 off, __u32 gen, struct l3 *out)
{
	struct iphdr *ip = data + off;
	struct fp_lpm_v4 key;
	__u32 hl, tot;

	if ((void *)(ip + 1) > end)
		return -1;
	if (ip->version != 4 || ip->ihl < 5)
		return -1;
	hl = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (tot < hl || data + off + tot > end)
		return -1;
	if (!ipv4_csum_ok(ip, hl, end))
		return -1;
	key.prefixlen = 32;
	__builtin_memcpy(key.addr, &ip->daddr, 4);
	out->dest = lookup_v4(gen, &key);
	out->proto = ip->protocol;
	out->fragment = (ip->frag_off & bpf_htons(0x3fff)) != 0;
	out->l4_off = off + hl;
	out->end_off = off + tot;
	return 0;
}

static __always_inline int parse_ipv6(void *data, void *end, __u32 off, __u32 gen, struct l3 *out)
{
	struct ipv6hdr *ip6 = data + off;
	struct fp_lpm_v6 key;
	__u32 plen, pos, stop;
	__u8 nh;

	if ((void *)(ip6 + 1) > end)
		return -1;
	if (ip6->version != 6)
		return -1;
	plen = bpf_ntohs(ip6->payload_len);
	nh = ip6->nexthdr;
	/* A jumbogram (payload length 0 behind a hop-by-hop header) never fits an XDP frame. */
	if (plen == 0 && nh == IPPROTO_HOPOPTS)
		return -1;
	stop = off + sizeof(*ip6) + plen;
	if (data + stop > end)
		return -1;
	pos = off + sizeof(*ip6);
	out->fragment = 0;

	for (int i = 0; i < IPV6_MAX_EXT + 1; i++) {
		__u8 *h;
		__u32 len;

		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS &&
		    nh != IPPROTO_MH && nh != 139 && nh != 140 && nh != IPPROTO_AH &&
		    nh != IPPROTO_FRAGMENT)
			break;
		if (i == IPV6_MAX_EXT)
			return -1;	/* a ninth extension header */
		pos &= 0x3fff;
		h = data + pos;
		if ((void *)(h + 2) > end || pos + 2 > stop)
			return -1;
		if (nh == IPPROTO_FRAGMENT)
			len = 8;
		else if (nh == IPPROTO_AH)
			len = ((__u32)h[1] + 2) * 4;
		else
			len = ((__u32)h[1] + 1) * 8;
		if (pos + len > stop)
			return -1;
		if (nh == IPPROTO_FRAGMENT) {
			out->fragment = 1;
			nh = h[0];
			pos += len;
			break;
		}
		nh = h[0];
		pos += len;
	}
	key.prefixlen = 128;
	__builtin_memcpy(key.addr, &ip6->daddr, 16);
	out->dest = lookup_v6(gen, &key);
	out->proto = nh;
	out->l4_off = pos;
	out->end_off = stop;
	return 0;
}

/* Whether dest d serves port of proto (TCP or UDP): its inline ranges when they hold the whole
 * set, else the port set id (0: the CDN's). */
static __always_inline int port_served(__u32 gen, struct fp_dest *d, __u32 id, __u8 proto,
				       __u16 port)
{
	__u32 i = proto == IPPROTO_UDP;
	struct fp_ports_key k = { .id = id, .proto = proto };
	struct fp_ports *p;

	if (d->flags & (i ? FP_DEST_INLINE_UDP : FP_DEST_INLINE_TCP)) {
		__u32 n = d->n_ranges[i];

		for (int j = 0; j < FP_INLINE_RANGES; j++) {
			if (j >= n)
				break;
			if (port >= d->ranges[i][j].lo && port <= d->ranges[i][j].hi)
				return 1;
		}
		return 0;
	}
	p = lookup_ports(gen, &k);

	if (!p)
		return 0;
	return (p->bits[(port >> 6) & 1023] >> (port & 63)) & 1;
}

static __always_inline int to_userspace(struct xdp_md *ctx)
{
	int act = bpf_redirect_map(&fp_xsks, ctx->rx_queue_index, XDP_DROP);

	if (act == XDP_REDIRECT)
		return count(ctx, FP_CTR_REDIRECTED, act);
	return count(ctx, FP_NO_SOCKET, XDP_DROP);
}

/* Whether a kernel socket in a synchronized state owns this TCP 4-tuple (xdp_synproxy_kern.c
 * does the same lookup). */
static __always_inline int owned_by_kernel(struct xdp_md *ctx, void *data, void *end, __u32 l3_off,
					   __be16 proto, struct tcphdr *t)
{
	struct bpf_sock_tuple tup = {};
	struct bpf_sock *sk;
	__u32 size, state;

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + (l3_off & 0xff);

		if ((void *)(ip + 1) > end)
			return 0;
		tup.ipv4.saddr = ip->saddr;
		tup.ipv4.daddr = ip->daddr;
		tup.ipv4.sport = t->source;
		tup.ipv4.dport = t->dest;
		size = sizeof(tup.ipv4);
	} else {
		struct ipv6hdr *ip6 = data + (l3_off & 0xff);

		if ((void *)(ip6 + 1) > end)
			return 0;
		__builtin_memcpy(tup.ipv6.saddr, &ip6->saddr, 16);
		__builtin_memcpy(tup.ipv6.daddr, &ip6->daddr, 16);
		tup.ipv6.sport = t->source;
		tup.ipv6.dport = t->dest;
		size = sizeof(tup.ipv6);
	}
	sk = bpf_skc_lookup_tcp(ctx, &tup, size, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	state = sk->state;
	bpf_sk_release(sk);
	return state == BPF_TCP_ESTABLISHED || state == BPF_TCP_FIN_WAIT1 ||
	       state == BPF_TCP_FIN_WAIT2 || state == BPF_TCP_CLOSE_WAIT ||
	       state == BPF_TCP_LAST_ACK || state == BPF_TCP_CLOSING;
}

/* Removes n (1 or 2) VLAN tags in front of the IP header, keeping the MAC addresses; proto is
 * the inner ethertype. Returns 0, or -1 when the frame cannot be changed. */
static __always_inline int strip_vlans(struct xdp_md *ctx, __u32 n, __be16 proto)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	unsigned char macs[12];
	struct ethhdr *eth;

	if (data + 12 > end)
		return -1;
	__builtin_memcpy(macs, data, 12);
	if (bpf_xdp_adjust_head(ctx, n == 1 ? 4 : 8))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	__builtin_memcpy(eth, macs, 12);
	eth->h_proto = proto;
	return 0;
}

SEC("xdp")
int fastpath_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__u32 gen = active_gen();
	struct l3 l3 = {};
	__u16 proto, port;
	__u8 tcp_flags = 0;
	__u32 vlans = 0;
	int rc;

	/* 1. Link layer: Ethernet II and up to two VLAN tags. */
	if ((void *)(eth + 1) > end)
		return count(ctx, FP_MALFORMED, XDP_DROP);
	proto = eth->h_proto;

	for (int i = 0; i < 2; i++) {
		struct vlan_hdr *v = data + off;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD) &&
		    proto != bpf_htons(ETH_P_8021AD_OLD))
			break;
		if ((void *)(v + 1) > end)
			return count(ctx, FP_MALFORMED, XDP_DROP);
		proto = v->proto;
		off += sizeof(*v);
		vlans++;
	}

	/* 2 and 3. The IP header; our destinations. */
	if (proto == bpf_htons(ETH_P_IP))
		rc = parse_ipv4(data, end, off, gen, &l3);
	else if (proto == bpf_htons(ETH_P_IPV6))
		rc = parse_ipv6(data, end, off, gen, &l3);
	else
		return count(ctx, FP_NOT_IP, XDP_PASS);	/* ARP, LLDP, a third tag, ... */
	if (rc < 0)
		return count(ctx, FP_MALFORMED, XDP_DROP);
	if (!l3.dest)
		return count(ctx, FP_NOT_OURS, XDP_PASS);

	/* 4. Fragments. */
	if (l3.fragment)
		return count(ctx, FP_FRAGMENT, XDP_DROP);

	/* 5. The transport header. */
	if (l3.proto == IPPROTO_TCP) {
		struct tcphdr *t = data + (l3.l4_off & 0x3fff);
		__u32 doff;

		if ((void *)(t + 1) > end)
			return count(ctx, FP_MALFORMED, XDP_DROP);
		/* Read the fields right after the check: the verifier only trusts this pointer. */
		doff = t->doff;
		port = bpf_ntohs(t->dest);
		tcp_flags = ((__u8 *)t)[13];
		if (l3.l4_off + sizeof(*t) > l3.end_off || doff < 5 || l3.l4_off + doff * 4 > l3.end_off)
			return count(ctx, FP_MALFORMED, XDP_DROP);
	} else if (l3.proto == IPPROTO_UDP) {
		struct udphdr *u = data + (l3.l4_off & 0x3fff);
		__u32 ulen;

		if ((void *)(u + 1) > end)
			return count(ctx, FP_MALFORMED, XDP_DROP);
		ulen = bpf_ntohs(u->len);
		port = bpf_ntohs(u->dest);
		if (l3.l4_off + sizeof(*u) > l3.end_off || ulen < sizeof(*u) || l3.l4_off + ulen > l3.end_off)
			return count(ctx, FP_MALFORMED, XDP_DROP);
	} else {
		port = 0;
	}

	/* 6. A binding. */
	if (l3.dest->kind != FP_DEST_BINDING)
		return count(ctx, FP_NO_BINDING, XDP_DROP);

	/* 7. The service's protocols and ports. */
	if (l3.proto != IPPROTO_TCP && l3.proto != IPPROTO_UDP)
		return count(ctx, FP_UNCONFIGURED_PROTOCOL, XDP_DROP);
	if (l3.dest->service == FP_SVC_CDN) {
		if (port_served(gen, l3.dest, 0, l3.proto, port))
			goto served;
	} else if (l3.dest->flags & FP_DEST_EDGE) {
		if (port_served(gen, l3.dest, l3.dest->ports_id, l3.proto, port))
			goto served;
	}
	/* A binding that answers unconfigured ports: userspace sends the RST or ICMP error. */
	if (l3.dest->flags & FP_DEST_RESET)
		return to_userspace(ctx);
	return count(ctx, FP_UNCONFIGURED_PORT, XDP_DROP);

served:
	/* 9a. A segment of a handed-off flow goes to its kernel socket. */
	if (l3.proto == IPPROTO_TCP && !(tcp_flags & 0x02)) {
		struct tcphdr *t = data + (l3.l4_off & 0x3fff);

		if ((void *)(t + 1) > end)
			return count(ctx, FP_MALFORMED, XDP_DROP);
		if (owned_by_kernel(ctx, data, end, off, proto, t)) {
			if (vlans && strip_vlans(ctx, vlans, proto) < 0)
				return count(ctx, FP_MALFORMED, XDP_DROP);
			return count(ctx, FP_HANDED_OFF, XDP_PASS);
		}
	}
	return to_userspace(ctx);
}

/* The benchmarks' baseline: drop everything, counted. */
SEC("xdp")
int fastpath_drop_all(struct xdp_md *ctx)
{
	return count(ctx, FP_CTR_DROP_ALL, XDP_DROP);
}

char _license[] SEC("license") = "Dual BSD/GPL";
