//! `ebpf-cast out add|del|set NAME ...`: changes the outputs of a running cast through its
//! pinned tables while packets flow. The new table is written into the inactive half, then
//! made active with one store; an added output (or one whose policy changes) waits for each
//! flow's next keyframe, so a decoder there starts clean.
use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddrV4,
    str::FromStr,
    time::Duration,
};

use anyhow::{Context, Result};

use crate::{
    error::input,
    hub::{Member, Shared},
    kernel::iface::Iface,
    kernel::pins::{self, Instance},
    kernel::preflight,
    kernel::skel::cast::types,
    policy::Policy,
    table::{MAX_OUTPUTS, OUT_HUB, OUT_NAT, OUT_QUEUES, OUT_VIA_HUB},
};

#[derive(Debug, clap::Subcommand)]
pub enum OutCmd {
    /// Add an output: OUT[:POLICY][,dst=IP:PORT][,mac=MAC]. With dst=, the copies are rewritten
    /// to that address (and MAC: given, or from the neighbour table) for a plain UDP socket there
    Add {
        /// Cast instance (`ebpf-cast status` lists them)
        name: String,
        /// e.g. vm4:nonref=0.5 or vm5:key,dst=10.1.0.5:5000
        spec: NewOutput,
    },
    /// Remove an output
    Del { name: String, output: String },
    /// Change an output's policy. A new cap (max= to max=) applies from the next frame; other
    /// changes that send more frames wait for each flow's next keyframe
    Set { name: String, output: String, policy: Policy },
}

/// `OUT[:POLICY][,dst=IP:PORT][,mac=MAC]`
#[derive(Debug, Clone)]
pub struct NewOutput {
    pub interface: String,
    pub policy: Policy,
    pub dst: Option<SocketAddrV4>,
    pub mac: Option<[u8; 6]>,
}

impl FromStr for NewOutput {
    type Err = String;

    fn from_str(s: &str) -> Result<NewOutput, String> {
        // Options are the trailing `,key=value` parts; an interface name may hold commas itself.
        let is_option = |p: &str| {
            p.split_once('=').is_some_and(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase()))
        };
        let mut parts: Vec<&str> = s.split(',').collect();
        let first_option =
            (1..parts.len()).rev().take_while(|&i| is_option(parts[i])).last().unwrap_or(parts.len());
        let options = parts.split_off(first_option);
        let head: crate::policy::OutputSpec = parts.join(",").parse()?;
        let mut out = NewOutput { interface: head.interface, policy: head.policy, dst: None, mac: None };
        for p in options {
            match p.split_once('=') {
                Some(("dst", v)) => {
                    if out.dst.is_some() {
                        return Err(format!("'{s}': dst= is given twice: give one destination"));
                    }
                    let dst: SocketAddrV4 = v.parse().map_err(|_| {
                        format!("dst={v}: give an IPv4 address and port, e.g. dst=10.1.0.5:5000")
                    })?;
                    let ip = dst.ip();
                    if ip.is_multicast() || ip.is_broadcast() || ip.is_unspecified() || dst.port() == 0 {
                        return Err(format!(
                            "dst={v}: give one consumer's unicast IPv4 address and a port from 1 to 65535, \
                             e.g. dst=10.1.0.5:5000"
                        ));
                    }
                    out.dst = Some(dst);
                }
                Some(("mac", v)) => {
                    if out.mac.is_some() {
                        return Err(format!("'{s}': mac= is given twice: give one MAC address"));
                    }
                    let mac = parse_mac(v)
                        .ok_or_else(|| format!("mac={v}: give six hex bytes, e.g. mac=02:00:00:00:00:05"))?;
                    if mac[0] & 1 != 0 || mac == [0; 6] {
                        return Err(format!(
                            "mac={v}: give the consumer's unicast MAC address (a group or zero address reaches \
                             no single consumer), e.g. mac=02:00:00:00:00:05"
                        ));
                    }
                    out.mac = Some(mac);
                }
                _ => return Err(format!("'{p}' in '{s}': options are dst=IP:PORT and mac=MAC")),
            }
        }
        if out.mac.is_some() && out.dst.is_none() {
            return Err(format!("'{s}': mac= goes with dst=IP:PORT"));
        }
        Ok(out)
    }
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let v: Vec<u8> = s.split(':').map(|x| u8::from_str_radix(x, 16)).collect::<Result<_, _>>().ok()?;
    v.try_into().ok()
}

