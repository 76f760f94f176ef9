//! `ebpf-cast switch` on real veths: src -- sa|a [switch] b|db -- dst.
mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

const SRC_IP: &str = "10.201.0.1";
const DST_IP: &str = "10.201.0.2";

struct Topo {
    src: Netns,
    sw: Netns,
    dst: Netns,
}

fn topo() -> Topo {
    let t = Topo { src: Netns::new("src-a"), sw: Netns::new("sw"), dst: Netns::new("dst-b") };
    veth(&t.src, "sa", &t.sw, "a");
    veth(&t.sw, "b", &t.dst, "db");
    t.src.ip(&format!("addr add {SRC_IP}/24 dev sa"));
    t.dst.ip(&format!("addr add {DST_IP}/24 dev db"));
    t
}

/// Static neighbours: then only the test's datagrams cross the switch and counters are exact.
fn static_arp(t: &Topo) {
    let (sa, db) = (t.src.mac("sa"), t.dst.mac("db"));
    t.src.ip(&format!("neigh replace {DST_IP} lladdr {db} dev sa nud permanent"));
    t.dst.ip(&format!("neigh replace {SRC_IP} lladdr {sa} dev db nud permanent"));
}

fn start_switch(t: &Topo, extra: &[&str]) -> Proc {
    let mut cmd = t.sw.cmd(bin());
    cmd.args(["switch", "a", "b", "--json"]).args(extra);
    let mut p = Proc::spawn(cmd);
    p.wait_for("\"interfaces\"", Duration::from_secs(20));
    p
}

fn status_json(ns: &Netns) -> Vec<Value> {
    let out = run({
        let mut c = ns.cmd(bin());
        c.args(["status", "--json"]);
        c
    });
    assert!(out.status.success(), "status failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["attachments"].as_array().unwrap().clone()
}

fn frame_bytes(payloads: &[Vec<u8>]) -> u64 {
    payloads.iter().map(|p| (14 + 20 + 8 + p.len()) as u64).sum()
}

fn assert_direction(stats: &Value, from: &str, packets: usize, bytes: u64) {
    let d = stats["directions"].as_array().unwrap().iter().find(|d| d["from"] == from).unwrap();
    assert_eq!(d["packets"].as_u64().unwrap(), packets as u64, "packets {from}: {stats}");
    assert_eq!(d["bytes"].as_u64().unwrap(), bytes, "bytes {from}: {stats}");
    assert_eq!(d["errors"].as_u64().unwrap(), 0, "errors {from}: {stats}");
}

#[test]
fn redirect_carries_1000_datagrams_each_way_byte_identical() {
    require_root!();
    let t = topo();
    static_arp(&t);
    let tap = host_stack_tap(&t.sw, "a");
    let sw = start_switch(&t, &[]);

    let to_dst = format!("{DST_IP}:6000");
    let (sent_ab, got_ab) = exchange(t.src.udp(&format!("{SRC_IP}:5000")), t.dst.udp(&to_dst), &to_dst, 1000);
    let to_src = format!("{SRC_IP}:6001");
    let (sent_ba, got_ba) = exchange(t.dst.udp(&format!("{DST_IP}:5001")), t.src.udp(&to_src), &to_src, 1000);
    assert_eq!(got_ab.len(), 1000, "a -> b delivered");
    assert!(got_ab == sent_ab, "a -> b datagrams differ from what was sent");
    assert_eq!(got_ba.len(), 1000, "b -> a delivered");
    assert!(got_ba == sent_ba, "b -> a datagrams differ from what was sent");
    assert_eq!(count_udp_to(&tap, 6000), 0, "redirect mode: the host stack must not see the frames");

    let stats = sw.final_report(Signal::SIGTERM);
    assert_direction(&stats, "a", 1000, frame_bytes(&sent_ab));
    assert_direction(&stats, "b", 1000, frame_bytes(&sent_ba));
}

#[test]
fn clone_mode_delivers_and_the_host_stack_also_sees_the_frames() {
    require_root!();
    let t = topo();
    static_arp(&t);
    let tap = host_stack_tap(&t.sw, "a");
    let sw = start_switch(&t, &["--mode", "clone"]);
    let to_dst = format!("{DST_IP}:6000");
    let (sent, got) = exchange(t.src.udp(&format!("{SRC_IP}:5000")), t.dst.udp(&to_dst), &to_dst, 300);
    assert!(got == sent, "clone mode: {} of 300 datagrams arrived intact", got.len());
    assert_eq!(count_udp_to(&tap, 6000), 300, "clone mode: the host stack sees every original");
    let stats = sw.final_report(Signal::SIGINT);
    assert_direction(&stats, "a", 300, frame_bytes(&sent));
}

#[test]
fn arp_and_ping_cross_the_switch() {
    require_root!();
    let t = topo();
    let sw = start_switch(&t, &[]);
    let out = t.src.sh(&format!("ping -c 3 -i 0.2 -W 2 {DST_IP}"));
    assert!(out.contains("3 received"), "ping: {out}");
    let stats = sw.final_report(Signal::SIGTERM);
    // ARP request and reply plus 3 echo requests and replies, at least.
    for from in ["a", "b"] {
        let d = stats["directions"].as_array().unwrap().iter().find(|d| d["from"] == from).unwrap().clone();
        assert!(d["packets"].as_u64().unwrap() >= 4, "{from}: {d}");
    }
}

#[test]
fn tcx_link_goes_away_with_kill_9_and_signals_detach_cleanly() {
    require_root!();
    let t = topo();
    let sw = start_switch(&t, &["--attach", "tcx"]);
    let st = status_json(&t.sw);
    assert_eq!(st.len(), 2, "status lists both ports: {st:?}");
    for e in &st {
        assert_eq!(e["hook"], "tcx");
        assert_eq!(e["role"], "switch");
        assert_eq!(e["mode"], "redirect");
        assert!(e["prog_id"].as_u64().unwrap() > 0);
    }
    sw.signal(Signal::SIGKILL);
    let _ = sw.finish(Duration::from_secs(5));
    assert!(status_json(&t.sw).is_empty(), "kill -9 must leave no TCX program");

    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let sw = start_switch(&t, &[]);
        assert_eq!(status_json(&t.sw).len(), 2);
        sw.final_report(sig);
        assert!(status_json(&t.sw).is_empty(), "{sig} must detach");
    }
}

