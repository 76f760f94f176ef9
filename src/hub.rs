//! Hubs: a group of outputs that take the same copy (one policy, no dst=) gets it through one
//! device. The cast program sends a single copy into the hub's ingress; the hub's generic XDP
//! program (src/bpf/hub.bpf.c) broadcasts it to the group's ports with a plain skb_clone each,
//! where bpf_clone_redirect would copy the whole datagram once per output. A hub has two ends,
//! `ech<input ifindex>-<n>a` and `...b` (each one end of a veth pair whose peer `...p` stays down),
//! in the cast's namespace: the table names one; a change of members is written to the other,
//! which the next table then names, so each datagram sees one membership. The cast deletes
//! them when it stops (`detach` does for one killed with -9).
use std::{
    mem::MaybeUninit,
    os::fd::{AsFd, AsRawFd, OwnedFd},
    process::Command,
};

use anyhow::{bail, Context, Result};
use libbpf_rs::{skel::OpenSkel, MapCore, MapFlags};

use crate::kernel::skel::{self, hub::*};

/// Outputs of one policy from which they share a hub, unless `--hub-min` says otherwise (the
/// policy served last: half as many). Below this the cost of the hop through the hub (a second
/// pass through the input path, and a copy of a cloned frame for XDP) is not won back (bench:
/// mixed policies at N = 16 through hubs of 4, 1.6x the time per copy of direct clones).
pub const MIN_MEMBERS: usize = 8;

const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;

/// The name of end `end` ('a' or 'b') of hub `n` of the cast on the interface `input_ifindex`.
pub fn name(input_ifindex: u32, n: usize, end: char) -> String {
    format!("{}{n}{end}", prefix(input_ifindex))
}

fn prefix(input_ifindex: u32) -> String {
    format!("ech{input_ifindex}-")
}

/// The hub devices of a cast, deleted when dropped.
pub struct Hubs {
    input_ifindex: u32,
    made: std::cell::Cell<usize>,
}

impl Hubs {
    /// Starts with no hub, deleting the ones a killed cast on the same input left.
    pub fn new(input_ifindex: u32) -> Hubs {
        remove_all(input_ifindex);
        Hubs { input_ifindex, made: Default::default() }
    }

    /// Makes a hub, both ends pointing at `ports` (interface indexes). Returns the ifindex of
    /// end a.
    pub fn add(&self, ports: &[u32]) -> Result<u32> {
        let n = self.made.get();
        self.made.set(n + 1);
        let mut first = 0;
        for end in ['a', 'b'] {
            let dev = name(self.input_ifindex, n, end);
            if dev.len() + 1 > 15 {
                bail!("hub name {dev}p is longer than an interface name may be");
            }
            let peer = format!("{dev}p");
            ip(&["link", "add", &dev, "mtu", "65535", "type", "veth", "peer", "name", &peer])?;
            // No IPv6 chatter: the hub only carries the cast's frames.
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"), "1");
            ip(&["link", "set", &dev, "up"])?;
            let ifindex = crate::kernel::iface::index_of(&dev)?;
            attach(ifindex, ports).with_context(|| format!("attaching the broadcast to hub {dev}"))?;
            if first == 0 {
                first = ifindex;
            }
        }
        Ok(first)
    }
}

impl Drop for Hubs {
    fn drop(&mut self) {
        remove_all(self.input_ifindex);
    }
}

/// Deletes every hub of the cast on `input_ifindex` (a veth pair goes with either end).
/// Returns their names.
pub fn remove_all(input_ifindex: u32) -> Vec<String> {
    names(input_ifindex).into_iter().filter(|n| ip(&["link", "del", n]).is_ok()).collect()
}

/// The hubs of the cast on `input_ifindex`, as the kernel lists them (/sys/class/net shows the
/// namespace sysfs was mounted in, not necessarily ours).
pub fn names(input_ifindex: u32) -> Vec<String> {
    let prefix = prefix(input_ifindex);
    let Ok(all) = nix::net::if_::if_nameindex() else { return vec![] };
    all.iter()
        .map(|i| i.name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix) && (n.ends_with('a') || n.ends_with('b')))
        .collect()
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip (install iproute2)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Attaches the broadcast program as generic XDP on `ifindex` (by netlink: it stays with the
/// device, as a tc-attached cast stays after its process), with `ports` in its devmap; a
/// program already there is replaced (how an idle hub end gets new members, from any process).
pub fn attach(ifindex: u32, ports: &[u32]) -> Result<()> {
    attach_program(ifindex, &program(ports)?)
}

/// A broadcast program loaded with `ports` (interface indexes of this namespace) in its devmap.
pub fn program(ports: &[u32]) -> Result<OwnedFd> {
    let mut obj = MaybeUninit::uninit();
    let mut open = skel::open(HubSkelBuilder::default(), &mut obj)?;
    // The broadcast walks every bucket of the map: as many as there are ports, not 1024.
    open.maps.hub_ports.set_max_entries(ports.len().max(1) as u32)?;
    let skel = open.load().context("loading the hub program")?;
    for p in ports {
        skel.maps.hub_ports.update(&p.to_ne_bytes(), &p.to_ne_bytes(), MapFlags::ANY)?;
    }
    // The program (and through it the map) lives as long as this fd.
    Ok(skel.progs.ecast_hub.as_fd().try_clone_to_owned()?)
}

/// Attaches `prog` as generic XDP on `ifindex` (of the current namespace).
pub fn attach_program(ifindex: u32, prog: &OwnedFd) -> Result<()> {
    // SAFETY: a loaded program's fd; NULL options are allowed.
    let rc = unsafe {
        libbpf_sys::bpf_xdp_attach(ifindex as i32, prog.as_raw_fd(), XDP_FLAGS_SKB_MODE, std::ptr::null())
    };
    if rc < 0 {
        return Err(std::io::Error::from_raw_os_error(-rc)).context("bpf_xdp_attach");
    }
    Ok(())
}

/// Detaches what `attach` attached.
pub fn detach(ifindex: u32) {
    // SAFETY: plain netlink request.
    unsafe { libbpf_sys::bpf_xdp_detach(ifindex as i32, XDP_FLAGS_SKB_MODE, std::ptr::null()) };
}

/// The other end of the hub whose end is `hub_ifindex`.
pub fn other_end(hub_ifindex: u32) -> Result<u32> {
    let name =
        crate::kernel::iface::name_of(hub_ifindex).with_context(|| format!("hub {hub_ifindex} is gone"))?;
    let other = match name.strip_suffix('a') {
        Some(base) => format!("{base}b"),
        None => format!("{}a", name.strip_suffix('b').with_context(|| format!("{name} is no hub"))?),
    };
    crate::kernel::iface::index_of(&other)
}
