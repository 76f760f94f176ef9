//! Overload: a flood that the fan-out cannot keep up with. In a file of its own, so that no
//! other test runs meanwhile (cargo runs test files one after another): the flood fills a CPU's
//! backlog, which every other test's traffic on that CPU would share.
mod common;

use common::{control::*, *};
use std::time::Duration;

const EDGE_IP: &str = "10.215.0.1";
const CAM_IP: &str = "10.215.0.2";

/// Sends `count` numbered datagrams from the camera as fast as its socket takes them, from
/// CPU `cpu` (at most 10 s). Returns how many it sent.
fn flood(t: &Edge, count: u32, cpu: usize) -> u32 {
    let tx = t.cam.udp(&format!("{}:4000", t.cam_ip));
    let to = format!("{}:5000", t.edge_ip);
    std::thread::spawn(move || {
        let mut set = nix::sched::CpuSet::new();
        set.set(cpu).unwrap();
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).unwrap();
        let start = std::time::Instant::now();
        let mut p = vec![0x11u8; 1316];
        let mut sent = 0;
        for seq in 0..count {
            if start.elapsed() > Duration::from_secs(10) {
                break;
            }
            p[..4].copy_from_slice(&seq.to_be_bytes());
            sent += u32::from(tx.send_to(&p, &to).is_ok());
        }
        sent
    })
    .join()
    .unwrap()
}

/// Floods a cast with hubs of 32 for `all`, `nonref=0.5` and `ref`, which take clones, and one
/// of 8 for `key` (served last), which takes the original: 96 copies of each datagram wait in
/// the backlog at once, so the fan-out falls behind even while other tests share the CPUs; numbered datagrams are no TS, which every policy takes whole. The
/// outputs are veths as made: their copies wait in the backlog. Returns, for the members of the
/// hubs of clones: copies arrived, refused whole (`clone_errors`), and dropped by their devices;
/// and the datagrams the cast refused before any copy (its flow's `overload`). Every datagram
/// the counters say was sent and not lost arrived.
fn flood_hubs_of_clones() -> (u64, u64, u64, u64) {
    const UDP_MEM: &str = "/proc/sys/net/ipv4/udp_mem";
    let ncpu = libbpf_rs::num_possible_cpus().unwrap();
    assert!(ncpu >= 2, "the flood needs a CPU of its own (this machine has {ncpu})");
    let t = Edge::new(104, EDGE_IP, CAM_IP);
    let rx = t.receivers();
    // The camera's datagrams are taken in on CPU 1 (RPS), while it sends from CPU 0, so the
    // input outruns the fan-out. The host is tuned as the cast would (the flow limit on CPU 0),
    // but with a backlog of 2,000, which the flood overruns for sure: the 8,000 that the cast
    // sets for copies that queue took in all but about a hundred of the 20,000.
    t.edge.sh("echo 2 > /sys/class/net/in0/queues/rx-0/rps_cpus");
    let _host = [
        Restore::save("/proc/sys/net/core/flow_limit_cpu_bitmap"),
        Restore::save("/proc/sys/net/core/netdev_max_backlog"),
        Restore::save(UDP_MEM),
    ];
    // The receivers hold every copy until the end, and each socket is charged a clone's whole
    // buffer: 96 x 20,000 copies pass the host's UDP memory limit, over which sockets drop
    // datagrams that no counter of the cast sees. The buffers are shared: far less is used.
    std::fs::write(UDP_MEM, "8000000 8000000 8000000").unwrap();
    std::fs::write("/proc/sys/net/core/flow_limit_cpu_bitmap", "1").unwrap();
    std::fs::write("/proc/sys/net/core/netdev_max_backlog", "2000").unwrap();
    let policies = ["all", "nonref=0.5", "ref", "key"];
    let args: Vec<String> = (1..=104)
        .flat_map(|i| ["--to".into(), format!("o{i}:{}", policies[((i - 1) / 32).min(3)])])
        .collect();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["--port", "5000", "--no-tune"]);
    let cast = t.start_cast(&args);
    assert_eq!(hubs(&t).len(), 8, "four hubs (two ends each)");
    let sent = flood(&t, 20_000, 0);
    std::thread::sleep(Duration::from_millis(500));
    let stats = t.stats();
    let (mut arrived, mut lost, mut dropped) = (0, 0, 0);
    for (i, s) in rx.iter().enumerate().take(96) {
        let name = format!("o{}", i + 1);
        let o = output(&stats, &name);
        assert!(o["hub"].as_str().is_some_and(|h| h.starts_with("ech")), "{o}");
        let got = drain(s).len() as u64;
        let accounted = u(&o["packets"]) - u(&o["clone_errors"]) - u(&o["device_drops"]);
        assert_eq!(got, accounted, "{name}: {o}");
        arrived += got;
        lost += u(&o["clone_errors"]);
        dropped += u(&o["device_drops"]);
    }
    let flows = stats[0]["flows"].as_array().unwrap();
    let admitted_not = flows.iter().map(|f| u(&f["overload"])).sum::<u64>();
    eprintln!(
        "sent {sent}: to the 96 members of hubs of clones {arrived} arrived, {lost} refused whole, \
         {dropped} device drops; {admitted_not} datagrams refused before any copy"
    );
    t.stop_clean(cast);
    (arrived, lost, dropped, admitted_not)
}

/// Overloaded, the cast takes a datagram only while the CPU's backlog has room for all its
/// copies, those its clones' broadcasts will queue later included, and a hub of clones checks
/// again when the clone comes off the backlog: a datagram refused reaches none of the members
/// and counts as a lost copy for each (`clone_errors`), where without the checks most of the
/// copies would be made only for the backlog to refuse them (`device_drops`). Refusals happen
/// before any work on the datagram, and rarely later, at a hub.
#[test]
fn an_overloaded_cast_refuses_whole_datagrams_before_any_copy_and_counts_them() {
    require_root!();
    let (arrived, lost, dropped, refused_first) = flood_hubs_of_clones();
    assert!(lost > 0, "the flood overran the fan-out: the hub refused datagrams");
    assert!(arrived > 0, "the hub broadcast the datagrams it took");
    // The check and the broadcast are one step of the fan-out's CPU; only the input, queued
    // meanwhile from the camera's CPU, can take the room a broadcast was admitted to.
    assert!(dropped * 100 <= arrived, "copies made only to be refused: {dropped} of {arrived}");
    // Each member lost the datagrams refused before any copy, and those its hub refused.
    let at_hubs = (lost / 96).saturating_sub(refused_first);
    assert!(at_hubs * 10 <= lost / 96, "{at_hubs} refused at a hub, {refused_first} before any copy");
}
