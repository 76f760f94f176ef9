// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Test probe, not part of the tool: at tc ingress of a receiver, checks every frame that carries
 * CHECKSUM_COMPLETE: its skb->csum must be the sum of its bytes from the IP header on, which is
 * what the receiving stack trusts (a wrong one makes it log "hw csum failure").
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define ETH_HLEN 14
#define CHUNK 256
#define MAX_CHUNKS 8 /* frames up to 2 KB */
#define CHECKSUM_COMPLETE 2
#define TC_ACT_OK 0

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

__u64 not_complete; /* frames with another checksum state */
__u64 complete_right;
__u64 complete_wrong;
__u64 too_long;       /* not checked */
__u64 udp_csum_zero;  /* frames whose UDP checksum field is 0 (none), as IPv4 without options */

struct chunk {
	__u8 b[2 * CHUNK + 4];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct chunk);
} buf SEC(".maps");

static __always_inline __u32 fold(__u32 c)
{
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return c == 0xffff ? 0 : c; /* 0 and 0xffff are the same in ones' complement */
}

SEC("tc")
int csum_probe(struct __sk_buff *skb)
{
	struct sk_buff *k = bpf_cast_to_kern_ctx(skb);
	__u32 zero = 0, off = ETH_HLEN, len = skb->len, acc = 0;
	struct chunk *c = bpf_map_lookup_elem(&buf, &zero);

	if (!c)
		return TC_ACT_OK;
	__u16 udp_csum = 1;

	if (!bpf_skb_load_bytes(skb, ETH_HLEN + 20 + 6, &udp_csum, 2) && udp_csum == 0)
		__sync_fetch_and_add(&udp_csum_zero, 1);
	if (BPF_CORE_READ_BITFIELD(k, ip_summed) != CHECKSUM_COMPLETE) {
		__sync_fetch_and_add(&not_complete, 1);
		return TC_ACT_OK;
	}
	for (int i = 0; i < MAX_CHUNKS; i++) {
		__u32 n = len - off;

		if (off >= len)
			break;
		if (n > CHUNK)
			n = CHUNK;
		barrier_var(n);
		n &= 2 * CHUNK - 1; /* bounded for the verifier */
		if (n == 0)
			break;
		/* The word the data ends in is zero past its end: a short tail sums as if padded. */
		*(__u32 *)&c->b[n & (2 * CHUNK - 4)] = 0;
		if (bpf_skb_load_bytes(skb, off, c->b, n))
			return TC_ACT_OK;
		acc = bpf_csum_diff(0, 0, (void *)c->b, (n + 3) & (2 * CHUNK - 4), acc);
		off += n;
	}
	if (off < len)
		__sync_fetch_and_add(&too_long, 1);
	else if (fold(acc) == fold(k->csum))
		__sync_fetch_and_add(&complete_right, 1);
	else
		__sync_fetch_and_add(&complete_wrong, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
