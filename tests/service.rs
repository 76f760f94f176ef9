//! Running as a service: `check-config`, `run --config` with two casts, a live reload by SIGHUP
//! (outputs added, removed, changed, a cast removed; a broken file refused) while numbered
//! datagrams flow, and the metrics endpoint checked by promtool. The service runs with `ip netns
//! exec EDGE`, as an operator would run it in a container's namespace.
mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    time::Duration,
};

use common::{control::*, *};
use nix::sys::signal::Signal;

const EDGE_IP: &str = "10.212.0.1";
const CAM_IP: &str = "10.212.0.2";

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// Two casts on the edge: cam1 from in0 to o1..o3, cam2 from a second input.
fn config(cam1_outputs: &str, with_cam2: bool) -> String {
    let mut s = format!(
        "metrics = \"127.0.0.1:9464\"\n\n[[cast]]\nname = \"cam1\"\ninput = \"in0\"\nports = [5000]\n{cam1_outputs}"
    );
    if with_cam2 {
        s.push_str("\n[[cast]]\nname = \"cam2\"\ninput = \"in2\"\n\n[[cast.output]]\ninterface = \"o4\"\n");
    }
    s
}

fn outputs(list: &[(&str, &str)]) -> String {
    list.iter().map(|(i, p)| format!("\n[[cast.output]]\ninterface = \"{i}\"\npolicy = \"{p}\"\n")).collect()
}

fn scrape(ns: &Netns) -> String {
    ns.enter(|| {
        let mut s = TcpStream::connect("127.0.0.1:9464").expect("the metrics endpoint");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    })
}

