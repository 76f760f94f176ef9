//! A reference model of the cast program, written for clarity rather than speed, to compare with
//! the kernel's on any input (tests/fuzz.rs). For one frame and the outputs' table it says what
//! the program returns and what each output receives: nothing, the frame whole, or an edited
//! copy (which TS packets, continuity counters, PCR packets emptied, lengths, NAT). The MPEG-TS rules
//! of one TS packet come from the same C code as the kernel's (ebpf_cast::mpegts); everything
//! above them (parsing, flows, the classification of a datagram, the edits) is written anew.
//!
//! Checksums are not computed here: `same_frame` compares every other byte and requires that the
//! IPv4 header and UDP checksums keep the validity they had on input (one's complement residual).
use std::collections::HashMap;

use ebpf_cast::mpegts::{self, Codec, FrameKind, PID_NONE};

pub const TC_ACT_OK: u32 = 0;
pub const TC_ACT_SHOT: u32 = 2;
pub const TC_ACT_REDIRECT: u32 = 7;

const TS: usize = 188;
const MAX_TS: usize = 64;
const PRIO_REF: u16 = 256;
const PRIO_KEY: u16 = 0xfffe;
const PRIO_KEEP: u16 = 0xffff;
const CC_VALID: u8 = 0x10;

#[derive(Clone, Default, Debug)]
pub struct Cfg {
    /// --port values; empty: every UDP flow that carries TS.
    pub ports: Vec<u16>,
    /// --pid, and --codec (0: learn it from the PMT).
    pub video_pid: u16,
    pub codec: u8,
    /// (level, class) of each output, in the table's order (sorted by level).
    pub outputs: Vec<(u16, u8)>,
    /// Per output (when given): NAT to (IPv4 address, UDP port, MAC).
    pub nat: Vec<Option<Nat>>,
}

/// A NAT output's destination: IPv4 address, UDP port, MAC.
pub type Nat = ([u8; 4], u16, [u8; 6]);

/// What the kernel keeps per flow (struct cast_flow).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    pub video_pid: u16,
    pub pmt_pid: u16,
    pub codec: u8,
    pub prio: u16,
    pub nonref_seq: u32,
    pub cc: [u8; 16],
    pub frames: [u64; 4],
    pub packets: u64,
    pub bytes: u64,
    pub unedited: u64,
    pub rtp_skip: [u16; 16],
}

/// Per output counters (struct cast_ostat, without what overload adds).
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct OStat {
    pub packets: u64,
    pub bytes: u64,
    pub frames_sent: u64,
    pub frames_dropped: u64,
}

/// The program's verdict and, per output, the frame it received (None: nothing).
#[derive(Debug)]
pub struct Outcome {
    pub verdict: u32,
    pub copies: Vec<Option<Vec<u8>>>,
}

/// Flow key as the kernel builds it: addresses (IPv4 in the first 4 bytes), ports, family.
pub type FlowKey = ([u8; 16], [u8; 16], u16, u16, bool);

pub struct Model {
    pub cfg: Cfg,
    pub flows: HashMap<FlowKey, Flow>,
    pub ostats: Vec<OStat>,
}

