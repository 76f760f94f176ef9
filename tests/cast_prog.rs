//! The cast program run by the kernel on crafted frames (BPF_PROG_TEST_RUN) inside a fresh
//! network namespace: parsing, PAT/PMT learning, frame classification and datagram editing.
mod common;

use std::mem::MaybeUninit;

use common::{packets::*, *};
use ebpf_cast::kernel::skel::{self, cast::*};
use libbpf_rs::{skel::OpenSkel, MapCore, MapFlags, ProgramInput};

const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;
const VPID: u16 = 0x100;
const PMT: u16 = 0x1000;

#[derive(Default, Clone)]
struct Cfg {
    ports: Vec<u16>,
    pid: u16,
    codec: u8,
    /// (level, class) of each output, in send order; ifindex 1 (the namespace's lo).
    outputs: Vec<(u16, u8)>,
    /// The output table as written, instead of `outputs`.
    table: Vec<types::cast_out>,
    /// As the cast's process writes it (0: not known).
    backlog_max: u64,
    /// The table's backlog entries per datagram (0: nothing is checked).
    backlog_entries: u32,
    /// Copies promised by clones in the backlog, on every CPU, before the first frame.
    pending: u64,
}

#[derive(Debug, Default)]
struct Run {
    verdicts: Vec<u32>,
    outs: Vec<Vec<u8>>,
    flows: Vec<(types::flow_key, types::cast_flow)>,
    ostats: Vec<types::cast_ostat>,
    /// Copies promised by clones in the backlog, summed over the CPUs, after the last frame.
    pending: u64,
}

/// Loads the program with `cfg` in a fresh namespace and runs `frames` through it in order.
fn run(cfg: Cfg, frames: Vec<Vec<u8>>) -> Run {
    let ns = Netns::new("castprog");
    ns.enter(move || {
        let mut obj = MaybeUninit::uninit();
        let mut open = skel::open(CastSkelBuilder::default(), &mut obj).unwrap();
        let ro = open.maps.rodata_data.as_deref_mut().unwrap();
        ro.cfg_nports = cfg.ports.len() as u32;
        for (d, p) in ro.cfg_ports.iter_mut().zip(&cfg.ports) {
            *d = p.to_be();
        }
        ro.cfg_video_pid = cfg.pid;
        ro.cfg_codec = cfg.codec;
        ro.cfg_rq_to_softnet = ebpf_cast::kernel::percpu::rq_to_softnet().unwrap();
        let mut skel = open.load().unwrap();
        let bss = skel.maps.bss_data.as_deref_mut().unwrap();
        let mut table = cfg.table.clone();
        if table.is_empty() {
            table = (cfg.outputs.iter().enumerate())
                .map(|(i, &(level, class_id))| types::cast_out {
                    ifindex: 1,
                    level,
                    class_id,
                    slot: i as u32,
                    ..Default::default()
                })
                .collect();
        }
        bss.cast_tabs[0].out[..table.len()].copy_from_slice(&table);
        bss.cast_tabs[0].n_out = table.len() as u32;
        bss.cast_tabs[0].backlog_entries = cfg.backlog_entries;
        let cpus = libbpf_rs::num_possible_cpus().unwrap();
        let a = types::cast_admission { pending: cfg.pending, ..Default::default() };
        // SAFETY: cast_admission is plain data.
        let a: Vec<Vec<u8>> = vec![unsafe { plain::as_bytes(&a) }.to_vec(); cpus];
        skel.maps.cast_admission.update_percpu(&0u32.to_ne_bytes(), &a, MapFlags::ANY).unwrap();
        let max = cfg.backlog_max.to_ne_bytes();
        skel.maps.cast_backlog.update(&0u32.to_ne_bytes(), &max, MapFlags::ANY).unwrap();
        let n_slots = table.iter().filter(|o| o.flags & HUB == 0).count() as u32;
        let mut r = Run::default();
        for f in &frames {
            let mut out = vec![0u8; 4096];
            let o = skel
                .progs
                .ecast_cast_in
                .test_run(ProgramInput { data_in: Some(f), data_out: Some(&mut out), ..Default::default() })
                .unwrap();
            r.verdicts.push(o.return_value);
            r.outs.push(o.data.unwrap().to_vec());
        }
        for k in skel.maps.cast_flows.keys() {
            let v = skel.maps.cast_flows.lookup(&k, MapFlags::ANY).unwrap().unwrap();
            r.flows.push((skel::from_bytes(&k).unwrap(), skel::from_bytes(&v).unwrap()));
        }
        for i in 0..n_slots {
            let mut sum = types::cast_ostat::default();
            for v in skel::per_cpu::<types::cast_ostat>(&skel.maps.cast_ostats, i).unwrap() {
                sum.packets += v.packets;
                sum.bytes += v.bytes;
                sum.frames_sent += v.frames_sent;
                sum.frames_dropped += v.frames_dropped;
                sum.clone_errors += v.clone_errors;
            }
            r.ostats.push(sum);
        }
        let a = skel::per_cpu::<types::cast_admission>(&skel.maps.cast_admission, 0).unwrap();
        r.pending = a.iter().map(|a| a.pending).sum();
        r
    })
}

