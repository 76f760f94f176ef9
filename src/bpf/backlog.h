/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Whether this CPU's input backlog takes a broadcast's copies now: used by the cast program
 * (for the hub that takes the original) and by the hubs' broadcasts of clones. Copies to
 * outputs without NAPI queue on the backlog all at once, and nothing drains it meanwhile:
 * without room for all of them, most would be made only to be refused.
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
	struct sk_buff_head___ecast input_pkt_queue;
} __attribute__((preserve_access_index));

/*
 * Whether the backlog has room for `copies` more frames. The kernel offers no helper for the
 * queue's length, and softnet_data is not a symbol BPF can name on kernels without
 * KALLSYMS_ALL: it is found `rq_to_softnet` bytes from the CPU's runqueue (their offsets in the
 * per-CPU area, from the kernel's BTF; 0: not known), which the running task leads to. The
 * reads are checked loads: a wrong pointer reads 0, never faults.
 */
static __always_inline int backlog_takes(__u32 copies, __s64 rq_to_softnet)
{
	struct softnet_data___ecast *sd;
	struct task_struct___ecast *task;
	struct rq___ecast *rq;
	__u32 zero = 0;
	__u64 *max = bpf_map_lookup_elem(&cast_backlog, &zero);

	/* A kernel without cgroup scheduling has no runqueue in its cfs_rq: nothing to read. */
	if (!max || !*max || !rq_to_softnet || !bpf_core_field_exists(struct cfs_rq___ecast, rq))
		return 1;
	task = bpf_core_cast((void *)bpf_get_current_task(), struct task_struct___ecast);
	rq = task->se.cfs_rq->rq; /* checked loads */
	if (!rq)
		return 1;
	sd = bpf_core_cast((void *)((__u64)rq + rq_to_softnet), struct softnet_data___ecast);
	/* The kernel queues while the queue holds at most max. A broadcast bigger than the whole
	 * backlog (a limit left low) still goes when it is empty: its first max copies arrive. */
	if (copies > *max)
		copies = *max;
	return sd->input_pkt_queue.qlen + copies <= *max + 1;
}

#endif