pub fn run(cmd: &OutCmd) -> Result<()> {
    preflight::require_bpf_privileges("ebpf-cast out")?;
    let name = match cmd {
        OutCmd::Add { name, .. } | OutCmd::Del { name, .. } | OutCmd::Set { name, .. } => name,
    };
    let message = change(name, |c| edit(cmd, name, c).map(Some))?;
    println!("{}", message.unwrap_or_default());
    Ok(())
}

/// Follows the kernel's link events for a running cast: an output interface that is gone
/// (deleted, or moved to another network namespace) is removed, so that no later interface
/// with its index receives the stream; a renamed one is known by its new name. Returns what
/// changed, one line each.
pub fn follow_links(name: &str) -> Result<Vec<String>> {
    let said = change(name, |c| {
        let (bss, outs) = (&mut *c.bss, &mut *c.outs);
        let mut said = Vec::new();
        outs.retain(|&slot, o| {
            let known = pins::cstr(&bss.cast_meta.slot_name[slot as usize]);
            match crate::kernel::iface::name_of(o.ifindex) {
                None => {
                    pins::set_cstr(&mut bss.cast_meta.slot_name[slot as usize], "");
                    said.push(format!(
                        "output {known} is gone (deleted, or moved to another network namespace): removed from {name}"
                    ));
                    false
                }
                Some(now) if now != known => {
                    pins::set_cstr(&mut bss.cast_meta.slot_name[slot as usize], &now);
                    said.push(format!("output {known} of {name} is now named {now}"));
                    true
                }
                Some(_) => true,
            }
        });
        Ok((!said.is_empty()).then_some(said))
    })?;
    Ok(said.unwrap_or_default())
}

/// A cast's outputs by slot.
pub type Outputs = BTreeMap<u32, types::cast_out>;

/// What a change of a running cast works on: its maps, the table in use (a copy: a hub entry
/// may be pointed at the hub's other end), the outputs by slot, and the new generation.
struct Change<'a> {
    inst: &'a Instance,
    bss: &'a mut types::bss,
    cur: &'a mut types::cast_table,
    outs: &'a mut Outputs,
    gen: u32,
}

/// Packets in flight finish with the table they started with well within this.
const TABLE_GRACE: Duration = Duration::from_millis(20);

/// Applies `edit` to a running cast's outputs (by slot) under its lock: the new table goes
/// into the next table of the rotation, then one store makes it active. That table was retired
/// at least TABLE_GRACE ago (else this waits), so no packet in flight still reads it; with
/// CAST_TABLES in rotation, hundreds of changes a second need no wait. `edit` returns what it
/// did, or None when nothing changed.
fn change<T>(name: &str, edit: impl FnOnce(&mut Change) -> Result<Option<T>>) -> Result<Option<T>> {
    let inst = Instance::open(name)?;
    let _lock = inst.lock()?;
    let mut bss = inst.read_bss()?;
    if !pins::owner_alive(&bss.cast_meta) {
        return Err(input(format!(
            "cast {name} is stale (its process {} is gone): start it again, or clean up with `ebpf-cast detach {}`",
            bss.cast_meta.owner_pid,
            pins::cstr(&bss.cast_meta.input)
        )));
    }
    let active = bss.cast_active as usize % bss.cast_tabs.len();
    let mut cur = bss.cast_tabs[active];
    // The outputs by slot, as the kernel has them now.
    let mut outs: Outputs = crate::table::outputs(&cur).map(|o| (o.slot, *o)).collect();
    let gen = cur.gen + 1;
    let mut c = Change { inst: &inst, bss: &mut bss, cur: &mut cur, outs: &mut outs, gen };
    let Some(message) = edit(&mut c)? else { return Ok(None) };
    let table = crate::table::build(&cur, outs.into_values().collect(), gen)?;
    let next = (active + 1) % bss.cast_tabs.len();
    let since = monotonic().saturating_sub(Duration::from_nanos(bss.cast_meta.retired_ns[next]));
    if let Some(wait) = TABLE_GRACE.checked_sub(since) {
        std::thread::sleep(wait);
    }
    bss.cast_tabs[next] = table;
    inst.write_bss(&bss)?;
    bss.cast_active = next as u32;
    bss.cast_meta.retired_ns[active] = monotonic().as_nanos() as u64;
    inst.write_bss(&bss)?;
    Ok(Some(message))
}

