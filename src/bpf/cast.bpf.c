// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Content-aware video fan-out. For every MPEG-TS/UDP datagram: classify each TS packet by the
 * video frame it belongs to, then send the datagram to every output, cutting out the TS packets
 * of the frames an output's policy drops. Outputs are sorted by policy level, so each step
 * only removes more: the datagram is edited in place between clones.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "common.h"
#include "cast.h"
#include "backlog.h"
#include "mpegts.h"
#include "parse.h"

/* Written by userspace before load. */
const volatile __be16 cfg_ports[CAST_MAX_PORTS]; /* UDP destination ports */
const volatile __u32 cfg_nports;                /* 0: cast every UDP flow that carries TS */
const volatile __u16 cfg_video_pid;             /* 0: learn it from the PMT */
const volatile __u8 cfg_codec;                  /* with cfg_video_pid: enum codec */

/* From this CPU's runqueue to its softnet_data, in bytes (their offsets in the per-CPU area,
 * from the kernel's BTF); 0: not known. */
const volatile __s64 cfg_rq_to_softnet;

const volatile struct cast_abi abi;
const volatile struct ts_abi ts_abi;

/* Outputs. Userspace fills the next table of the rotation, then makes it the active one. */
struct cast_table cast_tabs[CAST_TABLES];
__u32 cast_active;
struct cast_meta cast_meta;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct flow_key);
	__type(value, struct cast_flow);
} cast_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CAST_MAX_OUT);
	__type(key, __u32);
	__type(value, struct cast_cap);
} cast_caps SEC(".maps");


#define TSF_VIDEO 1   /* on the flow's video PID */
#define TSF_PCR 2     /* carries a PCR: never removed, emptied instead */
#define TSF_AFONLY 4  /* no payload now (as received, or emptied) */
#define TSF_GONE 8    /* cut out of the datagram */
#define TSF_PAYLOAD 16 /* had a payload as received */
#define TSF_START 32  /* a video frame starts here */

/*
 * A capped class's choice, as priorities in the upper half of dgram.prio and frame_prio: its
 * outputs take the packets with "priority" >= 1, and one that joins at this keyframe those >= 2.
 */
#define VP_DROP 0
#define VP_KEEP 1
#define VP_KEY 2       /* kept, of a keyframe */
#define VP_NONE 3      /* a cut that keeps no video */
#define VIRT TS_PER_DGRAM

#define FAN_CONTINUE -1

/* The datagram being cast. */
struct dgram {
	__u32 ts_off;           /* first TS packet, from the start of the frame */
	__u32 l3_off;
	__u32 udp_off;
	__u32 level;            /* policy level the datagram is edited for now */
	__u32 len;              /* frame length as received */
	__u32 key_gen_prev;     /* the flow's key_gen before this datagram */
	__be32 daddr;           /* destination as received (IPv4), and as now in the frame */
	__be32 cur_daddr;
	__be16 dport;
	__be16 cur_dport;
	__u8 dmac[6];
	__u8 cur_dmac[6];
	__u8 n_orig;            /* TS packets as received */
	__u8 n_ts;              /* TS packets still in it */
	__u8 ipv6;
	__u8 csum;              /* the UDP checksum is in use */
	__u8 editable;          /* has video and can be edited per TS packet; TS that cannot be
				 * (n_orig > 0) may carry video, so it goes whole to the outputs
				 * that take everything and to no other */
	__u8 n_frames;          /* frames that start in this datagram */
	__u8 frames_sent;       /* of those, kept at the current level */
	__u8 last;              /* the output being sent to is the last one: redirect */
	__u8 slow;              /* some output waits for a keyframe or is capped: two phases */
	__u8 joining;           /* phase 2: serving the outputs that wait for a keyframe or are capped */
	__u8 refused;           /* copies refused in a row by outputs that took the last one */
	__u16 applied;          /* classes numbered in phase 1 (bit per class) */
	__u8 full;              /* the backlog is full: no more copies of this datagram */
	__u8 rtp;               /* behind an RTP header (sequence number at udp_off + 10) */
	__u16 rtp_seq;          /* RTP sequence number as received, and as now in the frame */
	__u16 cur_seq;
	__u16 skipped;          /* classes that emptied this datagram (bit per class) */
	__u32 refused_slot;     /* the output that refused the last copy */
	__u32 tab;              /* the output table in use */
	__u32 idx;              /* the table entry being sent to */
	struct {                /* cap_decide's walk: */
		__u16 level;    /* the level from the budget */
		__u16 floor;
		__u16 chosen;   /* at the last frame start */
		__u16 frame_ts; /* TS packets of the current frame */
		__u16 key_ts;   /* of the last keyframe */
		__u8 keep;      /* the current frame is kept */
		__u8 in_key;    /* the current frame is a keyframe */
		__u8 key_fits;  /* a keyframe as big as the last one fits in the budget */
		__u8 key_seen;  /* a keyframe starts in this datagram */
		__u8 n;         /* frames started */
		__u8 kept;      /* TS packets kept */
	} cw;
	/* Arrays: each entry is written (classify, cap_packet, the snapshot's cc_start) before it
	 * is read, so dgram_start does not clear them. */
	__u16 prio[2 * TS_PER_DGRAM];       /* per TS packet; upper half: a capped class's */
	__u16 frame_prio[2 * TS_PER_DGRAM]; /* per frame that starts here; likewise */
	__u8 flags[TS_PER_DGRAM];
	__u8 flags0[TS_PER_DGRAM]; /* as received */
	__u8 pos[TS_PER_DGRAM]; /* where original packet i now is */
	__u8 cc[TS_PER_DGRAM];  /* continuity counter as received */
	__u8 cc_start[CAST_MAX_CLASS]; /* the flow's class counters before this datagram */
};

/* One edit: cut the packets below `cut`; number continuity counters as the class does, which
 * keeps the packets at or above `count` (count < cut only for an output joining its class). */
struct edit {
	__u32 cut;
	__u32 count;
	__u32 class_id;
	__u32 waiting;  /* an output waiting for a keyframe: numbers from cc_start (the class's
			 * counter is left alone if a member of the class numbered this datagram
			 * already), and its cut PCR packets go too, not emptied */
	__u32 virt;     /* 0, or VIRT: the priorities are a capped class's choice */
	/* Running state, packet by packet. */
	__u32 w;        /* packets kept so far: where the next one goes */
	__u32 acc;      /* checksum difference of the bytes changed */
	__u32 cc;       /* the class's continuity counter | CC_VALID */
};

