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
 * Then, for TCP to a served port, the SYN-cookie gate (step 9 of the pipeline), unless
 * userspace keeps it (--cookies userspace, fp_cookies.enabled = 0):
 *   8. an access rule blocks the source (where the port is behind them) -> XDP_DROP firewall_block
 *   9. a SYN                            -> XDP_TX   syn_cookie (the SYN-ACK, built in place)
 *      an ACK with a valid cookie       -> AF_XDP   (userspace hands the flow to a worker)
 *      a segment of a flow validated before (fp_flows)          -> AF_XDP
 *      any other segment                -> XDP_DROP out_of_state
 * And for TCP without SYN, one step userspace never sees (before the gate):
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
 * The cookie is the one fastpath/src/syncookie/mod.rs mints, bit for bit, and the SYN-ACK the
 * one fastpath/src/pipeline/reply.rs writes, byte for byte (tests compare both through
 * BPF_PROG_TEST_RUN). The gate goes to userspace when it cannot decide alone: its secrets are
 * stale (userspace refreshes them every second), or a binding's TCP ports are partly behind
 * the access rules. UDP flows stay userspace's entirely.
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

/* ---- The SYN-cookie gate ---- */

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10
#define TCP_ECE 0x40
#define TCP_CWR 0x80

#define COUNTER_SECS 64
#define TS_MASK 0x3f
#define TS_WSCALE_NONE 0xf
#define TS_SACK 0x10
#define TS_ECN 0x20
#define MAX_WSCALE 14
#define REPLY_TTL 64

static const __u16 mss_v4[8] = { 536, 1300, 1360, 1400, 1440, 1452, 1460, 8960 };
static const __u16 mss_v6[8] = { 1220, 1280, 1340, 1380, 1420, 1432, 1440, 8940 };

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                 \
	do {                                                                     \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);        \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                           \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                           \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);        \
	} while (0)

/* The cookie's input: the 4-tuple, the client's ISN, the time counter and the MSS index, as
 * the little-endian words siphasher reads from SynCookies::mac's writes. */
struct cookie_msg {
	__u64 w[6];
	__u32 n;		/* words in use: 3 (IPv4) or 6 (IPv6) */
};

