//! `ebpf-cast demo`: a camera, an edge node and three consumers in private namespaces; the
//! built-in clip is cast with policies all, nonref=0.5 and key, then everything is removed.
use std::{
    io::Write,
    mem::MaybeUninit,
    net::SocketAddr,
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{anyhow, Context, Result};
use serde::Serialize;

use crate::{
    cast::{CastConfig, Caster, Output},
    counters::Stats,
    kernel::attach::AttachMode,
    kernel::iface::Iface,
    kernel::preflight,
    kernel::sandbox::{self, Sandbox},
    policy::Policy,
    recv::{self, Analyzer, Report},
    send::{self, Pacing, StreamOpts},
    signals::Stop,
};

/// 10 s of H.264 with B-frames and AAC, made by assets/make-demo-clip.sh.
pub const CLIP: &[u8] = include_bytes!("../assets/demo.ts");
const EDGE_IP: &str = "10.205.0.1";
const CAM_IP: &str = "10.205.0.2";
const PORT: u16 = 5000;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Print the final comparison as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct Consumer {
    pub name: String,
    pub policy: String,
    pub report: Report,
    /// Share of the bytes an `all` consumer received that this one did not need.
    pub saved: f64,
}

pub fn run(args: &DemoArgs) -> Result<()> {
    preflight::require_bpf_privileges("ebpf-cast demo")?;
    let policies = [Policy::All, Policy::NonRef(0.5), Policy::Key];
    let stop = Stop::install()?;
    let mut sb = Sandbox::new("demo");
    let (cam, edge) = (sb.netns("cam")?, sb.netns("edge")?);
    let consumers: Vec<String> =
        (1..=policies.len()).map(|i| sb.netns(&format!("c{i}"))).collect::<Result<_>>()?;
    build(&cam, &edge, &consumers)?;
    println!(
        "sandbox: camera {cam} -> edge {edge} (ebpf-cast cast in0) -> consumers {}",
        consumers.join(", ")
    );

    let (stats_tx, stats_rx) = mpsc::channel::<Stats>();
    let edge_thread = start_edge(&edge, policies, &stop, stats_tx)?;
    let rx_threads = start_consumers(&consumers, &stop)?;

    let cam_thread = start_camera(&cam, &stop);
    println!("streaming the built-in clip (10 s, H.264 + AAC) ... Ctrl-C to stop early\n");
    let started = Instant::now();
    let mut prev: Option<(Instant, Vec<u64>)> = None;
    while !cam_thread.is_finished() && !stop.requested() {
        if let Ok(st) = stats_rx.recv_timeout(Duration::from_millis(200)) {
            live_table(&st, started, &mut prev);
        }
    }
    let sent = cam_thread.join().map_err(|_| anyhow!("the camera thread panicked"))??;
    std::thread::sleep(Duration::from_millis(300)); // let the last copies land
    stop.request();
    let final_stats = edge_thread.join().map_err(|_| anyhow!("the edge thread panicked"))??;
    let reports: Vec<Report> = rx_threads
        .into_iter()
        .map(|t| t.join().map_err(|_| anyhow!("a consumer thread panicked"))?)
        .collect::<Result<_>>()?;
    drop(sb);

    let all_bytes = reports[0].bytes.max(1) as f64;
    let summary: Vec<Consumer> = reports
        .into_iter()
        .zip(policies)
        .enumerate()
        .map(|(i, (report, p))| Consumer {
            name: format!("c{}", i + 1),
            policy: p.to_string(),
            saved: 1.0 - report.bytes as f64 / all_bytes,
            report,
        })
        .collect();
    if args.json {
        let v = serde_json::json!({"sent": sent, "cast": final_stats, "consumers": summary});
        println!("{v}");
    } else {
        final_table(&sent, &summary);
    }
    Ok(())
}

type Worker<T> = std::thread::JoinHandle<Result<T>>;

/// The edge: runs the cast in namespace `edge` and sends its statistics every second; returns
/// once the program is attached, and the thread ends with the last statistics after `stop`.
fn start_edge(
    edge: &str,
    policies: [Policy; 3],
    stop: &Stop,
    stats_tx: mpsc::Sender<Stats>,
) -> Result<Worker<Stats>> {
    let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
    let stop = stop.clone();
    let thread = sandbox::spawn_in(edge, move || {
        let cfg = CastConfig {
            name: "demo".to_string(),
            input: Iface::ethernet("in0")?,
            outputs: policies
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    Ok(Output {
                        iface: Iface::ethernet(&format!("o{}", i + 1))?,
                        policy: *p,
                        slot: i as u32,
                        nat: None,
                    })
                })
                .collect::<Result<_>>()?,
            ports: vec![PORT],
            pid: None,
            codec: None,
            attach: AttachMode::Auto,
            hub_min: crate::hub::MIN_MEMBERS,
        };
        let mut obj = MaybeUninit::uninit();
        let caster = match Caster::start(&cfg, &mut obj) {
            Ok(c) => c,
            Err(e) => {
                let _ = ready_tx.send(Err(anyhow!("{e:#}")));
                return Err(e);
            }
        };
        let _ = ready_tx.send(Ok(()));
        let mut last = caster.stats()?;
        while !stop.sleep(Duration::from_secs(1)) {
            last = caster.stats()?;
            let _ = stats_tx.send(last.clone());
        }
        Ok(last)
    });
    ready_rx.recv().context("the edge thread ended")??;
    Ok(thread)
}