/* Per-CPU scratch (too big for the stack): the datagram's state, and the whole frame as it
 * arrived, kept while outputs wait to join (they are served from the original). */
struct scratch {
	struct dgram d;
	struct edit e;
	struct cast_flow flow_init;
	__u8 snap[SNAP_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} cast_scratch SEC(".maps");


/* The classifier runs as global functions: each is verified once, whatever calls it. */
__noinline __u32 frame_kind_of(struct ts_buf *b, __u32 codec)
{
	return b ? ts_frame_kind(b->b, codec) : FRAME_REF;
}

__noinline __u32 pat_pmt_pid(struct ts_buf *b)
{
	return b ? psi_pat_pmt_pid(b->b) : PID_NONE;
}

__noinline __u32 pmt_video(struct ts_buf *b)
{
	return b ? psi_pmt_video(b->b) : 0;
}

/* Ones' complement addition of two partial sums (__wsum). */
static __always_inline __u32 csum_add32(__u32 a, __u32 b)
{
	a += b;
	return a + (a < b);
}

/* acc plus the change of a word from `from` to `to`, as bpf_csum_diff would add it, without a
 * helper call (it runs for every renumbered TS packet). */
static __always_inline __u32 csum_word_diff(__u32 from, __u32 to, __u32 acc)
{
	return csum_add32(csum_add32(acc, ~from), to);
}

/* How a checksum field's own bytes change when a replace helper accounts for a 16-bit field
 * going from `from` to `to`: by the negation of that difference. */
static __always_inline __u32 field_change(__u16 from, __u16 to)
{
	return ~csum_word_diff(from, to, 0);
}

/*
 * The edit works on the frame in place, with direct packet access: a helper call per TS packet
 * (load, store, checksum) cost more than the work (with return-thunk mitigations, each return
 * is a mispredicted branch). The writes do not tell skb->csum: apply_level does, from acc.
 */

/* The ones' complement sum of a TS packet, as bpf_csum_diff would add it. */
static __always_inline __u32 ts_sum(const __u8 *p)
{
	__u64 s = 0;

#pragma unroll
	for (int k = 0; k < TS_SIZE / 4; k++)
		s += ((const __u32 *)p)[k];
	s = (s & 0xffffffff) + (s >> 32);
	return csum_add32(s, s >> 32);
}

/* Copies a TS packet to its new place (never overlapping: places are whole packets apart). */
static __always_inline void ts_copy(__u8 *to, const __u8 *from)
{
#pragma unroll
	for (int k = 0; k < TS_SIZE / 8; k++)
		((__u64 *)to)[k] = ((const __u64 *)from)[k];
	((__u32 *)to)[TS_SIZE / 4 - 1] = ((const __u32 *)from)[TS_SIZE / 4 - 1];
}

/* A packet whose payload is dropped but which carries a PCR keeps only its adaptation field. */
static __always_inline void empty_keep_pcr(__u8 *p)
{
	p[1] &= ~0x40;                            /* no payload, so no unit start */
	p[3] = (p[3] & 0xcf) | 0x20;              /* adaptation field only */
	p[4] = TS_SIZE - 5;
	p[5] &= 0x90;                             /* discontinuity and PCR flags */
#pragma unroll
	for (int k = 3; k < TS_SIZE / 4; k++)     /* after the PCR (bytes 6-11): stuffing */
		((__u32 *)p)[k] = 0xffffffff;
}

/*
 * One TS packet of an edit: moves it to its place (e->w), cuts it out if its prio is below
 * e->cut (a PCR packet is emptied instead), renumbers a video continuity counter; e->acc sums
 * how the payload's bytes changed. A global function, so the verifier checks it once however
 * many packets a datagram holds.
 */
__noinline int edit_packet(struct __sk_buff *skb, struct dgram *d, struct edit *e, __u32 i)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	__u32 src, dst, hdr, new_hdr, w;
	__u8 *sp, *dp;
	__u16 prio;
	__u8 fl, cc;

	if (!d || !e)
		return -1;
	i &= TS_PER_DGRAM - 1;
	prio = d->prio[(i + e->virt) & (2 * TS_PER_DGRAM - 1)];
	w = e->w & (TS_PER_DGRAM - 1);
	cc = e->cc;
	fl = d->flags[i];
	if (fl & TSF_GONE)
		return 0;
	src = d->ts_off + (d->pos[i] & (TS_PER_DGRAM - 1)) * TS_SIZE;
	dst = d->ts_off + w * TS_SIZE;
	sp = data + (src & 0x3fff); /* bounded for the verifier */
	dp = data + (dst & 0x3fff);
	if ((void *)(sp + TS_SIZE) > end || (void *)(dp + TS_SIZE) > end)
		return -1;
	if (!(fl & TSF_VIDEO)) {
		/* Never dropped, never renumbered: only moved. */
		if (sp != dp)
			ts_copy(dp, sp);
		d->pos[i] = w;
		e->w = w + 1;
		return 0;
	}
	if (!(cc & CC_VALID)) /* the class's first video packet keeps its counter */
		cc = CC_VALID | ((d->cc[i] - ((fl & TSF_PAYLOAD) ? 1 : 0)) & 0x0f);
	/* The class's counter moves on at every packet with payload that the class keeps. */
	if (prio >= e->count && (fl & TSF_PAYLOAD) && !(fl & TSF_AFONLY))
		cc = CC_VALID | ((cc + 1) & 0x0f);
	e->cc = cc;
	if (prio < e->cut && !(fl & TSF_AFONLY)) {
		e->acc = csum_add32(e->acc, ~ts_sum(sp));
		/* An output waiting for a keyframe gets nothing of the video PID before it:
		 * its first packet there starts the counter. */
		if (!(fl & TSF_PCR) || e->waiting) {
			d->flags[i] = fl | TSF_GONE;
			return 0;
		}
		if (sp != dp)
			ts_copy(dp, sp);
		empty_keep_pcr(dp);
		dp[3] = (dp[3] & 0xf0) | (cc & 0x0f); /* no payload: the last counter */
		e->acc = csum_add32(e->acc, ts_sum(dp));
		d->flags[i] = fl | TSF_AFONLY;
		d->pos[i] = w;
		e->w = w + 1;
		return 0;
	}
	/* The new header is made in a register: reading back a word just written in part
	 * stalls the store forwarding. */
	hdr = *(__u32 *)sp;
	new_hdr = hdr;
	((__u8 *)&new_hdr)[3] = (((__u8 *)&hdr)[3] & 0xf0) | (cc & 0x0f);
	if (sp != dp)
		ts_copy(dp, sp);
	if (new_hdr != hdr) {
		*(__u32 *)dp = new_hdr;
		e->acc = csum_word_diff(hdr, new_hdr, e->acc);
	}
	d->pos[i] = w;
	e->w = w + 1;
	return 0;
}