fn null() -> Vec<u8> {
    ts(0x1fff, false, 0, None, &[0xff; 184])
}

/// PAT + PMT + nulls: a datagram that teaches the flow its video PID.
fn psi(video_pid: u16, stream_type: u8) -> Vec<u8> {
    [pat(PMT), pmt(PMT, video_pid, stream_type), null(), null(), null(), null(), null()].concat()
}

/// A datagram of 7 packets with a PES start of `nals` at index `at`, continuation elsewhere.
fn frame_at(at: usize, af: Option<(u8, usize)>, nals: &[&[u8]]) -> Vec<u8> {
    (0..7)
        .map(|i| if i == at { pes_start(VPID, i as u8, af, nals) } else { cont(VPID, i as u8) })
        .collect::<Vec<_>>()
        .concat()
}

fn frames_of(r: &Run) -> [u64; 4] {
    assert_eq!(r.flows.len(), 1, "one flow");
    r.flows[0].1.frames
}

const KEY: usize = 1;
const REF: usize = 2;
const NONREF: usize = 3;

#[test]
fn learns_video_pid_and_codec_from_pat_and_pmt() {
    require_root!();
    for (pid, st, codec) in [(0x100u16, 0x1bu8, 1u8), (0x200, 0x24, 2)] {
        let r = run(Cfg::default(), vec![frame(&Net::default(), &psi(pid, st))]);
        assert_eq!(r.verdicts, vec![TC_ACT_SHOT], "a cast datagram with no output goes nowhere");
        let f = r.flows[0].1;
        assert_eq!((f.pmt_pid, f.video_pid, f.codec), (PMT, pid, codec));
        assert_eq!(f.packets, 1);
    }
}

#[test]
fn classifies_h264_frames_wherever_the_pes_starts() {
    require_root!();
    let sps: &[u8] = &[0x67, 0x64];
    let pps: &[u8] = &[0x68, 0xee];
    let cases: Vec<(Vec<u8>, usize)> = vec![
        (frame_at(0, None, &[H264_AUD, sps, pps, H264_SEI, &h264_slice(3, 5)]), KEY),
        (frame_at(1, None, &[H264_AUD, &h264_slice(2, 1)]), REF),
        (frame_at(2, None, &[H264_AUD, &h264_slice(0, 1)]), NONREF),
        (frame_at(3, Some((0x00, 60)), &[H264_AUD, &h264_slice(0, 1)]), NONREF), // AF stuffing
        (frame_at(4, Some((0x40, 1)), &[H264_AUD, &h264_slice(0, 1)]), KEY),     // RAI=1
        (frame_at(5, None, &[H264_AUD, &h264_slice(1, 1)]), REF),
        (frame_at(6, None, &[H264_AUD, &h264_slice(0, 1)]), NONREF),
    ];
    for (dgram, kind) in cases {
        let r = run(
            Cfg::default(),
            vec![frame(&Net::default(), &psi(VPID, 0x1b)), frame(&Net::default(), &dgram)],
        );
        let mut want = [0u64; 4];
        want[kind] = 1;
        assert_eq!(frames_of(&r), want, "kind {kind}");
    }
    // A first slice beyond this TS packet (a long SEI in front) counts as reference.
    let mut sei = vec![0x06];
    sei.extend(std::iter::repeat_n(0x44, 170));
    let r = run(
        Cfg::default(),
        vec![
            frame(&Net::default(), &psi(VPID, 0x1b)),
            frame(&Net::default(), &frame_at(0, None, &[H264_AUD, &sei])),
        ],
    );
    assert_eq!(frames_of(&r), [0, 0, 1, 0]);
}

