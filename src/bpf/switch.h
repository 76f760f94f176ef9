/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Types of the L2 cross-connect, shared with Rust through the skeleton. */
#ifndef EBPF_CAST_SWITCH_H
#define EBPF_CAST_SWITCH_H

enum sw_mode {
	SW_MODE_REDIRECT = 0, /* the frame leaves on the peer port only */
	SW_MODE_CLONE = 1,    /* a copy goes to the peer, the original goes up the stack */
};

/* One value per ingress ifindex, per CPU: where to send, and what went there. */
struct sw_port {
	__u32 out_ifindex;
	__u32 _pad;
	__u64 packets;
	__u64 bytes;
	__u64 errors; /* bpf_clone_redirect failed (clone mode only) */
};

#endif
