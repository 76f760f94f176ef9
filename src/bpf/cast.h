/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Types of the video fan-out, shared with Rust through the skeleton. */
#ifndef EBPF_CAST_CAST_H
#define EBPF_CAST_CAST_H

enum cast_limit {
	CAST_MAX_OUT = 1024,  /* outputs of one instance */
	CAST_MAX_CLASS = 16,  /* distinct policies of one instance */
	CAST_MAX_PORTS = 8,   /* --port values */
};
#define CAST_TABLE_LEN (CAST_MAX_OUT + CAST_MAX_CLASS) /* outputs, and a hub entry per class */
#define CAST_TABLES 8      /* output tables in rotation (a power of 2): a table is rewritten only
			    * long after the program last read it, and changes need not wait */
#define TS_PER_DGRAM 64    /* TS packets a datagram may hold for per-frame editing (a power of 2;
			    * MTU 9000 carries 47) */

/*
 * Drop priority of a TS packet. An output whose policy level is L receives the packets
 * with prio >= L. Non-reference frames get 0..255 (their bit-reversed index, so a higher
 * level drops a superset of what a lower one drops, spread evenly); reference frames 256;
 * keyframes PRIO_KEY. Packets that are not video are never dropped. Keyframes are dropped only
 * for an output that waits for its first keyframe (LEVEL_NOVIDEO: no video before it), and for
 * a capped output whose budget has no room for the next one (its whole GOP goes).
 */
#define PRIO_REF 256
#define PRIO_KEY 0xfffe    /* keyframes */
#define PRIO_KEEP 0xffff   /* not video: never dropped */
enum cast_level {
	LEVEL_ALL = 0,         /* policy all */
	LEVEL_REF = 256,       /* policy ref: no non-reference frames */
	LEVEL_KEY = 257,       /* policy key: keyframes only */
	LEVEL_CAP = 0xfffd,    /* policy max=RATE: the level is chosen at every frame start (struct cast_cap) */
	LEVEL_NOVIDEO = 0xffff, /* an output waiting for a keyframe: no video yet */
};
#define SNAP_MAX 16384     /* the largest frame that can be restored for joining outputs */

/* cast_out.flags */
enum cast_out_flag {
	CAST_OUT_NAT = 1,     /* rewrite the destination MAC, IPv4 address and UDP port */
	/* A hub: a device whose generic XDP broadcasts each frame to its devmap's ports (plain
	 * skb_clone, no data copy). One copy goes into the hub's ingress for a group of outputs. */
	CAST_OUT_HUB = 2,
	CAST_OUT_VIA_HUB = 4, /* a member of the group of the hub entry that follows it */
	/* Its copies wait in the CPU's backlog (a veth with TSO on: veth_xmit hands them to the
	 * peer through netif_rx), so a hub with it takes a datagram only while there is room. */
	CAST_OUT_QUEUES = 8,
};

/* One output, in the table sorted by level. */
struct cast_out {
	__u32 ifindex;
	__u16 level;       /* policy: send the packets with prio >= level */
	__u8 class_id;     /* index of the output's policy class: same level, same class */
	__u8 flags;        /* enum cast_out_flag */
	__u32 slot;        /* index in cast_ostats, stable while the output exists */
	__u32 gen_added;   /* table generation that added it: no video before a keyframe after */
	__be32 nat_daddr;
	__be16 nat_dport;
	__u8 nat_dmac[6];
	__u32 n_members;   /* a hub: its members are the entries just before it */
	__u32 n_queued;    /* a hub: members with CAST_OUT_QUEUES */
	__u32 cap_bps;     /* LEVEL_CAP: the budget, bits/s of UDP payload */
};

struct cast_table {
	__u32 n_out;
	__u32 gen;         /* generation of this table (userspace counts them) */
	__u32 max_gen_added; /* the newest output's gen_added: flows whose last keyframe came
			      * later have no output waiting (the fast path) */
	__u32 n_cap;       /* outputs with LEVEL_CAP: served from the original, each its own class */
	__u32 backlog_entries; /* with hubs whose members' copies queue on the CPU's backlog:
				* the entries a datagram takes there (clones to hubs, the hubs'
				* broadcasts, direct copies); 0: nothing is checked */
	struct cast_out out[CAST_TABLE_LEN];
};

/* Who runs the instance and what its output slots are: written and read by userspace only
 * (the program never reads it), kept in .bss so one pinned map holds the instance's state. */
