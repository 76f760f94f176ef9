//! Frames that arrive with CHECKSUM_COMPLETE (NICs that hand the stack the sum of each frame, or
//! a tunnel whose outer checksum the host checked) must leave the cast with an skb->csum that
//! still sums their bytes, however the cast cut and renumbered them: the receiving kernel trusts
//! it, and drops a datagram whose skb->csum is wrong as a checksum error.
//!
//! cam [vx0 -- c0, checksummed in software] -- u0|vx0 [edge: cast on vx0] o1..o4|r0 -- rx1..rx4
//! (o4 through NAT)
//! With a UDP checksum the payload's changes and the checksum field's cancel in skb->csum; without
//! one (SO_NO_CHECK), skb->csum must follow the payload's changes alone: both are tested.
//! The edge checks the outer UDP checksum of the VXLAN frames and converts it to
//! CHECKSUM_COMPLETE for the inner frames, which the cast reads on vx0. A probe at tc ingress of
//! each receiver (tests/probe/csum.bpf.c) compares every frame's skb->csum with its bytes.
mod common;

use std::{mem::MaybeUninit, sync::mpsc, time::Duration};

use anyhow::Context;
use common::{control::stop_cast, *};
use ebpf_cast::kernel::attach::AttachMode;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};

#[allow(clippy::all, dead_code, non_camel_case_types, unused_imports)]
mod probe {
    include!(concat!(env!("OUT_DIR"), "/csum.skel.rs"));
}

const CAM_IP: &str = "10.209.1.1";
const EDGE_IP: &str = "10.209.1.2";

/// The probe's counts at one receiver: frames without CHECKSUM_COMPLETE, with a right and a
/// wrong skb->csum, too long to check, and without a UDP checksum.
type Counts = (u64, u64, u64, u64, u64);

