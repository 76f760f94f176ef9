// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The fixed program of one end of a hub, attached (generic XDP) to both sides of the end's
 * veth pair: the cast's side takes clones at its ingress, the side in the cast's hub namespace
 * takes the original by bpf_redirect_peer. It hands each frame to the end's broadcast program
 * (hub.bpf.c) in its one-entry array, which any process changes with one map update: no
 * process needs to enter the hub namespace to change the members.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} hub_end_prog SEC(".maps");

SEC("xdp")
int ecast_hub_end(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &hub_end_prog, 0);
	return XDP_DROP; /* no broadcast program yet: no member */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