#[test]
fn classifies_h265_frames() {
    require_root!();
    let cases =
        [(0u8, NONREF), (1, REF), (8, NONREF), (9, REF), (19, KEY), (20, KEY), (21, KEY), (14, NONREF)];
    for (ty, kind) in cases {
        let nals: Vec<[u8; 2]> =
            vec![h265_nal(35), h265_nal(32), h265_nal(33), h265_nal(34), h265_nal(39), h265_nal(ty)];
        let refs: Vec<&[u8]> = nals.iter().map(|n| n.as_slice()).collect();
        let r = run(
            Cfg::default(),
            vec![
                frame(&Net::default(), &psi(0x200, 0x24)),
                frame(&Net::default(), &{
                    let mut d = frame_at(0, None, &refs);
                    for p in d.chunks_mut(TS) {
                        p[1] = (p[1] & 0xe0) | 0x02; // move every packet to PID 0x200
                        p[2] = 0x00;
                    }
                    d
                }),
            ],
        );
        let mut want = [0u64; 4];
        want[kind] = 1;
        assert_eq!(frames_of(&r), want, "H.265 NAL type {ty}");
    }
}

#[test]
fn parses_every_encapsulation() {
    require_root!();
    let nets = [
        Net { vlans: 1, ..Default::default() },
        Net { vlans: 2, ..Default::default() },
        Net { ip_options: 3, ..Default::default() },
        Net { ipv6: true, ..Default::default() },
        Net { rtp: true, ..Default::default() },
        Net { rtp: true, rtp_csrc: 2, rtp_ext_words: Some(3), ..Default::default() },
        Net { ipv6: true, vlans: 1, rtp: true, ..Default::default() },
    ];
    for net in nets {
        let nonref = frame_at(3, None, &[H264_AUD, &h264_slice(0, 1)]);
        let r = run(Cfg::default(), vec![frame(&net, &psi(VPID, 0x1b)), frame(&net, &nonref)]);
        assert_eq!(r.verdicts, vec![TC_ACT_SHOT, TC_ACT_SHOT]);
        assert_eq!(frames_of(&r), [0, 0, 0, 1], "vlans {} ipv6 {} rtp {}", net.vlans, net.ipv6, net.rtp);
        assert_eq!(r.flows[0].0.ipv6, u8::from(net.ipv6));
        assert_eq!(u16::from_be(r.flows[0].0.dport), 5000);
    }
}

