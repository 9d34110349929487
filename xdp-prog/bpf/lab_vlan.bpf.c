// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The lab's stand-in for a VLAN sub-interface, for kernels without 802.1Q support (like the
 * CI machine's): on the client's veth, egress frames whose skb mark is FP_LAB_VLAN_MARK | vid
 * get an 802.1Q tag with that vid, and ingress frames lose their tag. The client's TCP stack
 * is the real one; the frames on the wire are tagged, as behind a VLAN sub-interface.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define FP_LAB_VLAN_MARK 0x10000

SEC("tc")
int lab_vlan_push(struct __sk_buff *skb)
{
	__u32 mark = skb->mark;

	if ((mark & ~0xfffU) == FP_LAB_VLAN_MARK && (mark & 0xfff) != 0)
		bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), mark & 0xfff);
	return TC_ACT_OK;
}

SEC("tc")
int lab_vlan_pop(struct __sk_buff *skb)
{
	if (skb->vlan_present)
		bpf_skb_vlan_pop(skb);
	return TC_ACT_OK;
}

/*
 * Attached to the client's veth: the fast path answers SYNs with XDP_TX, and on a veth a frame
 * sent that way reaches the peer only when the peer runs an XDP program of its own (a NIC has
 * no such need). This one lets everything through to the client's stack.
 */
SEC("xdp")
int lab_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
