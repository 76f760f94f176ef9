//! A running cast's counters, read from its maps: per output (packets, bytes, frames sent and
//! dropped, a cap's level) and per flow. `cast` prints them live, `stats` and the metrics read
//! them from a pinned instance.
use std::{collections::BTreeMap, io::Write};

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};
use serde::Serialize;

use crate::{
    kernel::{
        iface,
        skel::{self, cast::types},
    },
    mpegts::{Codec, FrameKind, PID_NONE},
    policy::Policy,
    table,
};

#[derive(Debug, Default, Clone, Serialize)]
pub struct OutputStats {
    pub interface: String,
    pub policy: String,
    pub packets: u64,
    pub bytes: u64,
    pub frames_sent: u64,
    pub frames_dropped: u64,
    pub clone_errors: u64,
    /// Copies its device dropped since it became an output (a full backlog or ring, the peer
    /// down): those of direct copies also count in clone_errors, those of a hub's broadcast
    /// only here.
    pub device_drops: u64,
    /// A capped output: the level chosen at the last frame start, as the kernel holds it (JSON
    /// names it, as in "nonref=0.4"); its frames_dropped are the frames dropped for the cap.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "level_name")]
    pub cap_level: Option<u16>,
    /// The hub device (its end that the table names) the output gets its copies through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
    /// Its copies wait in the CPU's input backlog (a veth with TSO on, as it was when the output
    /// was added): net.core.netdev_max_backlog bounds them, and its hub checks for room. False:
    /// TSO is off, so the peer's NAPI may take them (with GRO or XDP on the peer).
    pub queues_on_backlog: bool,
}

fn level_name<S: serde::Serializer>(level: &Option<u16>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&level.map(crate::policy::level_name).unwrap_or_default())
}

#[derive(Debug, Clone, Serialize)]
pub struct FlowStats {
    pub source: String,
    pub destination: String,
    pub video_pid: Option<u16>,
    pub codec: &'static str,
    pub frames_key: u64,
    pub frames_ref: u64,
    pub frames_nonref: u64,
    pub datagrams: u64,
    pub bytes: u64,
    pub unedited: u64,
    /// Datagrams the CPU's input backlog had no room for: refused whole (each output counts a
    /// lost copy), or whose copies stopped early.
    pub overload: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub outputs: Vec<OutputStats>,
    pub flows: Vec<FlowStats>,
}

impl Stats {
    /// Reads the counters of the outputs that `meta` names and of every flow, the level of
    /// capped outputs, the drops of the output devices, and which outputs the active table
    /// `table` serves through a hub. The datagrams the cast `refused` count for each output as
    /// copies lost (from the output's start).
    pub fn read(
        ostats: &dyn MapCore,
        flows_map: &dyn MapCore,
        caps: &dyn MapCore,
        refused: crate::kernel::pins::Refused,
        meta: &types::cast_meta,
        table: &types::cast_table,
    ) -> Result<Stats> {
        let outputs = crate::kernel::pins::slot_outputs(meta);
        let drops = iface::tx_dropped();
        let hub_of = table::hubs_by_slot(table);
        let queue: BTreeMap<u32, bool> =
            table::outputs(table).map(|o| (o.slot, o.flags & table::OUT_QUEUES != 0)).collect();
        // Each hub's name once (a hub may serve hundreds of outputs).
        let hub_names: BTreeMap<u32, String> = hub_of
            .values()
            .map(|&i| (i, iface::name_of(i).unwrap_or_else(|| format!("ifindex {i}"))))
            .collect();
        let mut outs = Vec::new();
        for (slot, name, policy) in &outputs {
            let base = meta.slot_drops_base[*slot as usize];
            let lost = refused.datagrams.saturating_sub(meta.slot_refused_base[*slot as usize]);
            let lost_bytes = refused.bytes.saturating_sub(meta.slot_refused_bytes_base[*slot as usize]);
            let mut s = OutputStats {
                packets: lost,
                bytes: lost_bytes,
                clone_errors: lost,
                interface: name.clone(),
                policy: policy.to_string(),
                device_drops: drops.get(name).map_or(0, |d| u64::from(d.wrapping_sub(base))),
                hub: hub_of.get(slot).map(|i| hub_names[i].clone()),
                queues_on_backlog: queue.get(slot).copied().unwrap_or(false),
                ..Default::default()
            };
            if let Policy::Max(_) = policy {
                let v = caps.lookup(&slot.to_ne_bytes(), MapFlags::ANY)?.unwrap_or_default();
                let cap: types::cast_cap = skel::from_bytes(&v).context("cast_cap size")?;
                s.cap_level = Some(cap.level);
            }
            for v in skel::per_cpu::<types::cast_ostat>(ostats, *slot)? {
                s.packets += v.packets;
                s.bytes += v.bytes;
                s.frames_sent += v.frames_sent;
                s.frames_dropped += v.frames_dropped;
                s.clone_errors += v.clone_errors;
            }
            outs.push(s);
        }
        let mut flows = Vec::new();
        for k in flows_map.keys() {
            let Some(v) = flows_map.lookup(&k, MapFlags::ANY)? else { continue };
            let key: types::flow_key = skel::from_bytes(&k).context("flow_key size")?;
            let f: types::cast_flow = skel::from_bytes(&v).context("cast_flow size")?;
            flows.push(FlowStats {
                source: endpoint(&key.saddr, key.sport, key.ipv6 != 0),
                destination: endpoint(&key.daddr, key.dport, key.ipv6 != 0),
                video_pid: (f.video_pid != PID_NONE).then_some(f.video_pid),
                codec: Codec::of_value(f.codec.into()).map_or("-", Codec::name),
                frames_key: f.frames[FrameKind::Key.value()],
                frames_ref: f.frames[FrameKind::Ref.value()],
                frames_nonref: f.frames[FrameKind::NonRef.value()],
                datagrams: f.packets,
                bytes: f.bytes,
                unedited: f.unedited,
                overload: f.overload,
            });
        }
        flows.sort_by(|a, b| (&a.source, &a.destination).cmp(&(&b.source, &b.destination)));
        Ok(Stats { outputs: outs, flows })
    }

