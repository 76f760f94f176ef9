// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The benchmark's probe of a tc -> XDP hub without any cast logic: tc ingress of the input
 * hands every frame, uncloned, to a hub device whose generic XDP (src/bpf/hub.bpf.c)
 * broadcasts it. Not part of the tool.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile __u32 hub_ifindex;
const volatile __u32 hub_peer; /* hand over with bpf_redirect_peer (no backlog hop) */

SEC("tc")
int ecast_hub_feed(struct __sk_buff *skb)
{
	if (hub_peer)
		return bpf_redirect_peer(hub_ifindex, 0);
	return bpf_redirect(hub_ifindex, BPF_F_INGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