#[test]
fn check_config_names_every_error_with_its_line() {
    let dir = std::env::temp_dir().join(format!("ebpf-cast-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    write(&good, &config(&outputs(&[("o1", "all"), ("o2", "key")]), true));
    let out = run({
        let mut c = std::process::Command::new(bin());
        c.arg("check-config").arg(&good);
        c
    });
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 casts, 3 outputs: OK"));
    let bad = dir.join("bad.toml");
    write(&bad, "[[cast]]\ninput = \"in0\"\n\n[[cast.output]]\ninterface = \"o1\"\npolicy = \"most\"\n\n[[cast]]\ninput = \"in0\"\n");
    let out = run({
        let mut c = std::process::Command::new(bin());
        c.arg("check-config").arg(&bad);
        c
    });
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let b = bad.display();
    assert!(err.contains(&format!("{b}:6: output o1: malformed policy 'most'")), "{err}");
    assert!(err.contains(&format!("{b}:9: a second cast named in0")), "{err}");
    assert!(err.contains(&format!("{b}:9: cast in0 has no output")), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `status`, once it shows what `want` looks for (a cast runs once its program is loaded, which
/// takes a while), or after 10 s.
fn status_until(t: &Edge, want: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let st = t.ok(&["status"]);
        if want(&st) || std::time::Instant::now() > deadline {
            return st;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn run_reloads_live_and_serves_metrics() {
    require_root!();
    let t = Edge::new(4, EDGE_IP, CAM_IP);
    veth(&t.edge, "in2", &t.cam, "c2");
    let rx = t.receivers();
    let dir = std::env::temp_dir().join(format!("ebpf-cast-service-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("node.toml");
    write(&file, &config(&outputs(&[("o1", "all"), ("o2", "key"), ("o3", "all")]), true));
    let mut svc = Proc::spawn({
        let mut c = t.edge.cmd(bin());
        c.arg("run").arg("--config").arg(&file);
        c
    });
    svc.wait_for("Ctrl-C to stop", Duration::from_secs(20));
    let st = status_until(&t, |st| st.contains("cam1") && st.contains("cam2"));
    assert!(st.contains("cam1") && st.contains("cam2"), "both casts attached: {st}");
    let hup = |svc: &Proc| svc.signal(Signal::SIGHUP);
    let sent = with_traffic(&t, 1000, 3.0, || {
        // A broken file is refused: nothing changes.
        write(&file, "[[cast]]\ninput = \"in0\"\n[[cast.output]]\ninterface = \"o1\"\npolicy = \"most\"\n");
        hup(&svc);
        std::thread::sleep(Duration::from_millis(500));
        assert!(t.ok(&["status"]).contains("o1:all o2:key o3:all"), "unchanged after a broken file");
        // o2 removed, o3 now key, o4 added to cam1; cam2 removed from the file.
        write(&file, &config(&outputs(&[("o1", "all"), ("o3", "key"), ("o4", "all")]), false));
        hup(&svc);
        std::thread::sleep(Duration::from_millis(500));
    });
    let log = svc.wait_for("reloaded", Duration::from_secs(5));
    let st = t.ok(&["status"]);
    assert!(st.contains("o1:all o4:all o3:key"), "{st}\n{log}");
    assert!(!st.contains("cam2"), "cam2 stopped: {st}");
    let per: Vec<Vec<u32>> = rx.iter().map(|s| seqs(&drain(s))).collect();
    assert!(per[0] == sent, "o1 (untouched) got {} of {}, or not in order", per[0].len(), sent.len());
    assert!(!per[1].is_empty() && per[1].len() < sent.len(), "o2 got datagrams until it was removed");
    assert!(per[3].last() == sent.last(), "o4 gets the stream since the reload");
    // A cast added to the file starts.
    write(&file, &config(&outputs(&[("o1", "all"), ("o3", "key"), ("o4", "all")]), true));
    hup(&svc);
    svc.wait_for("started cast cam2", Duration::from_secs(5));
    let st = status_until(&t, |st| st.contains("cam2"));
    assert!(st.contains("cam2"), "cam2 runs again: {st}");
    // The metrics endpoint, checked by promtool.
    let text = scrape(&t.edge);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let line = format!(
        "ebpf_cast_output_packets_total{{cast=\"cam1\",output=\"o1\",policy=\"all\"}} {}",
        sent.len()
    );
    assert!(body.lines().any(|l| l == line), "{line} not in:\n{body}");
    let input = format!("ebpf_cast_input_datagrams_total{{cast=\"cam1\",input=\"in0\"}} {}", sent.len());
    assert!(body.lines().any(|l| l == input), "{input} not in:\n{body}");
    let prom = dir.join("metrics.txt");
    write(&prom, body);
    let check = sh(&format!("promtool check metrics < {} 2>&1 || echo PROMTOOL-FAILED", prom.display()));
    assert!(!check.contains("PROMTOOL-FAILED"), "promtool: {check}");
    svc.signal(Signal::SIGTERM);
    let (_, status) = svc.finish(Duration::from_secs(10));
    assert!(status.success());
    t.assert_clean();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A cast whose input is not there yet (a container still starting) is tried again until it is.
#[test]
fn run_waits_for_an_input_that_is_not_there_yet() {
    require_root!();
    let t = Edge::new(1, "10.216.0.1", "10.216.0.2");
    let dir = std::env::temp_dir().join(format!("ebpf-cast-wait-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("node.toml");
    write(&file, "[[cast]]\nname = \"late\"\ninput = \"in9\"\n\n[[cast.output]]\ninterface = \"o1\"\n");
    let mut svc = Proc::spawn({
        let mut c = t.edge.cmd(bin());
        c.arg("run").arg("--config").arg(&file);
        c
    });
    let said = svc.wait_for("trying again every 5 s", Duration::from_secs(10));
    assert!(said.contains("cast late stopped: no interface named in9"), "{said}");
    veth(&t.edge, "in9", &t.cam, "c9");
    svc.wait_for("Ctrl-C to stop", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert!(t.ok(&["status"]).contains("late"), "the cast runs once its input is there");
    svc.signal(Signal::SIGTERM);
    let (_, status) = svc.finish(Duration::from_secs(10));
    assert!(status.success());
    t.assert_clean();
    let _ = std::fs::remove_dir_all(&dir);
}
