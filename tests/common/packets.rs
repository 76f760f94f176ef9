//! Builders of crafted frames for BPF_PROG_TEST_RUN: Ethernet (VLAN), IPv4 (options), IPv6,
//! UDP, RTP, and MPEG-TS packets (PAT, PMT, PES starts with H.264/H.265 NAL headers).
#![allow(dead_code)]

pub const TS: usize = 188;

/// Internet checksum (RFC 1071) of `data` added to `sum`.
pub fn csum_add(mut sum: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    sum
}

pub fn csum_fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[derive(Clone)]
pub struct Net {
    pub vlans: usize,
    pub ipv6: bool,
    pub ip_options: usize, // 32-bit words of IPv4 options
    pub rtp_csrc: u8,
    pub rtp_ext_words: Option<u16>,
    pub rtp: bool,
    pub rtp_seq: u16,
    pub sport: u16,
    pub dport: u16,
    pub frag: bool,
}

impl Default for Net {
    fn default() -> Net {
        Net {
            vlans: 0,
            ipv6: false,
            ip_options: 0,
            rtp_csrc: 0,
            rtp_ext_words: None,
            rtp: false,
            rtp_seq: 1,
            sport: 4000,
            dport: 5000,
            frag: false,
        }
    }
}

pub const SRC4: [u8; 4] = [10, 203, 0, 2];
pub const DST4: [u8; 4] = [10, 203, 0, 1];
pub const SRC6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
pub const DST6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// A whole frame carrying `ts` (TS packets) in one UDP datagram.
pub fn frame(net: &Net, ts: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    if net.rtp {
        let x = net.rtp_ext_words.is_some();
        payload.push(0x80 | if x { 0x10 } else { 0 } | net.rtp_csrc);
        payload.push(33);
        payload.extend_from_slice(&net.rtp_seq.to_be_bytes());
        payload.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        for i in 0..net.rtp_csrc {
            payload.extend_from_slice(&[0, 0, 0, i]);
        }
        if let Some(w) = net.rtp_ext_words {
            payload.extend_from_slice(&[0xbe, 0xde]);
            payload.extend_from_slice(&w.to_be_bytes());
            payload.extend(std::iter::repeat_n(0xab, 4 * w as usize));
        }
    }
    payload.extend_from_slice(ts);
    let udp_len = (8 + payload.len()) as u16;
    let mut udp = Vec::new();
    udp.extend_from_slice(&net.sport.to_be_bytes());
    udp.extend_from_slice(&net.dport.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&payload);

    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for _ in 0..net.vlans {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
    }
    if net.ipv6 {
        f.extend_from_slice(&[0x86, 0xdd]);
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&udp_len.to_be_bytes());
        ip.extend_from_slice(&[17, 64]);
        ip.extend_from_slice(&SRC6);
        ip.extend_from_slice(&DST6);
        let mut sum = csum_add(0, &SRC6);
        sum = csum_add(sum, &DST6);
        sum = csum_add(sum, &[0, 0, 0, 17]);
        sum = csum_add(sum, &u32::from(udp_len).to_be_bytes());
        let c = csum_fold(csum_add(sum, &udp));
        udp[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
        f.extend_from_slice(&ip);
    } else {
        f.extend_from_slice(&[0x08, 0x00]);
        let ihl = 5 + net.ip_options;
        let total = (ihl * 4) as u16 + udp_len;
        let mut ip = vec![0x40 | ihl as u8, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0, 1]);
        ip.extend_from_slice(if net.frag { &[0x20, 0x00] } else { &[0x40, 0x00] });
        ip.extend_from_slice(&[64, 17, 0, 0]);
        ip.extend_from_slice(&SRC4);
        ip.extend_from_slice(&DST4);
        for _ in 0..net.ip_options {
            ip.extend_from_slice(&[1, 1, 1, 1]); // NOPs
        }
        let c = csum_fold(csum_add(0, &ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut sum = csum_add(0, &SRC4);
        sum = csum_add(sum, &DST4);
        sum = csum_add(sum, &[0, 17]);
        sum = csum_add(sum, &udp_len.to_be_bytes());
        let c = csum_fold(csum_add(sum, &udp));
        udp[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
        f.extend_from_slice(&ip);
    }
    f.extend_from_slice(&udp);
    f
}

/// Offsets of the IP header, the UDP header and the UDP payload in a frame made by `frame`.
pub fn offsets(net: &Net) -> (usize, usize, usize) {
    let l3 = 14 + 4 * net.vlans;
    let l4 = l3 + if net.ipv6 { 40 } else { 20 + 4 * net.ip_options };
    let rtp = if net.rtp {
        12 + 4 * net.rtp_csrc as usize + net.rtp_ext_words.map_or(0, |w| 4 + 4 * w as usize)
    } else {
        0
    };
    (l3, l4, l4 + 8 + rtp)
}

/// True if the IP header checksum (IPv4) and the UDP checksum of a frame are valid.
pub fn checksums_ok(net: &Net, f: &[u8]) -> bool {
    let (l3, l4, _) = offsets(net);
    let udp = &f[l4..];
    let udp_len = u16::from_be_bytes([udp[4], udp[5]]) as usize;
    if udp_len != udp.len() {
        return false;
    }
    if net.ipv6 {
        let mut sum = csum_add(0, &f[l3 + 8..l3 + 40]);
        sum = csum_add(sum, &[0, 0, 0, 17]);
        sum = csum_add(sum, &(udp_len as u32).to_be_bytes());
        let plen = u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]) as usize;
        plen == udp_len && csum_fold(csum_add(sum, udp)) == 0
    } else {
        let ihl = usize::from(f[l3] & 0x0f) * 4;
        let total = u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]) as usize;
        let mut sum = csum_add(0, &f[l3 + 12..l3 + 20]);
        sum = csum_add(sum, &[0, 17]);
        sum = csum_add(sum, &(udp_len as u16).to_be_bytes());
        total == ihl + udp_len
            && csum_fold(csum_add(0, &f[l3..l3 + ihl])) == 0
            && csum_fold(csum_add(sum, udp)) == 0
    }
}

