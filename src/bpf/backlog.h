/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Whether this CPU's input backlog takes a datagram's copies: the cast program admits a whole
 * datagram, and the hubs' broadcasts of clones check again as they run. Copies to outputs
 * without NAPI queue on the backlog all at once, and nothing drains it meanwhile: without room
 * for all of them, most would be made only to be refused.
 */
#ifndef EBPF_CAST_BACKLOG_H
#define EBPF_CAST_BACKLOG_H

#include "cast_maps.h"

/* The few kernel fields backlog_takes reads, matched by CO-RE to the kernel's (these flavors keep
 * the rest of the kernel's big structs out of the programs' BTF and the skeletons). */
struct rq___ecast {};
struct cfs_rq___ecast {
	struct rq___ecast *rq;
} __attribute__((preserve_access_index));
struct sched_entity___ecast {
	struct cfs_rq___ecast *cfs_rq;
} __attribute__((preserve_access_index));
struct task_struct___ecast {
	struct sched_entity___ecast se;
} __attribute__((preserve_access_index));
struct sk_buff_head___ecast {
	__u32 qlen;
} __attribute__((preserve_access_index));
struct softnet_data___ecast {
	struct sk_buff_head___ecast process_queue;
	struct sk_buff_head___ecast input_pkt_queue;
} __attribute__((preserve_access_index));

/*
 * This CPU's softnet_data, which holds its backlog, and the backlog limit (0: not known); NULL
 * where either is not known, and then nothing is checked. The kernel offers no helper for the
 * queue's length, and softnet_data is not a symbol BPF can name on kernels without
 * KALLSYMS_ALL: it is found `rq_to_softnet` bytes from the CPU's runqueue (their offsets in the
 * per-CPU area, from the kernel's BTF; 0: not known), which the running task leads to. The
 * reads are checked loads: a wrong pointer reads 0, never faults.
 */
static __always_inline struct softnet_data___ecast *backlog_of(__s64 rq_to_softnet, __u64 *max)
{
	struct task_struct___ecast *task;
	struct rq___ecast *rq;
	__u32 zero = 0;
	__u64 *limit = bpf_map_lookup_elem(&cast_backlog, &zero);

	/* A kernel without cgroup scheduling has no runqueue in its cfs_rq: nothing to read. */
	if (!limit || !*limit || !rq_to_softnet || !bpf_core_field_exists(struct cfs_rq___ecast, rq))
		return NULL;
	task = bpf_core_cast((void *)bpf_get_current_task(), struct task_struct___ecast);
	rq = task->se.cfs_rq->rq; /* checked loads */
	if (!rq)
		return NULL;
	*max = *limit;
	return bpf_core_cast((void *)((__u64)rq + rq_to_softnet), struct softnet_data___ecast);
}

/* The kernel queues while the queue holds at most max. A broadcast bigger than the whole
 * backlog (a limit left low) still goes when it is empty: its first max copies arrive. */
static __always_inline int room_for(__u64 queued, __u64 copies, __u64 max)
{
	if (copies > max)
		copies = max;
	return queued + copies <= max + 1;
}

/* Whether the backlog has room now for a broadcast's `copies`: a hub's clone, as it comes off
 * the backlog. What other clones have been promised comes after it. */
static __always_inline int backlog_takes(__u32 copies, __s64 rq_to_softnet)
{
	struct softnet_data___ecast *sd;
	__u64 max;

	sd = backlog_of(rq_to_softnet, &max);
	return !sd || room_for(sd->input_pkt_queue.qlen, copies, max);
}

static __always_inline struct cast_admission *admission(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cast_admission, &zero);
}

/*
 * Whether the backlog has room for all the `copies` of a datagram that will queue there, now
 * (its clones, copies of the hub that takes the original) and later (the broadcasts of its
 * clones), beyond the copies that clones already waiting there will make (`a->pending`).
 * Checked before any work on the datagram: refused there, it costs nothing more, where a
 * refusal when a clone comes off the backlog wastes the work on the whole datagram.
 */
static __always_inline int backlog_admits(struct cast_admission *a, __u32 copies, __s64 rq_to_softnet)
{
	struct softnet_data___ecast *sd;
	__u64 max;
	__u32 queued;

	sd = backlog_of(rq_to_softnet, &max);
	if (!sd)
		return 1;
	queued = sd->input_pkt_queue.qlen;
	/* Nothing waits: no clone either. This also forgets promises that a clone lost on its way
	 * (its hub gone) left behind. */
	if (!queued && !sd->process_queue.qlen)
		a->pending = 0;
	return room_for(queued + a->pending, copies, max);
}

#endif
