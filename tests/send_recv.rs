//! `ebpf-cast send` to `ebpf-cast recv` through a pair of namespaces.
mod common;

use std::time::{Duration, Instant};

use common::{video::*, *};
use serde_json::Value;

const TX_IP: &str = "10.204.0.1";
const RX_IP: &str = "10.204.0.2";

fn pair() -> (Netns, Netns) {
    let (a, b) = (Netns::new("tx"), Netns::new("rx"));
    veth(&a, "v0", &b, "v1");
    a.ip(&format!("addr add {TX_IP}/24 dev v0"));
    b.ip(&format!("addr add {RX_IP}/24 dev v1"));
    (a, b)
}

/// Waits until a socket in `ns` is bound to UDP `port`, and has joined `group` on `dev` if one is
/// given: recv prints nothing when it is ready, and datagrams sent before would go nowhere.
fn wait_listening(ns: &Netns, port: u16, group: Option<(&str, &str)>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let local = format!(":{port:04X} ");
    loop {
        let bound = ns
            .sh("cat /proc/net/udp /proc/net/udp6")
            .lines()
            .any(|l| l.split_whitespace().nth(1).is_some_and(|a| format!("{a} ").contains(&local)));
        let joined = group.is_none_or(|(dev, g)| ns.ip(&format!("maddr show dev {dev}")).contains(g));
        if bound && joined {
            return;
        }
        assert!(Instant::now() < deadline, "nothing listens on UDP port {port} in {}", ns.name);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs recv in `rx` and send in `tx`; returns (recv report, send summary, send wall time).
fn send_to_recv(
    tx: &Netns,
    rx: &Netns,
    clip: &std::path::Path,
    send_args: &[&str],
    out: &std::path::Path,
) -> (Value, Value, Duration) {
    let mut r = rx.cmd(bin());
    r.args(["recv", &format!("{RX_IP}:5000"), "--json", "--idle", "1.5", "--duration", "60", "--out"])
        .arg(out);
    let recv = Proc::spawn(r);
    wait_listening(rx, 5000, None);
    let started = Instant::now();
    let mut s = tx.cmd(bin());
    s.arg("send").arg(clip).arg(format!("{RX_IP}:5000")).arg("--json").args(send_args);
    let sent = run(s);
    let took = started.elapsed();
    assert!(sent.status.success(), "send: {}", String::from_utf8_lossy(&sent.stderr));
    let (report, status) = recv.finish(Duration::from_secs(20));
    assert!(status.success(), "recv: {report}");
    (serde_json::from_str(report.trim()).unwrap(), serde_json::from_slice(&sent.stdout).unwrap(), took)
}

#[test]
fn a_clip_arrives_byte_identical_and_in_real_time() {
    require_root!();
    let (tx, rx) = pair();
    let clip = clip("h264-4s", "-t 4 -c:v libx264 -preset veryfast -g 50");
    let data = std::fs::read(&clip).unwrap();
    for rtp in [false, true] {
        let out = clip.with_file_name(format!("recv-{rtp}.ts"));
        let args: &[&str] = if rtp { &["--rtp"] } else { &[] };
        let (report, summary, took) = send_to_recv(&tx, &rx, &clip, args, &out);
        let got = std::fs::read(&out).unwrap();
        assert!(
            got == data,
            "rtp={rtp}: the capture ({} bytes) is not the file ({} bytes), byte for byte: {}; recv {report}, send {summary}",
            got.len(),
            data.len(),
            first_difference(&got, &data, &clip)
        );
        let datagrams = data.len().div_ceil(1316) as u64;
        assert_eq!(report["datagrams"].as_u64().unwrap(), datagrams);
        assert_eq!(summary["datagrams"].as_u64().unwrap(), datagrams);
        assert_eq!(report["rtp"].as_bool().unwrap(), rtp);
        assert_eq!(report["cc_errors"].as_u64().unwrap(), 0);
        // Paced by the PCR: 4 s of video arrives over 4 s, within 10 % (first to last datagram,
        // as received: the processes' start under load is not the stream's pace), and the
        // sender took no less.
        let span = report["seconds"].as_f64().unwrap();
        assert!((3.6..=4.4).contains(&span), "rtp={rtp}: a 4 s clip arrived over {span:.2} s");
        assert!(took.as_secs_f64() >= 3.6, "rtp={rtp}: sending a 4 s clip took {:.2} s", took.as_secs_f64());
    }
}

/// Where a capture first differs from the file it should equal, by datagram and TS packet, and
/// whether the file on disk still holds what the test read before sending.
fn first_difference(got: &[u8], want: &[u8], clip: &std::path::Path) -> String {
    let Some(at) = got.iter().zip(want).position(|(a, b)| a != b) else {
        return format!("one is a prefix of the other, from byte {}", got.len().min(want.len()));
    };
    let count = got.iter().zip(want).filter(|(a, b)| a != b).count();
    let (packet, start) = (at / 188, at / 188 * 188);
    let show = |d: &[u8]| format!("{:02x?}", &d[start..(start + 16).min(d.len())]);
    let on_disk = std::fs::read(clip).map_or("unreadable".into(), |d| {
        if d == want {
            "unchanged".to_string()
        } else if d == got {
            "now equal to the capture".to_string()
        } else {
            "changed".to_string()
        }
    });
    format!(
        "{count} bytes differ, the first at byte {at} (datagram {}, TS packet {packet}): capture {} file {}; the \
         file on disk is {on_disk}",
        at / 1316,
        show(got),
        show(want)
    )
}

#[test]
fn recv_counts_frames_like_ffmpeg() {
    require_root!();
    let (tx, rx) = pair();
    for (name, args) in [
        ("h264-bpyramid-aac", H264_BPYRAMID_AAC),
        ("h265-aac", H265_AAC),
        ("h264-flat-b-pid200", H264_FLAT_B_PID200),
    ] {
        let clip = clip(name, args);
        let kinds = frame_kinds(&clip);
        let out = clip.with_file_name(format!("recv-{name}.ts"));
        let (report, _, _) = send_to_recv(&tx, &rx, &clip, &["--rate", "20M"], &out);
        let f = &report["frames"];
        let count = |k: Kind| kinds.iter().filter(|x| **x == k).count() as u64;
        assert_eq!(f["key"].as_u64().unwrap(), count(Kind::Key), "{name}: {report}");
        assert_eq!(f["ref"].as_u64().unwrap(), count(Kind::Ref), "{name}");
        assert_eq!(f["nonref"].as_u64().unwrap(), count(Kind::NonRef), "{name}");
        assert_eq!(kinds.len(), decoded_frames(&clip), "{name}: ffprobe agrees on the total");
        assert_eq!(report["cc_errors"].as_u64().unwrap(), 0);
        assert!(report["max_pcr_gap_ms"].as_f64().unwrap() <= 100.0);
    }
}

#[test]
fn send_refuses_a_file_that_is_not_ts() {
    let dir = std::env::temp_dir().join(format!("ebpf-cast-send-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("notes.txt");
    std::fs::write(&f, "not video\n").unwrap();
    let out = run({
        let mut c = std::process::Command::new(bin());
        c.arg("send").arg(&f).arg("127.0.0.1:9");
        c
    });
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "ebpf-cast: error: {} is not an MPEG-TS file (10 bytes is not a whole number of 188-byte \
             packets): give a .ts file, e.g. made with `ffmpeg ... -f mpegts`\n",
            f.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn multicast_reaches_a_receiver_that_joined_the_group() {
    require_root!();
    let (tx, rx) = pair();
    // Multicast routes inside the pair only (there is no default route).
    tx.ip("route add 224.0.0.0/4 dev v0");
    rx.ip("route add 224.0.0.0/4 dev v1");
    let clip = clip("h264-4s", "-t 4 -c:v libx264 -preset veryfast -g 50");
    let data = std::fs::read(&clip).unwrap();
    let out = clip.with_file_name("recv-multicast.ts");
    let mut r = rx.cmd(bin());
    r.args(["recv", "239.255.0.1:5000", "--json", "--idle", "1.5", "--duration", "30", "--out"]).arg(&out);
    let recv = Proc::spawn(r);
    wait_listening(&rx, 5000, Some(("v1", "239.255.0.1")));
    let mut s = tx.cmd(bin());
    s.arg("send").arg(&clip).args(["239.255.0.1:5000", "--ttl", "2", "--rate", "20M"]);
    let sent = run(s);
    assert!(sent.status.success(), "send: {}", String::from_utf8_lossy(&sent.stderr));
    let (report, status) = recv.finish(Duration::from_secs(20));
    assert!(status.success(), "recv: {report}");
    let got = std::fs::read(&out).unwrap();
    assert!(
        got == data,
        "the multicast capture ({} bytes) is not the file ({} bytes), byte for byte: {}",
        got.len(),
        data.len(),
        first_difference(&got, &data, &clip)
    );
}