/*
 * Edits the datagram: every TS packet through edit_packet, then shrinks the datagram and fixes
 * the IP and UDP lengths and checksums. Returns 0, or -1 on error.
 */
__noinline int apply_level(struct __sk_buff *skb, struct dgram *d, struct cast_flow *f,
			   struct edit *e)
{
	__u32 w, acc, removed, cut, count, untracked = 0;
	__u8 *ccp, cc;

	if (!d || !f || !e)
		return -1;
	cut = e->cut;
	count = e->count;
	ccp = &f->cc[e->class_id & (CAST_MAX_CLASS - 1)];
	/* Level 0 never renumbers: its numbering is the stream's own. */
	e->cc = e->waiting ? (count ? d->cc_start[e->class_id & (CAST_MAX_CLASS - 1)] : 0) : *ccp;
	e->w = 0;
	e->acc = 0;
	for (__u32 i = 0; i < TS_PER_DGRAM; i++) {
		if (i >= d->n_orig)
			break;
		if (edit_packet(skb, d, e, i))
			return -1;
	}
	w = e->w;
	acc = e->acc;
	cc = e->cc;
	/* A joining output numbers as its class would; the class's counter is the class's to
	 * keep, unless no member of the class numbered this datagram. */
	if (!e->waiting) {
		d->applied |= 1 << (e->class_id & (CAST_MAX_CLASS - 1));
		*ccp = cc;
	} else if (count && !(d->applied & (1 << (e->class_id & (CAST_MAX_CLASS - 1))))) {
		*ccp = cc;
	}
	d->level = cut;
	removed = d->n_ts - w;
	d->n_ts = w;
	if (removed) {
		__u32 cut_bytes = removed * TS_SIZE;
		__u16 old_len, new_len, old_udp, new_udp;

		/* The frame ends with the datagram: bytes after it (padding) would now be stale
		 * bytes of cut packets. */
		if (bpf_skb_change_tail(skb, d->ts_off + w * TS_SIZE, 0))
			return -1;
		if (!w && !(e->waiting && d->rtp))
			return 0; /* empty: sent only to keep a waiting output's RTP numbering (fan_one) */
		if (bpf_skb_load_bytes(skb, d->udp_off + 4, &old_udp, 2))
			return -1;
		new_udp = bpf_htons(bpf_ntohs(old_udp) - cut_bytes);
		/* The IP packet ends with the datagram too (whatever followed it inside). */
		if (d->ipv6) {
			if (bpf_skb_store_bytes(skb, d->l3_off + 4, &new_udp, 2, BPF_F_RECOMPUTE_CSUM))
				return -1;
		} else {
			if (bpf_skb_load_bytes(skb, d->l3_off + 2, &old_len, 2))
				return -1;
			new_len = bpf_htons(d->udp_off - d->l3_off + bpf_ntohs(new_udp));
			if (bpf_l3_csum_replace(skb, d->l3_off + 10, old_len, new_len, 2) ||
			    bpf_skb_store_bytes(skb, d->l3_off + 2, &new_len, 2, BPF_F_RECOMPUTE_CSUM))
				return -1;
			untracked = csum_add32(untracked, field_change(old_len, new_len));
		}
		if (d->csum) {
			/* The length is in the pseudo-header and in the UDP header. */
			if (bpf_l4_csum_replace(skb, d->udp_off + 6, old_udp, new_udp,
						BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 2) ||
			    bpf_l4_csum_replace(skb, d->udp_off + 6, old_udp, new_udp,
						BPF_F_MARK_MANGLED_0 | 2))
				return -1;
			untracked = csum_add32(untracked, field_change(old_udp, new_udp));
		}
		if (bpf_skb_store_bytes(skb, d->udp_off + 4, &new_udp, 2, BPF_F_RECOMPUTE_CSUM))
			return -1;
	}
	/* edit_packet wrote the payload untracked, which changed its sum by acc; the UDP
	 * checksum field, where there is one, changes by the opposite: the two cancel. */
	if (d->csum && acc) {
		if (bpf_l4_csum_replace(skb, d->udp_off + 6, 0, acc, BPF_F_MARK_MANGLED_0))
			return -1;
	} else if (acc) {
		untracked = csum_add32(untracked, acc);
	}
	/* With CHECKSUM_COMPLETE (some NICs, a decapsulated tunnel), skb->csum must also follow
	 * the untracked writes: the payload's, and the checksum fields, which the replace helpers
	 * write without telling it (the stores above tell it). Receivers drop a datagram whose
	 * skb->csum is wrong as a checksum error. Other frames: -ENOTSUPP, nothing to do. */
	if (untracked)
		bpf_csum_update(skb, untracked);
	return 0;
}

/* Puts the frame back as it arrived (for an output that needs less cut than the last one), from
 * the copy that classify made of every datagram it left editable, the only ones edited. */
static __always_inline int restore(struct __sk_buff *skb, struct dgram *d, struct scratch *sc)
{
	__u32 len = d->len, l2 = d->l3_off & 0xff;

	if (!d->editable || len >= SNAP_MAX || len < 1)
		return -1;
	opaque(len); /* clang would drop this mask, which only the verifier needs */
	len &= SNAP_MAX - 1;
	/* The link header is outside skb->csum at ingress: put it back first, untracked, so
	 * that the tracked write of the whole frame changes only the IP packet's sum. */
	if (l2 < ETH_HLEN || l2 >= len || bpf_skb_change_tail(skb, len, 0) ||
	    bpf_skb_store_bytes(skb, 0, sc->snap, l2, 0) ||
	    bpf_skb_store_bytes(skb, 0, sc->snap, len, BPF_F_RECOMPUTE_CSUM))
		return -1;
	for (int i = 0; i < TS_PER_DGRAM; i++) {
		d->flags[i] = d->flags0[i];
		d->pos[i] = i;
	}
	d->n_ts = d->n_orig;
	d->level = 0;
	d->cur_daddr = d->daddr;
	d->cur_dport = d->dport;
	d->cur_seq = d->rtp_seq;
	__builtin_memcpy(d->cur_dmac, d->dmac, 6);
	return 0;
}

/*
 * How to store a change to the UDP datagram outside the edit pass. With a UDP checksum, the
 * checksum field is replaced too (untracked by the helper), and the two changes cancel in
 * skb->csum: untracked. Without one, skb->csum (CHECKSUM_COMPLETE) must follow the store.
 */
