//! Video helpers for tests: clips made by Debian's ffmpeg, and an independent oracle of what
//! each frame is (ffmpeg's trace_headers bitstream filter), decoding checks, TS analysis.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// Removes the clip directories of test processes that ended over an hour ago: each run leaves
/// one per test binary (a few MB), and they add up on a developer's machine.
fn sweep_old_clip_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("ebpf-cast-tests-").and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > std::time::Duration::from_secs(3600)));
        if old && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Frame kinds as the product defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Key,
    Ref,
    NonRef,
}

/// A clip in a per-process directory, /tmp/ebpf-cast-tests-PID, kept with the outputs the tests
/// write beside it so that a failure can be inspected (those of test processes gone for an hour
/// are removed). Tests running at once may ask for the same clip: one encodes it, the others
/// wait, and it is renamed into place, so none reads a partial one.
pub fn clip(name: &str, args: &str) -> PathBuf {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(sweep_old_clip_dirs);
    let dir = std::env::temp_dir().join(format!("ebpf-cast-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.ts"));
    // One encoder per clip: tests running in parallel wait for it, rather than each renaming its
    // own encoding over a file another test may be reading or sending.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    if !path.exists() {
        let part = dir.join(format!("{name}.part")); // one encoder at a time: one part file
        let cmd = format!(
            "ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=320x240:rate=25 {args} -fflags +bitexact -f mpegts {}",
            part.display()
        );
        let out =
            Command::new("sh").arg("-c").arg(&cmd).output().expect("running ffmpeg (apt-get install ffmpeg)");
        assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::rename(&part, &path).unwrap();
    }
    path
}

/// H.264 clip with B-frames (b-pyramid), 8 s at 25 fps, GOP 50, with an AAC track.
pub const H264_BPYRAMID_AAC: &str =
    "-f lavfi -i sine=frequency=440:sample_rate=48000 -t 8 -map 0:v -map 1:a \
     -c:v libx264 -preset veryfast -g 50 -c:a aac -b:a 64k";
pub const H264_NO_B: &str = "-t 8 -c:v libx264 -preset veryfast -g 50 -bf 0";
pub const H264_FLAT_B_PID200: &str =
    "-t 8 -c:v libx264 -preset veryfast -g 50 -x264-params b-pyramid=none -mpegts_start_pid 0x200";
pub const H265_AAC: &str = "-f lavfi -i sine=frequency=440:sample_rate=48000 -t 8 -map 0:v -map 1:a \
     -c:v libx265 -x265-params log-level=error -g 50 -c:a aac -b:a 64k";

