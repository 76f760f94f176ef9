//! MPEG-TS rules shared with the kernel: the C in src/bpf/mpegts.h, compiled for userspace.
//! Safe wrappers over one 188-byte TS packet.
use crate::kernel::skel::cast::types;

pub const TS_SIZE: usize = 188;
/// The null PID, which stands for "no PID" (enum ts_pid in mpegts.h).
pub const PID_NONE: u16 = types::ts_pid::PID_NONE.0 as u16;

/// Frame kinds, as enum frame_kind in mpegts.h.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameKind {
    Key,
    Ref,
    NonRef,
}

impl FrameKind {
    /// The kernel's value, which also indexes cast_flow.frames.
    pub fn value(self) -> usize {
        let kind = match self {
            FrameKind::Key => types::frame_kind::FRAME_KEY,
            FrameKind::Ref => types::frame_kind::FRAME_REF,
            FrameKind::NonRef => types::frame_kind::FRAME_NONREF,
        };
        kind.0 as usize
    }

    /// The kind of a kernel value; anything else (a slice header not found) is a reference frame.
    fn of_value(v: u8) -> FrameKind {
        [FrameKind::Key, FrameKind::NonRef]
            .into_iter()
            .find(|k| k.value() == usize::from(v))
            .unwrap_or(FrameKind::Ref)
    }
}

/// Video codecs the classifier knows, as enum codec in mpegts.h.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    H264,
    H265,
}

impl Codec {
    pub fn value(self) -> u8 {
        let c = match self {
            Codec::H264 => types::codec::CODEC_H264,
            Codec::H265 => types::codec::CODEC_H265,
        };
        c.0 as u8
    }

    /// The codec of a kernel value, if it names one.
    pub fn of_value(v: u32) -> Option<Codec> {
        [Codec::H264, Codec::H265].into_iter().find(|c| u32::from(c.value()) == v)
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
        }
    }
}

extern "C" {
    fn ec_ts_frame_kind(p: *const u8, codec: u8) -> u8;
    fn ec_psi_pat_pmt_pid(p: *const u8) -> u16;
    fn ec_psi_pmt_video(p: *const u8) -> u32;
    fn ec_nonref_prio(n: u32) -> u16;
}

/// Kind of the frame whose PES starts in this packet (the packet must have PUSI set).
pub fn frame_kind(p: &[u8; TS_SIZE], codec: Codec) -> FrameKind {
    // SAFETY: the C reads at most TS_SIZE bytes of p.
    FrameKind::of_value(unsafe { ec_ts_frame_kind(p.as_ptr(), codec.value()) })
}

/// PMT PID of the first program of a PAT packet.
pub fn pat_pmt_pid(p: &[u8; TS_SIZE]) -> Option<u16> {
    // SAFETY: as above.
    let pid = unsafe { ec_psi_pat_pmt_pid(p.as_ptr()) };
    (pid != PID_NONE).then_some(pid)
}

/// The first H.264 or H.265 stream of a PMT packet: (pid, codec).
pub fn pmt_video(p: &[u8; TS_SIZE]) -> Option<(u16, Codec)> {
    // SAFETY: as above.
    let v = unsafe { ec_psi_pmt_video(p.as_ptr()) };
    Some(((v & 0x1fff) as u16, Codec::of_value(v >> 16)?))
}

/// Drop priority of the n-th non-reference frame (0..=255).
pub fn nonref_prio(n: u32) -> u16 {
    // SAFETY: pure function.
    unsafe { ec_nonref_prio(n) }
}

