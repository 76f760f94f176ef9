//! Hubs: outputs of one policy (from --hub-min of them) get their copies through one hub device
//! whose XDP program broadcasts them. Numbered datagrams flow while members leave the hub, both
//! for a hub that takes clones and for one that takes the original (by bpf_redirect_peer into
//! the cast's hub namespace); every output still gets each datagram exactly once and in order
//! (until it is removed), stats agree with the receivers, and the hub devices go with the cast.
mod common;

use common::{control::*, *};
use nix::sys::signal::Signal;
use std::time::Duration;

const EDGE_IP: &str = "10.213.0.1";
const CAM_IP: &str = "10.213.0.2";

/// Sends numbered datagrams (not TS: every policy takes them whole) and checks that each output
/// got each of them once, in order.
fn every_output_gets_every_datagram(t: &Edge, rx: &[std::net::UdpSocket]) {
    let sent = with_traffic(t, 1000, 0.6, || {});
    for (i, s) in rx.iter().enumerate() {
        assert!(seqs(&drain(s)) == sent, "o{}", i + 1);
    }
}

/// `cast` to o1..=n (policy all), then `extra` arguments.
fn start_all(t: &Edge, n: usize, extra: &[&str]) -> Proc {
    let mut args: Vec<String> = (1..=n).flat_map(|i| ["--to".into(), format!("o{i}")]).collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    t.start_cast(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// o1..o9 of `hub_policy` share a hub, o10 of `other` is sent to directly; o9 leaves and o8
/// moves to a policy of its own while numbered datagrams flow.
fn members_leave_a_hub(hub_policy: &str, other: &str) {
    let t = Edge::new(10, EDGE_IP, CAM_IP);
    let rx = t.receivers();
    let mut args: Vec<String> = (1..=9).flat_map(|i| ["--to".into(), format!("o{i}:{hub_policy}")]).collect();
    args.extend(["--to".into(), format!("o10:{other}"), "--port".into(), "5000".into()]);
    let cast = t.start_cast(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let hub = format!("ech{}-0", t.edge.ip("-o link show in0").split(':').next().unwrap().trim());
    let before = hubs(&t);
    for end in ["a", "b"] {
        let dev = format!(": {hub}{end}@");
        let end = before.iter().find(|l| l.contains(&dev)).unwrap_or_else(|| panic!("{dev}: {before:?}"));
        assert!(
            end.contains("xdpgeneric") && end.contains("link-netnsid"),
            "{dev} (other side elsewhere): {end}"
        );
    }
    assert_eq!(before.len(), 2, "the hub's two ends: {before:?}");

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
        assert_eq!(u(&output(&stats, &format!("o{i}"))["packets"]), sent.len() as u64, "o{i}");
    }
    // o9 left: what it got before, in order, and nothing after.
    assert!(increasing(&per[8]) && !per[8].is_empty() && per[8].len() < sent.len(), "o9");
    // o8 left the hub for a policy of its own (numbered datagrams are not TS: it still gets
    // them all): the switch from the hub to its own copies loses and repeats nothing.
    assert!(per[7] == sent, "o8 got {} of {} datagrams, or not in order", per[7].len(), sent.len());
    assert_eq!(u(&output(&stats, "o8")["packets"]), sent.len() as u64);

    stop_cast(cast);
    assert_eq!(hubs(&t), Vec::<String>::new(), "hub devices left behind");
    t.assert_clean();
}

/// The hub of `all` is served before o10 (`key`): it takes clones, at its ingress.
#[test]
fn members_leave_a_hub_of_clones_and_the_others_get_every_datagram_once() {
    require_root!();
    members_leave_a_hub("all", "key");
}

/// The hub of `key` is served last: it takes the original, by bpf_redirect_peer.
#[test]
fn members_leave_the_hub_that_takes_the_original_and_the_others_get_every_datagram_once() {
    require_root!();
    members_leave_a_hub("key", "all");
}

/// Every policy gets a hub from --hub-min outputs (4), whether it takes clones (served first) or
/// the datagram itself (served last); fewer outputs of a policy get direct copies. `stats` names
/// the hub of each output in one, and whether its copies queue on the CPU's backlog (a veth with
/// TSO on), which its hub checks for.
#[test]
fn every_policy_gets_a_hub_from_hub_min_outputs() {
    require_root!();
    let t = Edge::new(8, EDGE_IP, CAM_IP);
    t.edge.sh("ethtool -K o8 tso off");
    let rx = t.receivers();
    let mut rest: Vec<String> = (5..=7).flat_map(|i| ["--to".into(), format!("o{i}:key")]).collect();
    rest.extend(["--to".into(), "o8:ref".into()]);
    let mut extra: Vec<&str> = rest.iter().map(String::as_str).collect();
    extra.extend(["--port", "5000"]);
    let cast = start_all(&t, 4, &extra);
    assert_eq!(hubs(&t).len(), 2, "one hub (its two ends): {:?}", hubs(&t));
    let stats = t.stats();
    for i in 1..=4 {
        let o = output(&stats, &format!("o{i}"));
        assert!(o["hub"].as_str().is_some_and(|h| h.starts_with("ech")), "o{i} of all, served first: {o}");
    }
    for i in 5..=8 {
        let o = output(&stats, &format!("o{i}"));
        assert!(o.get("hub").is_none(), "3 outputs of key (served last) and 1 of ref: no hub: {o}");
    }
    for i in 1..=8 {
        let o = output(&stats, &format!("o{i}"));
        assert_eq!(o["queues_on_backlog"], i != 8, "TSO on, as veths are made, but on o8: {o}");
    }
    every_output_gets_every_datagram(&t, &rx);
    t.stop_clean(cast);
}

#[test]
fn hub_min_zero_makes_no_hub() {
    require_root!();
    let t = Edge::new(8, EDGE_IP, CAM_IP);
    let rx = t.receivers();
    let cast = start_all(&t, 8, &["--port", "5000", "--hub-min", "0"]);
    assert_eq!(hubs(&t), Vec::<String>::new());
    every_output_gets_every_datagram(&t, &rx);
    t.stop_clean(cast);
}

/// A killed cast cannot delete its hubs, but its hub namespace goes with its process, and with it
/// the hubs; `detach` cleans up the rest.
#[test]
fn the_hubs_of_a_killed_cast_go_with_it() {
    require_root!();
    let t = Edge::new(8, EDGE_IP, CAM_IP);
    let cast = start_all(&t, 8, &[]);
    assert_eq!(hubs(&t).len(), 2, "a hub (two ends) for 8 outputs of one policy");
    cast.signal(Signal::SIGKILL);
    let _ = cast.finish(Duration::from_secs(10));
    // The kernel dismantles a namespace in the background.
    let gone = std::time::Instant::now();
    while !hubs(&t).is_empty() && gone.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(hubs(&t), Vec::<String>::new(), "the hubs outlived their cast");
    let out = t.ok(&["detach", "in0"]);
    assert!(!out.contains("removed hub"), "{out}");
    t.assert_clean();
}

/// Outputs added while the cast runs are sent to on their own until every live video flow has
/// shown them a keyframe (numbered datagrams carry none: at once), then move into a hub, made
/// for them when enough take the same copies. The move loses and repeats nothing.
#[test]
fn outputs_added_later_move_into_a_hub_without_loss() {
    require_root!();
    let t = Edge::new(9, EDGE_IP, CAM_IP);
    let rx = t.receivers();
    let mut cast = t.start_cast(&["--to", "o1", "--port", "5000"]);
    assert!(hubs(&t).is_empty(), "one output: no hub");
    let sent = with_traffic(&t, 2000, 3.0, || {
        for i in 2..=9 {
            t.ok(&["out", "add", "cam1", &format!("o{i}")]);
        }
        cast.wait_for("now get their copies through a hub", Duration::from_secs(3));
    });
    assert_eq!(hubs(&t).len(), 2, "a hub (two ends) for the 9 outputs");
    let per: Vec<Vec<u32>> = rx.iter().map(|s| seqs(&drain(s))).collect();
    let stats = t.stats();
    assert!(per[0] == sent, "o1 got {} of {} datagrams, or not in order", per[0].len(), sent.len());
    for i in 2..=9 {
        let got = &per[i - 1];
        // From the moment it was added to the end, each datagram once, in order.
        assert!(
            !got.is_empty() && sent.ends_with(got),
            "o{i}: {} datagrams, not the end of the stream in order",
            got.len()
        );
        assert_eq!(u(&output(&stats, &format!("o{i}"))["packets"]), got.len() as u64, "o{i}");
        let o = output(&stats, &format!("o{i}"));
        assert_eq!(o["queues_on_backlog"], true, "added with TSO on: its hub checks for its copies: {o}");
    }
    stop_cast(cast);
    assert!(hubs(&t).is_empty(), "hub devices left behind");
    t.assert_clean();
}

/// Video: outputs added inside a GOP join at the next keyframe on their own, then move into a
/// hub made for them while the clip plays on; each decodes cleanly from its keyframe, and all
/// got the same copies.
#[test]
fn late_outputs_join_at_a_keyframe_then_move_into_a_hub_and_decode() {
    require_root!();
    let clip = video::clip("h264-bpyramid-aac", video::H264_BPYRAMID_AAC);
    let ts = std::fs::read(&clip).unwrap();
    let t = Edge::new(9, EDGE_IP, CAM_IP);
    let rx = t.receivers();
    let mut cast = t.start_cast(&["--to", "o1"]);
    let tx = t.cam.udp(&format!("{CAM_IP}:4000"));
    let chunks: Vec<&[u8]> = ts.chunks(1316).collect();
    let added_at = chunks.len() / 3 + 7; // inside a GOP (4 of them, 2 s each, sent over 4 s)
    let pace = Duration::from_secs(4) / chunks.len() as u32;
    for (i, c) in chunks.iter().enumerate() {
        if i == added_at {
            for o in 2..=9 {
                t.ok(&["out", "add", "cam1", &format!("o{o}")]);
            }
        }
        tx.send_to(c, format!("{EDGE_IP}:5000")).unwrap();
        std::thread::sleep(pace);
    }
    cast.wait_for(
        "o2, o3, o4, o5, o6, o7, o8, o9 of cam1 now get their copies through a hub",
        Duration::from_secs(1),
    );
    std::thread::sleep(Duration::from_millis(300));
    stop_cast(cast);
    assert!(drain(&rx[0]).concat() == ts, "o1 got the whole clip");
    let late: Vec<Vec<u8>> = rx[1..].iter().map(|s| drain(s).concat()).collect();
    video::assert_joins_cleanly(&clip, &late[0], "hub-join.ts");
    for (i, l) in late.iter().enumerate() {
        assert!(*l == late[0], "o{} got other copies than o2", i + 2);
    }
}

/// A hub's broadcast cannot tell the program which member refused a copy, so its counters say
/// "sent"; the member's device counted the refusal, and `device_drops` shows it (and counts from
/// the output's start: drops before it, and after `stats --reset`, are not its).
#[test]
fn copies_a_member_refused_show_as_its_device_drops() {
    require_root!();
    let t = Edge::new(8, EDGE_IP, CAM_IP);
    let rx = t.receivers();
    // Nothing but the test's frames out of o8 (no IPv6 neighbour discovery meanwhile).
    t.edge.sh("sysctl -qw net.ipv6.conf.o8.disable_ipv6=1");
    t.rx[7].ip("link set dev r0 down");
    // Drops of o8's device from before the cast (here: an earlier cast's) are not the cast's.
    let earlier = start_all(&t, 8, &["--port", "5000"]);
    with_traffic(&t, 1000, 0.3, || {});
    stop_cast(earlier);
    rx.iter().for_each(|s| drop(drain(s)));
    assert!(t.edge.sh("cat /sys/class/net/o8/statistics/tx_dropped").trim() != "0", "o8 dropped none");
    let cast = start_all(&t, 8, &["--port", "5000"]);
    assert_eq!(hubs(&t).len(), 2, "one hub (two ends) for the 8 outputs");
    let sent = with_traffic(&t, 1000, 0.6, || {});
    let stats = t.stats();
    for (i, s) in rx.iter().enumerate().take(7) {
        let name = format!("o{}", i + 1);
        assert!(seqs(&drain(s)) == sent, "{name}");
        assert_eq!(output(&stats, &name)["device_drops"], 0, "{name}");
    }
    let o8 = output(&stats, "o8");
    assert!(drain(&rx[7]).is_empty(), "o8's peer is down");
    assert_eq!(o8["packets"], sent.len() as u64, "the hub took every datagram for o8: {o8}");
    assert_eq!(o8["clone_errors"], 0, "the broadcast does not tell: {o8}");
    assert_eq!(o8["device_drops"], sent.len() as u64, "o8's device refused each copy: {o8}");
    let text = t.ok(&["stats", "cam1"]);
    assert!(text.contains("Dev drop"), "{text}");
    let prom = t.ok(&["stats", "--prometheus"]);
    let line = format!(
        "ebpf_cast_output_device_drops_total{{cast=\"cam1\",output=\"o8\",policy=\"all\"}} {}",
        sent.len()
    );
    assert!(prom.contains(&line), "{prom}");

    t.ok(&["stats", "cam1", "--reset"]);
    assert_eq!(output(&t.stats(), "o8")["device_drops"], 0, "counted from the reset");
    stop_cast(cast);
    t.assert_clean();
}

/// Which members a hub of clones checks the backlog for: veths whose TSO is on hand every copy
/// to their peer through the backlog, whatever the peer runs; with TSO off the peer's NAPI may
/// take them (bench: GRO on the peer), and other devices queue elsewhere.
#[test]
fn only_members_whose_copies_wait_in_the_backlog_are_checked_for() {
    require_root!();
    let ns = Netns::new("hubq");
    ns.ip("link add v0 type veth peer name v1");
    ns.ip("link set dev v0 up");
    ns.ip("link set dev v1 up");
    let ask = |ns: &Netns, dev: &'static str| {
        ns.enter(move || {
            ebpf_cast::kernel::iface::copies_queue_on_backlog(
                ebpf_cast::kernel::iface::index_of(dev).unwrap(),
            )
        })
    };
    assert!(ask(&ns, "v0"), "a veth as made: TSO on");
    ns.sh("ethtool -K v1 gro on");
    assert!(ask(&ns, "v0"), "GRO on the peer does not help while TSO is on");
    ns.sh("ethtool -K v0 tso off");
    assert!(!ask(&ns, "v0"), "TSO off: the peer's NAPI takes the copies");
    assert!(!ask(&ns, "lo"), "not a veth");
}
