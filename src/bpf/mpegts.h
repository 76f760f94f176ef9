/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * MPEG-TS rules: PAT and PMT parsing and the frame classifier. Plain C on one 188-byte TS
 * packet, with no BPF helper, so the same definitions can be compiled for the host too.
 * Every index is checked against TS_SIZE in a way the verifier can follow.
 */
#ifndef EBPF_CAST_MPEGTS_H
#define EBPF_CAST_MPEGTS_H

#define TS_SIZE 188
#define TS_SYNC 0x47
#define STREAM_TYPE_H264 0x1b
#define STREAM_TYPE_H265 0x24

enum ts_pid {
	PID_PAT = 0x0000,
	PID_NONE = 0x1fff, /* the null PID: "none" wherever a PID is not known */
};

enum frame_kind {
	FRAME_NONE = 0,    /* no frame seen yet */
	FRAME_KEY = 1,     /* random access picture (IDR, CRA, BLA) or RAI=1 */
	FRAME_REF = 2,     /* reference picture, or slice header not found */
	FRAME_NONREF = 3,  /* disposable: nal_ref_idc 0 (H.264), sub-layer non-ref (H.265) */
};

enum codec {
	CODEC_UNKNOWN = 0,
	CODEC_H264 = 1,    /* PMT stream_type 0x1B */
	CODEC_H265 = 2,    /* PMT stream_type 0x24 */
};

/* Never read: anchors these enums in the cast program's BTF, so that Rust uses the generated
 * types (cast.bpf.c's `ts_abi`). */
struct ts_abi {
	enum ts_pid pid;
	enum frame_kind kind;
	enum codec codec;
};

/* Hides a value from the compiler so that the bounds check after it is kept as written
 * (clang may otherwise drop a check it proved redundant, and the verifier cannot). */
#define opaque(v) asm volatile("" : "+r"(v))

struct ts_buf {
	__u8 b[TS_SIZE];
};

static inline __u16 ts_pid(const __u8 *p)
{
	return ((__u16)(p[1] & 0x1f) << 8) | p[2];
}

/* Offset of the payload of a TS packet (after the adaptation field), or TS_SIZE if none. */
static inline __u64 ts_payload_off(const __u8 *p)
{
	__u8 afc = (p[3] >> 4) & 3;
	__u64 off = 4;

	if (!(afc & 1))
		return TS_SIZE;
	if (afc & 2)
		off += 1 + (__u64)p[4];
	return off < TS_SIZE ? off : TS_SIZE;
}

/* Start of a PSI section (after pointer_field) in a packet with PUSI set, or TS_SIZE. */
static inline __u64 psi_section_off(const __u8 *p)
{
	__u64 off = ts_payload_off(p);

	if (off >= TS_SIZE - 1)
		return TS_SIZE;
	off += 1 + (__u64)p[off];
	return off < TS_SIZE ? off : TS_SIZE;
}

/* PAT: the PID of the first program's PMT, or PID_NONE. */
static inline __u16 psi_pat_pmt_pid(const __u8 *p)
{
	__u64 s = psi_section_off(p), end, i;

	if (s + 8 > TS_SIZE || p[s] != 0x00)
		return PID_NONE;
	end = s + 3 + ((((__u64)p[s + 1] & 0x0f) << 8) | p[s + 2]) - 4; /* before the CRC */
	if (end > TS_SIZE)
		end = TS_SIZE;
	for (i = s + 8; i + 4 <= end && i + 4 <= TS_SIZE; i += 4) {
		__u16 program = ((__u16)p[i] << 8) | p[i + 1];

		if (program != 0) /* program 0 points at the network PID */
			return ((__u16)(p[i + 2] & 0x1f) << 8) | p[i + 3];
	}
	return PID_NONE;
}

