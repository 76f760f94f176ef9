//! Runtime control of a running cast (`out add|del|set`, `stats`), through its pins, while
//! packets flow. The cast runs with --netns so that every invocation shares /sys/fs/bpf.
mod common;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use common::{control::*, *};
use serde_json::Value;

const EDGE_IP: &str = "10.208.0.1";
const CAM_IP: &str = "10.208.0.2";

fn edge(n: usize) -> Edge {
    Edge::new(n, EDGE_IP, CAM_IP)
}

#[test]
fn outputs_change_while_untouched_ones_lose_nothing() {
    require_root!();
    let t = edge(6);
    let rx = t.receivers();
    let cast = t.start_cast(&["--to", "o1", "--to", "o2:key", "--port", "5000"]);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = t.numbered_sender(2000, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    for (o, p) in [("o3", "all"), ("o4", "nonref=0.5"), ("o5", "ref"), ("o6", "key")] {
        let out = t.ok(&["out", "add", "cam1", &format!("{o}:{p}")]);
        assert!(out.contains(&format!("added {o}")), "{out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    t.ok(&["out", "set", "cam1", "o3", "key"]);
    t.ok(&["out", "set", "cam1", "o4", "all"]);
    std::thread::sleep(Duration::from_millis(100));
    t.ok(&["out", "del", "cam1", "o5"]);
    t.ok(&["out", "del", "cam1", "o6"]);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let sent = sender.join().unwrap().len() as u32;
    std::thread::sleep(Duration::from_millis(300));

    let stats: Value = serde_json::from_str(&t.ok(&["stats", "cam1", "--json"])).unwrap();
    let per: Vec<Vec<u32>> = rx.iter().map(|s| seqs(&drain(s))).collect();
    let all: Vec<u32> = (0..sent).collect();
    assert!(sent > 1500, "sent {sent}");
    assert!(per[0] == all, "o1 (untouched) got {} of {sent} datagrams, or not in order", per[0].len());
    assert!(per[1] == all, "o2 (untouched; non-TS datagrams are cast whole) got {} of {sent}", per[1].len());
    for (i, o) in per.iter().enumerate().skip(2) {
        assert!(!o.is_empty(), "o{} got nothing", i + 1);
        assert!(o.windows(2).all(|w| w[1] == w[0] + 1), "o{} got a gap or a duplicate", i + 1);
    }
    // Counters read from the pins equal what the receivers counted.
    let outs = stats[0]["outputs"].as_array().unwrap();
    let names: Vec<&str> = outs.iter().map(|o| o["interface"].as_str().unwrap()).collect();
    assert_eq!(names, ["o1", "o2", "o3", "o4"], "o5 and o6 are gone");
    for (i, o) in outs.iter().enumerate() {
        assert_eq!(o["packets"].as_u64().unwrap(), per[i].len() as u64, "{o}");
    }
    assert_eq!(outs[2]["policy"], "key");
    assert_eq!(outs[3]["policy"], "all");
    t.stop_clean(cast);
}

#[test]
fn a_new_output_starts_at_a_keyframe_and_decodes() {
    require_root!();
    let clip = video::clip("h264-bpyramid-aac", video::H264_BPYRAMID_AAC);
    let ts = std::fs::read(&clip).unwrap();
    let t = edge(2);
    let rx = t.receivers();
    let cast = t.start_cast(&["--to", "o1"]);
    let tx = t.cam.udp(&format!("{CAM_IP}:4000"));
    let chunks: Vec<&[u8]> = ts.chunks(1316).collect();
    let added_at = chunks.len() / 3 + 7; // somewhere inside a GOP
    for (i, c) in chunks.iter().enumerate() {
        if i == added_at {
            t.ok(&["out", "add", "cam1", "o2:all"]);
        }
        tx.send_to(c, format!("{EDGE_IP}:5000")).unwrap();
        std::thread::sleep(Duration::from_micros(800));
    }
    std::thread::sleep(Duration::from_millis(300));
    t.stop_clean(cast);
    let first = drain(&rx[0]).concat();
    assert!(first == ts, "o1 got the whole clip");
    video::assert_joins_cleanly(&clip, &drain(&rx[1]).concat(), "late-join.ts");
}

#[test]
fn nat_outputs_reach_plain_sockets_at_their_own_addresses() {
    require_root!();
    let t = edge(0);
    let consumers: Vec<Netns> = (1..=3).map(|i| Netns::new(&format!("vm{i}"))).collect();
    let mut socks = Vec::new();
    for (i, c) in consumers.iter().enumerate() {
        let o = format!("n{}", i + 1);
        veth(&t.edge, &o, c, "eth0");
        let ip = format!("10.209.{}.2", i + 1);
        c.ip(&format!("addr add {ip}/24 dev eth0"));
        let s = c.udp(&format!("{ip}:{}", 7000 + i));
        big_rcvbuf(&s);
        socks.push(s);
    }
    // n1 is a NAT output from the start; n2 is added with mac=, n3 with the neighbour table's.
    let n1 = format!("n1:all,dst=10.209.1.2:7000,mac={}", consumers[0].mac("eth0"));
    let cast = t.start_cast(&["--to", &n1, "--port", "5000"]);
    t.ok(&["out", "add", "cam1", &format!("n2:all,dst=10.209.2.2:7001,mac={}", consumers[1].mac("eth0"))]);
    t.edge.ip(&format!("neigh replace 10.209.3.2 lladdr {} dev n3 nud permanent", consumers[2].mac("eth0")));
    t.ok(&["out", "add", "cam1", "n3:all,dst=10.209.3.2:7002"]);
    let (code, _, err) = t.ec(&["out", "add", "cam1", "o9:all,dst=10.209.9.2:7000"]);
    assert_eq!(code, 2, "{err}");
    let stop = Arc::new(AtomicBool::new(false));
    let sender = t.numbered_sender(1000, stop.clone());
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::SeqCst);
    let sent = sender.join().unwrap().len() as u32;
    std::thread::sleep(Duration::from_millis(300));
    let stats: Value = serde_json::from_str(&t.ok(&["stats", "cam1", "--json"])).unwrap();
    for (i, s) in socks.iter().enumerate() {
        let got = seqs(&drain(s));
        assert!(
            got == (0..sent).collect::<Vec<_>>(),
            "consumer {} got {} of {sent} datagrams",
            i + 1,
            got.len()
        );
        assert_eq!(stats[0]["outputs"][i]["packets"].as_u64().unwrap(), sent as u64);
    }
    t.stop_clean(cast);
}

#[test]
fn a_deleted_output_interface_disturbs_no_other() {
    require_root!();
    let t = edge(3);
    let rx = t.receivers();
    let mut cast = t.start_cast(&["--to", "o1", "--to", "o2", "--to", "o3", "--port", "5000"]);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = t.numbered_sender(2000, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    t.edge.ip("link del dev o2");
    // The cast follows the kernel's links: the gone output leaves the table by itself.
    cast.wait_for(
        "output o2 is gone (deleted, or moved to another network namespace): removed from cam1",
        Duration::from_secs(5),
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let sent = sender.join().unwrap().len() as u32;
    std::thread::sleep(Duration::from_millis(300));
    let all: Vec<u32> = (0..sent).collect();
    assert!(seqs(&drain(&rx[0])) == all, "o1 lost something");
    assert!(seqs(&drain(&rx[2])) == all, "o3 lost something");
    let (code, _, err) = t.ec(&["out", "del", "cam1", "o2"]);
    assert_eq!(
        (code, err.trim()),
        (2, "ebpf-cast: error: o2 is not an output of cam1 (`ebpf-cast stats cam1` lists them)")
    );
    let st = t.ok(&["status"]);
    assert!(st.contains("o1:all o3:all"), "{st}");
    // The Prometheus view carries the same numbers; --reset zeroes them.
    let prom = t.ok(&["stats", "cam1", "--prometheus"]);
    let line = format!("ebpf_cast_output_packets_total{{cast=\"cam1\",output=\"o1\",policy=\"all\"}} {sent}");
    assert!(prom.lines().any(|l| l == line), "{line} not in:\n{prom}");
    assert!(prom.contains("# TYPE ebpf_cast_output_clone_errors_total counter"));
    t.ok(&["stats", "cam1", "--reset"]);
    let stats: Value = serde_json::from_str(&t.ok(&["stats", "cam1", "--json"])).unwrap();
    assert_eq!(stats[0]["outputs"][0]["packets"].as_u64(), Some(0));
    // The pins are root's alone.
    use std::os::unix::fs::PermissionsExt;
    let dir = std::fs::read_dir("/sys/fs/bpf/ebpf-cast")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("cam1"))
        .find(|p| p.join("bss").exists() && p.to_string_lossy().contains(&ns_inode(&t.edge)))
        .expect("the pins of cam1");
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    for f in ["bss", "ostats", "flows"] {
        assert_eq!(std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777, 0o600, "{f}");
    }
    cast.signal(nix::sys::signal::Signal::SIGTERM);
    let (_, status) = cast.finish(Duration::from_secs(10));
    assert!(status.success());
    assert!(!dir.exists(), "a clean stop removes the pins");
    // And the namespace's directory, its last instance gone (/sys/fs/bpf/ebpf-cast too, unless a
    // test beside this one has a cast running).
    assert!(!dir.parent().unwrap().exists(), "the namespace's pin directory is left");
}

#[test]
fn runtime_commands_need_root_and_a_live_instance() {
    require_root!();
    let t = edge(1);
    let (code, _, err) = t.ec(&["out", "add", "nosuch", "o1"]);
    assert_eq!(code, 2);
    assert!(err.contains("no cast named nosuch in this network namespace"), "{err}");
    let cast = t.start_cast(&["--to", "o1"]);
    // A user without capabilities can neither steer nor read it, and is told what it lacks.
    for (cmd, args) in [
        ("out", vec!["out", "del", "cam1", "o1"]),
        ("stats", vec!["stats", "cam1"]),
        ("status", vec!["status"]),
        ("detach", vec!["detach", "in0"]),
    ] {
        let out = as_nobody(Some(&t.edge), &args);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("ebpf-cast {cmd} needs root (missing CAP_BPF and CAP_NET_ADMIN)")),
            "{cmd}: {err}"
        );
    }
    // Nor through the pins themselves: the directory is root's alone.
    let pins = pins_of(&t.edge).join("cam1");
    let out = run({
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"]).arg(pins.join("bss"));
        c
    });
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"), "{out:?}");
    // kill -9: the pins stay, status calls them stale, detach cleans them.
    cast.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = cast.finish(Duration::from_secs(5));
    let st = t.ok(&["status"]);
    assert!(st.contains("cam1") && st.contains("STALE"), "{st}");
    let (code, _, err) = t.ec(&["out", "add", "cam1", "o1:key"]);
    assert_eq!(code, 2);
    assert!(err.contains("cast cam1 is stale"), "{err}");
    let out = t.ok(&["detach", "in0"]);
    assert!(out.contains("removed the pins of cast cam1"), "{out}");
    assert!(!t.ok(&["status"]).contains("cam1"));
}

/// A cast is known by its process's pid and start time, not by the name of its binary: run
/// through a link named otherwise, it is still running for `stats`, `status` and `out`.
#[test]
fn a_cast_started_under_another_name_is_running() {
    require_root!();
    let t = edge(2);
    let dir = TempDir(std::env::temp_dir().join(format!("ebpf-cast-renamed-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let link = dir.0.join("camcast");
    std::os::unix::fs::symlink(bin(), &link).unwrap();
    let mut cast = Proc::spawn({
        let mut c = std::process::Command::new(&link);
        c.args(["--netns", &t.edge.name, "cast", "in0", "--name", "cam1", "--to", "o1"]);
        c
    });
    cast.wait_for("Ctrl-C to stop", Duration::from_secs(20));
    let st = t.stats();
    assert_eq!(st[0]["running"], true, "{st}");
    t.ok(&["out", "add", "cam1", "o2:key"]);
    assert!(!t.ok(&["status"]).contains("STALE"));
    t.stop_clean(cast);
}

/// Removes a directory of the test's own when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn outputs_and_the_input_follow_the_kernels_links() {
    require_root!();
    let t = edge(2);
    let mut cast = t.start_cast(&["--to", "o1", "--to", "o2", "--port", "5000"]);
    // A renamed output is known by its new name (a running interface is renamed down).
    t.edge.ip("link set dev o2 down");
    t.edge.ip("link set dev o2 name o2new");
    t.edge.ip("link set dev o2new up");
    cast.wait_for("output o2 of cam1 is now named o2new", Duration::from_secs(5));
    assert!(t.ok(&["status"]).contains("o1:all o2new:all"));
    assert_eq!(t.ok(&["out", "set", "cam1", "o2new", "key"]).trim(), "o2new of cam1 now has policy key");
    // With its input gone nothing is attached any more: the cast says so and exits 1.
    let mut stderr = cast.child.stderr.take().unwrap();
    t.edge.ip("link del dev in0");
    let (_, status) = cast.finish(Duration::from_secs(10));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(
        err,
        "ebpf-cast: error: the input in0 is gone (deleted, or moved to another network namespace): nothing is \
         attached any more, so the cast cam1 stops\n"
    );
    assert!(!t.ok(&["status"]).contains("cam1"), "its pins are removed");
}

#[test]
fn pin_directories_a_user_planted_are_refused() {
    require_root!();
    use std::os::unix::fs::PermissionsExt;
    let t = edge(1);
    // On the world-writable bpffs, a user makes the namespace's pin directory first.
    let root = std::path::Path::new("/sys/fs/bpf/ebpf-cast");
    let _ = std::fs::create_dir(root); // root's own, as a cast would make it
    let planted = root.join(ns_inode(&t.edge));
    std::fs::create_dir(&planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
    let (code, _, err) = t.ec(&["cast", "in0", "--name", "cam1", "--to", "o1"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        format!(
            "ebpf-cast: error: {p} is not a directory that root alone can write (owner uid 65534, mode 777): \
             ebpf-cast did not make it and will not use it; remove it (`rm -r {p}`) and start again\n",
            p = planted.display()
        )
    );
    assert!(t.ok(&["status"]).contains("no ebpf-cast program is attached"), "nothing is left attached");
}

#[test]
fn pins_of_a_cast_whose_namespace_is_gone_are_found_and_removed() {
    require_root!();
    let t = edge(1);
    let dir = std::path::Path::new("/sys/fs/bpf/ebpf-cast").join(ns_inode(&t.edge));
    let cast = t.start_cast(&["--to", "o1"]);
    // The namespace loses its name, then its last process: the pins stay, out of reach.
    sh(&format!("ip netns del {}", t.edge.name));
    cast.signal(nix::sys::signal::Signal::SIGKILL);
    drop(cast);
    let ebpf_cast = |args: &[&str]| {
        let mut c = std::process::Command::new(bin());
        c.args(args);
        run(c)
    };
    let status = || String::from_utf8_lossy(&ebpf_cast(&["status"]).stdout).into_owned();
    let mut st = status();
    for _ in 0..50 {
        if st.contains(&dir.display().to_string()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100)); // the kernel frees a namespace lazily
        st = status();
    }
    assert!(st.contains("ORPHANED PINS"), "{st}");
    assert!(st.contains(&format!("  {}", dir.display())), "{st}");
    let out = ebpf_cast(&["detach", "--orphans"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("removed {}", dir.display())));
    assert!(!dir.exists());
    assert!(!status().contains(&dir.display().to_string()));
}

/// `ip netns exec NS ebpf-cast ...` works as for any other network tool: each invocation gets a
/// /sys (and so a bpffs) of its own, so the casts are found from the kernel, by the program
/// attached in the namespace and its maps.
#[test]
fn ip_netns_exec_works_like_for_any_other_network_tool() {
    require_root!();
    let t = edge(2);
    let rx = t.receivers();
    let in_ns = |args: &[&str]| {
        let out = run({
            let mut c = t.edge.cmd(bin());
            c.args(args);
            c
        });
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "ip netns exec ... ebpf-cast {args:?}: {err}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut cast = Proc::spawn({
        let mut c = t.edge.cmd(bin());
        c.args(["cast", "in0", "--name", "cam1", "--to", "o1", "--port", "5000"]);
        c
    });
    cast.wait_for("Ctrl-C to stop", Duration::from_secs(20));
    assert!(in_ns(&["out", "add", "cam1", "o2:key"]).contains("added o2"));
    let st = in_ns(&["status"]);
    assert!(st.contains("cam1") && st.contains("o1:all o2:key"), "{st}");
    let sent = with_traffic(&t, 1000, 1.0, || {});
    for (i, s) in rx.iter().enumerate() {
        assert!(seqs(&drain(s)) == sent, "o{} got every datagram", i + 1);
    }
    // The same counters, from the namespace and from the host with --netns.
    let stats: Value = serde_json::from_str(&in_ns(&["stats", "cam1", "--json"])).unwrap();
    assert_eq!(stats[0]["outputs"][1]["packets"].as_u64(), Some(sent.len() as u64), "{stats}");
    assert_eq!(t.stats()[0]["outputs"][1]["packets"].as_u64(), Some(sent.len() as u64));
    assert!(in_ns(&["out", "del", "cam1", "o2"]).contains("removed o2"));
    cast.signal(nix::sys::signal::Signal::SIGTERM);
    let (_, status) = cast.finish(Duration::from_secs(10));
    assert!(status.success());
    t.assert_clean();
}
