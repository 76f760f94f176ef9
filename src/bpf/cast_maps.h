/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* The maps of a cast that its hubs' broadcast programs share (hub.rs gives them the cast's). */
#ifndef EBPF_CAST_CAST_MAPS_H
#define EBPF_CAST_CAST_MAPS_H

#include "cast.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CAST_MAX_OUT);
	__type(key, __u32);
	__type(value, struct cast_ostat);
} cast_ostats SEC(".maps");

/* net.core.netdev_max_backlog as the cast's process last read it (0: not known, admit all). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cast_backlog SEC(".maps");

/* Per CPU: the copies that hubs' clones will queue on the backlog, and the datagrams refused for
 * want of room (backlog.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cast_admission);
} cast_admission SEC(".maps");

#endif