fn be16(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

fn put16(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Where the parts of a frame are; only for a datagram the program takes.
struct Layout {
    l3: usize,
    ipv6: bool,
    udp: usize,
    udp_len: usize,
    ts: usize,
    rtp: bool,
    key: FlowKey,
}

impl Model {
    pub fn new(cfg: Cfg) -> Model {
        let n = cfg.outputs.len();
        Model { cfg, flows: HashMap::new(), ostats: vec![OStat::default(); n] }
    }

    /// Parses what the program parses; None: not a datagram it takes (passed untouched).
    fn parse(&self, f: &[u8]) -> Option<(Layout, usize)> {
        let len = f.len();
        if len < 14 {
            return None;
        }
        let mut proto = be16(f, 12);
        let mut pos = 14;
        for _ in 0..2 {
            if proto != 0x8100 && proto != 0x88a8 {
                break;
            }
            if pos + 4 > len {
                return None;
            }
            proto = be16(f, pos + 2);
            pos += 4;
        }
        let l3 = pos;
        let (l3_end, ipv6, mut key) = if proto == 0x0800 {
            if pos + 20 > len {
                return None;
            }
            let ihl = usize::from(f[pos] & 0x0f) * 4;
            if ihl < 20 || f[pos + 9] != 17 || be16(f, pos + 6) & 0x3fff != 0 || pos + ihl > len {
                return None;
            }
            let mut key: FlowKey = ([0; 16], [0; 16], 0, 0, false);
            key.0[..4].copy_from_slice(&f[pos + 12..pos + 16]);
            key.1[..4].copy_from_slice(&f[pos + 16..pos + 20]);
            pos += ihl;
            (l3 + usize::from(be16(f, l3 + 2)), false, key)
        } else if proto == 0x86dd {
            if pos + 40 > len || f[pos + 6] != 17 {
                return None;
            }
            let mut key: FlowKey = ([0; 16], [0; 16], 0, 0, true);
            key.0.copy_from_slice(&f[pos + 8..pos + 24]);
            key.1.copy_from_slice(&f[pos + 24..pos + 40]);
            pos += 40;
            (l3 + 40 + usize::from(be16(f, l3 + 4)), true, key)
        } else {
            return None;
        };
        if pos + 8 > len {
            return None;
        }
        let udp = pos;
        let dport = be16(f, udp + 2);
        if !self.cfg.ports.is_empty() && !self.cfg.ports.contains(&dport) {
            return None;
        }
        key.2 = be16(f, udp);
        key.3 = dport;
        let udp_len = usize::from(be16(f, udp + 4));
        if l3_end > len || udp_len < 8 || udp + udp_len > l3_end {
            return None;
        }
        pos += 8;
        // RTP (RFC 2250): version 2, payload type 33; CSRCs and an extension of <= 64 words.
        let rtp_at = pos;
        if pos + 12 <= len && f[pos] >> 6 == 2 && f[pos + 1] & 0x7f == 33 {
            let mut l = 12 + 4 * usize::from(f[pos] & 0x0f);
            let mut ok = true;
            if f[pos] & 0x10 != 0 {
                if l > 72 || pos + l + 4 > len || be16(f, pos + l + 2) > 64 {
                    ok = false;
                } else {
                    l += 4 + 4 * usize::from(be16(f, pos + l + 2));
                }
            }
            // Inside the datagram only: bytes after it are not the sender's to number.
            if ok && pos + l <= len && pos + l <= udp + udp_len {
                pos += l;
            }
        }
        let rtp = pos != rtp_at;
        let ts = pos;
        let payload = (udp + udp_len).saturating_sub(ts);
        let n = if payload > 0 && payload % TS == 0 && ts < len && f[ts] == 0x47 {
            (payload / TS).min(255)
        } else if self.cfg.ports.is_empty() {
            return None;
        } else {
            0
        };
        Some((Layout { l3, ipv6, udp, udp_len, ts, rtp, key }, n))
    }

    fn new_flow(&self) -> Flow {
        Flow {
            video_pid: if self.cfg.video_pid != 0 { self.cfg.video_pid } else { PID_NONE },
            pmt_pid: PID_NONE,
            codec: self.cfg.codec,
            prio: PRIO_KEEP,
            nonref_seq: 0,
            cc: [0; 16],
            frames: [0; 4],
            packets: 0,
            bytes: 0,
            unedited: 0,
            rtp_skip: [0; 16],
        }
    }

    /// Runs one frame through the model.
    pub fn run(&mut self, input: &[u8]) -> Outcome {
        let n_out = self.cfg.outputs.len();
        let pass = Outcome { verdict: TC_ACT_OK, copies: vec![None; n_out] };
        let Some((l, n_orig)) = self.parse(input) else { return pass };
        let cfg = self.cfg.clone();
        let fresh = self.new_flow();
        let f = self.flows.entry(l.key).or_insert(fresh);
        f.packets += 1;
        f.bytes += input.len() as u64;

        // Classify every TS packet: its drop priority, and the frames that start here.
        let mut editable = n_orig != 0 && n_orig <= MAX_TS;
        let mut pkts: Vec<Pkt> = Vec::new();
        let mut frame_prios: Vec<u16> = Vec::new();
        for i in 0..if editable { n_orig } else { 0 } {
            let off = l.ts + i * TS;
            if off + 6 > input.len() || input[off] != 0x47 {
                editable = false;
                break;
            }
            let h = &input[off..];
            let pid = mpegts::pid(h);
            let payload = h[3] & 0x10 != 0;
            let pcr = h[3] & 0x20 != 0 && h[4] >= 7 && h[5] & 0x10 != 0;
            let pusi = h[1] & 0x40 != 0;
            let video = pid == f.video_pid && pid != PID_NONE;
            if video {
                if pusi && payload {
                    let codec = Codec::of_value(f.codec.into()).unwrap_or(Codec::H264);
                    let kind = match input.get(off..off + TS) {
                        Some(p) => mpegts::frame_kind(p.try_into().unwrap(), codec),
                        None => FrameKind::Ref,
                    };
                    match kind {
                        FrameKind::Key => {
                            f.frames[1] += 1;
                            f.prio = PRIO_KEY;
                        }
                        FrameKind::NonRef => {
                            f.frames[3] += 1;
                            f.prio = mpegts::nonref_prio(f.nonref_seq);
                            f.nonref_seq = f.nonref_seq.wrapping_add(1);
                        }
                        _ => {
                            f.frames[2] += 1;
                            f.prio = PRIO_REF;
                        }
                    }
                    frame_prios.push(f.prio);
                }
            } else if pusi && (pid == 0 || (pid == f.pmt_pid && pid != PID_NONE)) {
                if let Some(p) = input.get(off..off + TS) {
                    let p: &[u8; TS] = p.try_into().unwrap();
                    if pid == 0 {
                        if let Some(pmt) = mpegts::pat_pmt_pid(p) {
                            f.pmt_pid = pmt;
                        }
                    } else if let Some((v, codec)) = mpegts::pmt_video(p).filter(|(v, _)| *v != PID_NONE) {
                        let c = codec.value();
                        if cfg.video_pid == 0 {
                            f.video_pid = v;
                            f.codec = c;
                        } else if cfg.codec == 0 && v == cfg.video_pid {
                            f.codec = c;
                        }
                    }
                }
            }
            pkts.push(Pkt {
                data: input.get(off..off + TS).map(<[u8]>::to_vec).unwrap_or_default(),
                video,
                payload,
                pcr,
                prio: if video { f.prio } else { PRIO_KEEP },
                cc0: h[3] & 0x0f,
                gone: false,
                emptied: false,
            });
        }
        let whole_video = !editable && n_orig != 0;
        if !editable {
            f.unedited += 1;
        }
        if n_out == 0 {
            return Outcome { verdict: TC_ACT_SHOT, copies: vec![] };
        }

        // Fan out, in table order: each output's copy is the previous one cut further.
        let mut frame = input.to_vec();
        let mut level = 0u16;
        let mut empty = false;
        let mut frames_sent = frame_prios.len() as u64;
        let mut skipped = 0u16;
        let rtp_seq = if l.rtp { be16(input, l.udp + 10) } else { 0 };
        let mut copies = Vec::new();
        let mut verdict = TC_ACT_SHOT;
        for (i, &(lvl, class)) in cfg.outputs.iter().enumerate() {
            let class = usize::from(class & 15);
            if editable && lvl > level {
                let kept = cut(&mut pkts, lvl, &mut f.cc[class]);
                level = lvl;
                empty = kept == 0;
                frame = rebuild(input, &l, &pkts);
                frames_sent = frame_prios.iter().filter(|p| **p >= lvl).count() as u64;
            }
            let skip = whole_video && lvl != 0;
            let sent = if skip { 0 } else { frames_sent };
            let st = &mut self.ostats[i];
            st.frames_sent += sent;
            st.frames_dropped += frame_prios.len() as u64 - sent;
            if empty || skip {
                if l.rtp && skipped & (1 << class) == 0 {
                    f.rtp_skip[class] = f.rtp_skip[class].wrapping_add(1);
                    skipped |= 1 << class;
                }
                copies.push(None);
                continue;
            }
            let mut copy = frame.clone();
            if let (Some(Some((daddr, dport, mac))), false) = (cfg.nat.get(i), l.ipv6) {
                // NAT (IPv4 only): the consumer's MAC, address and port.
                copy[..6].copy_from_slice(mac);
                copy[l.l3 + 16..l.l3 + 20].copy_from_slice(daddr);
                put16(&mut copy, l.udp + 2, *dport);
            }
            if l.rtp {
                put16(&mut copy, l.udp + 10, rtp_seq.wrapping_sub(f.rtp_skip[class]));
            }
            st.packets += 1;
            st.bytes += copy.len() as u64;
            copies.push(Some(copy));
            if i + 1 == n_out {
                verdict = TC_ACT_REDIRECT;
            }
        }
        Outcome { verdict, copies }
    }
}

/// One TS packet of the datagram as the edits so far left it.
#[derive(Clone)]
struct Pkt {
    data: Vec<u8>,
    video: bool,
    payload: bool,
    pcr: bool,
    prio: u16,
    /// The continuity counter as received.
    cc0: u8,
    gone: bool,
    emptied: bool,
}

/// Cuts the video packets whose prio is below `lvl` (a PCR packet keeps its adaptation field,
/// emptied), numbering the continuity counters of the class; returns the packets kept.
fn cut(pkts: &mut [Pkt], lvl: u16, class_cc: &mut u8) -> usize {
    let mut cc = *class_cc;
    let mut kept = 0;
    for p in pkts.iter_mut().filter(|p| !p.gone) {
        if !p.video {
            kept += 1;
            continue;
        }
        if cc & CC_VALID == 0 {
            // The class's first video packet keeps its counter.
            cc = CC_VALID | (p.cc0.wrapping_sub(u8::from(p.payload)) & 0x0f);
        }
        let has_payload = p.payload && !p.emptied;
        if p.prio >= lvl && has_payload {
            cc = CC_VALID | ((cc + 1) & 0x0f);
        }
        if p.prio < lvl && has_payload {
            if !p.pcr {
                p.gone = true;
                continue;
            }
            // Only the PCR stays: adaptation field only, the rest stuffing, the last counter.
            let d = &mut p.data;
            d[1] &= !0x40;
            d[3] = (d[3] & 0xcf) | 0x20;
            d[4] = (TS - 5) as u8;
            d[5] &= 0x90;
            d[12..].fill(0xff);
            p.emptied = true;
        }
        p.data[3] = (p.data[3] & 0xf0) | (cc & 0x0f);
        kept += 1;
    }
    *class_cc = cc;
    kept
}

/// The frame with the packets that are left, lengths fixed; checksums as received (the
/// comparison checks them by residual). Nothing follows the datagram: padding is cut too.
fn rebuild(input: &[u8], l: &Layout, pkts: &[Pkt]) -> Vec<u8> {
    let kept: Vec<&Pkt> = pkts.iter().filter(|p| !p.gone).collect();
    if kept.len() == pkts.len() {
        // Nothing cut: the frame keeps its length (and any bytes after the datagram).
        let mut f = input.to_vec();
        for (i, p) in kept.iter().enumerate() {
            f[l.ts + i * TS..l.ts + (i + 1) * TS].copy_from_slice(&p.data);
        }
        return f;
    }
    let removed = pkts.len() - kept.len();
    let mut f = input[..l.ts].to_vec();
    for p in &kept {
        f.extend_from_slice(&p.data);
    }
    // The IP packet ends with the datagram too.
    let udp_len = (l.udp_len - removed * TS) as u16;
    if l.ipv6 {
        put16(&mut f, l.l3 + 4, udp_len);
    } else {
        put16(&mut f, l.l3 + 2, (l.udp - l.l3) as u16 + udp_len);
    }
    put16(&mut f, l.udp + 4, udp_len);
    f
}

/// One's complement sum of `data` (16-bit big-endian words) added to `sum`, folded; 0 and
/// 0xffff are the same number.
fn ones(mut sum: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    if sum == 0 {
        0xffff
    } else {
        sum
    }
}

/// The checksums' residuals of a frame the program took: IPv4 header, UDP with its
/// pseudo-header (None when the UDP checksum is 0: not in use, and left alone).
fn residuals(f: &[u8]) -> Option<(Option<u32>, Option<u32>)> {
    let mut pos = 14;
    let mut proto = be16(f, 12);
    while proto == 0x8100 || proto == 0x88a8 {
        proto = be16(f, pos + 2);
        pos += 4;
    }
    let (ip, udp, pseudo) = if proto == 0x0800 {
        let ihl = usize::from(f[pos] & 0x0f) * 4;
        let udp = pos + ihl;
        let len = usize::from(be16(f, udp + 4));
        let mut s = ones(0, &f[pos + 12..pos + 20]);
        s = ones(s, &[0, 17]);
        s = ones(s, &(len as u16).to_be_bytes());
        (Some(ones(0, &f[pos..pos + ihl])), udp, s)
    } else {
        let udp = pos + 40;
        let len = usize::from(be16(f, udp + 4));
        let mut s = ones(0, &f[pos + 8..pos + 40]);
        s = ones(s, &[0, 0, 0, 17]);
        s = ones(s, &(len as u32).to_be_bytes());
        (None, udp, s)
    };
    let len = usize::from(be16(f, udp + 4));
    let csum = be16(f, udp + 6);
    let udp_res = (csum != 0).then(|| ones(pseudo, f.get(udp..udp + len).unwrap_or(&f[udp..])));
    Some((ip, udp_res))
}

/// Where the checksum fields are: (IPv4 header checksum, UDP checksum) offsets.
fn csum_fields(f: &[u8]) -> (Option<usize>, usize) {
    let mut pos = 14;
    let mut proto = be16(f, 12);
    while proto == 0x8100 || proto == 0x88a8 {
        proto = be16(f, pos + 2);
        pos += 4;
    }
    if proto == 0x0800 {
        let ihl = usize::from(f[pos] & 0x0f) * 4;
        (Some(pos + 10), pos + ihl + 6)
    } else {
        (None, pos + 40 + 6)
    }
}

/// Compares the kernel's copy with the model's: every byte but the checksum fields equal, and
/// the checksums as valid (or as wrong, by the same amount) as in the input frame. Err says how
/// they differ.
pub fn same_frame(input: &[u8], want: &[u8], got: &[u8]) -> Result<(), String> {
    if want.len() != got.len() {
        return Err(format!("length {} where the model says {}", got.len(), want.len()));
    }
    let (ip_at, udp_at) = csum_fields(want);
    let masked = |f: &[u8]| {
        let mut f = f.to_vec();
        if let Some(at) = ip_at {
            f[at..at + 2].fill(0);
        }
        if be16(&f, udp_at) != 0 {
            f[udp_at..udp_at + 2].fill(0);
        }
        f
    };
    let (mw, mg) = (masked(want), masked(got));
    if let Some(at) = mw.iter().zip(&mg).position(|(a, b)| a != b) {
        return Err(format!("byte {at}: {:#04x} where the model says {:#04x}", mg[at], mw[at]));
    }
    let (r_in, r_out) = (residuals(input), residuals(got));
    if r_in != r_out {
        return Err(format!("checksum residuals {r_out:?}, received with {r_in:?}"));
    }
    Ok(())
}
