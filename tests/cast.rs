//! `ebpf-cast cast` end to end: cam -- c0|in0 [edge: cast] o1..o4|r1..r4 -- rx1..rx4.
//! Every receiver carries the edge's MAC and IP (copies keep the original headers), so a plain
//! UDP socket receives what its output got, and the kernel has checked the UDP checksum.
mod common;

use std::{
    net::UdpSocket,
    path::{Path, PathBuf},
    time::Duration,
};

use common::{video::*, *};
use nix::sys::signal::Signal;

const EDGE_IP: &str = "10.202.0.1";
const CAM_IP: &str = "10.202.0.2";

type Edge = CastEdge;

fn edge(n_out: usize) -> Edge {
    CastEdge::new(n_out, EDGE_IP, CAM_IP)
}

/// Sends a TS file as datagrams of `per_dgram` TS packets, paced.
fn send_ts(from: &Netns, src_port: u16, dst_port: u16, ts: Vec<u8>, per_dgram: usize) -> usize {
    let tx = from.udp(&format!("{CAM_IP}:{src_port}"));
    let n = ts.chunks(188 * per_dgram).len();
    for (i, chunk) in ts.chunks(188 * per_dgram).enumerate() {
        tx.send_to(chunk, format!("{EDGE_IP}:{dst_port}")).unwrap();
        if i % 4 == 3 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    n
}

/// Every link of the topology gets `mtu`.
fn set_mtu(t: &Edge, mtu: u32) {
    t.cam.ip(&format!("link set dev c0 mtu {mtu}"));
    t.edge.ip(&format!("link set dev in0 mtu {mtu}"));
    for (o, rx) in t.outputs.iter().zip(&t.rx) {
        t.edge.ip(&format!("link set dev {o} mtu {mtu}"));
        rx.ip(&format!("link set dev r0 mtu {mtu}"));
    }
}

fn start_cast(t: &Edge, specs: &[String], extra: &[&str]) -> Proc {
    let mut cmd = t.edge.cmd(bin());
    cmd.args(["cast", "in0", "--json"]).args(extra);
    for s in specs {
        cmd.args(["--to", s]);
    }
    let mut p = Proc::spawn(cmd);
    p.wait_for("\"outputs\"", Duration::from_secs(20));
    p
}

const POLICIES: [(&str, u16); 4] = [("all", 0), ("nonref=0.5", 128), ("ref", 256), ("key", 257)];

/// Checks one output's capture against the original clip.
fn check_capture(clip: &Path, kinds: &[Kind], policy: &str, level: u16, capture: &[u8], dir: &Path) -> usize {
    let out: PathBuf = dir.join(format!("out-{}-{}.ts", clip.file_stem().unwrap().to_string_lossy(), policy));
    std::fs::write(&out, capture).unwrap();
    let want = expected_frames(kinds, level);
    assert_eq!(decoded_frames(&out), want, "{policy}: decoded frames of {}", out.display());
    let orig = frame_md5s(clip);
    let got = frame_md5s(&out);
    assert_eq!(got.len(), want, "{policy}: frames hashed");
    assert!(is_subsequence(&got, &orig), "{policy}: some decoded frame differs from every original frame");
    let warnings = decode_warnings(&out);
    assert!(warnings.trim().is_empty(), "{policy}: ffmpeg warned:\n{warnings}");
    let gap = max_pcr_gap_ms(capture);
    assert!(gap <= 100.0, "{policy}: PCR gap {gap} ms");
    want
}

fn cast_one_clip(name: &str, args: &str) {
    cast_clip_in_datagrams_of(name, args, 7, &[]);
}

/// Casts a clip sent in datagrams of `per_dgram` TS packets (more than 7 need jumbo frames: every
/// link then gets MTU 9000) to one output per policy, and checks every output. `extra`: more
/// arguments for the cast.
fn cast_clip_in_datagrams_of(name: &str, args: &str, per_dgram: usize, extra: &[&str]) {
    require_root!();
    let clip = clip(name, args);
    let kinds = frame_kinds(&clip);
    let ts = std::fs::read(&clip).unwrap();
    let t = edge(4);
    if per_dgram > 7 {
        set_mtu(&t, 9000);
    }
    let specs: Vec<String> = t.outputs.iter().zip(POLICIES).map(|(o, (p, _))| format!("{o}:{p}")).collect();
    let rx: Vec<UdpSocket> = t.rx.iter().map(|r| r.udp(&format!("{EDGE_IP}:5000"))).collect();
    rx.iter().for_each(big_rcvbuf);
    let cast = start_cast(&t, &specs, extra);
    let sent = send_ts(&t.cam, 4000, 5000, ts.clone(), per_dgram);
    std::thread::sleep(Duration::from_millis(300));
    let stats = cast.final_report(Signal::SIGTERM);

    // One directory per test: two tests may cast the same clip at once, and a capture written
    // over another test's file while ffmpeg reads it makes that decoder warn.
    let test = std::thread::current().name().unwrap_or("main").replace("::", "-");
    let dir = clip.parent().unwrap().join(test);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (policy, level)) in POLICIES.iter().enumerate() {
        let got = drain(&rx[i]);
        let capture: Vec<u8> = got.concat();
        if *level == 0 {
            assert_eq!(got.len(), sent, "all: every datagram");
            assert!(capture == ts, "all: the capture is the clip, byte for byte");
        }
        let frames = check_capture(&clip, &kinds, policy, *level, &capture, &dir);
        let o = &stats["outputs"][i];
        assert_eq!(o["packets"].as_u64().unwrap(), got.len() as u64, "{policy}: packets counted = received");
        assert_eq!(o["frames_sent"].as_u64().unwrap(), frames as u64, "{policy}: frames counted");
        assert_eq!(
            o["frames_dropped"].as_u64().unwrap(),
            (kinds.len() - frames) as u64,
            "{policy}: frames dropped"
        );
        assert_eq!(o["clone_errors"].as_u64().unwrap(), 0);
    }
    let flow = &stats["flows"][0];
    let count = |k: Kind| kinds.iter().filter(|x| **x == k).count() as u64;
    assert_eq!(flow["frames_key"].as_u64().unwrap(), count(Kind::Key), "{flow}");
    assert_eq!(flow["frames_ref"].as_u64().unwrap(), count(Kind::Ref), "{flow}");
    assert_eq!(flow["frames_nonref"].as_u64().unwrap(), count(Kind::NonRef), "{flow}");
    assert_eq!(flow["unedited"].as_u64().unwrap(), 0, "every datagram edited per policy: {flow}");
}

