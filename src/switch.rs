//! `ebpf-cast switch A B`: an L2 cross-connect of two interfaces in the kernel.
use std::{io::Write, mem::MaybeUninit};

use anyhow::{Context, Result};
use libbpf_rs::{skel::OpenSkel, MapCore, MapFlags, ProgramAttachType};
use serde::Serialize;

use crate::{
    error::input,
    kernel::attach::{self, AttachMode},
    kernel::iface::Iface,
    kernel::installed,
    kernel::preflight,
    kernel::skel::{self, switch::*},
    signals::Stop,
};

/// How the switch forwards a frame (enum sw_mode in switch.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SwitchMode {
    /// bpf_redirect: the frame leaves on the other port only
    Redirect,
    /// bpf_clone_redirect: a copy leaves on the other port, the original goes up the host stack
    Clone,
}

impl SwitchMode {
    fn value(self) -> types::sw_mode {
        match self {
            SwitchMode::Redirect => types::sw_mode::SW_MODE_REDIRECT,
            SwitchMode::Clone => types::sw_mode::SW_MODE_CLONE,
        }
    }

    /// The mode of a loaded program's rodata.
    pub fn of_value(v: types::sw_mode) -> SwitchMode {
        if v == SwitchMode::Clone.value() {
            SwitchMode::Clone
        } else {
            SwitchMode::Redirect
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SwitchMode::Redirect => "redirect",
            SwitchMode::Clone => "clone",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct SwitchArgs {
    /// First port (Ethernet, veth or tap interface)
    pub a: String,
    /// Second port
    pub b: String,
    /// How a frame is forwarded
    #[arg(long, value_enum, default_value_t = SwitchMode::Redirect)]
    pub mode: SwitchMode,
    #[command(flatten)]
    pub run: crate::kernel::attach::RunOpts,
}

pub fn run(args: &SwitchArgs) -> Result<()> {
    if args.a == args.b {
        return Err(input(format!(
            "the same interface twice ({}): a switch needs two different interfaces",
            args.a
        )));
    }
    let interval = args.run.interval()?;
    let a = Iface::with_addresses(&args.a)?;
    let b = Iface::with_addresses(&args.b)?;
    preflight::require_bpf_privileges("ebpf-cast switch")?;
    for iface in [&a, &b] {
        installed::refuse_if_taken(iface.index, &iface.name)?;
    }

    let mut obj = MaybeUninit::uninit();
    let mut open = skel::open(SwitchSkelBuilder::default(), &mut obj)?;
    let rodata = open.maps.rodata_data.as_deref_mut().context("switch rodata")?;
    rodata.sw_mode = args.mode.value();
    if args.run.attach != AttachMode::Tc {
        open.progs.ecast_switch_in.set_attach_type(ProgramAttachType::TcxIngress);
    }
    let skel = open.load().context("loading the switch program (see the verifier log above)")?;

    let ncpu = libbpf_rs::num_possible_cpus()?;
    for (from, to) in [(&a, &b), (&b, &a)] {
        let port = types::sw_port { out_ifindex: to.index, ..Default::default() };
        // SAFETY: sw_port is plain data (skel.rs).
        let bytes = unsafe { plain::as_bytes(&port) }.to_vec();
        skel.maps
            .ecsw_ports
            .update_percpu(&from.index.to_ne_bytes(), &vec![bytes; ncpu], MapFlags::ANY)
            .with_context(|| format!("writing the port map entry for {}", from.name))?;
    }

    let stop = Stop::install()?;
    let prog = &skel.progs.ecast_switch_in;
    let att_a = attach::attach(prog, &a, args.run.attach)?;
    let att_b = attach::attach(prog, &b, args.run.attach)?;

    print_table(&a, &b, args.run.json);
    if !args.run.json {
        println!(
            "\nswitching {} <-> {} ({} mode, attached via {}); Ctrl-C to stop",
            a.name,
            b.name,
            args.mode.name(),
            att_a.hook
        );
    }
    flush();

    stop.report_until_stopped(interval, |last| {
        print_stats(&counters(&skel, &a, &b)?, args.run.json, last);
        flush();
        Ok(())
    })?;
    drop(att_a);
    drop(att_b);
    Ok(())
}

#[derive(Serialize)]
struct Row<'a> {
    interface_in: &'a str,
    mac_in: &'a str,
    ipv4_in: Vec<String>,
    ipv6_in: Vec<String>,
    interface_out: &'a str,
    mac_out: &'a str,
    ipv4_out: Vec<String>,
    ipv6_out: Vec<String>,
}

fn print_table(a: &Iface, b: &Iface, json: bool) {
    if json {
        fn row<'a>(i: &'a Iface, o: &'a Iface) -> Row<'a> {
            Row {
                interface_in: &i.name,
                mac_in: &i.mac,
                ipv4_in: i.ipv4.iter().map(|x| x.to_string()).collect(),
                ipv6_in: i.ipv6.iter().map(|x| x.to_string()).collect(),
                interface_out: &o.name,
                mac_out: &o.mac,
                ipv4_out: o.ipv4.iter().map(|x| x.to_string()).collect(),
                ipv6_out: o.ipv6.iter().map(|x| x.to_string()).collect(),
            }
        }
        let v = serde_json::json!({"event": "interfaces", "table": [row(a, b), row(b, a)]});
        println!("{v}");
        return;
    }
    let head = [
        "Interface In",
        "MAC address In",
        "IP address In",
        "Interface Out",
        "MAC address Out",
        "IP address Out",
    ];
    let rows = [
        [a.name.clone(), a.mac.clone(), a.ipv4_text(), b.name.clone(), b.mac.clone(), b.ipv4_text()],
        [b.name.clone(), b.mac.clone(), b.ipv4_text(), a.name.clone(), a.mac.clone(), a.ipv4_text()],
    ];
    let mut width = head.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        let text: Vec<String> = cells.iter().zip(width).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", text.join("   ").trim_end());
    };
    line(&head.map(String::from));
    line(&head.map(|h| "-".repeat(h.len())));
    for row in &rows {
        line(row);
    }
}

#[derive(Serialize)]
struct Direction {
    from: String,
    to: String,
    packets: u64,
    bytes: u64,
    errors: u64,
}

/// Per-direction counters, summed over CPUs.
fn counters(skel: &SwitchSkel, a: &Iface, b: &Iface) -> Result<Vec<Direction>> {
    let mut out = Vec::new();
    for (from, to) in [(a, b), (b, a)] {
        let mut d =
            Direction { from: from.name.clone(), to: to.name.clone(), packets: 0, bytes: 0, errors: 0 };
        for p in skel::per_cpu::<types::sw_port>(&skel.maps.ecsw_ports, from.index)? {
            d.packets += p.packets;
            d.bytes += p.bytes;
            d.errors += p.errors;
        }
        out.push(d);
    }
    Ok(out)
}

fn print_stats(dirs: &[Direction], json: bool, last: bool) {
    if json {
        let event = if last { "final" } else { "stats" };
        println!("{}", serde_json::json!({"event": event, "directions": dirs}));
        return;
    }
    println!("\n{:<34} {:>12} {:>14} {:>8}", "Direction", "Packets", "Bytes", "Errors");
    for d in dirs {
        println!(
            "{:<34} {:>12} {:>14} {:>8}",
            format!("{} -> {}", d.from, d.to),
            d.packets,
            d.bytes,
            d.errors
        );
    }
}

fn flush() {
    let _ = std::io::stdout().flush();
}