pub fn pid(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

pub fn pusi(p: &[u8]) -> bool {
    p[1] & 0x40 != 0
}

pub fn has_payload(p: &[u8]) -> bool {
    p[3] & 0x10 != 0
}

pub fn cc(p: &[u8]) -> u8 {
    p[3] & 0x0f
}

/// The PCR of a packet, in 27 MHz ticks.
pub fn pcr(p: &[u8]) -> Option<u64> {
    if p[3] & 0x20 == 0 || p[4] < 7 || p[5] & 0x10 == 0 {
        return None;
    }
    let base = (u64::from(p[6]) << 25)
        | (u64::from(p[7]) << 17)
        | (u64::from(p[8]) << 9)
        | (u64::from(p[9]) << 1)
        | (u64::from(p[10]) >> 7);
    Some(base * 300 + ((u64::from(p[10] & 1) << 8) | u64::from(p[11])))
}

/// Length of an RFC 2250 RTP header (version 2, payload type 33) at the start of a datagram.
pub fn rtp_header_len(d: &[u8]) -> Option<usize> {
    if d.len() < 12 || d[0] >> 6 != 2 || d[1] & 0x7f != 33 {
        return None;
    }
    let mut len = 12 + 4 * usize::from(d[0] & 0x0f);
    if d[0] & 0x10 != 0 {
        let ext = d.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    (len <= d.len()).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonref_prio_is_the_bit_reversed_index() {
        assert_eq!(nonref_prio(0), 0);
        assert_eq!(nonref_prio(1), 128);
        assert_eq!(nonref_prio(2), 64);
        assert_eq!(nonref_prio(3), 192);
        assert_eq!(nonref_prio(256 + 3), 192);
        for n in 0..256u32 {
            assert_eq!(nonref_prio(n), u16::from((n as u8).reverse_bits()));
        }
    }

    fn pkt(pid: u16, pusi: bool, body: &[u8]) -> [u8; TS_SIZE] {
        let mut p = [0xffu8; TS_SIZE];
        p[..4].copy_from_slice(&[0x47, (u8::from(pusi) << 6) | (pid >> 8) as u8, pid as u8, 0x10]);
        p[4..4 + body.len()].copy_from_slice(body);
        p
    }

    #[test]
    fn classifies_nal_headers_like_the_kernel() {
        let pes = |nal: &[u8]| {
            let mut b = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1, 0, 0, 0, 1];
            // An access unit delimiter first: H.264 type 9, or H.265 type 35.
            b.extend_from_slice(if nal.len() == 1 { &[0x09, 0xf0] } else { &[35 << 1, 1, 0x50] });
            b.extend_from_slice(&[0, 0, 1]);
            b.extend_from_slice(nal);
            pkt(0x100, true, &b)
        };
        assert_eq!(frame_kind(&pes(&[0x65]), Codec::H264), FrameKind::Key);
        assert_eq!(frame_kind(&pes(&[0x41]), Codec::H264), FrameKind::Ref);
        assert_eq!(frame_kind(&pes(&[0x01]), Codec::H264), FrameKind::NonRef);
        assert_eq!(frame_kind(&pes(&[19 << 1, 1]), Codec::H265), FrameKind::Key);
        assert_eq!(frame_kind(&pes(&[1 << 1, 1]), Codec::H265), FrameKind::Ref);
        assert_eq!(frame_kind(&pes(&[0, 1]), Codec::H265), FrameKind::NonRef);
        // No slice in the packet: reference.
        assert_eq!(frame_kind(&pkt(0x100, true, &[0, 0, 1, 0xe0]), Codec::H264), FrameKind::Ref);
    }

    #[test]
    fn reads_pat_and_pmt() {
        let pat = pkt(0, true, &[0, 0, 0xb0, 13, 0, 1, 0xc1, 0, 0, 0, 1, 0xf0, 0, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(pat_pmt_pid(&pat), Some(0x1000));
        let pmt = pkt(
            0x1000,
            true,
            &[
                0, 2, 0xb0, 23, 0, 1, 0xc1, 0, 0, 0xe2, 0, 0xf0, 0, 0x0f, 0xe1, 1, 0xf0, 0, 0x24, 0xe2, 0,
                0xf0, 0, 1, 2, 3, 4,
            ],
        );
        assert_eq!(pmt_video(&pmt), Some((0x200, Codec::H265)));
    }

    #[test]
    fn rtp_headers() {
        let mut d = vec![0x80, 33, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(rtp_header_len(&d), Some(12));
        d[0] = 0x92; // extension, 2 CSRC
        d.extend_from_slice(&[0; 8]);
        d.extend_from_slice(&[0xbe, 0xde, 0, 1, 0, 0, 0, 0]);
        assert_eq!(rtp_header_len(&d), Some(12 + 8 + 8));
        assert_eq!(rtp_header_len(&[0x47, 0, 0x11]), None);
    }
}
