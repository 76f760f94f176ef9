//! Across machines: node 1 casts a camera to a local consumer and to a VXLAN tunnel whose far
//! end is node 2's cast input; node 2 casts to its own consumers. Two namespaces are the nodes,
//! a veth pair their underlay. Every consumer decodes as its policy demands.
//!
//! cam -- c0|in0 [node1: cast] o1 -- rx1 (all)
//!                             vx0 ~~ VXLAN over u1|u2 ~~ vx0 [node2: cast] p1 -- rx21 (all)
//!                                                                          p2 -- rx22 (key)
mod common;

use std::{net::UdpSocket, time::Duration};

use common::{video::*, *};

const EDGE_IP: &str = "10.213.0.1";
const CAM_IP: &str = "10.213.0.2";

fn cast(ns: &Netns, args: &[&str]) -> Proc {
    let mut p = Proc::spawn({
        let mut c = ns.cmd(bin());
        c.arg("cast").args(args);
        c
    });
    p.wait_for("Ctrl-C to stop", Duration::from_secs(20));
    p
}

#[test]
fn a_tunnel_output_feeds_a_second_nodes_cast() {
    require_root!();
    let clip = clip("h264-bpyramid-aac", H264_BPYRAMID_AAC);
    let kinds = frame_kinds(&clip);
    let ts = std::fs::read(&clip).unwrap();
    // Node 1 is the CastEdge's edge, with one local consumer.
    let t = CastEdge::new(1, EDGE_IP, CAM_IP);
    let node2 = Netns::new("node2");
    veth(&t.edge, "u1", &node2, "u2");
    t.edge.ip("addr add 10.214.0.1/24 dev u1");
    node2.ip("addr add 10.214.0.2/24 dev u2");
    t.edge.ip("link add vx0 type vxlan id 42 local 10.214.0.1 remote 10.214.0.2 dstport 4789 dev u1");
    node2.ip("link add vx0 type vxlan id 42 local 10.214.0.2 remote 10.214.0.1 dstport 4789 dev u2");
    t.edge.ip("link set vx0 up");
    node2.ip("link set vx0 up");
    // Node 2's consumers carry the camera's destination, as node 1's do.
    let edge_mac = t.edge.mac("in0");
    let consumers: Vec<Netns> = (1..=2).map(|i| Netns::new(&format!("rx2{i}"))).collect();
    for (i, c) in consumers.iter().enumerate() {
        veth(&node2, &format!("p{}", i + 1), c, "r0");
        c.ip(&format!("link set dev r0 address {edge_mac}"));
        c.ip(&format!("addr add {EDGE_IP}/24 dev r0"));
    }
    let socks: Vec<UdpSocket> = std::iter::once(&t.rx[0])
        .chain(&consumers)
        .map(|ns| {
            let s = ns.udp(&format!("{EDGE_IP}:5000"));
            big_rcvbuf(&s);
            s
        })
        .collect();
    let node2_cast = cast(&node2, &["vx0", "--to", "p1:all", "--to", "p2:key", "--port", "5000"]);
    let node1_cast = cast(&t.edge, &["in0", "--to", "o1:all", "--to", "vx0:all", "--port", "5000"]);
    let tx = t.cam.udp(&format!("{CAM_IP}:4000"));
    for (i, chunk) in ts.chunks(1316).enumerate() {
        tx.send_to(chunk, format!("{EDGE_IP}:5000")).unwrap();
        if i % 4 == 3 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    // Stopped, not killed: a killed cast leaves its lock file, which a later namespace that
    // gets the same inode would find as its own.
    common::control::stop_cast(node1_cast);
    common::control::stop_cast(node2_cast);
    let dir = clip.parent().unwrap().join("two-nodes");
    std::fs::create_dir_all(&dir).unwrap();
    for (sock, (who, level)) in
        socks.iter().zip([("node1 o1 all", 0u16), ("node2 p1 all", 0), ("node2 p2 key", 257)])
    {
        let capture = drain(sock).concat();
        if level == 0 {
            assert!(
                capture == ts,
                "{who}: the clip, byte for byte ({} of {} bytes)",
                capture.len(),
                ts.len()
            );
        }
        let path = dir.join(format!("{}.ts", who.replace(' ', "-")));
        std::fs::write(&path, &capture).unwrap();
        assert_eq!(decoded_frames(&path), expected_frames(&kinds, level), "{who}: decoded frames");
        let warnings = decode_warnings(&path);
        assert!(warnings.trim().is_empty(), "{who}: ffmpeg warned:\n{warnings}");
    }
}
