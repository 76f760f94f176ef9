//! `ebpf-cast demo` runs to the end and leaves nothing behind.
mod common;

use std::time::Duration;

use common::{video::*, *};
use serde_json::Value;

#[test]
fn demo_runs_and_each_consumer_gets_what_its_policy_allows() {
    require_root!();
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["demo", "--json"]);
    let p = Proc::spawn(cmd);
    let pid = p.child.id();
    let (out, status) = p.finish(Duration::from_secs(60));
    assert!(status.success(), "demo failed: {out}");
    let last = out.lines().last().unwrap();
    let v: Value = serde_json::from_str(last).unwrap();

    let clip = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.ts");
    let kinds = frame_kinds(&clip);
    let sent = v["sent"]["datagrams"].as_u64().unwrap();
    assert_eq!(sent, std::fs::metadata(&clip).unwrap().len().div_ceil(1316));
    for (c, level) in v["consumers"].as_array().unwrap().iter().zip([0u16, 128, 257]) {
        let r = &c["report"];
        let frames = r["frames"]["key"].as_u64().unwrap()
            + r["frames"]["ref"].as_u64().unwrap()
            + r["frames"]["nonref"].as_u64().unwrap();
        assert_eq!(frames, expected_frames(&kinds, level) as u64, "{}: {c}", c["policy"]);
        assert_eq!(r["cc_errors"].as_u64().unwrap(), 0, "{c}");
        assert!(r["max_pcr_gap_ms"].as_f64().unwrap() <= 100.0, "{c}");
    }
    assert_eq!(v["consumers"][0]["report"]["datagrams"].as_u64().unwrap(), sent, "all: every datagram");
    let left = sh("ip netns list");
    assert!(!left.contains(&format!("ecdemo{pid}-")), "namespaces left behind: {left}");
}

#[test]
fn ctrl_c_stops_the_demo_and_cleans_up() {
    require_root!();
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("demo");
    let mut p = Proc::spawn(cmd);
    let pid = p.child.id();
    p.wait_for("streaming the built-in clip", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    assert!(sh("ip netns list").contains(&format!("ecdemo{pid}-edge")), "the sandbox exists while running");
    p.signal(nix::sys::signal::Signal::SIGINT);
    let (out, status) = p.finish(Duration::from_secs(20));
    assert!(status.success(), "{out}");
    assert!(out.contains("has been removed"), "{out}");
    let left = sh("ip netns list");
    assert!(!left.contains(&format!("ecdemo{pid}-")), "namespaces left behind: {left}");
}
