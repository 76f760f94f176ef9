// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The fixed programs of one end of a hub, attached (generic XDP) to the two sides of the end's
 * veth pair: the cast's side takes clones at its ingress, the side in the cast's hub namespace
 * takes the original by bpf_redirect_peer. Each hands the frame to the end's broadcast program
 * for it (hub.bpf.c) in their program array, which any process changes with map updates: no
 * process needs to enter the hub namespace to change the members.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* The broadcast programs in hub_end_prog. */
enum hub_entry {
	HUB_ORIGINAL = 0, /* ecast_hub */
	HUB_CLONES = 1,   /* ecast_hub_clones */
	HUB_ENTRIES = 2,
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, HUB_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} hub_end_prog SEC(".maps");

/* Never read: anchors enum hub_entry for Rust in the skeleton's types. */
const volatile enum hub_entry hub_abi;

/* No broadcast program yet: no member. */
SEC("xdp")
int ecast_hub_end(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &hub_end_prog, HUB_ORIGINAL);
	return XDP_DROP;
}

SEC("xdp")
int ecast_hub_end_clones(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &hub_end_prog, HUB_CLONES);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