/// Jumbo frames: 47 TS packets fill MTU 9000. Every policy holds as in 7-packet datagrams.
#[test]
fn h264_in_jumbo_datagrams() {
    cast_clip_in_datagrams_of("h264-bpyramid-aac", H264_BPYRAMID_AAC, 47, &[]);
}

/// Every policy through a hub of its own (`--hub-min 1`): the hub's broadcast path holds every
/// policy as the direct copies do.
#[test]
fn h264_through_hubs() {
    cast_clip_in_datagrams_of("h264-bpyramid-aac", H264_BPYRAMID_AAC, 7, &["--hub-min", "1"]);
}

/// The same in jumbo datagrams, H.265.
#[test]
fn h265_jumbo_through_hubs() {
    cast_clip_in_datagrams_of("h265-aac", H265_AAC, 20, &["--hub-min", "1"]);
}

/// More TS packets than the program edits (64): such a datagram may carry any frame, so it
/// goes whole to the outputs that take everything, and to no other.
#[test]
fn datagrams_too_large_to_edit_reach_only_all_outputs() {
    require_root!();
    let ts = std::fs::read(clip("h264-no-b", H264_NO_B)).unwrap();
    let t = edge(2);
    set_mtu(&t, 16000);
    let rx: Vec<UdpSocket> = t.rx.iter().map(|r| r.udp(&format!("{EDGE_IP}:5000"))).collect();
    rx.iter().for_each(big_rcvbuf);
    let cast = start_cast(&t, &["o1:all".into(), "o2:key".into()], &[]);
    let sent = send_ts(&t.cam, 4000, 5000, ts[..188 * 70 * 20].to_vec(), 70);
    std::thread::sleep(Duration::from_millis(300));
    let stats = cast.final_report(Signal::SIGTERM);
    let all = drain(&rx[0]);
    assert_eq!(all.concat(), ts[..188 * 70 * 20], "all: every datagram, whole");
    assert!(drain(&rx[1]).is_empty(), "key: nothing that could carry a frame it drops");
    assert_eq!(stats["flows"][0]["unedited"].as_u64().unwrap(), sent as u64, "{stats}");
    assert_eq!(stats["outputs"][1]["packets"].as_u64().unwrap(), 0, "{stats}");
}