static __always_inline __u64 csum_track(const struct dgram *d)
{
	return d->csum ? 0 : BPF_F_RECOMPUTE_CSUM;
}

/* Numbers the RTP sequence as the output's class sends it: without the datagrams it emptied. */
static __always_inline int set_rtp_seq(struct __sk_buff *skb, struct dgram *d, __u16 seq)
{
	__u16 from, to;

	if (seq == d->cur_seq)
		return 0;
	from = bpf_htons(d->cur_seq);
	to = bpf_htons(seq);
	if (d->csum &&
	    bpf_l4_csum_replace(skb, d->udp_off + 6, from, to, BPF_F_MARK_MANGLED_0 | 2))
		return -1;
	if (bpf_skb_store_bytes(skb, d->udp_off + sizeof(struct udphdr) + 2, &to, 2, csum_track(d)))
		return -1;
	d->cur_seq = seq;
	return 0;
}

static __always_inline int same_mac(const __u8 *a, const __u8 *b)
{
	return *(__u32 *)a == *(__u32 *)b && *(__u16 *)(a + 4) == *(__u16 *)(b + 4);
}

/* Rewrites the destination for a NAT output, or back to the original for the others. */
static __always_inline int set_destination(struct __sk_buff *skb, struct dgram *d, struct cast_out *o)
{
	__be32 daddr = d->daddr;
	__be16 dport = d->dport;
	__u8 *dmac = d->dmac;

	if (d->ipv6)
		return 0; /* NAT is IPv4 only: IPv6 copies keep their headers */
	if (o->flags & CAST_OUT_NAT) {
		daddr = o->nat_daddr;
		dport = o->nat_dport;
		dmac = o->nat_dmac;
	}
	if (!same_mac(d->cur_dmac, dmac)) {
		if (bpf_skb_store_bytes(skb, 0, dmac, 6, 0))
			return -1;
		__builtin_memcpy(d->cur_dmac, dmac, 6);
	}
	if (d->cur_daddr != daddr) {
		if (d->csum &&
		    bpf_l4_csum_replace(skb, d->udp_off + 6, d->cur_daddr, daddr,
					BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4))
			return -1;
		if (bpf_l3_csum_replace(skb, d->l3_off + 10, d->cur_daddr, daddr, 4) ||
		    bpf_skb_store_bytes(skb, d->l3_off + 16, &daddr, 4, 0))
			return -1;
		d->cur_daddr = daddr;
	}
	if (d->cur_dport != dport) {
		if (d->csum &&
		    bpf_l4_csum_replace(skb, d->udp_off + 6, d->cur_dport, dport, BPF_F_MARK_MANGLED_0 | 2))
			return -1;
		if (bpf_skb_store_bytes(skb, d->udp_off + 2, &dport, 2, csum_track(d)))
			return -1;
		d->cur_dport = dport;
	}
	return 0;
}

/*
 * Copies to outputs without NAPI queue on this CPU's input backlog, which nothing drains while
 * this program runs: once it is full, every further copy of the datagram is refused (NET_XMIT_DROP)
 * after the work of making it. Two refusals in a row mean "full": the rest of the datagram's
 * copies are not made, so an overloaded cast spends its time on copies that arrive. A refusal
 * followed by a success was the output's own (its peer is down, say): that output is marked
 * failing and its refusals no longer count.
 */
static __always_inline void copy_sent(struct dgram *d, struct cast_ostat *st, __u32 slot, long err)
{
	if (!err) {
		if (d->refused) {
			struct cast_ostat *prev = bpf_map_lookup_elem(&cast_ostats, &d->refused_slot);

			if (prev)
				prev->failing = 1;
		}
		d->refused = 0;
		if (st)
			st->failing = 0;
		return;
	}
	if (err != NET_XMIT_DROP || (st && st->failing))
		return;
	if (++d->refused >= 2)
		d->full = 1; /* counted per flow by the caller */
	else
		d->refused_slot = slot;
}

/* Adds what one datagram did for an output to its counters: `bytes` 0 if it sent nothing. */
static __always_inline void add(struct cast_ostat *st, struct dgram *d, __u32 sent, __u32 bytes,
				__u32 errors)
{
	if (!st)
		return;
	if (!d->full) { /* a copy not made has its frames neither sent nor dropped by the policy */
		st->frames_sent += sent;
		st->frames_dropped += d->n_frames - sent;
	}
	if (bytes) {
		st->packets++;
		st->bytes += bytes;
	}
	st->clone_errors += errors;
}

/* The members of a hub got what the hub got: they are the n entries just before it. */
__noinline int add_members(struct dgram *d, __u32 n, __u32 sent, __u32 bytes, __u32 errors)
{
	struct cast_table *tab;

	if (!d)
		return 0;
	tab = &cast_tabs[d->tab & (CAST_TABLES - 1)];
	for (__u32 k = 0; k < CAST_MAX_OUT; k++) {
		__u32 i = d->idx - 1 - k, slot;

		if (k >= n || k >= d->idx || i >= CAST_TABLE_LEN)
			break;
		slot = tab->out[i].slot;
		add(bpf_map_lookup_elem(&cast_ostats, &slot), d, sent, bytes, errors);
	}
	return 0;
}

static __always_inline void account(struct cast_out *o, struct cast_ostat *st, struct dgram *d,
				    __u32 sent, __u32 bytes, __u32 errors)
{
	if (o->flags & CAST_OUT_HUB)
		add_members(d, o->n_members, sent, bytes, errors);
	else
		add(st, d, sent, bytes, errors);
}

/*
 * The level of a capped output's frames other than keyframes, from its use of its budget (in
 * 1/1024). Non-reference frames: the rate of the last CAP_RECENT slices steers the share dropped,
 * to keep the output a little below its cap, and `room` less before a keyframe. Reference frames,
 * whose loss ends the GOP, go only when the last second has used the cap.
 */
#define CAP_RECENT 8       /* 8 x 33.6 ms */
#define CAP_NONREF 717     /* recent rate 0.7 of the cap: non-reference frames start to go, */
#define CAP_NONREF_ALL 870 /* 0.85: all of them */
#define CAP_REF 922        /* last second 0.9 of the cap: no non-reference frame */
#define CAP_KEY 1014       /* last second 0.99: no reference frame */

