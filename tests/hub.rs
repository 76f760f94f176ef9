//! Hubs: outputs of one policy (from --hub-min of them) get their copies through one hub device
//! whose XDP program broadcasts them. Numbered datagrams flow while members leave the hub; every
//! output still gets each datagram exactly once and in order (until it is removed), stats agree
//! with the receivers, and the hub devices go with the cast.
mod common;

use common::{control::*, *};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::time::Duration;

const EDGE_IP: &str = "10.213.0.1";
const CAM_IP: &str = "10.213.0.2";

fn output<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats[0]["outputs"].as_array().unwrap().iter().find(|o| o["interface"] == name).unwrap()
}

fn packets(stats: &Value, name: &str) -> u64 {
    output(stats, name)["packets"].as_u64().unwrap()
}

fn increasing(s: &[u32]) -> bool {
    s.windows(2).all(|w| w[1] > w[0])
}

/// The hub devices in the edge namespace, with their XDP mode.
fn hubs(t: &Edge) -> Vec<String> {
    t.edge.ip("-o -d link show").lines().filter(|l| l.contains(": ech")).map(String::from).collect()
}

#[test]
fn members_leave_a_hub_and_the_others_get_every_datagram_once() {
    if !need_root() {
        return;
    }
    let t = Edge::new(10, EDGE_IP, CAM_IP);
    let rx = t.receivers();
    // o1..o9 take everything: one hub; o10 alone with its policy: no hub.
    let mut args: Vec<String> = (1..=9).flat_map(|i| ["--to".into(), format!("o{i}")]).collect();
    args.extend(["--to".into(), "o10:key".into(), "--port".into(), "5000".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cast = t.start_cast(&args);
    let hub = format!("ech{}-0", t.edge.ip("-o link show in0").split(':').next().unwrap().trim());
    let before = hubs(&t);
    for end in ["a", "b"] {
        let dev = format!(": {hub}{end}@");
        assert!(before.iter().any(|l| l.contains(&dev) && l.contains("xdpgeneric")), "{dev}: {before:?}");
    }
    assert_eq!(before.len(), 4, "two veth pairs (the hub's two ends) for the one hub: {before:?}");

    let sent = with_traffic(&t, 2000, 1.5, || {
        t.ok(&["out", "del", "cam1", "o9"]);
        std::thread::sleep(Duration::from_millis(100));
        t.ok(&["out", "set", "cam1", "o8", "ref"]);
    });
    assert!(sent.len() > 2000, "sent {}", sent.len());
    let per: Vec<Vec<u32>> = rx.iter().map(|s| seqs(&drain(s))).collect();
    let stats = t.stats();
    for i in (1..=7).chain([10]) {
        assert!(
            per[i - 1] == sent,
            "o{i} got {} of {} datagrams, or not in order",
            per[i - 1].len(),
            sent.len()
        );
        assert_eq!(packets(&stats, &format!("o{i}")), sent.len() as u64, "o{i}");
    }
    // o9 left: what it got before, in order, and nothing after.
    assert!(increasing(&per[8]) && !per[8].is_empty() && per[8].len() < sent.len(), "o9");
    // o8 left the hub for a policy of its own (numbered datagrams are not TS: it still gets
    // them all): the switch from the hub to its own copies loses and repeats nothing.
    assert!(per[7] == sent, "o8 got {} of {} datagrams, or not in order", per[7].len(), sent.len());
    assert_eq!(packets(&stats, "o8"), sent.len() as u64);

    cast.signal(Signal::SIGTERM);
    let (rest, status) = cast.finish(Duration::from_secs(10));
    assert!(status.success(), "cast exited with {status}: {rest}");
    assert_eq!(hubs(&t), Vec::<String>::new(), "hub devices left behind");
    t.assert_clean();
}

#[test]
fn hub_min_zero_makes_no_hub() {
    if !need_root() {
        return;
    }
    let t = Edge::new(8, EDGE_IP, CAM_IP);
    let rx = t.receivers();
    let mut args: Vec<String> = (1..=8).flat_map(|i| ["--to".into(), format!("o{i}")]).collect();
    args.extend(["--port", "5000", "--hub-min", "0"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cast = t.start_cast(&args);
    assert_eq!(hubs(&t), Vec::<String>::new());
    let sent = with_traffic(&t, 1000, 0.6, || {});
    for (i, s) in rx.iter().enumerate() {
        assert!(seqs(&drain(s)) == sent, "o{}", i + 1);
    }
    cast.signal(Signal::SIGTERM);
    let (_, status) = cast.finish(Duration::from_secs(10));
    assert!(status.success());
    t.assert_clean();
}

#[test]
fn detach_removes_the_hubs_of_a_killed_cast() {
    if !need_root() {
        return;
    }
    let t = Edge::new(8, EDGE_IP, CAM_IP);
    let args: Vec<String> = (1..=8).flat_map(|i| ["--to".into(), format!("o{i}")]).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cast = t.start_cast(&args);
    assert_eq!(hubs(&t).len(), 4, "a hub (two veth pairs) for 8 outputs of one policy");
    cast.signal(Signal::SIGKILL);
    let _ = cast.finish(Duration::from_secs(10));
    assert_eq!(hubs(&t).len(), 4, "a killed cast cannot remove its hub");
    let out = t.ok(&["detach", "in0"]);
    assert!(out.contains("removed hub ech"), "{out}");
    assert_eq!(hubs(&t), Vec::<String>::new());
    t.assert_clean();
}
