//! `ebpf-cast cast IN --to OUT[:POLICY]...`: one ingress video stream replicated in the kernel
//! to many outputs, each with its own quality policy.
use std::{collections::HashSet, io::Write, mem::MaybeUninit};

use anyhow::{Context, Result};
use libbpf_rs::{skel::OpenSkel, ProgramAttachType};

use crate::{
    counters::Stats,
    error::input,
    hub::Hubs,
    kernel::attach::{self, AttachMode},
    kernel::backlog::{self, Backlog},
    kernel::flow_limit::{self, FlowLimit},
    kernel::iface::Iface,
    kernel::installed,
    kernel::pins,
    kernel::preflight,
    kernel::skel::{self, cast::*},
    mpegts::{Codec, PID_NONE},
    out::NewOutput,
    policy::Policy,
    signals::Stop,
    table::{self, MAX_OUTPUTS},
};

const MAX_PORTS: usize = types::cast_limit::CAST_MAX_PORTS.0 as usize;

#[derive(Debug, clap::Args)]
pub struct CastArgs {
    /// Interface the video streams arrive on (e.g. the host's uplink)
    pub input: String,
    /// An output interface and its policy: all (default), ref, key, nonref=F (drop the share
    /// F of non-reference frames), or max=RATE (at most RATE bits/s of UDP payload, e.g. 800k or
    /// 2M: whole frames are dropped in that order as the budget needs, GOPs if even keyframes do
    /// not fit), optionally with ,dst=IP:PORT[,mac=MAC] to rewrite the copies to a consumer's own
    /// address. Repeat for every output (up to 1024)
    #[arg(long = "to", value_name = "OUT[:POLICY]", required = true)]
    pub to: Vec<NewOutput>,
    /// Cast only UDP flows to this destination port (repeatable, up to 8). Default: every UDP
    /// flow whose payload is MPEG-TS, with or without RTP
    #[arg(long, value_name = "PORT")]
    pub port: Vec<u16>,
    /// Video PID (e.g. 0x100), instead of learning it from each flow's PAT and PMT
    #[arg(long, value_name = "PID", value_parser = parse_pid)]
    pub pid: Option<u16>,
    /// Codec of the --pid stream when no PMT names it
    #[arg(long, value_enum, requires = "pid")]
    pub codec: Option<Codec>,
    #[command(flatten)]
    pub run: crate::kernel::attach::RunOpts,
    /// Change no system setting, only warn: by default the cast turns on the kernel's flow limit
    /// (net.core.flow_limit_cpu_bitmap) on the CPUs that RPS steers the input from, so that an
    /// overloaded input leaves room in the backlog for the hubs' copies, and raises
    /// net.core.netdev_max_backlog to 8 per output, at least 2000 with the flow limit (which
    /// halves the input's room) and 500 more per output whose copies queue there too (veths
    /// with TSO on) up to 8000, again as `out add` adds outputs (both restored on exit)
    #[arg(long)]
    pub no_tune: bool,
    /// From this many outputs of one policy (without dst=), they get their copies through a
    /// hub: one copy goes into a hub device (ech<input ifindex>-<n>a and b, made and removed by
    /// the cast), whose XDP program clones it to each without copying the data. 0: never
    #[arg(long, value_name = "N", default_value_t = crate::hub::MIN_MEMBERS)]
    pub hub_min: usize,
    /// Instance name for `stats`, `out` and `status` (default: the input interface)
    #[arg(long)]
    pub name: Option<String>,
    /// Serve the counters at http://ADDR:PORT/metrics in the Prometheus text format
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
}

fn parse_pid(s: &str) -> Result<u16, String> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => s.parse(),
    };
    match v {
        Ok(pid) if (0x10..PID_NONE).contains(&pid) => Ok(pid),
        _ => Err(format!("'{s}' is not a video PID: give 0x10 to 0x1ffe, in decimal or 0x hex")),
    }
}

