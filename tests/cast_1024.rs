//! 1024 outputs of one cast, in its own test binary: its bursts of copies fill the CPU's
//! input backlog, which other tests running at the same time would share.
mod common;

use std::time::Duration;

use common::{video::*, *};
use nix::sys::signal::Signal;
use serde_json::Value;

const EDGE_IP: &str = "10.202.0.1";
const CAM_IP: &str = "10.202.0.2";

#[test]
fn a_thousand_and_twenty_four_outputs_each_get_the_whole_stream() {
    require_root!();
    const N: usize = 1024;
    let clip = clip("h264-flat-b-pid200", H264_FLAT_B_PID200);
    let ts = std::fs::read(&clip).unwrap();
    let (cam, edge, sink) = (Netns::new("cam"), Netns::new("edge"), Netns::new("sink"));
    veth(&cam, "c0", &edge, "in0");
    cam.ip(&format!("addr add {CAM_IP}/24 dev c0"));
    edge.ip(&format!("addr add {EDGE_IP}/24 dev in0"));
    cam.ip(&format!("neigh replace {EDGE_IP} lladdr {} dev c0 nud permanent", edge.mac("in0")));
    let mut cmds = String::new();
    for i in 0..N {
        cmds += &format!(
            "link add name o{i} type veth peer name r{i} netns {}\nlink set dev o{i} up\n",
            sink.name
        );
    }
    edge.ip_batch(&cmds);
    sink.ip_batch(&(0..N).map(|i| format!("link set dev r{i} up\n")).collect::<String>());

    let policies = ["all", "nonref=0.5", "ref", "key"];
    let mut cmd = edge.cmd(bin());
    cmd.args(["cast", "in0", "--json"]);
    for i in 0..N {
        cmd.args(["--to", &format!("o{i}:{}", policies[i % 4])]);
    }
    let mut cast = Proc::spawn(cmd);
    let started: Value =
        serde_json::from_str(&cast.wait_for("\"outputs\"", Duration::from_secs(60))).unwrap();
    // Under `ip netns exec` the tool reaches the host's sysctl only through PID 1's namespace:
    // it raised the limit, or (where that namespace cannot be opened) it says what to set.
    let note = started["note"].as_str().unwrap_or_default().to_string();
    let advised = note.split("netdev_max_backlog=").nth(1).and_then(|s| s.split('`').next());
    let raised = note.split("netdev_max_backlog from ").nth(1).and_then(|s| s.split(" to ").nth(1));
    let want: u64 = advised
        .or(raised.and_then(|s| s.split(' ').next()))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no backlog advice or raise for {N} outputs: {note:?}"));
    assert!(want >= N as u64, "{note}");
    let _limit = ebpf_cast::kernel::backlog::set(want).unwrap();

    // A moderate rate: about 100 datagrams (100 x 1024 copies) a second.
    let tx = cam.udp(&format!("{CAM_IP}:4000"));
    let sent = ts.chunks(1316).len();
    for c in ts.chunks(1316) {
        tx.send_to(c, format!("{EDGE_IP}:5000")).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    let stats = cast.final_report(Signal::SIGTERM);
    let counters = |what: &str| -> Vec<u64> {
        sink.sh(&format!("for i in $(seq 0 {}); do cat /sys/class/net/r$i/statistics/{what}; done", N - 1))
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect()
    };
    let (rx, bytes) = (counters("rx_packets"), counters("rx_bytes"));
    assert_eq!((rx.len(), bytes.len()), (N, N));
    for i in 0..N {
        let o = &stats["outputs"][i];
        let p = policies[i % 4];
        assert_eq!(o["clone_errors"].as_u64().unwrap(), 0, "output {i}");
        assert_eq!(rx[i], o["packets"].as_u64().unwrap(), "o{i} ({p}) received every datagram sent to it");
        assert_eq!(bytes[i], o["bytes"].as_u64().unwrap(), "o{i} ({p}) received every byte sent to it");
        assert_eq!((rx[i], bytes[i]), (rx[i % 4], bytes[i % 4]), "o{i} got what o{} (also {p}) got", i % 4);
    }
    assert_eq!(rx[0], sent as u64, "an `all` output received every datagram");
    assert!(
        bytes[3] < bytes[2] && bytes[2] < bytes[1] && bytes[1] < bytes[0],
        "each policy drops more: {:?}",
        &bytes[..4]
    );
}