/// Loads the probe at tc ingress of r0 in `rx` on a thread of its own, which keeps it attached
/// until told to stop and then returns its counts.
fn start_probe(rx: &Netns) -> (mpsc::Sender<()>, std::thread::JoinHandle<anyhow::Result<Counts>>) {
    let (stop_tx, stop_rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = ebpf_cast::kernel::sandbox::spawn_in(&rx.name, move || {
        let mut obj = MaybeUninit::uninit();
        let mut open = probe::CsumSkelBuilder::default().open(&mut obj)?;
        open.progs.csum_probe.set_attach_type(libbpf_rs::ProgramAttachType::TcxIngress);
        let skel = open.load().context("loading the probe")?;
        let r0 = ebpf_cast::kernel::iface::Iface::ethernet("r0")?;
        let _attached = ebpf_cast::kernel::attach::attach(&skel.progs.csum_probe, &r0, AttachMode::Tcx)?;
        ready_tx.send(()).unwrap();
        let _ = stop_rx.recv();
        let bss = skel.maps.bss_data.as_deref().context("probe bss")?;
        Ok((bss.not_complete, bss.complete_right, bss.complete_wrong, bss.too_long, bss.udp_csum_zero))
    });
    if ready_rx.recv_timeout(Duration::from_secs(20)).is_err() {
        panic!("the probe did not start: {:?}", handle.join().unwrap().err());
    }
    (stop_tx, handle)
}

#[test]
fn edited_copies_of_checksum_complete_frames_keep_a_right_skb_csum() {
    require_root!();
    complete_frames(true);
}

#[test]
fn edited_copies_of_checksum_complete_frames_without_a_udp_checksum_keep_a_right_skb_csum() {
    require_root!();
    complete_frames(false);
}

/// Casts the clip, in CHECKSUM_COMPLETE frames whose datagrams carry a UDP checksum or not.
fn complete_frames(udp_checksum: bool) {
    let cam = Netns::new("cam");
    let edge = Netns::new("edge");
    veth(&cam, "c0", &edge, "u0");
    cam.ip(&format!("addr add {CAM_IP}/24 dev c0"));
    edge.ip(&format!("addr add {EDGE_IP}/24 dev u0"));
    // The outer checksum made in software arrives as CHECKSUM_NONE, which the edge checks.
    cam.sh("ethtool -K c0 tx off >/dev/null");
    for (ns, local, remote, inner) in
        [(&cam, CAM_IP, EDGE_IP, "10.209.2.1"), (&edge, EDGE_IP, CAM_IP, "10.209.2.2")]
    {
        ns.ip(&format!("link add vx0 type vxlan id 42 local {local} remote {remote} dstport 4789 udpcsum"));
        ns.ip(&format!("addr add {inner}/24 dev vx0"));
        ns.ip("link set vx0 up");
    }
    let edge_mac = edge.mac("vx0");
    cam.ip(&format!("neigh replace 10.209.2.2 lladdr {edge_mac} dev vx0 nud permanent"));
    let rx: Vec<Netns> = (1..=3).map(|i| Netns::new(&format!("rx{i}"))).collect();
    let mut sockets = Vec::new();
    for (i, r) in rx.iter().enumerate() {
        veth(&edge, &format!("o{}", i + 1), r, "r0");
        r.ip(&format!("link set dev r0 address {edge_mac}"));
        r.ip("addr add 10.209.2.2/24 dev r0");
        let s = r.udp("10.209.2.2:5000");
        big_rcvbuf(&s);
        sockets.push(s);
    }
    // o4 is a NAT output: a consumer at its own address, MAC and port.
    let nat = Netns::new("rx4");
    veth(&edge, "o4", &nat, "r0");
    nat.ip("addr add 10.209.3.4/24 dev r0");
    let s = nat.udp("10.209.3.4:6000");
    big_rcvbuf(&s);
    sockets.push(s);
    let nat_out = format!("o4:all,dst=10.209.3.4:6000,mac={}", nat.mac("r0"));
    let rx: Vec<Netns> = rx.into_iter().chain([nat]).collect();
    let probes: Vec<_> = rx.iter().map(start_probe).collect();
    let mut cast = Proc::spawn({
        let mut c = edge.cmd(bin());
        c.args(["cast", "vx0", "--to", "o1", "--to", "o2:nonref=0.5", "--to", &nat_out, "--port", "5000"]);
        c
    });
    cast.wait_for("Ctrl-C to stop", Duration::from_secs(20));

    let clip = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.ts")).unwrap();
    let tx = cam.udp("10.209.2.1:4000");
    if !udp_checksum {
        no_udp_checksum(&tx);
    }
    // RTP in front of the TS packets: the outputs that leave datagrams out renumber it too.
    let dgrams: Vec<Vec<u8>> = clip
        .chunks(7 * 188)
        .enumerate()
        .map(|(i, ts)| {
            let mut d = vec![0x80, 33];
            d.extend_from_slice(&(i as u16).to_be_bytes());
            d.extend_from_slice(&(i as u32 * 3600).to_be_bytes());
            d.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            d.extend_from_slice(ts);
            d
        })
        .collect();
    let sent = dgrams.len();
    for (i, d) in dgrams.iter().enumerate() {
        if i == sent / 3 {
            // o3 waits for the next keyframe: until then it is served from the restored
            // original, after o2's cut.
            let out = run({
                let mut c = edge.cmd(bin());
                c.args(["out", "add", "vx0", "o3:key"]);
                c
            });
            assert!(out.status.success(), "out add: {}", String::from_utf8_lossy(&out.stderr));
        }
        tx.send_to(d, "10.209.2.2:5000").unwrap();
        if i % 8 == 7 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let counts: Vec<Counts> = probes
        .into_iter()
        .map(|(stop, h)| {
            stop.send(()).unwrap();
            h.join().unwrap().unwrap()
        })
        .collect();
    let got: Vec<Vec<Vec<u8>>> = sockets.iter().map(drain).collect();
    // Each output's RTP numbering has no gap (the ones that left datagrams out renumbered it),
    // o3's too: while it waited for a keyframe it got datagrams emptied down to their RTP
    // header where its class sent one.
    let seq = |d: &Vec<u8>| u16::from_be_bytes([d[2], d[3]]);
    for (i, g) in got.iter().enumerate() {
        let gaps: Vec<(u16, u16)> =
            g.windows(2).map(|w| (seq(&w[0]), seq(&w[1]))).filter(|(a, b)| *b != a.wrapping_add(1)).collect();
        assert!(gaps.is_empty(), "o{}: RTP gaps {gaps:?} in {} datagrams", i + 1, g.len());
    }
    assert!(got[2].iter().any(|d| d.len() == 12), "o3 waited for a keyframe: some datagrams only RTP");
    let bytes: Vec<usize> = got.iter().map(|g| g.iter().map(Vec::len).sum()).collect();
    let got: Vec<usize> = got.iter().map(Vec::len).collect();
    let stats = run({
        let mut c = edge.cmd(bin());
        c.args(["stats", "vx0", "--json"]);
        c
    });
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    stop_cast(cast);
    // Nothing the cast sent was lost: a receiver drops a datagram whose checksum state is wrong.
    for (i, n) in got.iter().enumerate() {
        let name = format!("o{}", i + 1);
        let out = stats[0]["outputs"].as_array().unwrap().iter().find(|o| o["interface"] == name.as_str());
        assert_eq!(out.unwrap()["packets"], *n as u64, "{name}: {stats}");
    }

    // Every output got datagrams; the edited ones less of the stream, o3 from a keyframe on.
    assert!(got[0] == sent && got[3] == sent, "{got:?}");
    let stream: usize = dgrams.iter().map(Vec::len).sum();
    assert!(bytes[0] == stream && bytes[3] == stream, "{bytes:?}");
    assert!(bytes[1] < bytes[0] && got[2] > 0 && bytes[2] < bytes[1], "{got:?} datagrams, {bytes:?} bytes");
    for (i, (other, right, wrong, too_long, no_csum)) in counts.iter().enumerate() {
        assert_eq!(*too_long, 0, "o{}", i + 1);
        let want_no_csum = if udp_checksum { 0 } else { got[i] as u64 };
        assert_eq!(*no_csum, want_no_csum, "o{}: datagrams without a UDP checksum", i + 1);
        // The probe saw every datagram. Copies the cast shortened leave with CHECKSUM_NONE (the
        // kernel's trim drops the sum), the others keep CHECKSUM_COMPLETE: all of o1's and o4's
        // (headers rewritten), and o2's and o3's that were renumbered in place (else this test
        // proves nothing).
        assert_eq!(other + right + wrong, got[i] as u64, "o{}", i + 1);
        assert!(*right > 0, "o{}: no frame was CHECKSUM_COMPLETE ({other} others)", i + 1);
        if i == 0 || i == 3 {
            assert_eq!(*other, 0, "o{} is never shortened", i + 1);
        }
        assert_eq!(*wrong, 0, "o{}: {wrong} frames with a wrong skb->csum ({right} right)", i + 1);
    }
}

/// Sends without a UDP checksum (the field 0), as some encoders do.
fn no_udp_checksum(s: &std::net::UdpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and an int option.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NO_CHECK,
            &on as *const _ as *const libc::c_void,
            std::mem::size_of_val(&on) as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_NO_CHECK: {}", std::io::Error::last_os_error());
}
