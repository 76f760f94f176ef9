// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* The kernel's MPEG-TS rules (mpegts.h), compiled for userspace so that `ebpf-cast recv` and
 * the tests classify frames with the very same code as the cast program. */
#include <linux/types.h>
#include "mpegts.h"

__u8 ec_ts_frame_kind(const __u8 *p, __u8 codec)
{
	return ts_frame_kind(p, codec);
}

__u16 ec_psi_pat_pmt_pid(const __u8 *p)
{
	return psi_pat_pmt_pid(p);
}

__u32 ec_psi_pmt_video(const __u8 *p)
{
	return psi_pmt_video(p);
}

__u16 ec_nonref_prio(__u32 n)
{
	return nonref_prio(n);
}
