//! Differential fuzzing: the kernel's cast and switch programs (BPF_PROG_TEST_RUN, in a fresh
//! namespace) against the reference model in tests/common/model.rs, on streams of real clip
//! datagrams in many encapsulations, to outputs of random policies (some with NAT), mutated as a
//! broken or hostile sender would. Every copy
//! the kernel makes is captured on its output (a device per output) and compared with the
//! model's; the flows' state and the counters are compared after each stream. 0 mismatches.
//!
//! `cargo test` runs EBPF_CAST_FUZZ_CASES datagrams per program (default 3600, in streams of 12);
//! `scripts/fuzz --cases N` runs more, in release mode, and prints the tally.
mod common;

use std::{collections::HashMap, mem::MaybeUninit, os::fd::OwnedFd};

use common::{
    model::{self, Cfg, Model, OStat},
    packets::*,
    video, *,
};
use ebpf_cast::kernel::skel::{
    self,
    cast::{types as cast_types, CastSkelBuilder},
    switch::{types as sw_types, SwitchSkelBuilder},
};
use libbpf_rs::{skel::OpenSkel, MapCore, MapFlags, ProgramInput};

const OUTS: usize = 6;
const DGRAMS: usize = 12;
/// test_run takes frames up to about a page: at most 18 TS packets with their headers.
const MAX_TS_TEST_RUN: usize = 18;

/// xorshift64*: small, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Streams of DGRAMS datagrams to run.
/// Frames BPF_PROG_TEST_RUN refuses (EINVAL) before the program sees them, as kernel 6.18 does:
/// an IPv4 frame with part of an IP header, an IPv6 frame with less than a whole one. A device
/// never hands such a frame to tc either (the IP layer checks the header first), so the fuzzers
/// skip them and count them.
fn test_run_refuses(f: &[u8]) -> bool {
    match f.get(12..14) {
        Some([0x08, 0x00]) => f.len() > 14 && f.len() < 14 + 20,
        Some([0x86, 0xdd]) => f.len() < 14 + 40,
        _ => false,
    }
}

fn cases() -> usize {
    let datagrams: usize =
        std::env::var("EBPF_CAST_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3600);
    datagrams.div_ceil(DGRAMS)
}

fn seed() -> u64 {
    std::env::var("EBPF_CAST_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_cafe)
}

/// A packet socket that sees what leaves `ifindex`.
fn capture(ifindex: u32) -> OwnedFd {
    use std::os::fd::FromRawFd;
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket/bind calls with a valid sockaddr_ll.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(proto));
        assert!(fd >= 0, "packet socket: {}", std::io::Error::last_os_error());
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        let rc = libc::bind(
            fd,
            &sll as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        assert_eq!(rc, 0, "bind packet socket");
        OwnedFd::from_raw_fd(fd)
    }
}

/// The frames that left the device since the last call.
fn captured(fd: &OwnedFd) -> Vec<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        // SAFETY: buf and sll are valid for their lengths.
        let (len, pkttype) = unsafe {
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            let mut sl = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            let len = libc::recvfrom(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                &mut sll as *mut _ as *mut libc::sockaddr,
                &mut sl,
            );
            (len, sll.sll_pkttype)
        };
        if len < 0 {
            return got;
        }
        if pkttype == libc::PACKET_OUTGOING {
            got.push(buf[..len as usize].to_vec());
        }
    }
}

/// Devices d0..d{OUTS-1} in the namespace (veths, their peers up too): where the outputs'
/// copies go.
fn devices(ns: &Netns) {
    for i in 0..OUTS {
        ns.ip(&format!("link add d{i} mtu 16000 type veth peer name p{i} mtu 16000"));
        ns.ip(&format!("link set d{i} up"));
        ns.ip(&format!("link set p{i} up"));
    }
}

// ------------------------------------------------------------------------------ inputs

struct Clip {
    ts: Vec<u8>,
}

fn clips() -> Vec<Clip> {
    [("h264-bpyramid-aac", video::H264_BPYRAMID_AAC), ("h265-aac", video::H265_AAC)]
        .iter()
        .map(|(n, a)| Clip { ts: std::fs::read(video::clip(n, a)).unwrap() })
        .collect()
}