/// One output as configured: its interface, policy and stable statistics slot.
#[derive(Debug, Clone)]
pub struct Output {
    pub iface: Iface,
    pub policy: Policy,
    pub slot: u32,
    /// Destination rewrite: (IPv4 address and port, MAC).
    pub nat: Option<(std::net::SocketAddrV4, [u8; 6])>,
}

/// The table entry of an output as the cast starts.
fn entry(o: &Output) -> types::cast_out {
    let mut e = types::cast_out {
        ifindex: o.iface.index,
        level: o.policy.level(),
        cap_bps: o.policy.cap(),
        slot: o.slot,
        flags: crate::out::queue_flag(o.iface.index),
        ..Default::default()
    };
    if let Some((dst, mac)) = o.nat {
        crate::out::set_nat(&mut e, dst, mac);
    }
    e
}

/// The table a cast starts with: the outputs of each level with at least `hub_min` of them
/// (without NAT) get a hub, by the rule that also moves later outputs into hubs.
fn first_table(cfg: &CastConfig, shared: &crate::hub::Shared) -> Result<(types::cast_table, Hubs)> {
    let hubs = Hubs::new(cfg.input.index);
    let mut outs: crate::out::Outputs = cfg.outputs.iter().map(|o| (o.slot, entry(o))).collect();
    let mut cur = types::cast_table::default();
    crate::out::gather_into(&mut cur, &mut outs, &hubs, shared, cfg.hub_min, u32::MAX, &mut |_, _| {
        unreachable!("no hub exists before the first table")
    })?;
    Ok((table::build(&cur, outs.into_values().collect(), 0)?, hubs))
}

/// Checks the command line: the input, the outputs and their policies.
fn validate(args: &CastArgs) -> Result<(Iface, Vec<Output>)> {
    if args.to.len() > MAX_OUTPUTS {
        return Err(input(format!("{} outputs: at most {MAX_OUTPUTS} per cast", args.to.len())));
    }
    if args.port.len() > MAX_PORTS {
        return Err(input(format!("{} --port values: at most {MAX_PORTS}", args.port.len())));
    }
    let mut ports = HashSet::new();
    for &p in &args.port {
        if p == 0 {
            return Err(input("--port 0 is no destination port: give the stream's UDP port, 1 to 65535"));
        }
        if !ports.insert(p) {
            return Err(input(format!("--port {p} is given twice: list each port once")));
        }
    }
    args.run.interval()?;
    let mut seen = HashSet::new();
    for spec in &args.to {
        if spec.interface == args.input {
            return Err(input(format!(
                "the input {} is also an output: a stream cannot be cast back where it came from",
                args.input
            )));
        }
        if !seen.insert(spec.interface.as_str()) {
            return Err(input(format!(
                "output {} is given twice: list each output once, with one policy",
                spec.interface
            )));
        }
    }
    let input = Iface::ethernet(&args.input)?;
    let outputs: Vec<Output> = args
        .to
        .iter()
        .enumerate()
        .map(|(slot, spec)| {
            let iface = Iface::ethernet(&spec.interface)?;
            let nat = match spec.dst {
                Some(dst) => Some((dst, crate::out::nat_mac(&iface.name, &dst, spec.mac)?)),
                None => None,
            };
            Ok(Output { iface, policy: spec.policy, slot: slot as u32, nat })
        })
        .collect::<Result<_>>()?;
    crate::table::build(&Default::default(), outputs.iter().map(entry).collect(), 0)?;
    Ok((input, outputs))
}

/// What a cast needs, checked.
pub struct CastConfig {
    /// Instance name: its pins live in /sys/fs/bpf/ebpf-cast/NAME.
    pub name: String,
    pub input: Iface,
    pub outputs: Vec<Output>,
    pub ports: Vec<u16>,
    pub pid: Option<u16>,
    pub codec: Option<Codec>,
    pub attach: AttachMode,
    /// Outputs of one level (without NAT) from which they share a hub; 0: never.
    pub hub_min: usize,
}