#[test]
fn h265_in_datagrams_of_20_ts_packets() {
    cast_clip_in_datagrams_of("h265-aac", H265_AAC, 20, &[]);
}

#[test]
fn h264_with_b_pyramid_and_aac() {
    cast_one_clip("h264-bpyramid-aac", H264_BPYRAMID_AAC);
}

#[test]
fn h264_without_b_frames() {
    cast_one_clip("h264-no-b", H264_NO_B);
}

#[test]
fn h264_flat_b_frames_on_pid_0x200() {
    cast_one_clip("h264-flat-b-pid200", H264_FLAT_B_PID200);
}

#[test]
fn h265_with_aac() {
    cast_one_clip("h265-aac", H265_AAC);
}

#[test]
fn two_cameras_are_classified_independently() {
    require_root!();
    let clips = [clip("h264-bpyramid-aac", H264_BPYRAMID_AAC), clip("h265-aac", H265_AAC)];
    let kinds: Vec<Vec<Kind>> = clips.iter().map(|c| frame_kinds(c)).collect();
    let data: Vec<Vec<u8>> = clips.iter().map(|c| std::fs::read(c).unwrap()).collect();
    let t = edge(4);
    let specs: Vec<String> = t.outputs.iter().zip(POLICIES).map(|(o, (p, _))| format!("{o}:{p}")).collect();
    let rx: Vec<[UdpSocket; 2]> =
        t.rx.iter().map(|r| [r.udp(&format!("{EDGE_IP}:5000")), r.udp(&format!("{EDGE_IP}:5001"))]).collect();
    rx.iter().flatten().for_each(big_rcvbuf);
    let cast = start_cast(&t, &specs, &[]);
    // Both cameras at once, their datagrams interleaved on the same ingress.
    let tx = [t.cam.udp(&format!("{CAM_IP}:4000")), t.cam.udp(&format!("{CAM_IP}:4001"))];
    let chunks: Vec<Vec<&[u8]>> = data.iter().map(|d| d.chunks(1316).collect()).collect();
    for i in 0..chunks[0].len().max(chunks[1].len()) {
        for cam in 0..2 {
            if let Some(c) = chunks[cam].get(i) {
                tx[cam].send_to(c, format!("{EDGE_IP}:{}", 5000 + cam)).unwrap();
            }
        }
        if i % 2 == 1 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let stats = cast.final_report(Signal::SIGTERM);
    let dir = clips[0].parent().unwrap().join("two-cameras");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (policy, level)) in POLICIES.iter().enumerate() {
        let mut total = 0;
        for cam in 0..2 {
            let capture = drain(&rx[i][cam]).concat();
            if *level == 0 {
                assert!(capture == data[cam], "camera {cam}, all: byte for byte");
            }
            total += check_capture(&clips[cam], &kinds[cam], policy, *level, &capture, &dir);
        }
        assert_eq!(stats["outputs"][i]["frames_sent"].as_u64().unwrap(), total as u64, "{policy}");
    }
    assert_eq!(stats["flows"].as_array().unwrap().len(), 2, "two flows: {stats}");
}