#[test]
fn leaves_everything_else_alone() {
    require_root!();
    let video = psi(VPID, 0x1b);
    let cases = vec![
        (Cfg::default(), frame(&Net { frag: true, ..Default::default() }, &video)), // a fragment
        (Cfg::default(), frame(&Net::default(), &video[..1000])),                   // not whole TS packets
        (Cfg::default(), frame(&Net::default(), &[0x11; 376])),                     // no sync byte
        (Cfg { ports: vec![6000], ..Default::default() }, frame(&Net::default(), &video)), // other port
    ];
    for (cfg, f) in cases {
        let r = run(cfg, vec![f.clone()]);
        assert_eq!(r.verdicts, vec![TC_ACT_OK]);
        assert!(r.flows.is_empty());
        assert_eq!(r.outs[0], f, "passed unchanged");
    }
    // With --port, a datagram on that port is cast whole even if it is not TS.
    let f = frame(&Net::default(), &[0x11; 300]);
    let r = run(Cfg { ports: vec![5000], outputs: vec![(128, 0)], ..Default::default() }, vec![f.clone()]);
    assert_eq!(r.verdicts, vec![TC_ACT_REDIRECT]);
    assert_eq!(r.outs[0], f);
    assert_eq!((r.flows.len(), r.flows[0].1.unedited), (1, 1));
    assert_eq!(r.ostats[0].packets, 1);
}

#[test]
fn a_configured_pid_needs_no_pmt() {
    require_root!();
    let r = run(
        Cfg { pid: VPID, codec: 1, ..Default::default() },
        vec![frame(&Net::default(), &frame_at(0, None, &[H264_AUD, &h264_slice(0, 1)]))],
    );
    assert_eq!(frames_of(&r), [0, 0, 0, 1]);
    assert_eq!(r.flows[0].1.video_pid, VPID);
}