/// Kinds of the video frames in stream order, from ffmpeg's own header parser.
pub fn frame_kinds(path: &Path) -> Vec<Kind> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "debug", "-i"])
        .arg(path)
        .args(["-map", "0:v", "-c", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let mut kinds = Vec::new();
    let mut pending = false;
    for line in text.lines().filter(|l| l.contains("[trace_headers")) {
        if line.contains("] Packet:") {
            pending = true;
            continue;
        }
        let Some(rest) = line.split("nal_unit_type: ").nth(1) else { continue };
        if !pending {
            continue;
        }
        let ty: u32 = rest.split('(').next().unwrap().trim().parse().unwrap();
        let kind = if let Some(r) = rest.split("nal_ref_idc: ").nth(1) {
            // H.264
            let ref_idc: u32 = r.trim().parse().unwrap();
            match ty {
                5 => Some(Kind::Key),
                1..=4 if ref_idc == 0 => Some(Kind::NonRef),
                1..=4 => Some(Kind::Ref),
                _ => None,
            }
        } else {
            // H.265
            match ty {
                16..=23 => Some(Kind::Key),
                0..=14 if ty % 2 == 0 => Some(Kind::NonRef),
                0..=31 => Some(Kind::Ref),
                _ => None,
            }
        };
        if let Some(k) = kind {
            kinds.push(k);
            pending = false;
        }
    }
    assert!(!kinds.is_empty(), "no frames found in {}", path.display());
    kinds
}

/// Frames an output of `level` keeps (the product's rule: see policy.rs and cast.h).
pub fn expected_frames(kinds: &[Kind], level: u16) -> usize {
    let mut nonref = 0u32;
    kinds
        .iter()
        .filter(|k| {
            let prio: u16 = match k {
                Kind::Key => u16::MAX,
                Kind::Ref => 256,
                Kind::NonRef => {
                    nonref += 1;
                    u16::from(((nonref - 1) as u8).reverse_bits())
                }
            };
            prio >= level
        })
        .count()
}

/// Number of decodable video frames.
pub fn decoded_frames(path: &Path) -> usize {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    // The stream is listed once per program it belongs to: take the first line.
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find(|l| !l.trim().is_empty()).and_then(|l| l.trim().parse().ok()).unwrap_or(0)
}

/// MD5 of each decoded frame, in presentation order.
pub fn frame_md5s(path: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v", "-fps_mode", "passthrough", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(',').nth(5).map(|h| h.trim().to_string()))
        .collect()
}

/// True if every frame of `part` is, in order, a frame of `whole` (testsrc2 frames are unique).
pub fn is_subsequence(part: &[String], whole: &[String]) -> bool {
    let mut it = whole.iter();
    part.iter().all(|p| it.any(|w| w == p))
}

/// Everything ffmpeg warns about while demuxing and decoding (continuity errors among it).
pub fn decode_warnings(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "warning", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Largest gap between consecutive PCRs (any PID), in milliseconds.
pub fn max_pcr_gap_ms(ts: &[u8]) -> f64 {
    let mut last: Option<u64> = None;
    let mut max = 0.0f64;
    for p in ts.chunks_exact(188) {
        if p[3] & 0x20 == 0 || p[4] < 7 || p[5] & 0x10 == 0 {
            continue;
        }
        let base = (u64::from(p[6]) << 25)
            | (u64::from(p[7]) << 17)
            | (u64::from(p[8]) << 9)
            | (u64::from(p[9]) << 1)
            | (u64::from(p[10]) >> 7);
        let ext = (u64::from(p[10] & 1) << 8) | u64::from(p[11]);
        let pcr = base * 300 + ext;
        if let Some(l) = last {
            max = max.max((pcr.wrapping_sub(l)) as f64 / 27_000.0);
        }
        last = Some(pcr);
    }
    max
}

/// The capture of an output added while `clip` was cast, written as `name` beside the clip: its
/// first video packet starts a keyframe, no continuity counter jumps, and it decodes without a
/// warning, frame for frame a part of the clip.
pub fn assert_joins_cleanly(clip: &Path, late: &[u8], name: &str) {
    use ebpf_cast::{mpegts, recv::Analyzer};
    assert!(!late.is_empty(), "{name}: nothing received");
    let mut an = Analyzer::default();
    let (mut pmt, mut video) = (None, None);
    for p in late.chunks_exact(188) {
        let p: &[u8; 188] = p.try_into().unwrap();
        an.packet(p);
        let pid = mpegts::pid(p);
        if pid == 0 && mpegts::pusi(p) {
            pmt = mpegts::pat_pmt_pid(p);
        } else if Some(pid) == pmt && mpegts::pusi(p) {
            video = mpegts::pmt_video(p);
        }
    }
    let (vpid, codec) = video.unwrap_or_else(|| panic!("{name}: no PAT and PMT"));
    let first_video = late
        .chunks_exact(188)
        .find(|p| mpegts::pid(p) == vpid && mpegts::has_payload(p))
        .unwrap_or_else(|| panic!("{name}: no video"));
    assert!(mpegts::pusi(first_video), "{name}: the first video packet starts a PES");
    assert_eq!(mpegts::frame_kind(first_video.try_into().unwrap(), codec), mpegts::FrameKind::Key, "{name}");
    let path = clip.with_file_name(name);
    std::fs::write(&path, late).unwrap();
    let report = an.report();
    assert_eq!(report.cc_errors, 0, "{}: {report:?}", path.display());
    let got = frame_md5s(&path);
    assert!(!got.is_empty(), "{name}: no frame decoded");
    assert!(is_subsequence(&got, &frame_md5s(clip)), "{name}: frames not of the clip, or out of order");
    let warnings = decode_warnings(&path);
    assert!(warnings.trim().is_empty(), "{name}: {warnings}");
}