fn random_net(r: &mut Rng) -> Net {
    Net {
        vlans: [0, 0, 0, 1, 2][r.below(5)],
        ipv6: r.chance(30),
        ip_options: if r.chance(20) { 1 + r.below(3) } else { 0 },
        rtp: r.chance(30),
        rtp_csrc: if r.chance(30) { r.below(4) as u8 } else { 0 },
        rtp_ext_words: if r.chance(20) { Some(r.below(4) as u16) } else { None },
        rtp_seq: r.next() as u16,
        dport: if r.chance(10) { 6000 } else { 5000 },
        ..Default::default()
    }
}

/// Mutations of the TS payload (the frame is built after them, so its checksums are valid).
fn mutate_ts(r: &mut Rng, ts: &mut Vec<u8>) -> &'static str {
    let n = ts.len() / TS;
    if n == 0 {
        return "none";
    }
    let k = r.below(n) * TS;
    match r.below(10) {
        0 => {
            for _ in 0..1 + r.below(4) {
                let at = k + r.below(TS);
                ts[at] ^= 1 << r.below(8);
            }
            "bit flips in a TS packet"
        }
        1 => {
            ts[k + 3] = (ts[k + 3] & 0x0f) | if r.chance(50) { 0x30 } else { 0x20 };
            ts[k + 4] = r.below(256) as u8;
            "adaptation field length"
        }
        2 => {
            ts[k + 1] |= 0x40;
            if ts[k + 3] & 0x20 == 0 {
                ts[k + 4..k + 7].copy_from_slice(&[0, 0, 1]);
                ts[k + 12] = r.below(256) as u8;
            }
            "PES start with a random header length"
        }
        3 => {
            // A PSI section length or a PMT entry made absurd (on whatever PID this packet has).
            let at = k + 5 + r.below(12);
            ts[at] = r.below(256) as u8;
            "section bytes"
        }
        4 => {
            let pid: u16 = [0x1fff, 0x1000, 0x100, 0][r.below(4)];
            let at = k + 5 + r.below(20);
            ts[at] = 0xe0 | (pid >> 8) as u8;
            ts[at + 1] = pid as u8;
            "a PID inside PSI"
        }
        5 => {
            if n > 1 {
                ts[k.max(TS)] = 0x46;
            }
            "a lost sync byte"
        }
        6 => {
            ts[k + 1] |= 0x40;
            "unit start set"
        }
        7 => {
            ts.truncate(ts.len() - 1 - r.below(TS));
            "not whole TS packets"
        }
        8 => {
            for b in ts.iter_mut() {
                *b = r.next() as u8;
            }
            if r.chance(50) {
                ts[0] = 0x47;
            }
            "random bytes"
        }
        _ => {
            // A NAL start code split across two packets: the end of one, the start of the next.
            if n > 1 {
                let next = (k + TS) % (n * TS);
                ts[k + TS - 2..k + TS].copy_from_slice(&[0, 0]);
                ts[next + 4] = 1;
            }
            "a start code split across packets"
        }
    }
}

/// A length field made wrong: one of `small`, off by one, off by a TS packet, or anything.
fn wrong_length(r: &mut Rng, real: u16, small: &[u16]) -> u16 {
    let mut v = small.to_vec();
    v.extend([real.wrapping_add(1), real.wrapping_sub(1), real.wrapping_add(188), real.wrapping_sub(188)]);
    v.push(r.next() as u16);
    v[r.below(v.len())]
}