    /// The counters of cast `name`: tables, or one JSON line (an event "stats", or "final").
    pub fn print(&self, name: &str, json: bool, last: bool) {
        if json {
            let event = if last { "final" } else { "stats" };
            println!(
                "{}",
                serde_json::json!({"event": event, "cast": name, "outputs": self.outputs, "flows": self.flows})
            );
        } else {
            println!();
            self.print_tables("", None);
        }
        let _ = std::io::stdout().flush();
    }

    /// The output and flow tables, each line indented; with `rates` (bit/s per output) a
    /// kbit/s column.
    pub fn print_tables(&self, indent: &str, rates: Option<&[f64]>) {
        println!(
            "{indent}{:<16} {:<24} {:>10} {:>14} {:>10} {:>8} {:>8} {:>7} {:>8}",
            "Output", "Policy", "Packets", "Bytes", "kbit/s", "Frames", "Dropped", "Errors", "Dev drop"
        );
        for (i, o) in self.outputs.iter().enumerate() {
            let rate = rates.and_then(|r| r.get(i)).map_or("-".to_string(), |r| format!("{:.0}", r / 1e3));
            // A capped output shows the level it is at now; an output in a hub, the hub.
            let policy = match (o.cap_level, &o.hub) {
                (Some(level), _) => format!("{} ({})", o.policy, crate::policy::level_name(level)),
                (None, Some(hub)) => format!("{} via {hub}", o.policy),
                (None, None) => o.policy.clone(),
            };
            println!(
                "{indent}{:<16} {:<24} {:>10} {:>14} {:>10} {:>8} {:>8} {:>7} {:>8}",
                o.interface,
                policy,
                o.packets,
                o.bytes,
                rate,
                o.frames_sent,
                o.frames_dropped,
                o.clone_errors,
                o.device_drops
            );
        }
        println!(
            "{indent}{:<46} {:>6} {:>6} {:>6} {:>6} {:>8} {:>10}",
            "Flow", "PID", "Codec", "Key", "Ref", "Non-ref", "Datagrams"
        );
        for f in &self.flows {
            let pid = f.video_pid.map_or("-".to_string(), |p| format!("{p:#x}"));
            println!(
                "{indent}{:<46} {:>6} {:>6} {:>6} {:>6} {:>8} {:>10}",
                format!("{} -> {}", f.source, f.destination),
                pid,
                f.codec,
                f.frames_key,
                f.frames_ref,
                f.frames_nonref,
                f.datagrams
            );
        }
    }
}

fn endpoint(addr: &[u8; 16], port_be: u16, ipv6: bool) -> String {
    let port = u16::from_be(port_be);
    if ipv6 {
        format!("[{}]:{port}", std::net::Ipv6Addr::from(*addr))
    } else {
        format!("{}:{port}", std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
    }
}
