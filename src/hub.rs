//! Hubs: a group of outputs that take the same copy (one policy, no dst=) gets it through one
//! device. The cast program sends a single copy into a hub end; the end's generic XDP program
//! passes it to the hub's broadcast (src/bpf/hub.bpf.c), which sends it to the group's ports
//! with a plain skb_clone each, where bpf_clone_redirect would copy the whole datagram once per
//! output.
//!
//! A hub has two ends, `ech<input ifindex>-<n>a` and `...b`. The table names one; a change of
//! members is written to the other, which the next table then names, so each datagram sees one
//! membership. Each end is a veth pair: one side in the cast's namespace, the other (`...p`) in
//! a namespace with no name that the cast makes for its hubs and that goes with its process.
//! Both sides run an end program (src/bpf/hub_end.bpf.c). Clones enter the cast's side at
//! ingress, which queues them on the CPU's backlog. The original datagram is handed to the other
//! side with bpf_redirect_peer, which works only across namespaces, in the same pass through the
//! input path (bench: 1.12x the copies/s of the backlog round at N = 4 with NAPI receivers,
//! 1.15x at N = 16 with plain veths). The cast program takes a datagram only while the CPU's
//! backlog has room for all the copies that will wait there, its hubs' included
//! (src/bpf/backlog.h; members on veths with TSO on, `CAST_OUT_QUEUES`), and a hub of clones
//! checks again when the clone comes off the backlog.
//! A refused datagram counts as a lost copy for each member, in the cast's counters, which
//! the broadcast programs share.
//! The cast deletes the hubs when it stops; killed, its hub namespace and with it the hubs go
//! at once.
use std::{
    cell::{Cell, OnceCell, RefCell},
    fs::File,
    mem::MaybeUninit,
    os::fd::{AsFd, AsRawFd, OwnedFd},
    process::Command,
};

use anyhow::{bail, Context, Result};
use libbpf_rs::{skel::OpenSkel, MapCore, MapFlags, MapHandle};

use crate::kernel::{
    netns,
    skel::{self, hub::*, hub_end::*},
};

/// A member of a hub: its output's interface, its slot in the cast's counters, and whether its
/// copies wait in the CPU's backlog (`CAST_OUT_QUEUES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub ifindex: u32,
    pub slot: u32,
    pub queues: bool,
}

/// What a hub's broadcast programs share with their cast: its counters, its backlog limit and
/// the copies its clones will make (cast_maps.h).
pub struct Shared<'a> {
    pub ostats: &'a dyn MapCore,
    pub backlog: &'a dyn MapCore,
    pub admission: &'a dyn MapCore,
}

/// Outputs of one policy from which they share a hub, unless `--hub-min` says otherwise. A hub
/// of 4 costs about what direct copies cost (the policy served last: less, bench at N = 4; a
/// hub of clones, mixed policies at N = 16: the same time per copy, and with copies that queue on
/// the CPU's backlog a lossless rate a quarter higher); below that, the hop through the hub (a
/// second pass through the input path, and a copy for XDP) is not won back.
pub const MIN_MEMBERS: usize = 4;

const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;

/// The name of end `end` ('a' or 'b') of hub `n` of the cast on the interface `input_ifindex`.
pub fn name(input_ifindex: u32, n: usize, end: char) -> String {
    format!("{}{n}{end}", prefix(input_ifindex))
}

fn prefix(input_ifindex: u32) -> String {
    format!("ech{input_ifindex}-")
}

/// The hubs of a cast, deleted when dropped.
pub struct Hubs {
    input_ifindex: u32,
    made: Cell<usize>,
    /// The hub namespace, made with the first hub.
    ns: OnceCell<File>,
    /// The ends' program arrays: the kernel empties one when no process holds it any more.
    arrays: RefCell<Vec<MapHandle>>,
}

impl Hubs {
    /// Starts with no hub, deleting the ones a killed cast on the same input left.
    pub fn new(input_ifindex: u32) -> Hubs {
        remove_all(input_ifindex);
        Hubs { input_ifindex, made: Default::default(), ns: OnceCell::new(), arrays: Default::default() }
    }

    /// Makes a hub, both ends pointing at `members`. Returns the ifindex of end a.
    pub fn add(&self, members: &[Member], shared: &Shared) -> Result<u32> {
        let ns = match self.ns.get() {
            Some(ns) => ns,
            None => {
                let made = netns::make_unnamed().context("making the hub namespace")?;
                self.ns.get_or_init(|| made)
            }
        };
        let n = self.made.get();
        self.made.set(n + 1);
        let mut first = 0;
        for end in ['a', 'b'] {
            let dev = name(self.input_ifindex, n, end);
            let ifindex =
                self.add_end(ns, &dev, members, shared).with_context(|| format!("making hub end {dev}"))?;
            if first == 0 {
                first = ifindex;
            }
        }
        Ok(first)
    }

    /// Makes the veth pair `dev` (here, taking clones) / `dev`p (in the hub namespace, taking
    /// originals), with new end programs that broadcast to `members`. Returns the ifindex of
    /// `dev`.
    fn add_end(&self, ns: &File, dev: &str, members: &[Member], shared: &Shared) -> Result<u32> {
        let peer = format!("{dev}p");
        if peer.len() > 15 {
            bail!("hub name {peer} is longer than an interface name may be");
        }
        // ip opens the namespace through this process's descriptor.
        let ns_path = format!("/proc/{}/fd/{}", std::process::id(), ns.as_raw_fd());
        ip(&[
            "link", "add", dev, "mtu", "65535", "type", "veth", "peer", "name", &peer, "mtu", "65535",
            "netns", &ns_path,
        ])?;
        // No IPv6 chatter: the hub only carries the cast's frames.
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"), "1");
        ip(&["link", "set", dev, "up"])?;
        let ifindex = crate::kernel::iface::index_of(dev)?;
        let end = end_programs()?;
        set_broadcast(&end.array, &Broadcast::load(members, Some(shared))?)?;
        attach_program(ifindex, &end.clones)?;
        let original = end.original;
        netns::run_in_file(ns, move || {
            ip(&["link", "set", &peer, "up"])?;
            attach_program(crate::kernel::iface::index_of(&peer)?, &original)
        })?;
        self.arrays.borrow_mut().push(end.array);
        Ok(ifindex)
    }
}

