//! Test harness: uniquely named network namespaces and veth pairs that are removed on Drop
//! (also when a test panics), sockets opened inside a namespace, and the ebpf-cast binary.
#![allow(dead_code)]

pub mod control;
pub mod model;
pub mod packets;
pub mod video;

use ebpf_cast::kernel::sandbox;
use std::{
    io::{BufRead, BufReader},
    net::UdpSocket,
    process::{Child, ChildStdout, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

/// Tests that need root fail with this message when run without it, unless the caller opts out
/// with EBPF_CAST_SKIP_ROOT_TESTS=1. Returns false when the test should be skipped.
pub fn need_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("EBPF_CAST_SKIP_ROOT_TESTS").is_some_and(|v| v == "1") {
        eprintln!("skipping: needs root (EBPF_CAST_SKIP_ROOT_TESTS=1)");
        return false;
    }
    panic!("this test needs root (BPF, network namespaces): run as root, or set EBPF_CAST_SKIP_ROOT_TESTS=1 to skip");
}

/// Returns from the test unless it may run: see `need_root`.
macro_rules! require_root {
    () => {
        if !$crate::common::need_root() {
            return;
        }
    };
}
pub(crate) use require_root;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ebpf-cast")
}

/// Runs a command and panics with its output when it fails.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("running sh");
    assert!(
        out.status.success(),
        "command failed: {cmd}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace named uniquely for this process and test (ebpf_cast::kernel::sandbox), deleted
/// on Drop. It has only the addresses a test assigns, no default route and no IPv6 (so counters
/// count only what a test sends).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("ect{}-{}-{tag}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst));
        sandbox::add(&name).unwrap();
        Netns { name }
    }

    /// `ip -n NS ARGS`
    pub fn ip(&self, args: &str) -> String {
        sandbox::ip(&self.name, args).unwrap()
    }

    /// `ip -n NS -batch`: one `ip` command per line.
    pub fn ip_batch(&self, cmds: &str) {
        sandbox::ip_batch(&self.name, cmds).unwrap()
    }

    /// `ip netns exec NS sh -c CMD`
    pub fn sh(&self, cmd: &str) -> String {
        sh(&format!("ip netns exec {} sh -c '{}'", self.name, cmd.replace('\'', "'\\''")))
    }

    /// A Command running PROGRAM inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a thread that has entered this namespace: sockets it opens live there.
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        sandbox::spawn_in(&self.name, move || Ok(f())).join().expect("thread in netns panicked").unwrap()
    }

    /// A UDP socket bound to `addr` inside this namespace.
    pub fn udp(&self, addr: &str) -> UdpSocket {
        let addr = addr.to_string();
        self.enter(move || UdpSocket::bind(&addr).unwrap_or_else(|e| panic!("bind {addr}: {e}")))
    }

    pub fn mac(&self, dev: &str) -> String {
        sandbox::mac(&self.name, dev).unwrap()
    }

    /// rx_packets of an interface.
    pub fn rx_packets(&self, dev: &str) -> u64 {
        self.sh(&format!("cat /sys/class/net/{dev}/statistics/rx_packets")).trim().parse().unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        sandbox::del(&self.name);
    }
}

/// A veth pair: `a_dev` in `a`, `b_dev` in `b`, both up.
pub fn veth(a: &Netns, a_dev: &str, b: &Netns, b_dev: &str) {
    a.ip(&format!("link add name {a_dev} type veth peer name {b_dev} netns {}", b.name));
    a.ip(&format!("link set dev {a_dev} up"));
    b.ip(&format!("link set dev {b_dev} up"));
}