static __always_inline __u32 cap_level(__u64 used, __u64 recent, __u64 budget, __u64 room)
{
	__u64 r;

	if (!budget || used * 1024 / budget >= CAP_KEY)
		return LEVEL_KEY;
	budget -= room;
	if (used * 1024 / budget >= CAP_REF)
		return LEVEL_REF;
	/* The recent rate, as a share of the cap (a slice is 1/32 of 2^30 ns, about 1/32 s). */
	r = recent * 1024 * (1 << (30 - CAP_SLICE_SHIFT)) / (budget * CAP_RECENT);
	if (r < CAP_NONREF)
		return LEVEL_ALL;
	if (r >= CAP_NONREF_ALL)
		return LEVEL_REF;
	return (r - CAP_NONREF) * 256 / (CAP_NONREF_ALL - CAP_NONREF);
}

/* One TS packet of cap_decide's walk (a global function: verified once). */
__noinline int cap_packet(struct dgram *d, __u32 i)
{
	__u32 fl, p, vp;

	if (!d)
		return -1;
	i &= TS_PER_DGRAM - 1;
	fl = d->flags[i];
	p = d->prio[i];
	if (!(fl & TSF_VIDEO)) {
		d->cw.kept++; /* never dropped */
		return 0;
	}
	if (fl & TSF_START) {
		__u32 l;

		if (d->cw.in_key)
			d->cw.key_ts = d->cw.frame_ts;
		d->cw.in_key = p >= PRIO_KEY;
		d->cw.frame_ts = 0;
		if (p >= PRIO_KEY) {
			/* A new GOP: all of it may fit again, or none of it. */
			d->cw.key_seen = 1;
			d->cw.floor = d->cw.key_fits ? LEVEL_ALL : LEVEL_NOVIDEO;
			l = d->cw.key_fits ? d->cw.level : LEVEL_NOVIDEO;
			d->cw.keep = d->cw.key_fits;
		} else {
			l = d->cw.level > d->cw.floor ? d->cw.level : d->cw.floor;
			d->cw.keep = p >= l;
			if (!d->cw.keep && p >= PRIO_REF && d->cw.floor < LEVEL_KEY)
				d->cw.floor = LEVEL_KEY; /* the GOP's later frames lack their reference */
		}
		d->cw.chosen = l;
	}
	d->cw.frame_ts++;
	vp = d->cw.keep ? (p >= PRIO_KEY ? VP_KEY : VP_KEEP) : VP_DROP;
	d->prio[(VIRT + i) & (2 * TS_PER_DGRAM - 1)] = vp;
	if (fl & TSF_START) /* the frame's fate, as its first packet's */
		d->frame_prio[(VIRT + d->cw.n++) & (2 * TS_PER_DGRAM - 1)] = vp;
	if (vp || (fl & (TSF_PCR | TSF_AFONLY)))
		d->cw.kept++; /* a PCR packet is emptied, not cut */
	return 0;
}

/*
 * A capped output's choice for this datagram (it is the only output of its class): at
 * each frame start, the level from the output's budget, never below the floor that a dropped
 * reference frame (keyframes only) or keyframe (no video) leaves until the next keyframe; the
 * frame is kept if its priority reaches the level, and its later packets share its fate. The
 * choice goes into the upper halves of d->prio and d->frame_prio; the bytes kept are charged.
 */
__noinline int cap_decide(struct dgram *d, struct cast_flow *f, struct cast_out *o)
{
	struct cast_cap *cap;
	__u32 slot, class, bit, bytes;
	__u64 now_ns, now, used = 0, recent = 0, budget, room;

	if (!d || !f || !o)
		return -1;
	slot = o->slot;
	cap = bpf_map_lookup_elem(&cast_caps, &slot);
	if (!cap)
		return -1;
	now_ns = bpf_ktime_get_ns();
	now = now_ns >> CAP_SLICE_SHIFT;
	if (now > cap->slice) {
		/* The slices since the last write start empty. */
		for (__u32 k = 0; k < CAP_SLICES; k++) {
			if (cap->slice + 1 + k > now)
				break;
			cap->bytes[(cap->slice + 1 + k) & (CAP_SLICES - 1)] = 0;
		}
		cap->slice = now;
	}
	for (__u32 k = 0; k <= CAP_WINDOW; k++) {
		used += cap->bytes[(now - k) & (CAP_SLICES - 1)];
		if (k + 1 == CAP_RECENT)
			recent = used;
	}
	class = o->class_id & (CAST_MAX_CLASS - 1);
	bit = 1 << class;
	budget = o->cap_bps / 8;
	d->cw.frame_ts = f->cap_frame_ts[class];
	d->cw.key_ts = f->cap_key_ts[class];
	d->cw.key_fits = used + d->cw.key_ts * TS_SIZE < budget;
	/* Within a second of the next keyframe, the frames before it leave room for one as big
	 * as the last (unless it would take half the budget: then it rarely fits anyway). */
	room = d->cw.key_ts * TS_SIZE;
	if (!f->cap_gop_ns || now_ns + (1ULL << 30) < f->cap_key_ns + f->cap_gop_ns || room * 2 >= budget)
		room = 0;
	d->cw.level = cap_level(used, recent, budget, room);
	d->cw.floor = f->cap_floor[class];
	d->cw.chosen = cap->level;
	d->cw.keep = !!(f->cap_keep & bit);
	d->cw.in_key = !!(f->cap_in_key & bit);
	d->cw.key_seen = 0;
	d->cw.n = 0;
	d->cw.kept = 0;
	for (__u32 i = 0; i < TS_PER_DGRAM; i++) {
		if (i >= d->n_orig)
			break;
		if (cap_packet(d, i))
			return -1;
	}
	f->cap_keep = d->cw.keep ? f->cap_keep | bit : f->cap_keep & ~bit;
	f->cap_in_key = d->cw.in_key ? f->cap_in_key | bit : f->cap_in_key & ~bit;
	f->cap_floor[class] = d->cw.floor;
	f->cap_frame_ts[class] = d->cw.frame_ts;
	f->cap_key_ts[class] = d->cw.key_ts;
	/* The GOP's length, once per keyframe whichever capped class sees it first (frames are
	 * more than 10 ms apart). */
	if (d->cw.key_seen && now_ns - f->cap_key_ns > 10000000) {
		if (f->cap_key_ns)
			f->cap_gop_ns = now_ns - f->cap_key_ns;
		f->cap_key_ns = now_ns;
	}
	cap->level = d->cw.chosen;
	bytes = d->cw.kept ? d->cw.kept * TS_SIZE + d->ts_off - d->udp_off - sizeof(struct udphdr) : 0;
	__sync_fetch_and_add(&cap->bytes[now & (CAP_SLICES - 1)], bytes);
	return 0;
}