impl Drop for Hubs {
    fn drop(&mut self) {
        remove_all(self.input_ifindex);
    }
}

/// Deletes every hub of the cast on `input_ifindex` (a veth pair goes with either side).
/// Returns their names.
pub fn remove_all(input_ifindex: u32) -> Vec<String> {
    names(input_ifindex).into_iter().filter(|n| ip(&["link", "del", n]).is_ok()).collect()
}

/// The hub ends of the cast on `input_ifindex`, as the kernel lists them (/sys/class/net shows
/// the namespace sysfs was mounted in, not necessarily ours).
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

/// Makes the hub end `end_ifindex` (of this namespace) broadcast to `members` from its next
/// frame on: its programs' array gets new broadcast programs. Any process of the cast's
/// namespace can do this; the end's other side, in the hub namespace, shares the array.
pub fn set_members(end_ifindex: u32, members: &[Member], shared: &Shared) -> Result<()> {
    set_broadcast(&end_array(end_ifindex)?, &Broadcast::load(members, Some(shared))?)
}

/// The program array of the end program on `ifindex`, found from the kernel.
fn end_array(ifindex: u32) -> Result<MapHandle> {
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    // SAFETY: plain netlink request; opts outlives the call.
    let rc = unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, XDP_FLAGS_SKB_MODE as i32, &mut opts) };
    if rc < 0 || opts.skb_prog_id == 0 {
        bail!("hub end {ifindex} runs no XDP program (was it deleted?)");
    }
    crate::kernel::installed::prog_map_by_name(opts.skb_prog_id, "hub_end_prog")
        .with_context(|| format!("the XDP program on {ifindex} is not a hub end's"))
}

/// Points an end's array at `b`: the clones' entry first, so that while the two differ a
/// datagram meets one membership or the other, never a mix.
fn set_broadcast(array: &dyn MapCore, b: &Broadcast) -> Result<()> {
    use skel::hub_end::types::hub_entry;
    for (entry, prog) in [(hub_entry::HUB_CLONES, &b.clones), (hub_entry::HUB_ORIGINAL, &b.original)] {
        let fd = prog.as_raw_fd() as u32;
        array
            .update(&entry.0.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .context("setting a hub's broadcast")?;
    }
    Ok(())
}

/// An end's programs (for its two sides) and the array they share.
struct EndPrograms {
    original: OwnedFd,
    clones: OwnedFd,
    array: MapHandle,
}

fn end_programs() -> Result<EndPrograms> {
    let mut obj = MaybeUninit::uninit();
    let skel =
        skel::open(HubEndSkelBuilder::default(), &mut obj)?.load().context("loading the hub end program")?;
    Ok(EndPrograms {
        original: skel.progs.ecast_hub_end.as_fd().try_clone_to_owned()?,
        clones: skel.progs.ecast_hub_end_clones.as_fd().try_clone_to_owned()?,
        array: MapHandle::try_from(&skel.maps.hub_end_prog)?,
    })
}

/// The broadcast programs of one membership, for the original and for clones (they live, and
/// with them their devmap, as long as these fds or an end's array holds them).
pub struct Broadcast {
    pub original: OwnedFd,
    pub clones: OwnedFd,
}

impl Broadcast {
    /// Loads them with `members` (interfaces of this namespace) in their devmap. Without
    /// `shared` (a benchmark's probe), they check nothing and count into maps of their own.
    pub fn load(members: &[Member], shared: Option<&Shared>) -> Result<Broadcast> {
        let mut obj = MaybeUninit::uninit();
        let mut open = skel::open(HubSkelBuilder::default(), &mut obj)?;
        // The broadcast walks every bucket of the map: as many as there are ports, not 1024.
        open.maps.hub_ports.set_max_entries(members.len().max(1) as u32)?;
        let ro = open.maps.rodata_data.as_deref_mut().context("hub rodata")?;
        ro.cfg_n_members = members.len() as u32;
        for (dst, m) in ro.cfg_slots.iter_mut().zip(members) {
            *dst = m.slot;
        }
        if let Some(s) = shared {
            ro.cfg_n_queued = members.iter().filter(|m| m.queues).count() as u32;
            ro.cfg_rq_to_softnet = crate::kernel::percpu::rq_to_softnet().unwrap_or(0);
            open.maps.cast_ostats.reuse_fd(s.ostats.as_fd()).context("sharing the cast's counters")?;
            open.maps.cast_backlog.reuse_fd(s.backlog.as_fd()).context("sharing the cast's backlog limit")?;
            open.maps.cast_admission.reuse_fd(s.admission.as_fd()).context("sharing the cast's admission")?;
        }
        let skel = open.load().context("loading the hub program")?;
        for m in members {
            skel.maps.hub_ports.update(&m.ifindex.to_ne_bytes(), &m.ifindex.to_ne_bytes(), MapFlags::ANY)?;
        }
        Ok(Broadcast {
            original: skel.progs.ecast_hub.as_fd().try_clone_to_owned()?,
            clones: skel.progs.ecast_hub_clones.as_fd().try_clone_to_owned()?,
        })
    }
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

/// Detaches what `attach_program` attached.
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