/// CLOCK_MONOTONIC: the same clock for every process that changes a cast.
fn monotonic() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map(Duration::from).unwrap_or_default()
}

fn edit(cmd: &OutCmd, name: &str, c: &mut Change) -> Result<String> {
    match cmd {
        OutCmd::Add { spec, .. } => add(spec, name, c),
        OutCmd::Del { output, .. } => {
            let slot = slot_of(c.bss, output, name)?;
            if let Some(mut o) = c.outs.remove(&slot) {
                leave_hub(c.inst, c.bss, c.cur, &mut o)?;
            }
            pins::set_cstr(&mut c.bss.cast_meta.slot_name[slot as usize], "");
            Ok(format!("removed {output} from {name}"))
        }
        OutCmd::Set { output, policy, .. } => set(output, *policy, name, c),
    }
}

/// The slot of output `iface` of cast `name`.
fn slot_of(bss: &types::bss, iface: &str, name: &str) -> Result<u32> {
    (0..bss.cast_meta.n_slots)
        .find(|&s| pins::cstr(&bss.cast_meta.slot_name[s as usize]) == iface)
        .ok_or_else(|| {
            input(format!("{iface} is not an output of {name} (`ebpf-cast stats {name}` lists them)"))
        })
}

fn add(spec: &NewOutput, name: &str, c: &mut Change) -> Result<String> {
    let (bss, outs) = (&mut *c.bss, &mut *c.outs);
    let iface = Iface::ethernet(&spec.interface)?;
    if slot_of(bss, &iface.name, name).is_ok() {
        return Err(input(format!("{} is already an output of {name}: use `ebpf-cast out set`", iface.name)));
    }
    if iface.name == pins::cstr(&bss.cast_meta.input) {
        return Err(input(format!("{} is the input of {name}: it cannot be an output too", iface.name)));
    }
    if outs.len() >= MAX_OUTPUTS {
        return Err(input(format!("{name} has {MAX_OUTPUTS} outputs already: remove one first")));
    }
    let slot = (0..MAX_OUTPUTS as u32)
        .find(|s| pins::cstr(&bss.cast_meta.slot_name[*s as usize]).is_empty())
        .context("no free slot")?;
    let mut o = types::cast_out {
        ifindex: iface.index,
        level: spec.policy.level(),
        cap_bps: spec.policy.cap(),
        slot,
        gen_added: c.gen,
        flags: queue_flag(iface.index),
        ..Default::default()
    };
    if let Some(dst) = spec.dst {
        set_nat(&mut o, dst, nat_mac(&iface.name, &dst, spec.mac)?);
    }
    c.inst.zero_output(slot)?;
    outs.insert(slot, o);
    pins::set_cstr(&mut bss.cast_meta.slot_name[slot as usize], &iface.name);
    bss.cast_meta.slot_level[slot as usize] = o.level;
    bss.cast_meta.slot_cap[slot as usize] = o.cap_bps;
    bss.cast_meta.n_slots = bss.cast_meta.n_slots.max(slot + 1);
    pins::count_losses_from_now(&mut bss.cast_meta, [slot], pins::refused(&c.inst.admission)?);
    Ok(format!("added {} ({}) to {name}: it starts at each flow's next keyframe", iface.name, spec.policy))
}