fn pkt_pid(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

/// A key output: the non-reference frame's packets are cut out, the PCR survives in an
/// adaptation-field-only packet, counters continue, and the headers stay valid.
#[test]
fn edits_the_datagram_for_a_policy() {
    require_root!();
    for net in [
        Net::default(),
        Net { ipv6: true, ..Default::default() },
        Net { rtp: true, vlans: 1, ..Default::default() },
    ] {
        let d1 = [
            pat(PMT),
            pes_start(VPID, 5, None, &[H264_AUD, &h264_slice(0, 1)]), // non-ref: dropped
            cont(VPID, 6),
            ts(0x101, true, 9, None, &[0x33; 100]), // audio: kept
            ts(VPID, false, 7, Some((0x10, 7)), &[0x5a; 100]), // PCR in the dropped frame
            cont(VPID, 8),
            null(),
        ]
        .concat();
        let d2 = [pes_start(VPID, 9, None, &[H264_AUD, &h264_slice(3, 5)]), cont(VPID, 10)].concat();
        let frames = vec![frame(&net, &psi(VPID, 0x1b)), frame(&net, &d1), frame(&net, &d2)];
        let r = run(Cfg { outputs: vec![(257, 0)], ..Default::default() }, frames.clone());
        assert_eq!(r.verdicts, vec![TC_ACT_REDIRECT; 3]);
        assert_eq!(r.outs[0], frames[0], "no video: unchanged");
        let (_, _, ts_off) = offsets(&net);
        let out = &r.outs[1];
        assert!(checksums_ok(&net, out), "IP and UDP lengths and checksums valid");
        let pkts: Vec<&[u8]> = out[ts_off..].chunks(TS).collect();
        assert_eq!(pkts.len(), 4, "PAT, audio, PCR-only, null");
        assert_eq!(pkts.iter().map(|p| pkt_pid(p)).collect::<Vec<_>>(), [0, 0x101, VPID, 0x1fff]);
        assert_eq!(pkts[0], &d1[..TS]);
        assert_eq!(pkts[1], &d1[3 * TS..4 * TS]);
        let pcr = pkts[2];
        assert_eq!(pcr[1] & 0x40, 0, "no unit start");
        assert_eq!(pcr[3] & 0x30, 0x20, "adaptation field only");
        assert_eq!((pcr[4], pcr[5] & 0x10), (183, 0x10), "whole-packet AF with the PCR flag");
        assert_eq!(&pcr[6..12], &d1[4 * TS + 6..4 * TS + 12], "the PCR itself");
        assert!(pcr[12..].iter().all(|b| *b == 0xff));
        // The class's counter started at the first video packet (5): nothing with payload was
        // sent yet, so the emptied packet repeats 4 and the keyframe continues with 5, 6.
        assert_eq!(pcr[3] & 0x0f, 4);
        let out2 = &r.outs[2];
        assert!(checksums_ok(&net, out2));
        let ccs: Vec<u8> = out2[ts_off..].chunks(TS).map(|p| p[3] & 0x0f).collect();
        assert_eq!(ccs, [5, 6]);
        assert_eq!(&out2[ts_off + 4..ts_off + TS], &d2[4..TS], "payload untouched");
        let st = &r.ostats[0];
        assert_eq!((st.packets, st.frames_sent, st.frames_dropped), (3, 1, 1));
        assert_eq!(st.bytes, (r.outs.iter().map(|o| o.len()).sum::<usize>()) as u64);
    }
}

#[test]
fn an_emptied_datagram_is_not_sent() {
    require_root!();
    let d = frame_at(0, None, &[H264_AUD, &h264_slice(0, 1)]);
    let r = run(
        Cfg { outputs: vec![(0, 0), (128, 1)], ..Default::default() },
        vec![frame(&Net::default(), &psi(VPID, 0x1b)), frame(&Net::default(), &d)],
    );
    // Output 0 (all) gets a clone (to lo); output 1 drops the whole datagram: nothing to redirect.
    assert_eq!(r.verdicts[1], TC_ACT_SHOT);
    assert_eq!((r.ostats[0].packets, r.ostats[0].frames_sent), (2, 1));
    assert_eq!((r.ostats[1].packets, r.ostats[1].frames_dropped), (1, 1));
}

const HUB: u8 = types::cast_out_flag::CAST_OUT_HUB.0 as u8;
const VIA_HUB: u8 = types::cast_out_flag::CAST_OUT_VIA_HUB.0 as u8;

/// A datagram goes out only while this CPU's backlog has room for all the copies of it that will
/// wait there (the table's count), beyond those that hubs' clones already waiting there will
/// make. A clone into a hub whose members queue promises their copies; a backlog with nothing in
/// it holds no clone, so a promise left from a clone lost on its way is forgotten. (A refusal
/// needs a backlog that holds frames when the program starts, which BPF_PROG_TEST_RUN cannot
/// arrange: tests/hub.rs floods real hubs.)
#[test]
fn a_datagram_goes_out_while_the_backlog_has_room_for_all_its_queued_copies() {
    require_root!();
    // Six outputs served directly, then a hub of 8 (its members are the entries before it).
    let out = |slot: u32, flags: u8| types::cast_out { ifindex: 1, slot, flags, ..Default::default() };
    let mut table: Vec<_> = (0..6).map(|slot| out(slot, 0)).collect();
    table.extend((6..14).map(|slot| out(slot, VIA_HUB)));
    table.push(types::cast_out { n_members: 8, n_queued: 8, ..out(14, HUB) });
    // 14 entries fit an empty backlog of 13 (the kernel queues while it holds at most 13), and
    // a datagram bigger than the whole backlog goes while it is empty (its first copies arrive);
    // 0: the limit is not known. A stale promise of 100 copies in an empty backlog is forgotten.
    for (backlog_entries, max, pending) in [(14, 13, 0), (14, 12, 0), (14, 0, 0), (0, 1, 0), (14, 13, 100)] {
        let cfg =
            Cfg { table: table.clone(), backlog_max: max, backlog_entries, pending, ..Default::default() };
        let r = run(cfg, vec![frame(&Net::default(), &psi(VPID, 0x1b))]);
        let what = format!("{backlog_entries} entries, backlog limit {max}, {pending} promised");
        assert_eq!(r.verdicts, [TC_ACT_REDIRECT], "{what}");
        assert!(r.ostats.iter().all(|o| o.packets == 1 && o.clone_errors == 0), "{what}: {r:?}");
        assert!(r.flows.iter().all(|(_, f)| f.overload == 0), "{what}");
    }
    // The hub first, so it takes a clone, which promises its 8 members' copies.
    let mut first: Vec<_> = table[6..].to_vec();
    first.push(out(0, 0));
    let cfg = Cfg { table: first, backlog_max: 100, backlog_entries: 10, ..Default::default() };
    let r = run(cfg, vec![frame(&Net::default(), &psi(VPID, 0x1b))]);
    assert_eq!((r.verdicts.as_slice(), r.pending), ([TC_ACT_REDIRECT].as_slice(), 8), "{r:?}");
}

#[test]
fn malformed_datagrams_reach_no_output() {
    require_root!();
    let set16 = |f: &[u8], at: usize, v: u16| {
        let mut f = f.to_vec();
        f[at..at + 2].copy_from_slice(&v.to_be_bytes());
        f
    };
    let get16 = |f: &[u8], at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
    let video = psi(VPID, 0x1b);
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for ipv6 in [false, true] {
        let net = Net { ipv6, ..Default::default() };
        let good = frame(&net, &video);
        let (l3, l4, _) = offsets(&net);
        let ip_len_at = if ipv6 { l3 + 4 } else { l3 + 2 };
        let udp_len = get16(&good, l4 + 4);
        let v = if ipv6 { "IPv6" } else { "IPv4" };
        cases.push((
            format!("{v}: IP length beyond the frame"),
            set16(&good, ip_len_at, get16(&good, ip_len_at) + 100),
        ));
        cases.push((format!("{v}: UDP length 0"), set16(&good, l4 + 4, 0)));
        cases.push((format!("{v}: UDP length 4"), set16(&good, l4 + 4, 4)));
        cases.push((format!("{v}: UDP length beyond the datagram"), set16(&good, l4 + 4, udp_len + 188)));
    }
    for (what, f) in cases {
        // One output on the port: no copy of a malformed datagram may reach it.
        let r = run(Cfg { ports: vec![5000], outputs: vec![(0, 0)], ..Default::default() }, vec![f.clone()]);
        assert_eq!(r.verdicts, vec![TC_ACT_OK], "{what}: passed to the host, not cast");
        assert!(r.flows.is_empty(), "{what}: no flow state");
        assert_eq!(r.ostats[0].packets, 0, "{what}: no copy");
        assert_eq!(r.outs[0], f, "{what}: unchanged");
    }
}

#[test]
fn rtp_outputs_that_skip_datagrams_see_no_sequence_gap() {
    require_root!();
    let net = |seq| Net { rtp: true, rtp_seq: seq, ..Default::default() };
    let key = frame_at(0, None, &[H264_AUD, &h264_slice(3, 5)]);
    let nonref = frame_at(0, None, &[H264_AUD, &h264_slice(0, 1)]);
    let reference = frame_at(0, None, &[H264_AUD, &h264_slice(2, 1)]);
    let frames = vec![
        frame(&net(0xfffe), &psi(VPID, 0x1b)), // sent
        frame(&net(0xffff), &key),             // sent
        frame(&net(0), &nonref),               // emptied for `key`: not sent
        frame(&net(1), &reference),            // likewise
        frame(&net(2), &psi(VPID, 0x1b)),      // sent, numbered as if 0 and 1 never were
        frame(&net(3), &key),                  // sent
    ];
    let seq_of = |f: &[u8]| {
        let (_, l4, _) = offsets(&net(0));
        u16::from_be_bytes([f[l4 + 10], f[l4 + 11]])
    };
    // `all` (class 0) and `key` (class 1, the last output, whose copy test_run returns).
    let r = run(Cfg { outputs: vec![(0, 0), (257, 1)], ..Default::default() }, frames);
    let sent: Vec<&Vec<u8>> =
        r.verdicts.iter().zip(&r.outs).filter(|(v, _)| **v == TC_ACT_REDIRECT).map(|(_, o)| o).collect();
    assert_eq!(sent.iter().map(|f| seq_of(f)).collect::<Vec<_>>(), [0xfffe, 0xffff, 0, 1]);
    assert!(sent.iter().all(|f| checksums_ok(&net(0), f)), "UDP checksums follow the new numbers");
    let f = r.flows[0].1;
    assert_eq!((f.rtp_skip[0], f.rtp_skip[1]), (0, 2), "only the class that skipped counts");
    assert_eq!(r.ostats[0].packets, 6, "`all` got every datagram");
}

/// A cut datagram ends the frame and its IP packet: no stale bytes of cut packets after it (as
/// padding did), and no IP length beyond the frame (as bytes inside the IP packet after a shorter
/// UDP datagram did). Found by the differential fuzzer.
#[test]
fn a_cut_datagram_ends_the_frame_and_its_ip_packet() {
    require_root!();
    let net = Net::default();
    let (l3, _, ts_off) = offsets(&net);
    let d1 = frame_at(1, None, &[H264_AUD, &h264_slice(0, 1)]); // a non-reference frame from packet 1
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("padding after the IP packet", {
            let mut f = frame(&net, &d1);
            f.extend_from_slice(&[0xaa; 30]);
            f
        }),
        ("bytes inside the IP packet after the UDP datagram", {
            let mut f = frame(&net, &d1[..6 * TS]);
            f.extend_from_slice(&d1[6 * TS..]);
            let total = u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]) + TS as u16;
            f[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
            f[l3 + 10..l3 + 12].fill(0);
            let c = csum_fold(csum_add(0, &f[l3..l3 + 20]));
            f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
            f
        }),
    ];
    for (what, f) in cases {
        let r = run(
            Cfg { outputs: vec![(128, 0)], ..Default::default() },
            vec![frame(&net, &psi(VPID, 0x1b)), f],
        );
        let out = &r.outs[1];
        assert_eq!(out.len(), ts_off + TS, "{what}: the frame ends with the one packet kept");
        assert!(checksums_ok(&net, out), "{what}: IP length = IP header + UDP length, checksums valid");
    }
}

