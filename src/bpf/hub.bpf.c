// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * A cast's hub: the cast program sends one copy of a datagram into a hub end (hub_end.bpf.c)
 * for a whole group of outputs that take the same edit; here, in generic XDP, the frame
 * leaves on every port of the devmap, each port getting a plain skb_clone of one buffer (no
 * per-copy data copy, which bpf_clone_redirect pays on every call).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 1024); /* set to the number of ports at load */
	__type(key, __u32);        /* output ifindex */
	__type(value, __u32);      /* the same ifindex */
} hub_ports SEC(".maps");

/* No BPF_F_EXCLUDE_INGRESS: the ports are never the hub, and the side in the hub namespace
 * has an ifindex of that namespace, which an output's may equal. */
SEC("xdp")
int ecast_hub(struct xdp_md *ctx)
{
	return bpf_redirect_map(&hub_ports, 0, BPF_F_BROADCAST);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