/// A TS packet: header, optional adaptation field of `af` bytes after its length byte (filled
/// with `af_flags` then stuffing; PCR added when the flag 0x10 is set), then payload, padded.
pub fn ts(pid: u16, pusi: bool, cc: u8, af: Option<(u8, usize)>, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x47, (if pusi { 0x40 } else { 0 }) | (pid >> 8) as u8, pid as u8];
    let has_payload = !payload.is_empty();
    let afc = match (af.is_some(), has_payload) {
        (true, true) => 0x30,
        (true, false) => 0x20,
        _ => 0x10,
    };
    p.push(afc | (cc & 0x0f));
    let mut af_bytes = Vec::new();
    if let Some((flags, len)) = af {
        af_bytes.push(flags);
        if flags & 0x10 != 0 {
            af_bytes.extend_from_slice(&[0, 0, 0x10, 0, 0x7e, 0]); // a PCR
        }
        while af_bytes.len() < len {
            af_bytes.push(0xff);
        }
    }
    // Fill the packet: stuffing in the adaptation field if the payload is short.
    let room = TS - 4 - if af.is_some() { 1 + af_bytes.len() } else { 0 };
    if has_payload && payload.len() < room {
        if af.is_none() {
            // make an adaptation field just for stuffing
            p[3] = 0x30 | (cc & 0x0f);
            let stuff = room - payload.len() - 1;
            p.push(stuff as u8);
            if stuff > 0 {
                p.push(0);
                p.extend(std::iter::repeat_n(0xff, stuff - 1));
            }
        } else {
            af_bytes.extend(std::iter::repeat_n(0xff, room - payload.len()));
        }
    }
    if af.is_some() {
        if !has_payload {
            af_bytes.resize(TS - 5, 0xff);
        }
        p.push(af_bytes.len() as u8);
        p.extend_from_slice(&af_bytes);
    }
    p.extend_from_slice(&payload[..payload.len().min(TS - p.len())]);
    p.resize(TS, 0xff);
    p
}

fn section(table_id: u8, body: &[u8]) -> Vec<u8> {
    let len = (body.len() + 5 + 4) as u16; // after the length field: 5 header bytes, body, CRC
    let mut s = vec![0x00, table_id, 0xb0 | (len >> 8) as u8, len as u8, 0, 1, 0xc1, 0, 0];
    s.extend_from_slice(body);
    s.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]); // CRC (not checked)
    s
}

pub fn pat(pmt_pid: u16) -> Vec<u8> {
    let body = [0, 0, 0xe0, 0x10, 0, 1, 0xe0 | (pmt_pid >> 8) as u8, pmt_pid as u8]; // NIT, then program 1
    ts(0, true, 0, None, &section(0x00, &body))
}

/// A PMT listing an audio stream first, then the video stream.
pub fn pmt(pmt_pid: u16, video_pid: u16, stream_type: u8) -> Vec<u8> {
    let mut body = vec![0xe0 | (video_pid >> 8) as u8, video_pid as u8, 0xf0, 0];
    body.extend_from_slice(&[0x0f, 0xe1, 0x01, 0xf0, 0x00]); // AAC on 0x101
    body.extend_from_slice(&[stream_type, 0xe0 | (video_pid >> 8) as u8, video_pid as u8, 0xf0, 0x00]);
    ts(pmt_pid, true, 0, None, &section(0x02, &body))
}

/// The start of a video PES whose first NAL units are `nals` (each a header byte string).
pub fn pes_start(pid: u16, cc: u8, af: Option<(u8, usize)>, nals: &[&[u8]]) -> Vec<u8> {
    let mut pes = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1];
    for n in nals {
        pes.extend_from_slice(&[0, 0, 0, 1]);
        pes.extend_from_slice(n);
        pes.extend_from_slice(&[0x88, 0x84, 0x21]); // some slice data
    }
    ts(pid, true, cc, af, &pes)
}

pub fn cont(pid: u16, cc: u8) -> Vec<u8> {
    ts(pid, false, cc, None, &[0x5a; 184])
}

pub const H264_AUD: &[u8] = &[0x09, 0xf0];
pub const H264_SEI: &[u8] = &[0x06, 0x05];
pub fn h264_slice(ref_idc: u8, ty: u8) -> [u8; 1] {
    [(ref_idc << 5) | ty]
}
pub fn h265_nal(ty: u8) -> [u8; 2] {
    [ty << 1, 1]
}