/*
 * Sends the datagram to one output. Phase 1 (d->joining == 0) serves the outputs that take the
 * flow's video already, in level order, editing in place. Phase 2 serves the outputs that wait
 * for a keyframe, each from the restored original. Returns the verdict for the last output,
 * else FAN_CONTINUE. Capped outputs are served in phase 2 too: their level changes per frame.
 */
__noinline int fan_one(struct __sk_buff *skb, struct cast_out *o, struct dgram *d,
		       struct scratch *sc, struct cast_flow *f)
{
	struct cast_ostat *st;
	struct edit *e;
	__u32 slot, waiting, capped, class, skip, fill, sent, hub, flags;
	long err;

	if (!o || !d || !sc || !f)
		return TC_ACT_SHOT;
	waiting = o->gen_added > d->key_gen_prev;
	capped = o->level == LEVEL_CAP;
	if ((waiting || capped) != d->joining)
		return FAN_CONTINUE; /* served in the other phase */
	class = o->class_id & (CAST_MAX_CLASS - 1);
	e = &sc->e; /* in the scratch: the call chain's stack is near the verifier's limit */
	e->count = o->level;
	e->cut = o->level;
	e->class_id = class;
	e->waiting = waiting; /* apply_level sets the running state */
	e->virt = 0;
	if (capped) {
		/* A class of its own (table.rs): its choice is made for it alone. */
		if (d->editable && cap_decide(d, f, o))
			return TC_ACT_SHOT;
		e->virt = VIRT;
		e->count = VP_KEEP;
		e->cut = VP_KEEP;
	}
	hub = o->flags & CAST_OUT_HUB;
	slot = o->slot;
	st = hub ? NULL : bpf_map_lookup_elem(&cast_ostats, &slot);
	if (d->full) {
		/* Lost to this output like a refused copy, without the work of editing or making it. */
		account(o, st, d, 0, skb->len, 1);
		return d->last ? TC_ACT_SHOT : FAN_CONTINUE;
	}
	if (waiting) /* no video until the flow's next keyframe: from its first packet on */
		e->cut = o->gen_added <= f->key_gen ? (capped ? VP_KEY : PRIO_KEY) :
						     (capped ? VP_NONE : LEVEL_NOVIDEO);
	/* Phase 2 edits the original. */
	if (d->joining && d->editable && d->level && restore(skb, d, sc))
		return TC_ACT_SHOT;
	if (d->editable && e->cut > d->level) {
		if (apply_level(skb, d, f, e))
			return TC_ACT_SHOT; /* the datagram is in an unknown state: send no more */
		d->frames_sent = 0;
		for (__u32 k = 0; k < TS_PER_DGRAM; k++) {
			if (k >= d->n_frames)
				break;
			if (d->frame_prio[(k + e->virt) & (2 * TS_PER_DGRAM - 1)] >= e->cut)
				d->frames_sent++;
		}
	}
	skip = !d->editable && d->n_orig && e->cut;
	sent = skip ? 0 : d->frames_sent;
	/* An output waiting for a keyframe numbers RTP as its class does, which counts only the
	 * datagrams the class emptied: one the class sent (or any, while no member sends) reaches
	 * it too, emptied down to its RTP header if need be, so that its receiver sees no gap. */
	fill = d->rtp && e->waiting && d->editable && !(d->skipped & (1 << class));
	if ((!d->n_ts && !fill) || skip) {
		/* Emptied for this class: counted once, so its RTP receivers see no gap. */
		if (d->rtp && !e->waiting && !(d->skipped & (1 << class))) {
			f->rtp_skip[class]++;
			d->skipped |= 1 << class;
		}
		account(o, st, d, sent, 0, 0);
		return d->last ? TC_ACT_SHOT : FAN_CONTINUE;
	}
	if (set_destination(skb, d, o))
		return TC_ACT_SHOT;
	if (d->rtp && set_rtp_seq(skb, d, d->rtp_seq - f->rtp_skip[class]))
		return TC_ACT_SHOT;
	/* A hub takes its copy at ingress, where its XDP program broadcasts it. */
	flags = hub ? BPF_F_INGRESS : 0;
	if (d->last) {
		account(o, st, d, sent, skb->len, 0);
		/* The original goes to the hub end's side in the hub namespace, which takes it in
		 * this same pass through the input path: no round through the CPU's backlog. */
		if (hub)
			return bpf_redirect_peer(o->ifindex, 0);
		return bpf_redirect(o->ifindex, 0);
	}
	err = bpf_clone_redirect(skb, o->ifindex, flags);
	if (hub && !err && o->n_queued) {
		struct cast_admission *a = admission();

		if (a)
			a->pending += o->n_queued; /* the hub takes them off when it broadcasts */
	}
	account(o, st, d, sent, skb->len, err != 0);
	copy_sent(d, st, hub ? CAST_MAX_OUT : slot, err);
	return FAN_CONTINUE;
}

/*
 * One phase of the fan-out (d->joining): every output of the table in order, but the members
 * of hubs (their hub entry, which follows them, sends and counts). Returns the verdict of the
 * output that took the original, else FAN_CONTINUE.
 */
__noinline int fan_out(struct __sk_buff *skb, struct cast_table *tab, struct dgram *d,
		       struct scratch *sc, struct cast_flow *f)
{
	__u32 n;

	if (!tab || !d)
		return TC_ACT_SHOT;
	n = tab->n_out;
	for (__u32 i = 0; i < CAST_TABLE_LEN; i++) {
		int verdict;

		if (i >= n)
			break;
		if (tab->out[i].flags & CAST_OUT_VIA_HUB)
			continue;
		d->idx = i;
		/* Without a phase 2, the last output takes the original. */
		d->last = !d->slow && i + 1 == n;
		verdict = fan_one(skb, &tab->out[i], d, sc, f);
		if (verdict != FAN_CONTINUE)
			return verdict;
	}
	return FAN_CONTINUE;
}

static __always_inline int port_wanted(__be16 dport)
{
	if (!cfg_nports)
		return 1;
#pragma unroll
	for (int i = 0; i < CAST_MAX_PORTS; i++)
		if (i < cfg_nports && cfg_ports[i] == dport)
			return 1;
	return 0;
}

/* The flow's state, created on its first datagram (the initial value is built in the scratch:
 * the call chain's stack is near the verifier's limit). */
