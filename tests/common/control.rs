//! A cast run with --netns on the CastEdge topology and steered by further invocations (`out`,
//! `stats`, `status`), with numbered datagrams flowing: the harness of the runtime and fault tests.
use std::{
    net::UdpSocket,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use super::{bin, run, CastEdge, Netns, Proc};

pub struct Edge {
    _pins: PinsGuard,
    pub t: CastEdge,
    pub edge_ip: String,
    pub cam_ip: String,
}

impl std::ops::Deref for Edge {
    type Target = CastEdge;
    fn deref(&self) -> &CastEdge {
        &self.t
    }
}

/// Removes the pins and lock files of the edge namespace's casts, also when a test fails or kills
/// a cast (a later namespace may get the same inode, and so the same names).
struct PinsGuard(std::path::PathBuf);

impl Drop for PinsGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let ns = self.0.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        for lock in lock_files(ns) {
            let _ = std::fs::remove_file(std::path::Path::new("/run/ebpf-cast").join(lock));
        }
    }
}

/// Lock files of the casts of network namespace `ns` (net-INODE).
fn lock_files(ns: &str) -> Vec<String> {
    let prefix = format!("{ns}-");
    std::fs::read_dir("/run/ebpf-cast")
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().into_string().ok()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|l| l.starts_with(&prefix))
        .collect()
}

impl Edge {
    pub fn new(n: usize, edge_ip: &str, cam_ip: &str) -> Edge {
        let t = CastEdge::new(n, edge_ip, cam_ip);
        Edge { _pins: PinsGuard(pins_of(&t.edge)), t, edge_ip: edge_ip.into(), cam_ip: cam_ip.into() }
    }

    /// `ebpf-cast --netns EDGE ARGS`: (exit code, stdout, stderr).
    pub fn ec(&self, args: &[&str]) -> (i32, String, String) {
        let out = run({
            let mut c = std::process::Command::new(bin());
            c.args(["--netns", &self.edge.name]).args(args);
            c
        });
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// As `ec`, for a command that must succeed: its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.ec(args);
        assert_eq!(code, 0, "ebpf-cast {args:?}: {err}");
        out
    }

    /// `ebpf-cast --netns EDGE cast in0 --name cam1 ARGS`, once it runs.
    pub fn start_cast(&self, args: &[&str]) -> Proc {
        let mut c = std::process::Command::new(bin());
        c.args(["--netns", &self.edge.name, "cast", "in0", "--name", "cam1"]).args(args);
        let mut p = Proc::spawn(c);
        p.wait_for("Ctrl-C to stop", Duration::from_secs(20));
        p
    }

    /// `stats cam1 --json`, parsed.
    pub fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["stats", "cam1", "--json"])).unwrap()
    }

    /// One UDP socket per receiver on port 5000, with room for a whole test's datagrams.
    pub fn receivers(&self) -> Vec<UdpSocket> {
        let rx: Vec<UdpSocket> = self.rx.iter().map(|r| r.udp(&format!("{}:5000", self.edge_ip))).collect();
        rx.iter().for_each(super::big_rcvbuf);
        rx
    }

    /// Sends numbered 1316-byte datagrams at about `rate` a second until `stop` (at most 20 s);
    /// returns the numbers the camera's socket took (a send refused while a link is down is
    /// not counted).
    pub fn numbered_sender(&self, rate: u64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u32>> {
        let tx = self.cam.udp(&format!("{}:4000", self.cam_ip));
        let to = format!("{}:5000", self.edge_ip);
        std::thread::spawn(move || {
            let mut seq = 0u32;
            let mut sent = Vec::new();
            let start = Instant::now();
            while !stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(20) {
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u32;
                while seq < due {
                    let mut p = vec![0x11u8; 1316];
                    p[..4].copy_from_slice(&seq.to_be_bytes());
                    if tx.send_to(&p, &to).is_ok() {
                        sent.push(seq);
                    }
                    seq += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            sent
        })
    }

    /// Nothing of ebpf-cast is left in the edge namespace: no program attached, no pins, no
    /// lock file.
    /// Stops the cast (SIGTERM) and checks that it left nothing behind.
    pub fn stop_clean(&self, cast: Proc) {
        stop_cast(cast);
        self.assert_clean();
    }

    pub fn assert_clean(&self) {
        let st = self.ok(&["status"]);
        assert!(st.contains("no ebpf-cast program is attached"), "{st}");
        assert!(!pins_of(&self.edge).exists(), "pins left behind in {}", pins_of(&self.edge).display());
        let locks = lock_files(&ns_inode(&self.edge));
        assert!(locks.is_empty(), "lock files left behind: {locks:?}");
    }
}

/// Traffic for `secs`: starts the numbered sender, runs `during` after `secs / 3`, stops the
/// sender after `secs` and lets the last copies arrive. Returns what was sent.
pub fn with_traffic(t: &Edge, rate: u64, secs: f64, during: impl FnOnce()) -> Vec<u32> {
    let stop = Arc::new(AtomicBool::new(false));
    let sender = t.numbered_sender(rate, stop.clone());
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs / 3.0));
    during();
    if let Some(rest) = Duration::from_secs_f64(secs).checked_sub(start.elapsed()) {
        std::thread::sleep(rest);
    }
    stop.store(true, Ordering::SeqCst);
    let sent = sender.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    sent
}

/// Stops a cast as a service manager would (SIGTERM); it must exit 0.
pub fn stop_cast(cast: Proc) {
    cast.stop(nix::sys::signal::Signal::SIGTERM);
}

/// Where a namespace's casts keep their pins.
pub fn pins_of(ns: &Netns) -> std::path::PathBuf {
    std::path::Path::new("/sys/fs/bpf/ebpf-cast").join(ns_inode(ns))
}

pub fn ns_inode(ns: &Netns) -> String {
    use std::os::unix::fs::MetadataExt;
    format!("net-{}", std::fs::metadata(format!("/run/netns/{}", ns.name)).unwrap().ino())
}

/// Strictly increasing: nothing twice, nothing out of order.
pub fn increasing(s: &[u32]) -> bool {
    s.windows(2).all(|w| w[1] > w[0])
}

/// The numbers of numbered datagrams.
pub fn seqs(d: &[Vec<u8>]) -> Vec<u32> {
    d.iter().map(|p| u32::from_be_bytes([p[0], p[1], p[2], p[3]])).collect()
}

/// The outputs in `stats cam1 --json`, in its order.
pub fn outputs_of(stats: &serde_json::Value) -> Vec<&serde_json::Value> {
    stats[0]["outputs"].as_array().unwrap().iter().collect()
}

/// Output `name` in `stats cam1 --json`.
pub fn output<'a>(stats: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    outputs_of(stats)
        .into_iter()
        .find(|o| o["interface"] == name)
        .unwrap_or_else(|| panic!("no output {name} in {stats}"))
}

/// A counter of the stats.
pub fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The hub ends in the edge namespace, with their XDP mode (each is a veth whose other side is
/// in the cast's hub namespace).
pub fn hubs(t: &Edge) -> Vec<String> {
    t.edge.ip("-o -d link show").lines().filter(|l| l.contains(": ech")).map(String::from).collect()
}