/// The consumers: plain UDP sockets, analysed with the kernel's own classifier until `stop`.
/// Returns once every one listens.
fn start_consumers(consumers: &[String], stop: &Stop) -> Result<Vec<Worker<Report>>> {
    let (bound_tx, bound_rx) = mpsc::channel::<()>();
    let threads: Vec<_> = consumers
        .iter()
        .map(|ns| {
            let s = stop.clone();
            let bound = bound_tx.clone();
            sandbox::spawn_in(ns, move || {
                let sock = recv::bind(format!("{EDGE_IP}:{PORT}").parse()?)?;
                let _ = bound.send(());
                sock.set_read_timeout(Some(Duration::from_millis(100)))?;
                let mut an = Analyzer::default();
                let mut buf = vec![0u8; 65536];
                while !s.requested() {
                    if let Ok(n) = sock.recv(&mut buf) {
                        an.datagram(&buf[..n], false);
                    }
                }
                while let Ok(n) = {
                    sock.set_nonblocking(true)?;
                    sock.recv(&mut buf)
                } {
                    an.datagram(&buf[..n], false);
                }
                Ok(an.report())
            })
        })
        .collect();
    for _ in consumers {
        bound_rx.recv_timeout(Duration::from_secs(10)).context("a consumer did not start")?;
    }
    Ok(threads)
}

/// The camera: the built-in clip, in real time, from namespace `cam`.
fn start_camera(cam: &str, stop: &Stop) -> Worker<send::Summary> {
    let stop = stop.clone();
    sandbox::spawn_in(cam, move || {
        let sock = std::net::UdpSocket::bind(format!("{CAM_IP}:4000"))?;
        let dest: SocketAddr = format!("{EDGE_IP}:{PORT}").parse()?;
        let opts = StreamOpts { packets_per_datagram: 7, rtp: false, pacing: Pacing::Pcr, loops: 1 };
        send::stream(&sock, dest, CLIP, &opts, Some(&stop), |_| {})
    })
}

/// Camera -- c0|in0 [edge] oN|r0 -- consumer N; consumers carry the edge's MAC and IP, so the
/// copies (which keep the original headers) reach a plain UDP socket there.
fn build(cam: &str, edge: &str, consumers: &[String]) -> Result<()> {
    sandbox::ip(cam, &format!("link add name c0 type veth peer name in0 netns {edge}"))?;
    sandbox::ip(cam, "link set dev c0 up")?;
    sandbox::ip(edge, "link set dev in0 up")?;
    sandbox::ip(cam, &format!("addr add {CAM_IP}/24 dev c0"))?;
    sandbox::ip(edge, &format!("addr add {EDGE_IP}/24 dev in0"))?;
    let edge_mac = sandbox::mac(edge, "in0")?;
    sandbox::ip(cam, &format!("neigh replace {EDGE_IP} lladdr {edge_mac} dev c0 nud permanent"))?;
    for (i, c) in consumers.iter().enumerate() {
        let o = format!("o{}", i + 1);
        sandbox::ip(edge, &format!("link add name {o} type veth peer name r0 netns {c}"))?;
        sandbox::ip(edge, &format!("link set dev {o} up"))?;
        sandbox::ip(c, &format!("link set dev r0 address {edge_mac}"))?;
        sandbox::ip(c, "link set dev r0 up")?;
        sandbox::ip(c, &format!("addr add {EDGE_IP}/24 dev r0"))?;
    }
    Ok(())
}

fn live_table(st: &Stats, started: Instant, prev: &mut Option<(Instant, Vec<u64>)>) {
    let now = Instant::now();
    let bytes: Vec<u64> = st.outputs.iter().map(|o| o.bytes).collect();
    let rates: Vec<f64> = match prev {
        Some((t, b)) => {
            let dt = (now - *t).as_secs_f64().max(1e-3);
            bytes.iter().zip(b.iter()).map(|(x, y)| (x - y) as f64 * 8.0 / dt / 1e3).collect()
        }
        None => vec![0.0; bytes.len()],
    };
    println!(
        "t={:4.1}s  {:<6} {:<12} {:>9} {:>8} {:>8} {:>10}",
        started.elapsed().as_secs_f64(),
        "output",
        "policy",
        "packets",
        "frames",
        "dropped",
        "kbit/s"
    );
    for (o, r) in st.outputs.iter().zip(&rates) {
        println!(
            "         {:<6} {:<12} {:>9} {:>8} {:>8} {:>10.0}",
            o.interface, o.policy, o.packets, o.frames_sent, o.frames_dropped, r
        );
    }
    let _ = std::io::stdout().flush();
    *prev = Some((now, bytes));
}

fn final_table(sent: &send::Summary, consumers: &[Consumer]) {
    println!(
        "\ncamera sent {} datagrams ({:.0} kbit/s over {:.1} s)\n",
        sent.datagrams,
        sent.bitrate / 1e3,
        sent.seconds
    );
    println!(
        "{:<9} {:<11} {:>7} {:>5} {:>5} {:>8} {:>10} {:>9} {:>9} {:>6}",
        "consumer", "policy", "frames", "key", "ref", "non-ref", "kbit/s", "CC errs", "PCR gap", "saved"
    );
    for c in consumers {
        let r = &c.report;
        println!(
            "{:<9} {:<11} {:>7} {:>5} {:>5} {:>8} {:>10.0} {:>9} {:>7.0}ms {:>5.0}%",
            c.name,
            c.policy,
            r.frames.total(),
            r.frames.key,
            r.frames.reference,
            r.frames.nonref,
            r.bitrate / 1e3,
            r.cc_errors,
            r.max_pcr_gap_ms,
            c.saved * 100.0
        );
    }
    println!("\nevery namespace, veth and program the demo made has been removed");
}