struct cast_meta {
	__u32 owner_pid;                   /* the `ebpf-cast cast` process */
	__u32 n_slots;                     /* slots in use are below this */
	__u64 owner_start;                 /* its start time (/proc/PID/stat): pid + this name it */
	char input[16];
	char name[16];                     /* instance name (--name) */
	char slot_name[CAST_MAX_OUT][16];  /* output interface per slot; empty: free */
	__u16 slot_level[CAST_MAX_OUT];    /* policy level per slot */
	__u32 slot_cap[CAST_MAX_OUT];      /* with LEVEL_CAP: the cap, bits/s */
	__u32 slot_drops_base[CAST_MAX_OUT]; /* the output device's tx_dropped when the slot got it
					      * (or at the last reset): its drops count from here */
	__u64 slot_refused_base[CAST_MAX_OUT];       /* the same for struct cast_admission's */
	__u64 slot_refused_bytes_base[CAST_MAX_OUT]; /* refused datagrams and their bytes */
	__u64 retired_ns[CAST_TABLES];     /* CLOCK_MONOTONIC when each table stopped being active */
};

/* Per output, per CPU. */
/* Per CPU: the admission of datagrams to the CPU's backlog (backlog.h). */
struct cast_admission {
	__u64 pending;         /* copies that hubs' clones waiting in the backlog will queue there */
	__u64 refused;         /* datagrams refused, lost to every output: each output's counters */
	__u64 refused_bytes;   /* add these from cast_meta's bases on (counters.rs) */
};

struct cast_ostat {
	__u64 packets;         /* datagrams sent */
	__u64 bytes;           /* bytes of the frames sent (Ethernet header included) */
	__u64 frames_sent;     /* video frames (PES starts) sent */
	__u64 frames_dropped;  /* video frames dropped by the policy */
	__u64 clone_errors;    /* copies lost: refused by the kernel, or not made once the backlog was full */
	__u64 failing;         /* the last copy to this output was refused */
};

/*
 * The budget of a capped output (LEVEL_CAP), by slot: the UDP payload bytes it was sent in
 * each slice of 2^CAP_SLICE_SHIFT ns. The current slice and the CAP_WINDOW before it cover at
 * least one second, so a frame starts only while the last second is within the cap: any
 * one-second window holds at most the cap plus the one frame that started last.
 */
enum cast_cap_window {
	CAP_SLICE_SHIFT = 25,  /* 33.6 ms */
	CAP_SLICES = 32,       /* ring of slices (a power of 2) */
	CAP_WINDOW = 30,       /* 30 x 33.6 ms >= 1 s */
};
struct cast_cap {
	__u64 slice;           /* the newest slice written */
	__u32 bytes[CAP_SLICES];
	__u16 level;           /* the level chosen at the last frame start (for stats) */
	__u16 _pad[3];
};

/* A UDP flow: addresses as in the packet (IPv4 in the first 4 bytes). */
struct flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 ipv6;
	__u8 _pad[3];
};

/* What the kernel knows about a flow. */
struct cast_flow {
	__u16 video_pid;       /* PID_NONE (mpegts.h) until learned from the PMT (or --pid) */
	__u16 pmt_pid;         /* PID_NONE until learned from the PAT */
	__u8 codec;            /* enum codec */
	__u8 _pad0;
	__u16 prio;            /* drop priority of the current frame's TS packets */
	__u32 nonref_seq;      /* non-reference frames seen: the decimation rank's source */
	__u8 cc[CAST_MAX_CLASS]; /* per class: last continuity counter sent | CC_VALID */
	__u32 key_gen;         /* table generation when the last keyframe started */
	__u64 frames[4];       /* frames seen, by enum frame_kind */
	__u64 packets;         /* datagrams seen */
	__u64 bytes;
	__u64 unedited;        /* datagrams cast whole (to `all` outputs only if they may carry
			 * video): not TS, too many TS packets, or GSO */
	__u64 overload;        /* datagrams the CPU's backlog had no room for */
	__u16 rtp_skip[CAST_MAX_CLASS]; /* per class: datagrams it emptied and did not send, taken
					 * off the RTP sequence numbers so its receivers see no gap */
	__u16 cap_keep;        /* per capped class (bit): it keeps the current frame */
	__u16 cap_in_key;      /* per capped class (bit): the current frame is a keyframe */
	__u16 cap_floor[CAST_MAX_CLASS]; /* per capped class: the least level until the next
					  * keyframe (a reference frame or keyframe was dropped) */
	__u16 cap_frame_ts[CAST_MAX_CLASS]; /* per capped class: TS packets of the current frame */
	__u16 cap_key_ts[CAST_MAX_CLASS];   /* and of the last keyframe: a keyframe starts only if
					     * one as big fits in the budget */
	__u64 cap_key_ns;      /* when the last keyframe started (seen by a capped class) */
	__u64 cap_gop_ns;      /* the time between the last two: within a second of the next
				* keyframe, capped classes keep room for it */
};
#define CC_VALID 0x10

/* Never read: anchors the enums Rust uses in the skeleton's types (cast.bpf.c's `abi`). */
struct cast_abi {
	enum cast_limit limit;
	enum cast_level level;
	enum cast_out_flag out_flag;
	enum cast_cap_window cap_window;
};

#endif