/* SipHash-1-3 of n words (the message is n * 8 bytes long). */
static __noinline __u64 siphash13(__u64 k0, __u64 k1, struct cookie_msg *m)
{
	__u64 v0 = k0 ^ 0x736f6d6570736575ULL;
	__u64 v1 = k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = k0 ^ 0x6c7967656e657261ULL;
	__u64 v3 = k1 ^ 0x7465646279746573ULL;
	__u32 n = m->n;
	__u64 b;

	for (int i = 0; i < 6; i++) {
		__u64 w;

		if (i >= n)
			break;
		w = m->w[i];
		v3 ^= w;
		SIPROUND;
		v0 ^= w;
	}
	b = ((__u64)(n * 8) & 0xff) << 56;
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The 26-bit MAC of a cookie: the message's last word (counter, MSS index) filled in here. */
static __always_inline __u32 cookie_mac(__u64 k0, __u64 k1, struct cookie_msg *m, __u64 counter,
					__u32 idx)
{
	if (m->n == 3)
		m->w[2] = counter << 8 | idx;
	else
		m->w[5] = counter << 8 | idx;
	return (__u32)(siphash13(k0, k1, m) >> 38);
}

static __always_inline __u64 be64_of(const __u8 *p)
{
	__u64 v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* What the gate needs of a TCP segment, read before anything is rewritten. */
struct seg {
	__u8 v6;
	__u8 flags;
	__u8 vlans;
	__u8 has_mss;
	__u8 has_ws;
	__u8 ws;
	__u8 sack;
	__u8 has_ts;
	__u16 mss;
	__u16 l3_off;		/* 14, 18 or 22 */
	__be16 sport;
	__be16 dport;
	__u32 seq;		/* host order */
	__u32 ack;
	__u32 tsval;
	__u32 tsecr;
	__u8 src[16];
	__u8 dst[16];
};

/* Per-CPU scratch space of the gate (the BPF stack is 512 bytes for the whole call chain). An
 * XDP program runs to its end on one CPU, so nothing else uses it meanwhile. */
struct scratch {
	struct seg s;
	struct cookie_msg m;
	struct fp_flow_key fk;
	__u8 opts[64];
	__u32 opts_len;
	__u32 pad;
	__u8 tcp[64];
	__u8 ip[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} fp_scratch SEC(".maps");

/* The cookie message for s with the client's ISN isn (the last word left to cookie_mac). */
static __always_inline void cookie_msg_of(struct seg *s, __u32 isn, struct cookie_msg *m)
{
	__u64 ports = (__u64)bpf_ntohs(s->sport) | ((__u64)bpf_ntohs(s->dport) << 16) |
		      ((__u64)isn << 32);

	if (!s->v6) {
		__u32 src = (__u32)s->src[0] << 24 | (__u32)s->src[1] << 16 |
			    (__u32)s->src[2] << 8 | s->src[3];
		__u32 dst = (__u32)s->dst[0] << 24 | (__u32)s->dst[1] << 16 |
			    (__u32)s->dst[2] << 8 | s->dst[3];

		m->w[0] = (__u64)src | ((__u64)dst << 32);
		m->w[1] = ports;
		m->n = 3;
	} else {
		/* write_u128 of the address as a big-endian number: its low half first. */
		m->w[0] = be64_of(s->src + 8);
		m->w[1] = be64_of(s->src);
		m->w[2] = be64_of(s->dst + 8);
		m->w[3] = be64_of(s->dst);
		m->w[4] = ports;
		m->n = 6;
	}
}

static __always_inline struct fp_cookies *cookie_state(void)
{
	__u32 zero = 0;
	__u32 *live = bpf_map_lookup_elem(&fp_cookie_live, &zero);
	__u32 slot;

	if (!live)
		return NULL;
	slot = *live & 1;
	return bpf_map_lookup_elem(&fp_cookies, &slot);
}

static __always_inline __u64 unix_ns(struct fp_cookies *c)
{
	if (c->fixed_now_ns)
		return c->fixed_now_ns;
	return bpf_ktime_get_ns() + c->clock_offset_ns;
}

/* The client's MSS to the table index (the largest entry not above it; 0 when none fits). */
static __always_inline __u32 mss_index(__u8 v6, __u8 has, __u16 mss)
{
	__u32 idx = 0;
	__u16 m = has ? mss : 0;

	for (int i = 0; i < 8; i++)
		if ((v6 ? mss_v6[i] : mss_v4[i]) <= m)
			idx = i;
	return idx;
}

static __always_inline struct scratch *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&fp_scratch, &zero);
}

/* One option of the walk of parse_options (a bpf_loop callback, so the verifier checks one
 * step, not every path through 40). Returns 1 to stop. */
static long option_step(__u32 n, void *arg)
{
	struct scratch *sc = scratch();
	__u32 *pos = arg;
	__u32 i = *pos, len;
	__u8 *o, k, l;
	struct seg *s;

	if (!sc)
		return 1;
	o = sc->opts;
	s = &sc->s;
	len = sc->opts_len;
	if (i >= len || i >= 40)
		return 1;
	k = o[i & 0x3f];
	if (k == 0)
		return 1;
	if (k == 1) {
		*pos = i + 1;
		return 0;
	}
	if (i + 1 >= len)
		return 1;
	l = o[(i + 1) & 0x3f];
	if (l < 2 || i + l > len)
		return 1;
	if (k == 2 && l == 4) {
		s->has_mss = 1;
		s->mss = (__u16)o[(i + 2) & 0x3f] << 8 | o[(i + 3) & 0x3f];
	} else if (k == 3 && l == 3) {
		__u8 w = o[(i + 2) & 0x3f];

		s->has_ws = 1;
		s->ws = w > MAX_WSCALE ? MAX_WSCALE : w;
	} else if (k == 4 && l == 2) {
		s->sack = 1;
	} else if (k == 8 && l == 10) {
		s->has_ts = 1;
		s->tsval = (__u32)o[(i + 2) & 0x3f] << 24 | (__u32)o[(i + 3) & 0x3f] << 16 |
			   (__u32)o[(i + 4) & 0x3f] << 8 | o[(i + 5) & 0x3f];
		s->tsecr = (__u32)o[(i + 6) & 0x3f] << 24 | (__u32)o[(i + 7) & 0x3f] << 16 |
			   (__u32)o[(i + 8) & 0x3f] << 8 | o[(i + 9) & 0x3f];
	}
	*pos = i + l;
	return 0;
}

/*
 * Reads the options of the TCP header at off (doff words long) as TcpOptions::parse does:
 * EOL ends, NOP is skipped, a bad length ends (keeping what came before), the last of a
 * repeated option wins.
 */
static __always_inline void parse_options(struct xdp_md *ctx, __u32 off, __u32 doff,
					  struct scratch *sc)
{
	__u32 len = (doff * 4 - 20) & 0x3f;
	__u32 pos = 0;

	if (len < 1 || len > 40)
		return;
	barrier_var(len);
	if (bpf_xdp_load_bytes(ctx, off + 20, sc->opts, len))
		return;
	sc->opts_len = len;
	bpf_loop(40, option_step, &pos, 0);
}

static __always_inline __u32 csum_add(__u32 sum, const __u8 *p, __u32 words)
{
	for (int i = 0; i < 20; i++) {
		if (i >= words)
			break;
		sum += (__u32)p[(2 * i) & 0x3f] << 8 | p[(2 * i + 1) & 0x3f];
	}
	return sum;
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline void put16(__u8 *p, __u32 at, __u16 v)
{
	p[at & 0x3f] = v >> 8;
	p[(at + 1) & 0x3f] = v & 0xff;
}

static __always_inline void put32(__u8 *p, __u32 at, __u32 v)
{
	p[at & 0x3f] = v >> 24;
	p[(at + 1) & 0x3f] = (v >> 16) & 0xff;
	p[(at + 2) & 0x3f] = (v >> 8) & 0xff;
	p[(at + 3) & 0x3f] = v & 0xff;
}

/* syncookie::encode_tsval: the client's wishes in the low 6 bits of our clock, never above it. */
static __always_inline __u32 encode_tsval(__u32 now_ms, struct seg *s, __u8 ecn)
{
	__u32 bits = s->has_ws ? s->ws : TS_WSCALE_NONE;
	__u32 ts;

	if (s->sack)
		bits |= TS_SACK;
	if (ecn)
		bits |= TS_ECN;
	ts = (now_ms & ~(__u32)TS_MASK) | bits;
	if (ts > now_ms)
		ts -= TS_MASK + 1;
	return ts;
}

/*
 * Rewrites the SYN into our SYN-ACK (reply::syn_ack): MACs swapped, VLAN tags kept, a fresh IP
 * header (no IPv4 options, no IPv6 extension headers), the TCP header with our options.
 * Returns 0, or -1 when the frame could not be resized.
 */
static __always_inline int write_syn_ack(struct xdp_md *ctx, struct fp_cookies *c,
					 struct scratch *sc, __u32 cookie, __u64 now_ns)
{
	struct seg *s = &sc->s;
	__u8 *t = sc->tcp;
	__u8 *ip = sc->ip;
	__u8 macs[12];
	__u32 ip_len = s->v6 ? 40 : 20;
	__u32 opt = 4, tcp_len, new_len, old_len, sum;
	__u8 ecn = (s->flags & (TCP_ECE | TCP_CWR)) == (TCP_ECE | TCP_CWR);
	__u8 ws = 0, sack = 0, ece = 0;
	__u32 l3 = s->l3_off;

	__builtin_memset(t, 0, 64);
	__builtin_memset(ip, 0, 64);
	/* Options: MSS, then SACK-permitted and timestamps, then window scale (SynAckOptions). */
	t[20] = 2;
	t[21] = 4;
	put16(t, 22, s->v6 ? c->mss6 : c->mss4);
	if (s->has_ts) {
		ws = s->has_ws;
		sack = s->sack;
		ece = ecn;
		if (sack) {
			t[24] = 4;
			t[25] = 2;
		} else {
			t[24] = 1;
			t[25] = 1;
		}
		t[26] = 8;
		t[27] = 10;
		put32(t, 28, encode_tsval((__u32)(now_ns / 1000000), s, ecn));
		put32(t, 32, s->tsval);
		opt = 16;
	}
	if (ws) {
		t[(20 + opt) & 0x3f] = 1;
		t[(21 + opt) & 0x3f] = 3;
		t[(22 + opt) & 0x3f] = 3;
		t[(23 + opt) & 0x3f] = c->wscale > MAX_WSCALE ? MAX_WSCALE : c->wscale;
		opt += 4;
	}
	tcp_len = 20 + opt;
	__builtin_memcpy(t, &s->dport, 2);
	__builtin_memcpy(t + 2, &s->sport, 2);
	put32(t, 4, cookie);
	put32(t, 8, s->seq + 1);
	t[12] = (tcp_len / 4) << 4;
	t[13] = TCP_SYN | TCP_ACK | (ece ? TCP_ECE : 0);
	put16(t, 14, c->window);

	/* The IP header, and the pseudo-header sum. */
	if (!s->v6) {
		ip[0] = 0x45;
		put16(ip, 2, 20 + tcp_len);
		ip[6] = 0x40;	/* DF */
		ip[8] = REPLY_TTL;
		ip[9] = IPPROTO_TCP;
		__builtin_memcpy(ip + 12, s->dst, 4);
		__builtin_memcpy(ip + 16, s->src, 4);
		put16(ip, 10, csum_fold(csum_add(0, ip, 10)));
		sum = csum_add(0, ip + 12, 4) + IPPROTO_TCP + tcp_len;
	} else {
		ip[0] = 0x60;
		put16(ip, 4, tcp_len);
		ip[6] = IPPROTO_TCP;
		ip[7] = REPLY_TTL;
		__builtin_memcpy(ip + 8, s->dst, 16);
		__builtin_memcpy(ip + 24, s->src, 16);
		sum = csum_add(0, ip + 8, 16) + IPPROTO_TCP + tcp_len;
	}
	put16(t, 16, csum_fold(csum_add(sum, t, tcp_len / 2)));

	/* Resize the frame to the reply, then write it. */
	old_len = bpf_xdp_get_buff_len(ctx);
	new_len = l3 + ip_len + tcp_len;
	if (bpf_xdp_adjust_tail(ctx, (int)new_len - (int)old_len))
		return -1;
	if (bpf_xdp_load_bytes(ctx, 0, macs, 12))
		return -1;
	if (bpf_xdp_store_bytes(ctx, 0, macs + 6, 6) || bpf_xdp_store_bytes(ctx, 6, macs, 6))
		return -1;
	if (s->v6) {
		if (bpf_xdp_store_bytes(ctx, l3, ip, 40))
			return -1;
	} else if (bpf_xdp_store_bytes(ctx, l3, ip, 20)) {
		return -1;
	}
	if (bpf_xdp_store_bytes(ctx, l3 + ip_len, t, tcp_len & 0x3f))
		return -1;
	return 0;
}

/* Whether cookie validates for s at now (SynCookies::check). */
static __always_inline int cookie_valid(struct fp_cookies *c, struct scratch *sc, __u64 now_s,
					__u32 cookie, int *stale)
{
	struct seg *s = &sc->s;
	struct cookie_msg *m = &sc->m;
	__u64 e_now = now_s / c->rotate_secs;
	__u64 parity = (cookie >> 5) & 1;
	__u64 epoch = (e_now & 1) == parity ? e_now : e_now - 1;
	__u64 c_now = now_s / COUNTER_SECS;
	__u64 age = (c_now - ((cookie >> 3) & 3)) & 3;
	__u64 counter = c_now - age;
	__u32 idx = cookie & 7;
	__u32 mac = cookie >> 6;
	struct fp_cookie_key *k = &c->keys[epoch & 3];

	if (k->epoch != epoch) {
		*stale = 1;
		return 0;
	}
	cookie_msg_of(s, s->seq - 1, m);
	if (k->check && cookie_mac(k->k0, k->k1, m, counter, idx) == mac)
		return 1;
	for (int i = 0; i < FP_COOKIE_RETIRED; i++) {
		struct fp_cookie_retired *r = &c->retired[i];

		if (r->until == 0 || r->epoch != epoch || now_s >= r->until)
			continue;
		if (cookie_mac(r->k0, r->k1, m, counter, idx) == mac)
			return 1;
	}
	return 0;
}

/* Reads the segment's fields (the headers were checked by the caller). */
static __always_inline int read_seg(struct xdp_md *ctx, __u32 l3_off, __u32 l4_off, __be16 proto,
				    __u32 vlans, struct scratch *sc)
{
	struct seg *s = &sc->s;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct tcphdr *t;

	s->vlans = vlans;
	s->l3_off = l3_off;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + (l3_off & 0x1f);

		if ((void *)(ip + 1) > end)
			return -1;
		s->v6 = 0;
		__builtin_memcpy(s->src, &ip->saddr, 4);
		__builtin_memcpy(s->dst, &ip->daddr, 4);
	} else {
		struct ipv6hdr *ip6 = data + (l3_off & 0x1f);

		if ((void *)(ip6 + 1) > end)
			return -1;
		s->v6 = 1;
		__builtin_memcpy(s->src, &ip6->saddr, 16);
		__builtin_memcpy(s->dst, &ip6->daddr, 16);
	}
	t = data + (l4_off & 0x3fff);
	if ((void *)(t + 1) > end)
		return -1;
	s->sport = t->source;
	s->dport = t->dest;
	s->seq = bpf_ntohl(t->seq);
	s->ack = bpf_ntohl(t->ack_seq);
	s->flags = ((__u8 *)t)[13];
	/* Only a SYN's options matter (its SYN-ACK echoes them); an ACK's check needs none. */
	if ((s->flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == TCP_SYN)
		parse_options(ctx, l4_off, t->doff, sc);
	return 0;
}

static __always_inline void flow_key_of(struct seg *s, struct fp_flow_key *k)
{
	k->v6 = s->v6;
	k->sport = s->sport;
	k->dport = s->dport;
	__builtin_memcpy(k->src, s->src, 16);
	__builtin_memcpy(k->dst, s->dst, 16);
}

/* Whether the access rules block the source of the IPv4/IPv6 header at l3_off. */
static __always_inline int access_blocked(__u32 gen, struct seg *s)
{
	struct fp_access *a;

	if (!s->v6) {
		struct fp_lpm_v4 k = { .prefixlen = 32 };

		__builtin_memcpy(k.addr, s->src, 4);
		a = gen ? bpf_map_lookup_elem(&fp_access4_1, &k) : bpf_map_lookup_elem(&fp_access4_0, &k);
	} else {
		struct fp_lpm_v6 k = { .prefixlen = 128 };

		__builtin_memcpy(k.addr, s->src, 16);
		a = gen ? bpf_map_lookup_elem(&fp_access6_1, &k) : bpf_map_lookup_elem(&fp_access6_0, &k);
	}
	return a && a->action == FP_ACCESS_BLOCK;
}

/*
 * Steps 8 and 9 for a TCP segment to a served port that no kernel socket owns. Returns the
 * action, counted.
 */
static __noinline int cookie_gate(struct xdp_md *ctx, __u32 gen, __u32 l3_off, __u32 l4_off,
				  __u32 packed)
{
	__be16 proto = packed & 0xffff;
	__u32 vlans = (packed >> 16) & 0xff;
	__u32 dest_flags = packed >> 24;
	struct fp_cookies *c = cookie_state();
	struct scratch *sc = scratch();
	struct seg *s;
	__u64 now_ns, now_s;
	int stale = 0;

	if (!c || !sc || !c->enabled || c->rotate_secs == 0 || (dest_flags & FP_DEST_FW_TCP_MIXED))
		return to_userspace(ctx);
	__builtin_memset(&sc->s, 0, sizeof(sc->s));
	__builtin_memset(&sc->m, 0, sizeof(sc->m));
	__builtin_memset(&sc->fk, 0, sizeof(sc->fk));
	s = &sc->s;
	if (read_seg(ctx, l3_off, l4_off, proto, vlans, sc) < 0)
		return count(ctx, FP_MALFORMED, XDP_DROP);
	if ((dest_flags & FP_DEST_FW_TCP) && access_blocked(gen, s))
		return count(ctx, FP_FIREWALL_BLOCK, XDP_DROP);
	now_ns = unix_ns(c);
	now_s = now_ns / 1000000000ULL;

	if ((s->flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == TCP_SYN) {
		__u64 epoch = now_s / c->rotate_secs;
		struct fp_cookie_key *k = &c->keys[epoch & 3];
		__u32 idx = mss_index(s->v6, s->has_mss, s->mss);
		__u64 counter = now_s / COUNTER_SECS;
		__u32 cookie;

		if (k->epoch != epoch)
			return to_userspace(ctx);	/* secrets not refreshed yet */
		cookie_msg_of(s, s->seq, &sc->m);
		cookie = cookie_mac(k->k0, k->k1, &sc->m, counter, idx) << 6 |
			 (__u32)(epoch & 1) << 5 | (__u32)(counter & 3) << 3 | idx;
		count(ctx, FP_SYN_COOKIE, XDP_TX);
		if (write_syn_ack(ctx, c, sc, cookie, now_ns) < 0)
			return XDP_DROP;	/* never: the frame can always hold the reply */
		return XDP_TX;
	}

	flow_key_of(s, &sc->fk);
	if (bpf_map_lookup_elem(&fp_flows, &sc->fk))
		return to_userspace(ctx);
	if ((s->flags & (TCP_ACK | TCP_SYN | TCP_RST)) != TCP_ACK)
		return count(ctx, FP_OUT_OF_STATE, XDP_DROP);
	if (cookie_valid(c, sc, now_s, s->ack - 1, &stale)) {
		bpf_map_update_elem(&fp_flows, &sc->fk, &now_ns, BPF_ANY);
		return to_userspace(ctx);
	}
	if (stale)
		return to_userspace(ctx);
	return count(ctx, FP_OUT_OF_STATE, XDP_DROP);
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

/* The program, with the SYN-cookie gate (gate = 1) or without (gate = 0: the fallback where the
 * kernel refuses the gate; SYNs and ACKs then go to userspace, as with --cookies userspace). */
static __always_inline int fastpath(struct xdp_md *ctx, const int gate)
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
	/* 8 and 9. The SYN-cookie gate (not for the CDN's port 80 under https_only: userspace
	 * answers it with a RST). */
	if (gate && l3.proto == IPPROTO_TCP &&
	    !((l3.dest->flags & FP_DEST_HTTPS_ONLY) && port == 80))
		return cookie_gate(ctx, gen, off, l3.l4_off,
				   (__u32)proto | vlans << 16 | (__u32)l3.dest->flags << 24);
	return to_userspace(ctx);
}

SEC("xdp")
int fastpath_xdp(struct xdp_md *ctx)
{
	return fastpath(ctx, 1);
}

SEC("xdp")
int fastpath_xdp_no_gate(struct xdp_md *ctx)
{
	return fastpath(ctx, 0);
}

/* The benchmarks' baseline: drop everything, counted. */
SEC("xdp")
int fastpath_drop_all(struct xdp_md *ctx)
{
	return count(ctx, FP_CTR_DROP_ALL, XDP_DROP);
}

char _license[] SEC("license") = "Dual BSD/GPL";
