/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Header parsing with a cursor: one bounds-checked step per header. */
#ifndef EBPF_CAST_PARSE_H
#define EBPF_CAST_PARSE_H

#include "common.h"

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define RTP_PT_MP2T 33

struct cursor {
	void *pos;
	void *end;
};

/* Ethernet plus up to two VLAN tags; returns the EtherType (network order) or 0. */
static __always_inline __u16 parse_eth(struct cursor *c)
{
	struct ethhdr *eth = c->pos;
	__u16 proto;

	if ((void *)(eth + 1) > c->end)
		return 0;
	c->pos = eth + 1;
	proto = eth->h_proto;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_hdr *vh = c->pos;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > c->end)
			return 0;
		c->pos = vh + 1;
		proto = vh->h_vlan_encapsulated_proto;
	}
	return proto;
}

/* IPv4 with any IHL; 0 for anything but an unfragmented UDP datagram. */
static __always_inline struct iphdr *parse_ipv4(struct cursor *c)
{
	struct iphdr *ip = c->pos;
	__u32 ihl;

	if ((void *)(ip + 1) > c->end)
		return 0;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip) || ip->protocol != IPPROTO_UDP)
		return 0;
	/* Fragments pass as they are: only a whole datagram can be edited and cast. */
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return 0;
	if (c->pos + ihl > c->end)
		return 0;
	c->pos += ihl;
	return ip;
}

/* IPv6 whose next header is UDP (extension headers: not cast). */
static __always_inline struct ipv6hdr *parse_ipv6(struct cursor *c)
{
	struct ipv6hdr *ip6 = c->pos;

	if ((void *)(ip6 + 1) > c->end || ip6->nexthdr != IPPROTO_UDP)
		return 0;
	c->pos = ip6 + 1;
	return ip6;
}

static __always_inline struct udphdr *parse_udp(struct cursor *c)
{
	struct udphdr *udp = c->pos;

	if ((void *)(udp + 1) > c->end)
		return 0;
	c->pos = udp + 1;
	return udp;
}

/* Skips an RFC 2250 RTP header (version 2, payload type 33) if there is one within the `room`
 * bytes of the datagram: bytes after the datagram are not its header. */
static __always_inline void skip_rtp(struct cursor *c, __u32 room)
{
	__u8 *rtp = c->pos;
	__u32 len;

	if ((void *)(rtp + 12) > c->end || (rtp[0] >> 6) != 2 || (rtp[1] & 0x7f) != RTP_PT_MP2T)
		return;
	len = 12 + 4 * (rtp[0] & 0x0f); /* CSRC list */
	if (rtp[0] & 0x10) {             /* header extension: 4 bytes + length words */
		__u16 *ext;

		if (len > 12 + 60)
			return;
		ext = (void *)rtp + len;
		if ((void *)(ext + 2) > c->end || bpf_ntohs(ext[1]) > 64)
			return; /* bounded so that offsets stay provable */
		len += 4 + 4 * bpf_ntohs(ext[1]);
	}
	if (len > room || (void *)rtp + len > c->end)
		return;
	c->pos = (void *)rtp + len;
}

#endif