/// A running cast: the program loaded, its outputs written and attached at ingress of the input.
/// Dropping it detaches.
pub struct Caster<'obj> {
    skel: CastSkel<'obj>,
    attachment: attach::Attachment,
    hubs: Hubs, // after the attachment: deleted once nothing sends to them
}

impl<'obj> Caster<'obj> {
    pub fn start(
        cfg: &CastConfig,
        obj: &'obj mut MaybeUninit<libbpf_rs::OpenObject>,
    ) -> Result<Caster<'obj>> {
        let mut open = skel::open(CastSkelBuilder::default(), obj)?;
        let ro = open.maps.rodata_data.as_deref_mut().context("cast rodata")?;
        ro.cfg_nports = cfg.ports.len() as u32;
        for (dst, port) in ro.cfg_ports.iter_mut().zip(&cfg.ports) {
            *dst = port.to_be();
        }
        ro.cfg_video_pid = cfg.pid.unwrap_or(0);
        ro.cfg_codec = cfg.codec.map_or(0, Codec::value);
        ro.cfg_rq_to_softnet = crate::kernel::percpu::rq_to_softnet().unwrap_or(0);
        if cfg.attach != AttachMode::Tc {
            open.progs.ecast_cast_in.set_attach_type(ProgramAttachType::TcxIngress);
        }
        let mut skel = open.load().context("loading the cast program")?;
        // The hubs' programs share the program's maps: made once it is loaded.
        let m = &skel.maps;
        let shared = crate::hub::Shared {
            ostats: &m.cast_ostats,
            backlog: &m.cast_backlog,
            admission: &m.cast_admission,
        };
        let (table, hubs) = first_table(cfg, &shared)?;
        let bss = skel.maps.bss_data.as_deref_mut().context("cast bss")?;
        bss.cast_tabs[0] = table;
        bss.cast_active = 0;
        let meta = &mut bss.cast_meta;
        meta.owner_pid = std::process::id();
        meta.owner_start = pins::start_time(meta.owner_pid).context("reading this process's start time")?;
        pins::set_cstr(&mut meta.input, &cfg.input.name);
        pins::set_cstr(&mut meta.name, &cfg.name);
        meta.n_slots = cfg.outputs.len() as u32;
        for o in &cfg.outputs {
            pins::set_cstr(&mut meta.slot_name[o.slot as usize], &o.iface.name);
            meta.slot_level[o.slot as usize] = o.policy.level();
            meta.slot_cap[o.slot as usize] = o.policy.cap();
        }
        pins::count_losses_from_now(meta, cfg.outputs.iter().map(|o| o.slot), pins::Refused::default());
        let attachment = attach::attach(&skel.progs.ecast_cast_in, &cfg.input, cfg.attach)?;
        Ok(Caster { skel, attachment, hubs })
    }

    /// Pins the instance's maps under /sys/fs/bpf/ebpf-cast/NAME (removed when dropped).
    pub fn pin(&mut self, name: &str) -> Result<pins::Pinned> {
        let m = &mut self.skel.maps;
        pins::Pinned::new(
            name,
            &mut [
                ("bss", &mut m.bss),
                ("ostats", &mut m.cast_ostats),
                ("flows", &mut m.cast_flows),
                ("caps", &mut m.cast_caps),
                ("backlog", &mut m.cast_backlog),
                ("admission", &mut m.cast_admission),
            ],
        )
    }

    pub fn hook(&self) -> attach::Hook {
        self.attachment.hook
    }

    pub fn hubs(&self) -> &Hubs {
        &self.hubs
    }

    /// Tells the program and its hubs the backlog limit, against which a hub's copies are
    /// admitted (src/bpf/backlog.h); None: not known, admit them all.
    pub fn set_backlog_max(&self, limit: Option<u64>) -> Result<()> {
        let max = limit.unwrap_or(0).to_ne_bytes();
        libbpf_rs::MapCore::update(
            &self.skel.maps.cast_backlog,
            &0u32.to_ne_bytes(),
            &max,
            libbpf_rs::MapFlags::ANY,
        )?;
        Ok(())
    }

    /// How many outputs it has now (`ebpf-cast out` may have changed them), and how many of them
    /// queue their copies on the CPU's backlog.
    pub fn outputs(&self) -> Result<(usize, usize)> {
        let bss = self.skel.maps.bss_data.as_deref().context("cast bss")?;
        let queued = table::outputs(table::active(bss)).filter(|o| o.flags & table::OUT_QUEUES != 0).count();
        Ok((pins::slot_outputs(&bss.cast_meta).len(), queued))
    }

    pub fn stats(&self) -> Result<Stats> {
        // The outputs as they are now (`ebpf-cast out` may have changed them).
        let bss = self.skel.maps.bss_data.as_deref().context("cast bss")?;
        let m = &self.skel.maps;
        let refused = pins::refused(&m.cast_admission)?;
        Stats::read(&m.cast_ostats, &m.cast_flows, &m.cast_caps, refused, &bss.cast_meta, table::active(bss))
    }
}