/// Mutations of the headers (after framing: checksums are left as they fall).
fn mutate_frame(r: &mut Rng, net: &Net, f: &mut Vec<u8>) -> &'static str {
    let (l3, l4, _) = offsets(net);
    match r.below(8) {
        0 => {
            for _ in 0..1 + r.below(3) {
                let at = r.below(f.len().min(l4 + 24));
                f[at] ^= 1 << r.below(8);
            }
            "bit flips in the headers"
        }
        1 => {
            // test_run refuses a frame shorter than its IP header (a NIC would deliver it).
            let min = (l3 + 40).min(f.len() - 1);
            let len = min + r.below(f.len() - min);
            f.truncate(len);
            "truncated"
        }
        2 => {
            let v = wrong_length(r, u16::from_be_bytes([f[l4 + 4], f[l4 + 5]]), &[0, 4, 7, 8]);
            f[l4 + 4..l4 + 6].copy_from_slice(&v.to_be_bytes());
            "UDP length"
        }
        3 => {
            let at = if net.ipv6 { l3 + 4 } else { l3 + 2 };
            let v = wrong_length(r, u16::from_be_bytes([f[at], f[at + 1]]), &[0]);
            f[at..at + 2].copy_from_slice(&v.to_be_bytes());
            "IP length"
        }
        4 => {
            if net.ipv6 {
                f[l3 + 6] = [0, 43, 44, 60][r.below(4)]; // an extension header first
                "IPv6 extension header"
            } else {
                f[l3 + 6] |= if r.chance(50) { 0x20 } else { 0x01 };
                "IPv4 fragment"
            }
        }
        5 => {
            f.extend((0..1 + r.below(46)).map(|_| r.next() as u8));
            "bytes after the datagram (padding)"
        }
        6 => {
            if net.rtp {
                f[l4 + 8] |= if r.chance(50) { 0x20 } else { 0x0f }; // padding bit, or 15 CSRCs claimed
            }
            "RTP padding or CSRC count"
        }
        _ => {
            f[12..14].copy_from_slice(&[0x88, 0xa8]); // an outer QinQ tag claimed
            "QinQ ethertype"
        }
    }
}

// ------------------------------------------------------------------------------ the cast

#[derive(Default)]
struct Tally {
    datagrams: usize,
    /// Datagrams whose copies the kernel stopped at a full backlog (not compared).
    overloaded: usize,
    /// Frames test_run refuses (test_run_refuses): not run.
    refused: usize,
    copies: usize,
    passed: usize,
    mismatches: Vec<String>,
    mutations: HashMap<&'static str, usize>,
}

