//! `ebpf-cast stats [NAME]`: counters of running casts, read from their pinned maps, as a table,
//! JSON, a live view (--watch) or the Prometheus text format; `--reset` zeroes them.
use std::{
    fmt::Write as _,
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};

use anyhow::Result;
use libbpf_rs::{MapCore, MapFlags};
use serde::Serialize;

use crate::{
    counters::Stats,
    error::input,
    kernel::pins::{self, Instance},
    kernel::preflight,
    kernel::skel::cast::types,
    signals::Stop,
};

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Instance name (default: every running cast)
    pub name: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Redraw every SECS seconds (default 1) until Ctrl-C
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1")]
    pub watch: Option<f64>,
    /// Print the Prometheus text exposition format
    #[arg(long, conflicts_with_all = ["json", "watch"])]
    pub prometheus: bool,
    /// Zero the counters
    #[arg(long, conflicts_with_all = ["json", "watch", "prometheus"])]
    pub reset: bool,
}

#[derive(Serialize)]
struct Snapshot {
    name: String,
    input: String,
    owner_pid: u32,
    running: bool,
    #[serde(flatten)]
    stats: Stats,
}

fn snapshot(inst: &Instance) -> Result<Snapshot> {
    let bss = inst.read_bss()?;
    let refused = pins::refused(&inst.admission)?;
    let table = crate::table::active(&bss);
    let stats = Stats::read(&inst.ostats, &inst.flows, &inst.caps, refused, &bss.cast_meta, table)?;
    Ok(Snapshot {
        name: inst.name.clone(),
        input: pins::cstr(&bss.cast_meta.input),
        owner_pid: bss.cast_meta.owner_pid,
        running: pins::owner_alive(&bss.cast_meta),
        stats,
    })
}

pub fn run(args: &StatsArgs) -> Result<()> {
    preflight::require_bpf_privileges("ebpf-cast stats")?;
    let names = match &args.name {
        Some(n) => vec![n.clone()],
        None => pins::list(),
    };
    if names.is_empty() {
        return Err(input("no cast is running (its pins would be in /sys/fs/bpf/ebpf-cast)".to_string()));
    }
    let insts: Vec<Instance> = names.iter().map(|n| Instance::open(n)).collect::<Result<_>>()?;
    if args.reset {
        for i in &insts {
            reset(i)?;
            println!("reset the counters of {}", i.name);
        }
        return Ok(());
    }
    if args.prometheus {
        print!("{}", prometheus(&insts.iter().map(snapshot).collect::<Result<Vec<_>>>()?));
        return Ok(());
    }
    let Some(secs) = args.watch else {
        let snaps = insts.iter().map(snapshot).collect::<Result<Vec<_>>>()?;
        if args.json {
            println!("{}", serde_json::to_string(&snaps)?);
        } else {
            for s in &snaps {
                print_text(s, None);
            }
        }
        return Ok(());
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(input(format!("--watch {secs}: give a positive number of seconds")));
    }
    let stop = Stop::install()?;
    let tty = std::io::stdout().is_terminal();
    let mut prev: Option<(Instant, Vec<Vec<u64>>)> = None;
    loop {
        let snaps = insts.iter().map(snapshot).collect::<Result<Vec<_>>>()?;
        let now = Instant::now();
        let bytes: Vec<Vec<u64>> =
            snaps.iter().map(|s| s.stats.outputs.iter().map(|o| o.bytes).collect()).collect();
        if args.json {
            println!("{}", serde_json::to_string(&snaps)?);
        } else {
            if tty {
                print!("\x1b[H\x1b[2J");
            }
            for (k, s) in snaps.iter().enumerate() {
                let rates = prev.as_ref().map(|(t, b)| {
                    let dt = (now - *t).as_secs_f64().max(1e-3);
                    bytes[k]
                        .iter()
                        .zip(b.get(k).cloned().unwrap_or_default())
                        .map(|(x, y)| x.saturating_sub(y) as f64 * 8.0 / dt)
                        .collect::<Vec<f64>>()
                });
                print_text(s, rates.as_deref());
            }
        }
        let _ = std::io::stdout().flush();
        prev = Some((now, bytes));
        if stop.sleep(Duration::from_secs_f64(secs)) {
            return Ok(());
        }
    }
}

fn print_text(s: &Snapshot, rates: Option<&[f64]>) {
    let state =
        if s.running { format!("running, pid {}", s.owner_pid) } else { "STALE: its process is gone".into() };
    println!("cast {} on {} ({state})", s.name, s.input);
    s.stats.print_tables("  ", rates);
}

/// The Prometheus text of casts, each (name, network namespace or None: this thread's), for the
/// metrics endpoint.
pub fn prometheus_of<'a>(casts: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> String {
    let mut snaps = Vec::new();
    for (name, netns) in casts {
        let name = name.to_string();
        // A cast that is not there (yet) is left out, not an error of the whole scrape.
        if let Ok(s) = crate::kernel::netns::run_in(netns, move || snapshot(&Instance::open(&name)?)) {
            snaps.push(s);
        }
    }
    prometheus(&snaps)
}