/* PMT: the first H.264 or H.265 stream as (codec << 16 | pid), or 0 if there is none. */
static inline __u32 psi_pmt_video(const __u8 *p)
{
	__u64 s = psi_section_off(p), end, i, n;

	if (s + 12 > TS_SIZE || p[s] != 0x02)
		return 0;
	end = s + 3 + ((((__u64)p[s + 1] & 0x0f) << 8) | p[s + 2]) - 4;
	if (end > TS_SIZE)
		end = TS_SIZE;
	i = s + 12 + ((((__u64)p[s + 10] & 0x0f) << 8) | p[s + 11]);
	for (n = 0; n < 40; n++) { /* 40 x 5-byte entries fill a packet */
		__u8 type;
		__u16 pid;

		opaque(i);
		if (i + 5 > end || i > TS_SIZE - 5)
			break;
		type = p[i];
		pid = ((__u16)(p[i + 1] & 0x1f) << 8) | p[i + 2];
		if (type == STREAM_TYPE_H264)
			return ((__u32)CODEC_H264 << 16) | pid;
		if (type == STREAM_TYPE_H265)
			return ((__u32)CODEC_H265 << 16) | pid;
		i += 5 + ((((__u64)p[i + 3] & 0x0f) << 8) | p[i + 4]);
	}
	return 0;
}

/* Kind of a video frame from the NAL header of its first slice; FRAME_NONE for a NAL unit
 * that is not a slice (AUD, SEI, parameter sets), so that the scan goes on. */
static inline __u8 nal_kind(__u8 codec, __u8 h0)
{
	if (codec == CODEC_H265) {
		__u8 type = (h0 >> 1) & 0x3f;

		if (type >= 32)
			return FRAME_NONE;        /* VPS, SPS, PPS, AUD, SEI, ... */
		if (type >= 16 && type <= 23)
			return FRAME_KEY;         /* BLA, IDR, CRA (and reserved IRAP) */
		if (type <= 14 && !(type & 1))
			return FRAME_NONREF;      /* TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N, RSV_VCL_N */
		return FRAME_REF;
	}
	{
		__u8 type = h0 & 0x1f;

		if (type == 5)
			return FRAME_KEY;         /* IDR slice */
		if (type >= 1 && type <= 4)
			return (h0 & 0x60) ? FRAME_REF : FRAME_NONREF; /* nal_ref_idc */
		return FRAME_NONE;
	}
}

/*
 * Kind of the frame whose PES starts in this packet: the first slice NAL header in the packet
 * decides; random_access_indicator=1 means a keyframe; a slice header that is not in this
 * packet means reference (never dropped by mistake).
 */
static inline __u8 ts_frame_kind(const __u8 *p, __u8 codec)
{
	__u64 i = ts_payload_off(p);

	if ((p[3] & 0x20) && p[4] > 0 && (p[5] & 0x40))
		return FRAME_KEY;
	if (i + 9 > TS_SIZE || p[i] != 0 || p[i + 1] != 0 || p[i + 2] != 1)
		return FRAME_REF;
	i += 9 + (__u64)p[i + 8]; /* PES header */
	for (; i + 4 <= TS_SIZE; i++) {
		__u8 kind;

		if (p[i + 2] > 1) { /* no start code can end before i + 3: skip ahead */
			i += 2;
			continue;
		}
		if (p[i] != 0 || p[i + 1] != 0 || p[i + 2] != 1)
			continue;
		kind = nal_kind(codec, p[i + 3]);
		if (kind != FRAME_NONE)
			return kind;
		i += 3;
	}
	return FRAME_REF;
}

/* Rank of the n-th non-reference frame: 8-bit bit reversal spreads any level evenly. */
static inline __u16 nonref_prio(__u32 n)
{
	__u8 x = (__u8)n;

	x = (__u8)((x & 0xf0) >> 4 | (x & 0x0f) << 4);
	x = (__u8)((x & 0xcc) >> 2 | (x & 0x33) << 2);
	x = (__u8)((x & 0xaa) >> 1 | (x & 0x55) << 1);
	return x;
}

#endif