static __always_inline struct cast_flow *flow_of(struct flow_key *key, struct scratch *sc)
{
	struct cast_flow *f = bpf_map_lookup_elem(&cast_flows, key), *init = &sc->flow_init;

	if (f)
		return f;
	__builtin_memset(init, 0, sizeof(*init));
	init->video_pid = cfg_video_pid ? cfg_video_pid : PID_NONE;
	init->pmt_pid = PID_NONE;
	init->codec = cfg_codec;
	init->prio = PRIO_KEEP;
	bpf_map_update_elem(&cast_flows, key, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(&cast_flows, key);
}

/* Learns the flow's PMT PID from the PAT, and its video PID and codec from the PMT. Reads the
 * TS packet in place, like the frame classifier: PAT and PMT come several times a second. */
static __always_inline void learn_psi(struct ts_buf *h, __u16 pid, struct cast_flow *f)
{
	if (pid == PID_PAT) {
		__u32 pmt = pat_pmt_pid(h);

		if (pmt != PID_NONE)
			f->pmt_pid = pmt;
		return;
	}
	__u32 v = pmt_video(h);

	if (!v || (v & 0x1fff) == PID_NONE)
		return; /* no video, or on the null PID (which would make every null packet video) */
	if (!cfg_video_pid) {
		f->video_pid = v & 0x1fff;
		f->codec = v >> 16;
	} else if (!cfg_codec && (v & 0x1fff) == cfg_video_pid) {
		f->codec = v >> 16;
	}
}

/*
 * Classifies every TS packet of the datagram: its flags, and on the video PID the priority of
 * the frame it belongs to (a new frame's kind from its first slice); PAT and PMT teach the flow
 * its video PID. Leaves the datagram whole (editable = 0) if it is not TS after all.
 *
 * It reads a copy of the frame in the scratch, not the frame: one copy pulls the frame's lines
 * into this CPU's cache at once, where reads of the TS headers in place, 188 bytes apart, wait
 * for one line after another that the sender's core has just written
 * (bench/results/ab-copy-walk/). The copy is also the snapshot that joining outputs are served
 * from (restore).
 */
static __always_inline void classify(struct __sk_buff *skb, struct dgram *d, struct cast_flow *f,
				     __u32 gen, struct scratch *sc)
{
	__u32 len = d->len;

	d->editable = d->n_orig && d->n_orig <= TS_PER_DGRAM && !skb->gso_size && len > 0 &&
		      len < SNAP_MAX && !bpf_skb_load_bytes(skb, 0, sc->snap, len & (SNAP_MAX - 1));
	for (__u32 i = 0; i < TS_PER_DGRAM && d->editable; i++) {
		__u32 off = d->ts_off + i * TS_SIZE;
		__u8 *h;
		__u16 pid;
		__u8 fl = 0;

		if (i >= d->n_orig)
			break;
		if (off + TS_SIZE > len) {
			d->editable = 0; /* cannot happen (parse) */
			break;
		}
		opaque(off); /* clang would drop this check, which only the verifier needs */
		if (off > SNAP_MAX - TS_SIZE) {
			d->editable = 0;
			break;
		}
		h = sc->snap + off;
		if (h[0] != TS_SYNC) {
			d->editable = 0; /* not TS after all: cast whole */
			break;
		}
		pid = ts_pid(h);
		d->cc[i] = h[3] & 0x0f;
		d->pos[i] = i;
		if (h[3] & 0x10)
			fl |= TSF_PAYLOAD;
		else
			fl |= TSF_AFONLY;
		if ((h[3] & 0x20) && h[4] >= 7 && (h[5] & 0x10))
			fl |= TSF_PCR;
		if (pid == f->video_pid && pid != PID_NONE) {
			fl |= TSF_VIDEO;
			if ((h[1] & 0x40) && (h[3] & 0x10)) { /* a new frame starts here */
				__u32 kind = FRAME_REF;

				fl |= TSF_START;
				kind = frame_kind_of((struct ts_buf *)h, f->codec);
				f->frames[kind & 3]++;
				if (kind == FRAME_KEY) {
					f->prio = PRIO_KEY;
					f->key_gen = gen; /* outputs added before now may join */
				} else if (kind == FRAME_NONREF) {
					f->prio = nonref_prio(f->nonref_seq++);
				} else {
					f->prio = PRIO_REF;
				}
				if (d->n_frames < TS_PER_DGRAM)
					d->frame_prio[d->n_frames & (TS_PER_DGRAM - 1)] = f->prio;
				d->n_frames++;
				d->frames_sent = d->n_frames;
			}
			d->prio[i] = f->prio;
		} else {
			d->prio[i] = PRIO_KEEP;
			if ((h[1] & 0x40) && (pid == PID_PAT || (pid == f->pmt_pid && pid != PID_NONE)))
				learn_psi((struct ts_buf *)h, pid, f);
		}
		d->flags[i] = fl;
		d->flags0[i] = fl;
	}
	if (!d->editable)
		f->unedited++; /* not TS (--port), too many TS packets, GSO, or a sync byte lost */
	d->n_ts = d->editable ? d->n_orig : 1; /* a datagram cast whole is never empty */
}

static __always_inline int fanned_out(struct dgram *d, struct cast_flow *f, int verdict)
{
	if (d->full)
		f->overload++;
	return verdict;
}

/*
 * Whether the CPU's backlog has room for the datagram's copies that queue there. Refused, it
 * goes to no output and costs nothing more: it is not classified (the frame whose start it
 * carries is lost to every output anyway), edited or copied, and it counts once for all the
 * outputs (counters.rs adds it to each). The classes that renumber continuity counters start
 * again from the stream's own at their next packet, so that their receivers see the loss as
 * the stream's receivers do (a jump, but for 1 in 16).
 */
static __always_inline int admitted(struct __sk_buff *skb, struct cast_table *tab, struct cast_flow *f)
{
	struct cast_admission *a = admission();

	if (!a || backlog_admits(a, tab->backlog_entries, cfg_rq_to_softnet))
		return 1;
	a->refused++;
	a->refused_bytes += skb->len;
	f->overload++;
	for (__u32 k = 0; k < CAST_MAX_CLASS; k++)
		f->cc[k] &= ~CC_VALID;
	return 0;
}

/* What parse() learns of a datagram before anything is looked up. */
struct parsed {
	void *data;             /* the frame, linear */
	__u32 l3_off;
	__u32 udp_off;
	__u32 ts_off;           /* the first TS packet, past UDP and RTP */
	__be32 daddr;           /* IPv4 */
	__be16 dport;
	__u16 rtp_seq;
	__u8 dmac[6];
	__u8 n_orig;            /* TS packets (0: not MPEG-TS) */
	__u8 ipv6;
	__u8 csum;
	__u8 rtp;
};

/* Ethernet/VLAN, IPv4/IPv6, UDP to a cast port, RTP: 1 for a datagram the cast takes (MPEG-TS,
 * or any UDP to a port given with --port), with its flow's key; 0 for everything else, which
 * pays for nothing more. */
static __always_inline int parse(struct __sk_buff *skb, struct parsed *p, struct flow_key *key)
{
	struct cursor c;
	struct udphdr *udp;
	__u32 payload, udp_len, l3_end;
	__u16 proto;
	__u8 *rtp;

	p->data = skb_data(skb);
	p->daddr = 0;
	p->ipv6 = 0;
	p->rtp = 0;
	p->rtp_seq = 0;
	p->n_orig = 0;
	c.pos = p->data;
	c.end = skb_data_end(skb);
	if (c.pos + ETH_HLEN > c.end)
		return 0;
	__builtin_memcpy(p->dmac, p->data, 6);
	proto = parse_eth(&c);
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = parse_ipv4(&c);

		if (!ip)
			return 0;
		p->l3_off = (void *)ip - p->data;
		l3_end = p->l3_off + bpf_ntohs(ip->tot_len);
		p->daddr = ip->daddr;
		__builtin_memcpy(key->saddr, &ip->saddr, 4);
		__builtin_memcpy(key->daddr, &ip->daddr, 4);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = parse_ipv6(&c);

		if (!ip6)
			return 0;
		p->l3_off = (void *)ip6 - p->data;
		l3_end = p->l3_off + sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		p->ipv6 = 1;
		__builtin_memcpy(key->saddr, &ip6->saddr, 16);
		__builtin_memcpy(key->daddr, &ip6->daddr, 16);
		key->ipv6 = 1;
	} else {
		return 0;
	}
	udp = parse_udp(&c);
	if (!udp || !port_wanted(udp->dest))
		return 0;
	p->udp_off = (void *)udp - p->data;
	p->csum = p->ipv6 || udp->check;
	p->dport = udp->dest;
	key->sport = udp->source;
	key->dport = udp->dest;
	udp_len = bpf_ntohs(udp->len);
	/* Lengths that disagree with the frame: no datagram to cast, whatever the port (the host's
	 * stack drops it). Ethernet padding after the IP packet is fine. */
	if (l3_end > skb->len || udp_len < sizeof(struct udphdr) || p->udp_off + udp_len > l3_end)
		return 0;
	/* A candidate: its RTP header is read and its TS packets are edited in place (classify
	 * reads a copy), so make a paged frame linear (only UDP to a cast port pays for this,
	 * not everything else on the interface). */
	if (c.end - p->data < skb->len) {
		if (bpf_skb_pull_data(skb, skb->len))
			return 0;
		p->data = skb_data(skb);
		c.end = skb_data_end(skb);
		c.pos = p->data + (p->udp_off & 0x3ff) + sizeof(struct udphdr);
	}

	rtp = c.pos;
	skip_rtp(&c, udp_len - sizeof(struct udphdr));
	if (c.pos != (void *)rtp && (void *)(rtp + 4) <= c.end) {
		p->rtp = 1;
		p->rtp_seq = rtp[2] << 8 | rtp[3];
	}
	p->ts_off = c.pos - p->data;
	payload = p->udp_off + udp_len > p->ts_off ? p->udp_off + udp_len - p->ts_off : 0;
	if (p->udp_off + udp_len <= skb->len && payload && payload % TS_SIZE == 0 &&
	    c.pos + 1 <= c.end && *(__u8 *)c.pos == TS_SYNC)
		p->n_orig = payload / TS_SIZE > 255 ? 255 : payload / TS_SIZE;
	else if (!cfg_nports)
		return 0; /* not MPEG-TS: not ours */
	return 1;
}