/// A child process killed on Drop.
pub struct Proc {
    pub child: Child,
    pub stdout: Option<BufReader<ChildStdout>>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawning ebpf-cast");
        let stdout = child.stdout.take().map(BufReader::new);
        Proc { child, stdout }
    }

    /// Reads stdout lines until one contains `needle`; panics after `timeout`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let reader = self.stdout.as_mut().expect("stdout");
        let mut seen = String::new();
        loop {
            assert!(Instant::now() < deadline, "timed out waiting for {needle:?}; got:\n{seen}");
            let mut line = String::new();
            if reader.read_line(&mut line).expect("reading stdout") == 0 {
                let mut err = String::new();
                if let Some(e) = self.child.stderr.as_mut() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("process ended before {needle:?}; stdout:\n{seen}\nstderr:\n{err}");
            }
            seen.push_str(&line);
            if line.contains(needle) {
                return line;
            }
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).expect("kill");
    }

    /// Stops the process with `sig`, as a service manager or a user would; it must exit 0 within
    /// 20 s. Returns the rest of its stdout.
    pub fn stop(self, sig: nix::sys::signal::Signal) -> String {
        self.signal(sig);
        let (rest, status) = self.finish(Duration::from_secs(20));
        assert!(status.success(), "exited with {status} after {sig}; output: {rest}");
        rest
    }

    /// As stop(), for a process run with --json: its last report (the event "final").
    pub fn final_report(self, sig: nix::sys::signal::Signal) -> serde_json::Value {
        let rest = self.stop(sig);
        let last = rest
            .lines()
            .find(|l| l.contains("\"final\""))
            .unwrap_or_else(|| panic!("no final report: {rest}"));
        serde_json::from_str(last).unwrap()
    }

    /// Waits for the exit (bounded); returns the remaining stdout and the exit status.
    /// Stdout is read meanwhile, so a large last report cannot block the process.
    pub fn finish(mut self, timeout: Duration) -> (String, std::process::ExitStatus) {
        let reader = self.stdout.take().map(|mut r| {
            std::thread::spawn(move || {
                use std::io::Read;
                let mut rest = String::new();
                let _ = r.read_to_string(&mut rest);
                rest
            })
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "process did not exit within {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let rest = reader.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        (rest, status)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ebpf-cast run as user nobody with no capabilities (inside `ns` when given).
pub fn as_nobody(ns: Option<&Netns>, args: &[&str]) -> Output {
    let mut c = match ns {
        Some(ns) => ns.cmd("setpriv"),
        None => Command::new("setpriv"),
    };
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", bin()]).args(args);
    run(c)
}

/// Output of a finished command, for asserting exit code and text.
pub fn run(mut cmd: Command) -> Output {
    cmd.output().expect("running command")
}

/// A packet socket on `dev` in `ns` that sees IPv4 packets handed to the host stack
/// (ETH_P_IP taps run after tc ingress, so redirected frames never reach it).
pub fn host_stack_tap(ns: &Netns, dev: &str) -> std::os::fd::OwnedFd {
    let dev = dev.to_string();
    ns.enter(move || {
        use std::os::fd::FromRawFd;
        let proto = (libc::ETH_P_IP as u16).to_be();
        // SAFETY: plain socket/bind calls with a valid sockaddr_ll.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, proto as i32);
            assert!(fd >= 0, "packet socket: {}", std::io::Error::last_os_error());
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = nix::net::if_::if_nametoindex(dev.as_str()).unwrap() as i32;
            let rc = libc::bind(
                fd,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(rc, 0, "bind packet socket");
            // Room for every frame a test sends: the tap is read only at the end.
            let fd = std::os::fd::OwnedFd::from_raw_fd(fd);
            big_rcvbuf(&fd);
            fd
        }
    })
}

/// Counts the queued IPv4/UDP packets to `dport` on a packet socket, without blocking.
pub fn count_udp_to(fd: &std::os::fd::OwnedFd, dport: u16) -> usize {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 2048];
    let mut n = 0;
    loop {
        // SAFETY: buf is valid for its length.
        let len =
            unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if len < 0 {
            return n;
        }
        let p = &buf[..len as usize];
        let ihl = usize::from(p[0] & 0x0f) * 4;
        if p.len() >= ihl + 4 && p[9] == 17 && u16::from_be_bytes([p[ihl + 2], p[ihl + 3]]) == dport {
            n += 1;
        }
    }
}

/// Sends `count` numbered datagrams of varying size from `tx` to `to`, paced so that no socket
/// buffer overflows, while a thread receives them on `rx`. Returns (sent, received) payloads.
pub fn exchange(tx: UdpSocket, rx: UdpSocket, to: &str, count: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    rx.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let receiver = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < count && Instant::now() < deadline {
            match rx.recv(&mut buf) {
                Ok(n) => got.push(buf[..n].to_vec()),
                Err(_) => break, // 500 ms of silence: nothing more is coming
            }
        }
        got
    });
    let mut sent = Vec::new();
    for i in 0..count {
        let len = 16 + (i * 37) % 1400;
        let mut p: Vec<u8> = (0..len).map(|j| (i * 7 + j) as u8).collect();
        p[..4].copy_from_slice(&(i as u32).to_be_bytes());
        tx.send_to(&p, to).expect("send_to");
        sent.push(p);
        if i % 16 == 15 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    (sent, receiver.join().unwrap())
}

/// The cast topology: cam -- c0|in0 [edge] o1..oN|r0 -- rx1..rxN. Every receiver carries the
/// edge's MAC and `edge_ip` (copies keep the original headers), so a plain UDP socket there
/// receives what its output got, after the kernel checked the UDP checksum.
pub struct CastEdge {
    pub cam: Netns,
    pub edge: Netns,
    pub rx: Vec<Netns>,
    pub outputs: Vec<String>,
}

impl CastEdge {
    pub fn new(n_out: usize, edge_ip: &str, cam_ip: &str) -> CastEdge {
        let t = CastEdge {
            cam: Netns::new("cam"),
            edge: Netns::new("edge"),
            rx: (1..=n_out).map(|i| Netns::new(&format!("rx{i}"))).collect(),
            outputs: (1..=n_out).map(|i| format!("o{i}")).collect(),
        };
        veth(&t.cam, "c0", &t.edge, "in0");
        t.cam.ip(&format!("addr add {cam_ip}/24 dev c0"));
        t.edge.ip(&format!("addr add {edge_ip}/24 dev in0"));
        let edge_mac = t.edge.mac("in0");
        t.cam.ip(&format!("neigh replace {edge_ip} lladdr {edge_mac} dev c0 nud permanent"));
        for (i, rx) in t.rx.iter().enumerate() {
            veth(&t.edge, &t.outputs[i], rx, "r0");
            rx.ip(&format!("link set dev r0 address {edge_mac}"));
            rx.ip(&format!("addr add {edge_ip}/24 dev r0"));
        }
        t
    }
}

/// Room for a whole test's datagrams in a socket that is read at the end.
pub fn big_rcvbuf(s: &impl std::os::fd::AsFd) {
    nix::sys::socket::setsockopt(s, nix::sys::socket::sockopt::RcvBufForce, &(64 << 20)).unwrap();
}

/// Everything queued on a socket, without waiting.
pub fn drain(s: &UdpSocket) -> Vec<Vec<u8>> {
    s.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    while let Ok(n) = s.recv(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    got
}

/// Puts a host sysctl back as it was, also when the test fails with a cast killed (which then
/// cannot restore what it changed).
pub struct Restore(&'static str, String);

impl Restore {
    pub fn save(path: &'static str) -> Restore {
        Restore(path, std::fs::read_to_string(path).unwrap())
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0, &self.1);
    }
}
