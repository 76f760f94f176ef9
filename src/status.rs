//! `ebpf-cast status` and `ebpf-cast detach IF`: what is attached, from the kernel's view.
use anyhow::{Context, Result};
use serde::Serialize;

use crate::{
    error::input,
    kernel::iface,
    kernel::installed,
    kernel::installed::Installed,
    kernel::pins,
    kernel::skel::{self, switch::types as sw},
    switch::SwitchMode,
};

#[derive(Serialize)]
struct Entry {
    #[serde(flatten)]
    inst: Installed,
    mode: String,
    peer: Option<String>,
}

#[derive(Serialize)]
struct InstanceEntry {
    name: String,
    input: String,
    owner_pid: u32,
    running: bool,
    outputs: Vec<String>,
}

/// Casts of this network namespace known by their pins; a dead owner means stale pins.
fn instances() -> Vec<InstanceEntry> {
    pins::list()
        .into_iter()
        .filter_map(|name| {
            let inst = pins::Instance::open(&name).ok()?;
            let bss = inst.read_bss().ok()?;
            let outputs =
                pins::slot_outputs(&bss.cast_meta).into_iter().map(|(_, o, p)| format!("{o}:{p}")).collect();
            Some(InstanceEntry {
                input: pins::cstr(&bss.cast_meta.input),
                owner_pid: bss.cast_meta.owner_pid,
                running: pins::owner_alive(&bss.cast_meta),
                outputs,
                name,
            })
        })
        .collect()
}

pub fn run(json: bool) -> Result<()> {
    crate::kernel::preflight::require_privileges("ebpf-cast status")?;
    let entries: Vec<Entry> = installed::all()?.into_iter().map(details).collect();
    let insts = instances();
    let orphans = pins::orphans();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"attachments": entries, "instances": insts, "orphans": orphans})
            )?
        );
        return Ok(());
    }
    if !orphans.is_empty() {
        println!(
            "ORPHANED PINS (their network namespace is gone; remove with `ebpf-cast detach --orphans`):"
        );
        for o in &orphans {
            println!("  {}", o.display());
        }
        println!();
    }
    if !insts.is_empty() {
        println!("{:<16} {:<16} {:<22} OUTPUTS", "CAST", "INPUT", "STATE");
        for i in &insts {
            let state = if i.running {
                format!("running (pid {})", i.owner_pid)
            } else {
                "STALE (detach it)".to_string()
            };
            println!("{:<16} {:<16} {:<22} {}", i.name, i.input, state, i.outputs.join(" "));
        }
        println!();
    }
    if entries.is_empty() {
        println!("no ebpf-cast program is attached in this network namespace");
        return Ok(());
    }
    println!(
        "{:<16} {:<5} {:<7} {:<9} {:<16} {:>8}  SINCE (UTC)",
        "INTERFACE", "HOOK", "ROLE", "MODE", "PEER", "PROG-ID"
    );
    for e in &entries {
        println!(
            "{:<16} {:<5} {:<7} {:<9} {:<16} {:>8}  {}",
            e.inst.interface,
            e.inst.hook,
            e.inst.role,
            e.mode,
            e.peer.as_deref().unwrap_or("-"),
            e.inst.prog_id,
            utc_text(e.inst.since_unix)
        );
    }
    Ok(())
}

pub fn detach(name: &str) -> Result<()> {
    let index = iface::index_of(name)?;
    crate::kernel::preflight::require_bpf_privileges("ebpf-cast detach")?;
    let found = installed::on_interface(index, name)?;
    let casts: Vec<InstanceEntry> = instances().into_iter().filter(|i| i.input == name).collect();
    let hubs = crate::hub::names(index);
    if found.is_empty() && casts.is_empty() && hubs.is_empty() {
        return Err(input(format!(
            "no ebpf-cast program is attached to {name}; `ebpf-cast status` lists them"
        )));
    }
    for inst in &found {
        installed::detach(inst)?;
        println!("detached ebpf-cast {} (program {}, {}) from {name}", inst.role, inst.prog_id, inst.hook);
    }
    for c in &casts {
        pins::remove(&c.name)?;
        println!("removed the pins of cast {}", c.name);
    }
    for h in crate::hub::remove_all(index) {
        println!("removed hub {h} of the cast on {name}");
    }
    Ok(())
}

/// Removes the pins of casts whose network namespace is gone.
pub fn remove_orphans() -> Result<()> {
    crate::kernel::preflight::require_privileges("ebpf-cast detach")?;
    let orphans = pins::orphans();
    if orphans.is_empty() {
        println!("no orphaned pins");
    }
    for o in orphans {
        std::fs::remove_dir_all(&o).with_context(|| format!("removing {}", o.display()))?;
        println!("removed {} (its network namespace is gone)", o.display());
    }
    for l in pins::orphan_locks() {
        let _ = std::fs::remove_file(l);
    }
    pins::remove_root_if_empty();
    Ok(())
}

/// Adds what only the program's maps know: the switch mode and the peer port.
fn details(inst: Installed) -> Entry {
    let (mut mode, mut peer) = (String::from("-"), None);
    if inst.role == "switch" {
        if let Some(ro) =
            installed::global_data(&inst, ".rodata").and_then(|b| skel::from_bytes::<sw::rodata>(&b))
        {
            mode = SwitchMode::of_value(ro.sw_mode).name().to_string();
        }
        peer = switch_peer(&inst);
    } else if inst.role == "cast" {
        mode = "cast".to_string();
        peer = cast_outputs(&inst).map(|n| format!("{n} outputs"));
    }
    Entry { inst, mode, peer }
}

fn switch_peer(inst: &Installed) -> Option<String> {
    let map = installed::map_by_name(inst, "ecsw_ports")?;
    let port = *skel::per_cpu::<sw::sw_port>(&map, inst.ifindex).ok()?.first()?;
    Some(iface::name_of(port.out_ifindex).unwrap_or_else(|| format!("ifindex {}", port.out_ifindex)))
}

/// Number of outputs in the cast's active table.
fn cast_outputs(inst: &Installed) -> Option<u32> {
    let bss = installed::global_data(inst, ".bss")?;
    let bss: crate::kernel::skel::cast::types::bss = crate::kernel::skel::from_bytes(&bss)?;
    Some(crate::table::outputs(crate::table::active(&bss)).count() as u32)
}

/// "YYYY-MM-DD HH:MM:SS" in UTC, without a calendar crate.
pub fn utc_text(unix: u64) -> String {
    let (days, secs) = ((unix / 86400) as i64, unix % 86400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_text_matches_known_dates() {
        assert_eq!(super::utc_text(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc_text(1_795_824_000), "2026-11-28 00:00:00");
        assert_eq!(super::utc_text(951_782_400 + 3661), "2000-02-29 01:01:01");
    }
}
