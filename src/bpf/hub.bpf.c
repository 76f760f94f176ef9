// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * A cast's hub: the cast program sends one copy of a datagram into a hub end (hub_end.bpf.c)
 * for a whole group of outputs that take the same edit; here, in generic XDP, the frame
 * leaves on every port of the devmap, each port getting a plain skb_clone of one buffer (no
 * per-copy data copy, which bpf_clone_redirect pays on every call).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "common.h"
#include "backlog.h"

/* Written by userspace before load (hub.rs). */
const volatile __s64 cfg_rq_to_softnet; /* as in cast.bpf.c */
const volatile __u32 cfg_n_members;
const volatile __u32 cfg_n_queued;  /* members whose copies wait in the CPU's backlog */
const volatile __u32 cfg_slots[CAST_MAX_OUT]; /* the members' slots in cast_ostats */

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 1024); /* set to the number of ports at load */
	__type(key, __u32);        /* output ifindex */
	__type(value, __u32);      /* the same ifindex */
} hub_ports SEC(".maps");

/* No BPF_F_EXCLUDE_INGRESS: the ports are never the hub, and the side in the hub namespace
 * has an ifindex of that namespace, which an output's may equal. */
static __always_inline int broadcast(void)
{
	return bpf_redirect_map(&hub_ports, 0, BPF_F_BROADCAST);
}

/* The original datagram, which the cast program admitted (backlog.h) in this same pass. */
SEC("xdp")
int ecast_hub(struct xdp_md *ctx)
{
	return broadcast();
}

/*
 * A clone, which the cast made before it went on with the datagram: it waited on the backlog
 * behind what was queued then, so only now is it known whether the backlog has room for the
 * copies that queue there. Refused, it goes to none of the members, and each counts a lost
 * copy, as the cast counts one that the kernel refused. The cast admitted the datagram with
 * room for these copies too, so a refusal here is rare. Members whose copies do not queue there
 * (a peer's NAPI takes them) are no reason to refuse: with none such, nothing is checked.
 */
SEC("xdp")
int ecast_hub_clones(struct xdp_md *ctx)
{
	struct cast_admission *a;

	if (!cfg_n_queued)
		return broadcast();
	/* The cast promised these copies when it queued the clone (backlog.h): due now. */
	a = admission();
	if (a)
		a->pending = a->pending > cfg_n_queued ? a->pending - cfg_n_queued : 0;
	if (backlog_takes(cfg_n_queued, cfg_rq_to_softnet))
		return broadcast();
	for (__u32 k = 0; k < CAST_MAX_OUT; k++) {
		__u32 slot;
		struct cast_ostat *st;

		if (k >= cfg_n_members)
			break;
		slot = cfg_slots[k];
		st = bpf_map_lookup_elem(&cast_ostats, &slot);
		if (st)
			st->clone_errors++;
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