pub fn run(args: &CastArgs) -> Result<()> {
    run_until(args, &Stop::install()?)
}

/// Runs a cast until `stop` is requested (by a signal, or by `ebpf-cast run`).
pub fn run_until(args: &CastArgs, stop: &Stop) -> Result<()> {
    let (input, outputs) = validate(args)?;
    preflight::require_bpf_privileges("ebpf-cast cast")?;
    installed::refuse_if_taken(input.index, &input.name)?;
    let name = args.name.clone().unwrap_or_else(|| input.name.clone());
    pins::check_name(&name)?;
    refuse_running_instance(&name)?;
    let cfg = CastConfig {
        name,
        input,
        outputs,
        ports: args.port.clone(),
        pid: args.pid,
        codec: args.codec,
        attach: args.run.attach,
        hub_min: args.hub_min,
    };
    let flow_limit = flow_limit::ensure(&cfg.input.name, !args.no_tune);
    let mut obj = MaybeUninit::uninit();
    let mut caster = Caster::start(&cfg, &mut obj)?;
    let (outputs, queued) = caster.outputs()?;
    let mut backlog = backlog::ensure(outputs, queued, flow_limit.acts(), !args.no_tune);
    caster.set_backlog_max(backlog::read())?;
    let pinned = caster.pin(&cfg.name)?;
    if let Some(addr) = args.metrics {
        let me = crate::metrics::Target { name: cfg.name.clone(), netns: None };
        crate::metrics::serve(addr, std::sync::Arc::new(std::sync::Mutex::new(vec![me])))?;
    }

    print_outputs(&cfg, args, caster.hook(), &backlog, &flow_limit);
    let input_index = cfg.input.index;
    let mut flows = crate::out::FlowWatch::default();
    stop.watch_until_stopped(
        args.run.interval()?,
        |last| {
            caster.stats()?.print(&cfg.name, args.run.json, last);
            Ok(())
        },
        || {
            follow_links(&cfg.name, &cfg.input.name, input_index, args.run.json)?;
            let joined = crate::out::gather(&cfg.name, caster.hubs(), cfg.hub_min, &mut flows)?;
            say(&cfg.name, "hub", &joined, args.run.json);
            let (outputs, queued) = caster.outputs()?;
            let more = backlog.follow(outputs, queued, flow_limit.acts(), !args.no_tune);
            say(&cfg.name, "backlog", &Vec::from_iter(more), args.run.json);
            // As raised above, or as an operator set it since.
            caster.set_backlog_max(backlog::read())
        },
    )?;
    drop(pinned);
    drop(caster);
    drop(backlog);
    drop(flow_limit);
    Ok(())
}