fn set(output: &str, policy: Policy, name: &str, c: &mut Change) -> Result<String> {
    let slot = slot_of(c.bss, output, name)?;
    let o = c.outs.get_mut(&slot).context("slot without a table entry")?;
    leave_hub(c.inst, c.bss, c.cur, o)?;
    let capped = |level| level == crate::policy::LEVEL_CAP;
    let new_cap = capped(o.level) && capped(policy.level());
    // More frames from now (a capped output is a class of its own, which may have skipped a
    // GOP), only from a keyframe on; a capped output keeps its class.
    if !new_cap && (policy.level() < o.level || capped(policy.level())) {
        o.gen_added = c.gen;
    }
    o.level = policy.level();
    o.cap_bps = policy.cap();
    c.bss.cast_meta.slot_level[slot as usize] = o.level;
    c.bss.cast_meta.slot_cap[slot as usize] = o.cap_bps;
    let from = if new_cap { " (from the next frame)" } else { "" };
    Ok(format!("{output} of {name} now has policy {policy}{from}"))
}

/// Frames sent to a hub may wait in the CPU's backlog a while before they are broadcast: a
/// hub end is rewritten only this long after the last table that named it was retired.
const HUB_GRACE: Duration = Duration::from_millis(100);

/// Takes an output out of its hub: the hub's other end gets the remaining members, and the
/// new table names that end, so each datagram reaches the output once, by the hub or directly.
fn leave_hub(
    inst: &Instance,
    bss: &types::bss,
    cur: &mut types::cast_table,
    o: &mut types::cast_out,
) -> Result<()> {
    if o.flags & OUT_VIA_HUB == 0 {
        return Ok(());
    }
    o.flags &= !OUT_VIA_HUB;
    let Some(h) = crate::table::hub_index(cur, o.level) else { return Ok(()) };
    let members: Vec<Member> = crate::table::outputs(cur)
        .filter(|m| m.flags & OUT_VIA_HUB != 0 && m.level == o.level && m.slot != o.slot)
        .map(member)
        .collect();
    repoint_hub(&inst.shared(), bss, &mut cur.out[h], &members)
}

fn member(o: &types::cast_out) -> Member {
    Member { ifindex: o.ifindex, slot: o.slot, queues: o.flags & OUT_QUEUES != 0 }
}

/// The flags of a new output on interface `index`: whether its copies wait in the CPU's
/// backlog, as the device is when the output is added (an operator who changes its offloads
/// later re-adds it).
pub fn queue_flag(index: u32) -> u8 {
    if crate::kernel::iface::copies_queue_on_backlog(index) {
        OUT_QUEUES
    } else {
        0
    }
}

/// Gives the hub's idle end the members `members`, and points the hub entry `hub` (of the next
/// table) at it.
fn repoint_hub(
    shared: &Shared,
    bss: &types::bss,
    hub: &mut types::cast_out,
    members: &[Member],
) -> Result<()> {
    // The idle end was last named by a table older than the one in use.
    let tabs = bss.cast_tabs.len();
    let prev = (bss.cast_active as usize + tabs - 1) % tabs;
    let since = monotonic().saturating_sub(Duration::from_nanos(bss.cast_meta.retired_ns[prev]));
    if let Some(wait) = HUB_GRACE.checked_sub(since) {
        std::thread::sleep(wait);
    }
    let other = crate::hub::other_end(hub.ifindex)?;
    crate::hub::set_members(other, members, shared)?;
    hub.ifindex = other;
    Ok(())
}

/// The packet counts of a cast's flows at the owner's last look: a flow whose count moved since
/// is live.
#[derive(Default)]
pub struct FlowWatch(HashMap<Vec<u8>, u64>);