#[test]
fn legacy_tc_filter_survives_kill_9_and_detach_removes_it() {
    require_root!();
    let t = topo();
    static_arp(&t);
    // Another tool's filter on the same hook must survive everything ebpf-cast does.
    t.sw.sh("tc qdisc add dev a clsact && tc filter add dev a ingress prio 7 u32 match ip dst 192.0.2.99/32 flowid 1:1");

    let sw = start_switch(&t, &["--attach", "tc"]);
    let st = status_json(&t.sw);
    assert_eq!(st.len(), 2, "{st:?}");
    assert!(st.iter().all(|e| e["hook"] == "tc"));
    sw.signal(Signal::SIGKILL);
    let _ = sw.finish(Duration::from_secs(5));
    assert_eq!(status_json(&t.sw).len(), 2, "a tc filter outlives kill -9");

    // The orphaned filter still switches.
    let to_dst = format!("{DST_IP}:6000");
    let (sent, got) = exchange(t.src.udp(&format!("{SRC_IP}:5000")), t.dst.udp(&to_dst), &to_dst, 20);
    assert_eq!(got, sent);

    for dev in ["a", "b"] {
        let out = run({
            let mut c = t.sw.cmd(bin());
            c.args(["detach", dev]);
            c
        });
        assert!(out.status.success(), "detach {dev}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("from {dev}")));
    }
    assert!(status_json(&t.sw).is_empty());
    let filters = t.sw.sh("tc filter show dev a ingress");
    assert!(filters.contains("u32") && !filters.contains("bpf"), "only the other filter is left: {filters}");

    // A clean stop removes the filter it made and keeps the foreign one and its qdisc; the qdisc
    // it creates itself (on b, once the one left by the killed run is gone) goes with it.
    t.sw.sh("tc qdisc del dev b clsact");
    let sw = start_switch(&t, &["--attach", "tc"]);
    sw.final_report(Signal::SIGTERM);
    let filters = t.sw.sh("tc filter show dev a ingress");
    assert!(filters.contains("u32") && !filters.contains("bpf"), "{filters}");
    assert!(t.sw.sh("tc filter show dev b ingress").trim().is_empty());
    assert!(!t.sw.sh("tc qdisc show dev b").contains("clsact"), "the qdisc ebpf-cast created on b is gone");
}