fn prometheus(snaps: &[Snapshot]) -> String {
    let mut out = String::new();
    type Metric = (&'static str, &'static str, fn(&crate::counters::OutputStats) -> u64);
    let metrics: [Metric; 6] = [
        ("ebpf_cast_output_packets_total", "Datagrams sent to the output.", |o| o.packets),
        ("ebpf_cast_output_bytes_total", "Bytes sent to the output (Ethernet frames).", |o| o.bytes),
        ("ebpf_cast_output_frames_sent_total", "Video frames sent to the output.", |o| o.frames_sent),
        ("ebpf_cast_output_frames_dropped_total", "Video frames its policy dropped.", |o| o.frames_dropped),
        (
            "ebpf_cast_output_clone_errors_total",
            "Copies lost: refused by a full backlog, or not made for want of room there.",
            |o| o.clone_errors,
        ),
        (
            "ebpf_cast_output_device_drops_total",
            "Copies the output's device dropped (a full backlog or ring, the peer down).",
            |o| o.device_drops,
        ),
    ];
    let output = |s: &Snapshot, o: &crate::counters::OutputStats| {
        format!("cast=\"{}\",output=\"{}\",policy=\"{}\"", s.name, o.interface, o.policy)
    };
    for (name, help, get) in metrics {
        let samples = snaps.iter().flat_map(|s| s.stats.outputs.iter().map(move |o| (output(s, o), get(o))));
        family(&mut out, name, help, samples);
    }
    let levels = snaps
        .iter()
        .flat_map(|s| s.stats.outputs.iter().filter_map(move |o| Some((output(s, o), o.cap_level?))));
    gauge(
        &mut out,
        "ebpf_cast_output_cap_level",
        "Level a capped output (max=) is at since the last frame start: 0 every frame, 1-255 that \
         many 256ths of the non-reference frames dropped, 256 no non-reference frame, 257 keyframes \
         only, 65535 whole GOPs skipped. Its frames dropped for the cap are in frames_dropped_total.",
        levels,
    );
    let flow = |s: &Snapshot, f: &crate::counters::FlowStats| {
        format!("cast=\"{}\",source=\"{}\",destination=\"{}\"", s.name, f.source, f.destination)
    };
    let frames = snaps.iter().flat_map(|s| {
        s.stats.flows.iter().flat_map(move |f| {
            [("key", f.frames_key), ("ref", f.frames_ref), ("nonref", f.frames_nonref)]
                .map(|(kind, v)| (format!("{},kind=\"{kind}\"", flow(s, f)), v))
        })
    });
    family(&mut out, "ebpf_cast_flow_frames_total", "Video frames seen in a flow, by kind.", frames);
    let inputs = snaps.iter().map(|s| {
        (
            format!("cast=\"{}\",input=\"{}\"", s.name, s.input),
            s.stats.flows.iter().map(|f| f.datagrams).sum(),
        )
    });
    family(
        &mut out,
        "ebpf_cast_input_datagrams_total",
        "Datagrams the cast took at its input (of the flows in its flow table).",
        inputs,
    );
    type FlowMetric = (&'static str, &'static str, fn(&crate::counters::FlowStats) -> u64);
    let flow_metrics: [FlowMetric; 2] = [
        ("ebpf_cast_flow_datagrams_total", "Datagrams of the flow seen at the input.", |f| f.datagrams),
        (
            "ebpf_cast_flow_overload_drops_total",
            "Datagrams the CPU's input backlog had no room for: refused whole, or whose copies stopped early.",
            |f| f.overload,
        ),
    ];
    for (name, help, get) in flow_metrics {
        let samples = snaps.iter().flat_map(|s| s.stats.flows.iter().map(move |f| (flow(s, f), get(f))));
        family(&mut out, name, help, samples);
    }
    out
}

/// One counter family: its HELP and TYPE lines, then a sample per (labels, value).
fn family(out: &mut String, name: &str, help: &str, samples: impl IntoIterator<Item = (String, u64)>) {
    metric(out, name, help, "counter", samples.into_iter().map(|(l, v)| (l, v.to_string())));
}

/// A gauge family (only when it has samples: most casts have no capped output).
fn gauge(out: &mut String, name: &str, help: &str, samples: impl IntoIterator<Item = (String, u16)>) {
    let samples: Vec<(String, String)> = samples.into_iter().map(|(l, v)| (l, v.to_string())).collect();
    if !samples.is_empty() {
        metric(out, name, help, "gauge", samples);
    }
}

fn metric(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    samples: impl IntoIterator<Item = (String, String)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{{{labels}}} {v}");
    }
}

/// Zeroes every output's and every flow's counters (the flows' learned state is kept), and
/// makes the output devices' drops count from now.
fn reset(inst: &Instance) -> Result<()> {
    for slot in 0..crate::table::MAX_OUTPUTS as u32 {
        inst.zero_output(slot)?;
    }
    {
        let _lock = inst.lock()?; // against `out` changing the tables meanwhile
        let mut bss = inst.read_bss()?;
        let slots = 0..bss.cast_meta.n_slots;
        pins::count_losses_from_now(&mut bss.cast_meta, slots, pins::refused(&inst.admission)?);
        inst.write_bss(&bss)?;
    }
    for k in inst.flows.keys() {
        let Some(v) = inst.flows.lookup(&k, MapFlags::ANY)? else { continue };
        let Some(mut f) = crate::kernel::skel::from_bytes::<types::cast_flow>(&v) else { continue };
        f.frames = [0; 4];
        f.packets = 0;
        f.bytes = 0;
        f.unedited = 0;
        f.overload = 0;
        // SAFETY: cast_flow is plain data.
        let _ = inst.flows.update(&k, unsafe { plain::as_bytes(&f) }, MapFlags::EXIST);
    }
    Ok(())
}