/* The datagram's state, as received, in the per-CPU scratch. */
static __always_inline void dgram_start(struct dgram *d, const struct parsed *p, __u32 len)
{
	__builtin_memset(d, 0, __builtin_offsetof(struct dgram, prio));
	d->l3_off = p->l3_off;
	d->udp_off = p->udp_off;
	d->ts_off = p->ts_off;
	d->n_orig = p->n_orig;
	d->ipv6 = p->ipv6;
	d->csum = p->csum;
	d->daddr = p->daddr;
	d->dport = p->dport;
	__builtin_memcpy(d->dmac, p->dmac, 6);
	d->cur_daddr = d->daddr;
	d->cur_dport = d->dport;
	__builtin_memcpy(d->cur_dmac, d->dmac, 6);
	d->len = len;
	d->rtp = p->rtp;
	d->rtp_seq = p->rtp_seq;
	d->cur_seq = p->rtp_seq;
}

/* Attached at tc (TCX or clsact) ingress of the interface the cameras' streams arrive on:
 * parse, classify every TS packet, fan out. */
SEC("tc")
int ecast_cast_in(struct __sk_buff *skb)
{
	struct flow_key key = {};
	struct parsed p;
	struct cast_table *tab;
	struct cast_flow *f;
	struct scratch *sc;
	struct dgram *dp;
	__u32 zero = 0;
	int verdict;

	if (!parse(skb, &p, &key))
		return TC_ACT_OK;
	sc = bpf_map_lookup_elem(&cast_scratch, &zero);
	if (!sc)
		return TC_ACT_OK;
	dp = &sc->d;
	dgram_start(dp, &p, skb->len);

	f = flow_of(&key, sc);
	if (!f)
		return TC_ACT_OK;
	dp->tab = cast_active & (CAST_TABLES - 1);
	tab = &cast_tabs[dp->tab];
	dp->key_gen_prev = f->key_gen;
	f->packets++;
	f->bytes += skb->len;

	/* Copies that queue on the CPU's backlog (none with NAPI receivers: no read of the queue)
	 * need room there, all of them. */
	if (tab->backlog_entries && !admitted(skb, tab, f))
		return TC_ACT_SHOT;
	classify(skb, dp, f, tab->gen, sc);
	if (!tab->n_out)
		return TC_ACT_SHOT; /* a cast flow with no output goes nowhere */
	dp->slow = dp->key_gen_prev < tab->max_gen_added || tab->n_cap;
	if (dp->slow) {
		/* Some output waits for this flow's next keyframe, or is capped: phase 1 clones
		 * only, phase 2 serves those from the original, kept in the snapshot (classify). */
		__builtin_memcpy(dp->cc_start, f->cc, CAST_MAX_CLASS);
	}
	verdict = fan_out(skb, tab, dp, sc, f);
	if (verdict == FAN_CONTINUE && dp->slow) {
		dp->joining = 1;
		verdict = fan_out(skb, tab, dp, sc, f);
	}
	return fanned_out(dp, f, verdict == FAN_CONTINUE ? TC_ACT_SHOT : verdict);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
