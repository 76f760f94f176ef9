//! Bitrate caps (`--to OUT:max=RATE`): clips streamed in real time by `ebpf-cast send` to a cast
//! with capped outputs. Each capped output must decode cleanly (frames decoded = frames the kernel
//! sent, each identical to an original, no warning, PCR gaps <= 100 ms), stay within its cap in
//! every one-second window (plus the one frame that started last), and use its budget.
mod common;

use std::{
    net::UdpSocket,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use common::{video::*, *};
use nix::sys::signal::Signal;
use serde_json::Value;

const EDGE_IP: &str = "10.217.0.1";
const CAM_IP: &str = "10.217.0.2";

/// H.264 with B-frames and AAC, GOP 50: about 420 kbit/s in all, 320 kbit/s without the
/// non-reference frames, 120 kbit/s of keyframes, audio and tables.
const CLIP_AAC: &str = H264_BPYRAMID_AAC;
/// H.264 whose B-frames are all non-reference, and AAC, GOP 50: about 420 kbit/s in all, 270
/// kbit/s without the B-frames.
const CLIP_FLAT_B: &str = "-f lavfi -i sine=frequency=440:sample_rate=48000 -t 8 -map 0:v -map 1:a \
     -c:v libx264 -preset veryfast -g 50 -bf 3 -x264-params b-pyramid=none -c:a aac -b:a 64k";
/// GOP 10: about 420 kbit/s in all, 150 kbit/s of keyframes and tables.
const CLIP_GOP10: &str = "-t 8 -c:v libx264 -preset veryfast -g 10";
/// 4 s of a still grey picture, then 4 s of noise (about 3.5 Mbit/s).
const CLIP_STILL_THEN_NOISE: &str = "-f lavfi -i color=c=gray:size=320x240:rate=25 -filter_complex \
     '[1:v]trim=duration=4[a];[0:v]trim=duration=4,setpts=PTS-STARTPTS,noise=alls=40:allf=t+u[b];\
     [a][b]concat=n=2:v=1[v]' -map '[v]' -c:v libx264 -preset veryfast -g 50";

/// What a clip holds: its length, bytes, and the bytes of its largest video frame.
struct ClipFacts {
    secs: f64,
    bytes: usize,
    /// TS bytes of the video frames, in stream order, and the rest (audio, tables).
    frames: Vec<usize>,
    other: usize,
}

fn facts(ts: &[u8], kinds: &[Kind]) -> ClipFacts {
    let packets: Vec<&[u8]> = ts.chunks(188).collect();
    fn payload(p: &[u8]) -> &[u8] {
        let off = if p[3] & 0x20 != 0 { 5 + p[4] as usize } else { 4 };
        p.get(off..).unwrap_or(&[])
    }
    use ebpf_cast::mpegts::pid;
    let video = packets
        .iter()
        .find(|p| p[1] & 0x40 != 0 && payload(p).starts_with(&[0, 0, 1, 0xe0]))
        .map(|p| pid(p))
        .expect("a video PES");
    let (mut frames, mut other) = (Vec::new(), 0);
    for p in &packets {
        if pid(p) != video {
            other += 188;
            continue;
        }
        if p[1] & 0x40 != 0 {
            frames.push(0);
        }
        if let Some(f) = frames.last_mut() {
            *f += 188;
        }
    }
    assert_eq!(frames.len(), kinds.len(), "frames in the clip");
    let pcrs: Vec<f64> =
        packets.iter().filter_map(|p| ebpf_cast::mpegts::pcr(p)).map(|t| t as f64 / 27e6).collect();
    let secs = pcrs.last().unwrap() - pcrs[0];
    ClipFacts { secs, bytes: ts.len(), frames, other }
}

impl ClipFacts {
    fn bps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.secs
    }

    /// The rate of keyframes, audio and tables.
    fn key_bps(&self, kinds: &[Kind]) -> f64 {
        let keys: usize =
            self.frames.iter().zip(kinds).filter(|(_, k)| **k == Kind::Key).map(|(b, _)| b).sum();
        (keys + self.other) as f64 * 8.0 / self.secs
    }

    fn largest_frame(&self) -> usize {
        *self.frames.iter().max().unwrap()
    }
}

/// A receiver that notes when each datagram arrives.
struct Recorder {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(Instant, Vec<u8>)>>,
}