fn fuzz_cast(cfg_ports: Vec<u16>, cfg_pid: u16, cases: usize, seed: u64) -> Tally {
    let clips = clips();
    let ns = Netns::new("fuzz");
    devices(&ns);
    ns.enter(move || {
        let mut obj = MaybeUninit::uninit();
        let mut open = skel::open(CastSkelBuilder::default(), &mut obj).unwrap();
        let ro = open.maps.rodata_data.as_deref_mut().unwrap();
        ro.cfg_nports = cfg_ports.len() as u32;
        for (d, p) in ro.cfg_ports.iter_mut().zip(&cfg_ports) {
            *d = p.to_be();
        }
        ro.cfg_video_pid = cfg_pid;
        let mut skel = open.load().unwrap();
        let ifindex: Vec<u32> =
            (0..OUTS).map(|i| nix::net::if_::if_nametoindex(format!("d{i}").as_str()).unwrap()).collect();
        let socks: Vec<OwnedFd> = ifindex.iter().map(|i| capture(*i)).collect();
        let ncpu = libbpf_rs::num_possible_cpus().unwrap();
        let zero_stat = vec![vec![0u8; std::mem::size_of::<cast_types::cast_ostat>()]; ncpu];
        let mut r = Rng(seed);
        let mut t = Tally::default();
        for case in 0..cases {
            // A table of 1..6 outputs, sorted by level, a class per level.
            let k = 1 + r.below(OUTS);
            let mut levels: Vec<u16> =
                (0..k).map(|_| [0, 0, 1 + r.below(255) as u16, 128, 256, 257][r.below(6)]).collect();
            levels.sort();
            let mut classes: Vec<u16> = Vec::new();
            let outputs: Vec<(u16, u8)> = levels
                .iter()
                .map(|l| {
                    if !classes.contains(l) {
                        classes.push(*l);
                    }
                    (*l, classes.iter().position(|c| c == l).unwrap() as u8)
                })
                .collect();
            // Fresh state: no flow, zero counters, the new table.
            for key in skel.maps.cast_flows.keys().collect::<Vec<_>>() {
                skel.maps.cast_flows.delete(&key).unwrap();
            }
            for i in 0..OUTS as u32 {
                skel.maps.cast_ostats.update_percpu(&i.to_ne_bytes(), &zero_stat, MapFlags::ANY).unwrap();
            }
            let bss = skel.maps.bss_data.as_deref_mut().unwrap();
            bss.cast_active = 0;
            let tab = &mut bss.cast_tabs[0];
            *tab = cast_types::cast_table::default();
            // A quarter of the outputs rewrite the destination (NAT).
            let nat: Vec<Option<model::Nat>> = (0..k)
                .map(|_| {
                    r.chance(25).then(|| {
                        let b = r.next().to_be_bytes();
                        ([10, 215, b[0], b[1]], 1 + (b[2] as u16) * 200, [0x02, b[3], b[4], b[5], b[6], b[7]])
                    })
                })
                .collect();
            for (i, (level, class_id)) in outputs.iter().enumerate() {
                tab.out[i] = cast_types::cast_out {
                    ifindex: ifindex[i],
                    level: *level,
                    class_id: *class_id,
                    slot: i as u32,
                    ..Default::default()
                };
                if let Some((ip, port, mac)) = nat[i] {
                    ebpf_cast::out::set_nat(
                        &mut tab.out[i],
                        std::net::SocketAddrV4::new(ip.into(), port),
                        mac,
                    );
                }
            }
            tab.n_out = k as u32;
            let mut m =
                Model::new(Cfg { ports: cfg_ports.clone(), video_pid: cfg_pid, codec: 0, outputs, nat });

            // A stream: consecutive datagrams of a clip, from its start or anywhere.
            let clip = &clips[r.below(clips.len())];
            let total = clip.ts.len() / TS;
            let mut at = if r.chance(50) { 0 } else { r.below(total) };
            let per = if r.chance(70) { 7 } else { 1 + r.below(MAX_TS_TEST_RUN) };
            let mut net = random_net(&mut r);
            let mut overloaded_before = 0u64;
            for d in 0..DGRAMS {
                let n = per.min(total - at.min(total - 1));
                let mut ts = clip.ts[at * TS..(at + n) * TS].to_vec();
                at = (at + n) % total;
                let mut what = "none";
                if r.chance(20) {
                    what = mutate_ts(&mut r, &mut ts);
                }
                net.rtp_seq = net.rtp_seq.wrapping_add(1);
                let mut f = frame(&net, &ts);
                if r.chance(15) {
                    what = mutate_frame(&mut r, &net, &mut f);
                }
                *t.mutations.entry(what).or_default() += 1;
                if test_run_refuses(&f) {
                    t.refused += 1;
                    continue;
                }
                let want = m.run(&f);
                let mut out = vec![0u8; 16384];
                let o = skel
                    .progs
                    .ecast_cast_in
                    .test_run(ProgramInput {
                        data_in: Some(&f),
                        data_out: Some(&mut out),
                        ..Default::default()
                    })
                    .unwrap_or_else(|e| panic!("test_run of a {}-byte frame: {e}", f.len()));
                let got_data = o.data.unwrap().to_vec();
                t.datagrams += 1;
                // Copies wait in this CPU's input backlog until softirqs run; when the machine is
                // busy it can fill, and the program rightly stops the datagram's copies (the
                // flow's `overload`): nothing to compare for that datagram.
                let overload: u64 = skel
                    .maps
                    .cast_flows
                    .keys()
                    .filter_map(|k| skel.maps.cast_flows.lookup(&k, MapFlags::ANY).ok().flatten())
                    .filter_map(|v| skel::from_bytes::<cast_types::cast_flow>(&v).map(|f| f.overload))
                    .sum();
                if overload > overloaded_before {
                    overloaded_before = overload;
                    t.overloaded += 1;
                    socks.iter().for_each(|s| drop(captured(s)));
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
                let mut errs: Vec<String> = Vec::new();
                if o.return_value != want.verdict {
                    errs.push(format!("verdict {} where the model says {}", o.return_value, want.verdict));
                }
                if want.verdict == model::TC_ACT_OK {
                    t.passed += 1;
                    if got_data != f {
                        errs.push("a passed frame was changed".into());
                    }
                }
                for (i, sock) in socks.iter().enumerate() {
                    let mut copies = captured(sock);
                    if i + 1 == k && o.return_value == model::TC_ACT_REDIRECT {
                        copies.push(got_data.clone()); // the original, redirected
                    }
                    let want_copy = if i < k { want.copies.get(i).cloned().flatten() } else { None };
                    match (want_copy, copies.as_slice()) {
                        (None, []) => {}
                        (Some(w), [g]) => {
                            t.copies += 1;
                            if let Err(e) = model::same_frame(&f, &w, g) {
                                if let Some(dir) = std::env::var_os("EBPF_CAST_FUZZ_DUMP") {
                                    let p = std::path::Path::new(&dir).join(format!("c{case}-d{d}-o{i}"));
                                    let h =
                                        |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
                                    let _ = std::fs::write(p, format!("{}\n{}\n{}\n", h(&f), h(g), h(&w)));
                                }
                                errs.push(format!(
                                    "output {i}: {e}\n  got:   {}\n  model: {}",
                                    hex(g),
                                    hex(&w)
                                ));
                            }
                        }
                        (w, g) => errs.push(format!(
                            "output {i}: {} frames where the model says {}",
                            g.len(),
                            usize::from(w.is_some())
                        )),
                    }
                }
                for e in errs {
                    t.mismatches.push(format!(
                        "case {case} datagram {d} ({what}; {n} TS packets, outputs {:?}): {e}\n  frame: {}",
                        m.cfg.outputs,
                        hex(&f)
                    ));
                }
            }
            // The state the stream left: every flow, every counter.
            let mut kflows = HashMap::new();
            for key in skel.maps.cast_flows.keys() {
                let v = skel.maps.cast_flows.lookup(&key, MapFlags::ANY).unwrap().unwrap();
                let k: cast_types::flow_key = skel::from_bytes(&key).unwrap();
                let v: cast_types::cast_flow = skel::from_bytes(&v).unwrap();
                kflows
                    .insert((k.saddr, k.daddr, u16::from_be(k.sport), u16::from_be(k.dport), k.ipv6 != 0), v);
            }
            if kflows.len() != m.flows.len() {
                t.mismatches.push(format!(
                    "case {case}: {} flows where the model has {}",
                    kflows.len(),
                    m.flows.len()
                ));
            }
            for (key, want) in &m.flows {
                let Some(got) = kflows.get(key) else {
                    t.mismatches.push(format!("case {case}: flow {key:?} missing"));
                    continue;
                };
                let got = model::Flow {
                    video_pid: got.video_pid,
                    pmt_pid: got.pmt_pid,
                    codec: got.codec,
                    prio: got.prio,
                    nonref_seq: got.nonref_seq,
                    cc: got.cc,
                    frames: got.frames,
                    packets: got.packets,
                    bytes: got.bytes,
                    unedited: got.unedited,
                    rtp_skip: got.rtp_skip,
                };
                if got != *want {
                    t.mismatches
                        .push(format!("case {case}: flow state\n  kernel: {got:?}\n  model:  {want:?}"));
                }
            }
            for i in 0..k {
                let mut sum = OStat::default();
                for v in skel::per_cpu::<cast_types::cast_ostat>(&skel.maps.cast_ostats, i as u32).unwrap() {
                    sum.packets += v.packets;
                    sum.bytes += v.bytes;
                    sum.frames_sent += v.frames_sent;
                    sum.frames_dropped += v.frames_dropped;
                }
                if sum != m.ostats[i] {
                    t.mismatches
                        .push(format!("case {case}: output {i} counters {sum:?}, model {:?}", m.ostats[i]));
                }
            }
        }
        t
    })
}

fn hex(f: &[u8]) -> String {
    f.iter().take(96).map(|b| format!("{b:02x}")).collect::<String>() + if f.len() > 96 { "..." } else { "" }
}

fn report(what: &str, t: &Tally) {
    let mut muts: Vec<_> = t.mutations.iter().collect();
    muts.sort();
    eprintln!(
        "{what}: {} datagrams, {} copies compared, {} passed to the host, {} not compared (backlog full), {} not run (test_run refuses them), {} mismatches; mutations {muts:?}",
        t.datagrams,
        t.copies,
        t.passed,
        t.overloaded,
        t.refused,
        t.mismatches.len()
    );
    assert!(
        t.overloaded * 100 <= t.datagrams,
        "{} of {} datagrams overloaded: the machine is too busy",
        t.overloaded,
        t.datagrams
    );
    assert!(
        t.mismatches.is_empty(),
        "{} mismatches, the first ones:\n{}",
        t.mismatches.len(),
        t.mismatches
            .iter()
            .take(std::env::var("EBPF_CAST_FUZZ_SHOW").ok().and_then(|v| v.parse().ok()).unwrap_or(5))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn cast_matches_the_model_on_every_port() {
    require_root!();
    let t = fuzz_cast(vec![], 0, cases(), seed());
    report("cast (every UDP flow carrying TS)", &t);
}

#[test]
fn cast_matches_the_model_with_port_and_pid() {
    require_root!();
    let t = fuzz_cast(vec![5000], 0, cases() / 2, seed() ^ 1);
    report("cast --port 5000", &t);
    let t = fuzz_cast(vec![5000], 0x100, cases() / 2, seed() ^ 2);
    report("cast --port 5000 --pid 0x100", &t);
}

// ------------------------------------------------------------------------------ the switch

#[test]
fn switch_matches_the_model() {
    require_root!();
    let n = cases() * DGRAMS;
    let seed = seed();
    let ns = Netns::new("fuzzsw");
    devices(&ns);
    let (mismatches, refused) = ns.enter(move || {
        let (mut bad, mut refused) = (Vec::new(), 0);
        for mode in [sw_types::sw_mode::SW_MODE_REDIRECT, sw_types::sw_mode::SW_MODE_CLONE] {
            let mut obj = MaybeUninit::uninit();
            let mut open = skel::open(SwitchSkelBuilder::default(), &mut obj).unwrap();
            open.maps.rodata_data.as_deref_mut().unwrap().sw_mode = mode;
            let skel = open.load().unwrap();
            let ncpu = libbpf_rs::num_possible_cpus().unwrap();
            let d: Vec<u32> =
                (0..2).map(|i| nix::net::if_::if_nametoindex(format!("d{i}").as_str()).unwrap()).collect();
            // Port d0 -> d1; d1 is not a port of this switch.
            let v = sw_types::sw_port { out_ifindex: d[1], ..Default::default() };
            let bytes = unsafe { plain::as_bytes(&v) }.to_vec();
            skel.maps
                .ecsw_ports
                .update_percpu(&d[0].to_ne_bytes(), &vec![bytes; ncpu], MapFlags::ANY)
                .unwrap();
            let sock = capture(d[1]);
            let mut r = Rng(seed ^ u64::from(mode.0));
            let (mut packets, mut bytes_sum) = (0u64, 0u64);
            for i in 0..n {
                let len = 14 + r.below(1500);
                let f: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
                let port = r.chance(80);
                if test_run_refuses(&f) {
                    refused += 1;
                    continue;
                }
                let mut ctx = vec![0u8; 44];
                ctx[40..44].copy_from_slice(&d[if port { 0 } else { 1 }].to_ne_bytes());
                let mut out = vec![0u8; 2048];
                let o = skel
                    .progs
                    .ecast_switch_in
                    .test_run(ProgramInput {
                        data_in: Some(&f),
                        data_out: Some(&mut out),
                        context_in: Some(&mut ctx),
                        ..Default::default()
                    })
                    .unwrap();
                let data = o.data.unwrap().to_vec();
                let copies = captured(&sock);
                let (want_verdict, want_copy) = match (port, mode) {
                    (false, _) => (model::TC_ACT_OK, false),
                    (true, sw_types::sw_mode::SW_MODE_REDIRECT) => (model::TC_ACT_REDIRECT, false),
                    (true, _) => (model::TC_ACT_OK, true),
                };
                if port {
                    packets += 1;
                    bytes_sum += len as u64;
                }
                let copy_ok = if want_copy { copies == [f.clone()] } else { copies.is_empty() };
                if o.return_value != want_verdict || data != f || !copy_ok {
                    bad.push(format!(
                        "mode {mode:?} frame {i} (port {port}, {len} bytes): verdict {}, changed {}, {} copies",
                        o.return_value,
                        data != f,
                        copies.len()
                    ));
                }
            }
            let (mut kp, mut kb) = (0, 0);
            for p in skel::per_cpu::<sw_types::sw_port>(&skel.maps.ecsw_ports, d[0]).unwrap() {
                kp += p.packets;
                kb += p.bytes;
            }
            if (kp, kb) != (packets, bytes_sum) {
                bad.push(format!("mode {mode:?}: counters ({kp}, {kb}), model ({packets}, {bytes_sum})"));
            }
        }
        (bad, refused)
    });
    eprintln!(
        "switch: {} frames in each mode, {refused} not run (test_run refuses them), {} mismatches",
        n,
        mismatches.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.iter().take(5).cloned().collect::<Vec<_>>().join("\n"));
}
