// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Broadcast stage of the fan-out: a frame that reaches a hub device leaves on every port of
 * the hub's devmap. Run as generic XDP, each port gets a plain skb_clone of one buffer (no
 * per-copy data copy, unlike bpf_clone_redirect, which re-copies the original's head).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* The benchmark's reference mechanisms; ebpf-cast itself does not use this program. */

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} hub_ports SEC(".maps");

/* Generic XDP on the hub device (or, as the benchmark's reference, on the input itself). */
SEC("xdp")
int ecast_hub_bcast(struct xdp_md *ctx)
{
	return bpf_redirect_map(&hub_ports, 0, BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS);
}

const volatile __u32 hub_ifindex;
const volatile __u32 hub_peer; /* hand over with bpf_redirect_peer (no backlog hop) */

/* Experiment: tc ingress of the input hands every frame to the hub, uncloned. */
SEC("tc")
int ecast_hub_feed(struct __sk_buff *skb)
{
	if (hub_peer)
		return bpf_redirect_peer(hub_ifindex, 0);
	return bpf_redirect(hub_ifindex, BPF_F_INGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