impl Recorder {
    fn new(s: UdpSocket) -> Recorder {
        big_rcvbuf(&s);
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let done = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 65536];
            while !done.load(Ordering::Relaxed) {
                if let Ok(n) = s.recv(&mut buf) {
                    got.push((Instant::now(), buf[..n].to_vec()));
                }
            }
            got
        });
        Recorder { stop, thread }
    }

    fn finish(self) -> Vec<(Instant, Vec<u8>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// The most UDP payload bytes that arrived within any one second.
fn max_bytes_per_second(got: &[(Instant, Vec<u8>)]) -> usize {
    let mut max = 0;
    let (mut start, mut sum) = (0, 0);
    for (t, d) in got {
        sum += d.len();
        while *t - got[start].0 >= Duration::from_secs(1) {
            sum -= got[start].1.len();
            start += 1;
        }
        max = max.max(sum);
    }
    max
}

struct Run {
    clip: std::path::PathBuf,
    kinds: Vec<Kind>,
    facts: ClipFacts,
    got: Vec<Vec<(Instant, Vec<u8>)>>,
    stats: Value,
}

/// Casts `clip` in real time to one output per spec; `during` runs (with the edge) while the
/// clip is being sent.
fn cast_clip(name: &str, clip_args: &str, specs: &[&str], during: impl FnOnce(&CastEdge)) -> Run {
    let clip = clip(name, clip_args);
    let kinds = frame_kinds(&clip);
    let ts = std::fs::read(&clip).unwrap();
    let facts = facts(&ts, &kinds);
    let t = CastEdge::new(specs.len(), EDGE_IP, CAM_IP);
    let recorders: Vec<Recorder> =
        t.rx.iter().map(|r| Recorder::new(r.udp(&format!("{EDGE_IP}:5000")))).collect();
    let mut cmd = t.edge.cmd(bin());
    cmd.args(["cast", "in0", "--json", "--name", "cam"]);
    for (o, s) in t.outputs.iter().zip(specs) {
        cmd.args(["--to", &format!("{o}:{s}")]);
    }
    let mut cast = Proc::spawn(cmd);
    cast.wait_for("\"outputs\"", Duration::from_secs(20));
    let mut send = t.cam.cmd(bin());
    send.args(["send", clip.to_str().unwrap(), &format!("{EDGE_IP}:5000"), "--json"]);
    let sender = Proc::spawn(send);
    during(&t);
    let (summary, status) = sender.finish(Duration::from_secs(60));
    assert!(status.success(), "send: {summary}");
    std::thread::sleep(Duration::from_millis(300));
    let stats = cast.final_report(Signal::SIGTERM);
    let got = recorders.into_iter().map(Recorder::finish).collect();
    Run { clip, kinds, facts, got, stats }
}

impl Run {
    fn output(&self, i: usize) -> &Value {
        &self.stats["outputs"][i]
    }

    /// Output `i` decodes cleanly, frame for frame as the kernel counted, and its counters agree
    /// with what arrived. Returns the frames it got.
    fn check_decodes(&self, i: usize, label: &str) -> u64 {
        let capture: Vec<u8> = self.got[i].iter().flat_map(|(_, d)| d.clone()).collect();
        let o = self.output(i);
        assert_eq!(
            o["packets"].as_u64().unwrap(),
            self.got[i].len() as u64,
            "{label}: packets counted = received"
        );
        assert_eq!(o["clone_errors"].as_u64().unwrap(), 0, "{label}");
        let sent = o["frames_sent"].as_u64().unwrap();
        assert_eq!(sent + o["frames_dropped"].as_u64().unwrap(), self.kinds.len() as u64, "{label}: {o}");
        let out = self
            .clip
            .with_file_name(format!("{}-{label}.ts", self.clip.file_stem().unwrap().to_string_lossy()));
        std::fs::write(&out, &capture).unwrap();
        assert_eq!(decoded_frames(&out) as u64, sent, "{label}: decoded frames of {}", out.display());
        let got = frame_md5s(&out);
        assert!(
            is_subsequence(&got, &frame_md5s(&self.clip)),
            "{label}: a decoded frame differs from every original"
        );
        let warnings = decode_warnings(&out);
        assert!(warnings.trim().is_empty(), "{label}: ffmpeg warned:\n{warnings}");
        let gap = max_pcr_gap_ms(&capture);
        assert!(gap <= 100.0, "{label}: PCR gap {gap} ms");
        sent
    }

    /// Output `i` stays within `bps` in every one-second window, but for the frame that started
    /// last (in whole datagrams: the one holding its start is shared with the frame before).
    fn check_within(&self, i: usize, bps: f64, label: &str) {
        let budget = bps / 8.0;
        let frame = (self.facts.largest_frame() / 1316 + 2) * 1316;
        let max = max_bytes_per_second(&self.got[i]);
        assert!(
            max as f64 <= budget + frame as f64,
            "{label}: {max} bytes within one second, over the cap's {budget} + one frame {frame}"
        );
    }

    fn mean_bps(&self, i: usize) -> f64 {
        self.got[i].iter().map(|(_, d)| d.len()).sum::<usize>() as f64 * 8.0 / self.facts.secs
    }

    /// The mean rate of output `i` from `from` seconds after its first datagram to the clip's end.
    fn mean_bps_from(&self, i: usize, from: f64) -> f64 {
        let start = self.got[i][0].0 + Duration::from_secs_f64(from);
        let bytes: usize = self.got[i].iter().filter(|(t, _)| *t >= start).map(|(_, d)| d.len()).sum();
        bytes as f64 * 8.0 / (self.facts.secs - from)
    }
}

fn cap_bps(spec: &str) -> f64 {
    ebpf_cast::send::parse_bitrate(spec.trim_start_matches("max=")).unwrap() as f64
}

/// A cap that the stream meets without its non-reference frames: a share of them goes, the
/// output uses at least 0.8 of its cap and never exceeds it; the uncapped output gets the clip.
#[test]
fn a_cap_keeps_what_fits_and_uses_the_budget() {
    require_root!();
    let cap = "max=380k";
    let run = cast_clip("cap-flat-b", CLIP_FLAT_B, &["all", cap], |_| {});
    let (full, keys) = (run.facts.bps(), run.facts.key_bps(&run.kinds));
    let bps = cap_bps(cap);
    assert!(keys < bps && bps < full, "the clip must need the cap: keyframes {keys}, all {full} bit/s");
    assert_eq!(run.check_decodes(0, "all"), run.kinds.len() as u64);
    let kept = run.check_decodes(1, "max380k");
    assert!(kept < run.kinds.len() as u64, "the cap dropped frames");
    run.check_within(1, bps, "max380k");
    let mean = run.mean_bps(1);
    assert!(mean >= 0.8 * bps, "the budget is used: {mean} bit/s of {bps}");
    assert_eq!(run.output(1)["policy"], "max=380k");
    assert!(run.output(1)["cap_level"].is_string(), "{}", run.output(1));
    assert!(run.output(0).get("cap_level").is_none());
}

/// Short GOPs: a cap that needs reference frames dropped ends GOPs early and still uses its
/// budget; below the keyframes' rate, whole GOPs are skipped. Both restart at keyframes and
/// decode cleanly.
#[test]
fn reference_frames_and_whole_gops_go_when_the_cap_needs_it() {
    require_root!();
    let caps = ["max=250k", "max=90k"];
    let run = cast_clip("cap-gop10", CLIP_GOP10, &caps, |_| {});
    let (full, keys) = (run.facts.bps(), run.facts.key_bps(&run.kinds));
    let without_nonref: usize =
        run.facts.frames.iter().zip(&run.kinds).filter(|(_, k)| **k != Kind::NonRef).map(|(b, _)| b).sum();
    let without_nonref = (without_nonref + run.facts.other) as f64 * 8.0 / run.facts.secs;
    let (mid, low) = (cap_bps(caps[0]), cap_bps(caps[1]));
    assert!(keys < mid && mid < without_nonref && without_nonref < full, "{keys} {mid} {without_nonref}");
    assert!(low < keys, "keyframes alone ({keys} bit/s) must exceed {low}");
    run.check_decodes(0, "max250k");
    run.check_within(0, mid, "max250k");
    let mean = run.mean_bps(0);
    assert!(mean >= 0.8 * mid, "the budget is used: {mean} bit/s of {mid}");
    let kept = run.check_decodes(1, "max90k");
    assert!(kept > 0, "some GOPs fit");
    run.check_within(1, low, "max90k");
}

/// A still scene leaves the budget unused; the noise after it may not spend it twice, and uses it.
#[test]
fn a_still_scene_then_noise_stays_within_the_cap() {
    require_root!();
    let cap = "max=500k";
    let run = cast_clip("cap-still", CLIP_STILL_THEN_NOISE, &["all", cap], |_| {});
    let bps = cap_bps(cap);
    assert!(run.facts.bps() > bps, "the clip must need the cap");
    assert_eq!(run.check_decodes(0, "all"), run.kinds.len() as u64);
    run.check_decodes(1, "max500k");
    run.check_within(1, bps, "max500k");
    let mean = run.mean_bps_from(1, 4.0);
    assert!(mean >= 0.8 * bps, "the noise uses the budget: {mean} bit/s of {bps}");
}

/// `out set` changes a cap while the clip plays: a tiny cap stops the video at the next frame
/// (audio and tables go on), a large one brings it back from a keyframe, and the capture
/// decodes cleanly throughout.
#[test]
fn a_new_cap_takes_effect_at_the_next_frame() {
    require_root!();
    let frames_sent = |t: &CastEdge| {
        let out = t.edge.cmd(bin()).args(["stats", "cam", "--json"]).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["outputs"][0]["frames_sent"].as_u64().unwrap()
    };
    let mut during_low = (0, 0);
    let run = cast_clip("cap-aac", CLIP_AAC, &["max=2M"], |t| {
        std::thread::sleep(Duration::from_secs(2));
        let said = String::from_utf8(
            t.edge.cmd(bin()).args(["out", "set", "cam", "o1", "max=1k"]).output().unwrap().stdout,
        )
        .unwrap();
        assert!(said.contains("from the next frame"), "{said}");
        let at_set = frames_sent(t);
        std::thread::sleep(Duration::from_secs(2));
        during_low = (at_set, frames_sent(t));
        t.edge.cmd(bin()).args(["out", "set", "cam", "o1", "max=2M"]).output().unwrap();
    });
    let (at_set, after) = during_low;
    assert!(at_set > 0, "frames before the change");
    assert!(after - at_set <= 1, "at most the frame in flight after max=1k: {at_set} -> {after}");
    let kept = run.check_decodes(0, "set");
    assert!(kept > after + 10, "frames again from a keyframe after max=2M: {after} -> {kept}");
}

/// The README's table of caps: `cargo test --test cap -- --ignored --nocapture`.
#[test]
#[ignore]
fn cap_table() {
    require_root!();
    let clips = [
        (
            "cap-flat-b",
            CLIP_FLAT_B,
            "H.264 (B non-ref) + AAC, GOP 2 s",
            ["max=400k", "max=380k", "max=340k", "max=300k"],
        ),
        (
            "cap-aac",
            CLIP_AAC,
            "H.264 (B-pyramid) + AAC, GOP 2 s",
            ["max=410k", "max=390k", "max=350k", "max=250k"],
        ),
        ("cap-gop10", CLIP_GOP10, "H.264, GOP 0.4 s", ["max=350k", "max=250k", "max=200k", "max=90k"]),
        (
            "cap-still",
            CLIP_STILL_THEN_NOISE,
            "4 s still, then 4 s noise",
            ["max=2M", "max=1M", "max=500k", "max=200k"],
        ),
    ];
    println!("| clip (rate) | cap | frames kept | mean rate / cap | largest 1 s / cap |");
    println!("|---|---|---:|---:|---:|");
    for (name, args, label, caps) in clips {
        let run = cast_clip(name, args, &caps, |_| {});
        for (i, cap) in caps.iter().enumerate() {
            let bps = cap_bps(cap);
            // With a still scene, the budget can only be used by the noise after it.
            let mean = if name == "cap-still" { run.mean_bps_from(i, 4.0) } else { run.mean_bps(i) };
            println!(
                "| {label} ({:.0} kbit/s) | {cap} | {} of {} | {:.2} | {:.2} |",
                run.facts.bps() / 1e3,
                run.output(i)["frames_sent"],
                run.kinds.len(),
                mean / bps,
                max_bytes_per_second(&run.got[i]) as f64 * 8.0 / bps
            );
        }
    }
}