/// Moves outputs that take the same copies as a hub's members into that hub, or makes a hub for
/// `hub_min` of them: outputs without dst= that every live video flow has shown a keyframe since
/// they were added (before that, they wait for one on their own). Run by the cast's own process
/// every second. Returns what changed, one line each.
pub fn gather(
    name: &str,
    hubs: &crate::hub::Hubs,
    hub_min: usize,
    watch: &mut FlowWatch,
) -> Result<Vec<String>> {
    if hub_min == 0 {
        return Ok(vec![]);
    }
    use libbpf_rs::MapCore;
    let inst = Instance::open(name)?;
    // Outputs added up to this generation have joined every live flow that carries video.
    let mut joined = u32::MAX;
    let mut now = HashMap::new();
    for k in inst.flows.keys() {
        let Some(v) = inst.flows.lookup(&k, libbpf_rs::MapFlags::ANY)? else { continue };
        let f: types::cast_flow = crate::kernel::skel::from_bytes(&v).context("cast_flow size")?;
        if watch.0.get(&k) != Some(&f.packets) && f.video_pid != crate::mpegts::PID_NONE {
            joined = joined.min(f.key_gen);
        }
        now.insert(k, f.packets);
    }
    watch.0 = now;
    let said = change(name, |c| {
        let bss = &*c.bss;
        let shared = c.inst.shared();
        let moved = gather_into(c.cur, c.outs, hubs, &shared, hub_min, joined, &mut |hub, members| {
            repoint_hub(&shared, bss, hub, members)
        })?;
        let said: Vec<String> = moved
            .iter()
            .map(|slots| {
                let names: Vec<String> =
                    slots.iter().map(|&s| pins::cstr(&bss.cast_meta.slot_name[s as usize])).collect();
                format!("{} of {name} now get their copies through a hub", names.join(", "))
            })
            .collect();
        Ok((!said.is_empty()).then_some(said))
    })?;
    Ok(said.unwrap_or_default())
}

/// The rule that puts outputs into hubs, for the first table and for later ones: per level,
/// the outputs without NAT added up to generation `joined` go into the level's hub (its entry in
/// `cur` given the new members by `repoint`), or into a new one once there are `hub_min` of
/// them. Returns the slots moved, a list per hub.
pub fn gather_into(
    cur: &mut types::cast_table,
    outs: &mut Outputs,
    hubs: &crate::hub::Hubs,
    shared: &Shared,
    hub_min: usize,
    joined: u32,
    repoint: &mut dyn FnMut(&mut types::cast_out, &[Member]) -> Result<()>,
) -> Result<Vec<Vec<u32>>> {
    let mut moved = Vec::new();
    if hub_min == 0 {
        return Ok(moved);
    }
    let levels: std::collections::BTreeSet<u16> = outs.values().map(|o| o.level).collect();
    for level in levels {
        if level == crate::policy::LEVEL_CAP {
            continue; // each capped output is a class of its own
        }
        let ready: Vec<u32> = outs
            .values()
            .filter(|o| o.level == level && o.flags & (OUT_NAT | OUT_VIA_HUB) == 0 && o.gen_added <= joined)
            .map(|o| o.slot)
            .collect();
        let hub = crate::table::hub_index(cur, level);
        if ready.is_empty() || (hub.is_none() && ready.len() < hub_min) {
            continue;
        }
        let joining = |o: &&types::cast_out| {
            o.level == level && (o.flags & OUT_VIA_HUB != 0 || ready.contains(&o.slot))
        };
        let members: Vec<Member> = outs.values().filter(joining).map(member).collect();
        let gen_added = outs.values().filter(joining).map(|o| o.gen_added).max().unwrap_or(0);
        match hub {
            Some(h) => {
                repoint(&mut cur.out[h], &members)?;
                cur.out[h].gen_added = cur.out[h].gen_added.max(gen_added);
            }
            None => {
                let n = cur.n_out as usize;
                let ifindex = hubs.add(&members, shared)?;
                cur.out[n] =
                    types::cast_out { ifindex, level, flags: OUT_HUB, gen_added, ..Default::default() };
                cur.n_out += 1;
            }
        }
        for slot in &ready {
            if let Some(o) = outs.get_mut(slot) {
                o.flags |= OUT_VIA_HUB;
            }
        }
        moved.push(ready);
    }
    Ok(moved)
}