/// Stops the cast when its input is gone (nothing would be attached any more), and drops or
/// renames outputs as the kernel's links change.
fn follow_links(name: &str, input_name: &str, input_index: u32, json: bool) -> Result<()> {
    if crate::kernel::iface::name_of(input_index).is_none() {
        anyhow::bail!(
            "the input {input_name} is gone (deleted, or moved to another network namespace): nothing is \
             attached any more, so the cast {name} stops"
        );
    }
    say(name, "link", &crate::out::follow_links(name)?, json);
    Ok(())
}

/// Tells what changed by itself: lines, or JSON events of kind `event`.
fn say(name: &str, event: &str, lines: &[String], json: bool) {
    for line in lines {
        if json {
            println!("{}", serde_json::json!({"event": event, "cast": name, "message": line}));
        } else {
            println!("{line}");
        }
        let _ = std::io::stdout().flush();
    }
}

/// One live instance per name; the pins of a dead one are replaced.
fn refuse_running_instance(name: &str) -> Result<()> {
    if let Ok(inst) = pins::Instance::open(name) {
        let bss = inst.read_bss()?;
        let pid = bss.cast_meta.owner_pid;
        if pins::owner_alive(&bss.cast_meta) {
            return Err(input(format!(
                "a cast named {name} is already running (pid {pid}): give this one another --name"
            )));
        }
    }
    Ok(())
}

fn print_outputs(
    cfg: &CastConfig,
    args: &CastArgs,
    hook: attach::Hook,
    backlog: &Backlog,
    limit: &FlowLimit,
) {
    let (inp, outputs) = (&cfg.input, &cfg.outputs);
    let notes: Vec<String> = [
        backlog.note(),
        match limit {
            FlowLimit::NotSteered | FlowLimit::On(_) => None,
            FlowLimit::Widened(w) => Some(w.describe()),
            FlowLimit::Off(msg) => Some(format!("warning: {msg}")),
        },
    ]
    .into_iter()
    .flatten()
    .collect();
    let note = (!notes.is_empty()).then(|| notes.join("\n"));
    if args.run.json {
        let outs: Vec<_> = outputs
            .iter()
            .map(|o| serde_json::json!({"interface": o.iface.name, "mac": o.iface.mac, "policy": o.policy}))
            .collect();
        let v = serde_json::json!({"event": "outputs", "cast": cfg.name, "input": inp.name, "hook": hook, "outputs": outs,
            "ports": args.port, "note": note});
        println!("{v}");
    } else {
        let w = outputs.iter().map(|o| o.iface.name.len()).max().unwrap_or(0).max(6);
        println!("{:<w$}   {:<17}   Policy", "Output", "MAC address");
        println!("{:<w$}   {:<17}   ------", "------", "-----------");
        for o in outputs {
            println!("{:<w$}   {:<17}   {}", o.iface.name, o.iface.mac, o.policy);
        }
        let ports = if args.port.is_empty() {
            "every UDP flow carrying MPEG-TS".to_string()
        } else {
            let ports: Vec<String> = args.port.iter().map(u16::to_string).collect();
            format!("UDP port{} {}", if ports.len() > 1 { "s" } else { "" }, ports.join(", "))
        };
        println!(
            "\ncasting {ports} from {} to {} output{} (attached via {hook}); Ctrl-C to stop",
            inp.name,
            outputs.len(),
            if outputs.len() == 1 { "" } else { "s" }
        );
        if let Some(n) = note {
            println!("{n}");
        }
    }
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_parse_in_hex_and_decimal() {
        assert_eq!(parse_pid("0x200"), Ok(0x200));
        assert_eq!(parse_pid("256"), Ok(256));
        assert!(parse_pid("0x1fff").is_err());
        assert!(parse_pid("0").is_err());
        assert!(parse_pid("x").is_err());
    }
}
