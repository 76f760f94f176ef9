// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* L2 cross-connect: every frame entering one port leaves on its peer port. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "common.h"
#include "switch.h"

/* Written by userspace before load. */
const volatile enum sw_mode sw_mode = SW_MODE_REDIRECT;

/* ingress ifindex -> peer port and per-CPU counters: one lookup per frame. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct sw_port);
} ecsw_ports SEC(".maps");

/* Attached at tc (TCX or clsact) ingress of both ports. */
SEC("tc")
int ecast_switch_in(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct sw_port *port = bpf_map_lookup_elem(&ecsw_ports, &ifindex);

	/* Not one of our ports, or shorter than an Ethernet header: not ours to switch. */
	if (!port || skb->len < ETH_HLEN)
		return TC_ACT_OK;
	port->packets++;
	port->bytes += skb->len;
	if (sw_mode == SW_MODE_CLONE) {
		if (bpf_clone_redirect(skb, port->out_ifindex, 0))
			port->errors++;
		return TC_ACT_OK;
	}
	return bpf_redirect(port->out_ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