/// Bytes after a UDP datagram (inside its IP packet) that look like an RTP header are not the
/// datagram's: they are never renumbered, so the copy keeps a valid UDP checksum. Found by the
/// differential fuzzer (the sequence number was rewritten and the checksum adjusted for it).
#[test]
fn an_rtp_header_after_the_udp_datagram_is_left_alone() {
    require_root!();
    let net = |seq| Net { rtp: true, rtp_seq: seq, ..Default::default() };
    let nonref = frame_at(0, None, &[H264_AUD, &h264_slice(0, 1)]);
    let (l3, l4, _) = offsets(&net(0));
    // UDP length 8 (no payload), an RTP-like header after it, the UDP checksum valid.
    let mut odd = frame(&net(7), &[]);
    odd[l4 + 4..l4 + 6].copy_from_slice(&8u16.to_be_bytes());
    odd[l4 + 6..l4 + 8].fill(0);
    let mut sum = csum_add(0, &odd[l3 + 12..l3 + 20]);
    sum = csum_add(sum, &[0, 17, 0, 8]);
    let c = csum_fold(csum_add(sum, &odd[l4..l4 + 8]));
    odd[l4 + 6..l4 + 8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
    let frames = vec![
        frame(&net(4), &psi(VPID, 0x1b)),
        frame(&net(5), &frame_at(0, None, &[H264_AUD, &h264_slice(3, 5)])),
        frame(&net(6), &nonref), // emptied for `key`: its class skips one number from now on
        odd.clone(),
    ];
    // `all`, then `key` (the last output: its copy is what test_run returns).
    let r = run(Cfg { ports: vec![5000], outputs: vec![(0, 0), (257, 1)], ..Default::default() }, frames);
    assert_eq!(r.flows[0].1.rtp_skip[1], 1, "the key class skipped one datagram");
    assert_eq!(r.verdicts[3], TC_ACT_REDIRECT);
    assert_eq!(r.outs[3], odd, "cast whole, nothing renumbered");
}