/// The MAC for a NAT output: given, or from the neighbour table.
pub fn nat_mac(dev: &str, dst: &SocketAddrV4, given: Option<[u8; 6]>) -> Result<[u8; 6]> {
    match given {
        Some(m) => Ok(m),
        None => neighbour_mac(dev, *dst.ip()),
    }
}

/// Makes a table entry rewrite its copies to `dst` and `mac`.
pub fn set_nat(o: &mut types::cast_out, dst: SocketAddrV4, mac: [u8; 6]) {
    o.flags |= OUT_NAT;
    o.nat_daddr = u32::from_ne_bytes(dst.ip().octets());
    o.nat_dport = dst.port().to_be();
    o.nat_dmac = mac;
}

/// The MAC of `ip` from the neighbour table of `dev`.
fn neighbour_mac(dev: &str, ip: std::net::Ipv4Addr) -> Result<[u8; 6]> {
    let arp = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
    for line in arp.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 6 && f[0] == ip.to_string() && f[5] == dev && f[2] != "0x0" {
            if let Some(mac) = parse_mac(f[3]) {
                return Ok(mac);
            }
        }
    }
    Err(input(format!(
        "cannot find the MAC address of {ip} on {dev} (no neighbour entry): give it with mac=, e.g. \
         {dev}:all,dst={ip}:PORT,mac=02:00:00:00:00:05, or let the host reach {ip} first"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_specs_with_nat() {
        let o: NewOutput = "vm5:key,dst=10.1.0.5:5000,mac=02:00:00:00:00:05".parse().unwrap();
        assert_eq!(o.interface, "vm5");
        assert_eq!(o.policy, Policy::Key);
        assert_eq!(o.dst, Some("10.1.0.5:5000".parse().unwrap()));
        assert_eq!(o.mac, Some([2, 0, 0, 0, 0, 5]));
        assert!("vm5,dst=nowhere".parse::<NewOutput>().unwrap_err().contains("dst=nowhere"));
        assert!("vm5,mac=02:00:00:00:00:05"
            .parse::<NewOutput>()
            .unwrap_err()
            .contains("mac= goes with dst="));
        assert!("vm5,ttl=3".parse::<NewOutput>().unwrap_err().contains("options are"));
        // A comma inside an interface name is the name's, not an option's.
        let o: NewOutput = "o,1".parse().unwrap();
        assert_eq!((o.interface.as_str(), o.policy), ("o,1", Policy::All));
        let o: NewOutput = "o,1:key,dst=10.1.0.5:5000".parse().unwrap();
        assert_eq!(
            (o.interface.as_str(), o.policy, o.dst),
            ("o,1", Policy::Key, "10.1.0.5:5000".parse().ok())
        );
        for (bad, why) in [
            ("vm5,dst=10.1.0.5:0", "a port from 1 to 65535"),
            ("vm5,dst=239.1.1.1:5000", "unicast IPv4 address"),
            ("vm5,dst=255.255.255.255:5000", "unicast IPv4 address"),
            ("vm5,dst=0.0.0.0:5000", "unicast IPv4 address"),
            ("vm5,dst=10.1.0.5:5000,dst=10.1.0.6:5000", "dst= is given twice"),
            ("vm5,dst=10.1.0.5:5000,mac=02:00:00:00:00:05,mac=02:00:00:00:00:06", "mac= is given twice"),
            ("vm5,dst=10.1.0.5:5000,mac=ff:ff:ff:ff:ff:ff", "unicast MAC address"),
            ("vm5,dst=10.1.0.5:5000,mac=01:00:5e:00:00:01", "unicast MAC address"),
            ("vm5,dst=10.1.0.5:5000,mac=00:00:00:00:00:00", "unicast MAC address"),
        ] {
            let err = bad.parse::<NewOutput>().unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
