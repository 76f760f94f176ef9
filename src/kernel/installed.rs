//! Finds ebpf-cast programs attached in this network namespace, from the kernel alone
//! (TCX queries and ebpf-cast's fixed tc filter handle), so that any invocation can see them.
use std::{
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Duration,
};

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, TC_INGRESS};
use serde::Serialize;

use crate::kernel::attach::{Hook, TC_HANDLE, TC_PRIORITY};

/// Kernel names (15 characters at most) of ebpf-cast's programs, by role.
pub const SWITCH_PROG: &str = "ecast_switch_in";
pub const CAST_PROG: &str = "ecast_cast_in";

#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    pub interface: String,
    pub ifindex: u32,
    pub hook: Hook,
    pub role: &'static str,
    pub prog_id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_id: Option<u32>,
    /// Seconds since the Unix epoch at which the program was loaded.
    pub since_unix: u64,
    #[serde(skip)]
    pub map_ids: Vec<u32>,
}

/// Every ebpf-cast attachment on every interface of this network namespace.
pub fn all() -> Result<Vec<Installed>> {
    let mut found = Vec::new();
    for iface in nix::net::if_::if_nameindex().context("listing interfaces")?.iter() {
        let name = iface.name().to_string_lossy().into_owned();
        found.extend(on_interface(iface.index(), &name)?);
    }
    Ok(found)
}

/// ebpf-cast attachments at ingress of one interface.
pub fn on_interface(ifindex: u32, ifname: &str) -> Result<Vec<Installed>> {
    let mut found = Vec::new();
    for (prog_id, link_id) in tcx_ingress(ifindex) {
        if let Some(inst) = describe(ifindex, ifname, Hook::Tcx, prog_id, Some(link_id)) {
            found.push(inst);
        }
    }
    if let Some(prog_id) = tc_ingress(ifindex) {
        if let Some(inst) = describe(ifindex, ifname, Hook::Tc, prog_id, None) {
            found.push(inst);
        }
    }
    Ok(found)
}

/// Refuses an interface that another ebpf-cast already uses, before anything is loaded.
pub fn refuse_if_taken(ifindex: u32, ifname: &str) -> Result<()> {
    if let Some(inst) = on_interface(ifindex, ifname)?.first() {
        return Err(crate::error::input(format!(
            "interface {ifname} is already used by another ebpf-cast {} (program {}, attached via {}): \
             stop that process, or run `ebpf-cast detach {ifname}` if it is gone",
            inst.role, inst.prog_id, inst.hook
        )));
    }
    Ok(())
}

/// Removes one attachment, whichever process made it.
pub fn detach(inst: &Installed) -> Result<()> {
    match (inst.hook, inst.link_id) {
        (Hook::Tcx, Some(link_id)) => {
            // SAFETY: plain bpf(2) wrappers; the fd is owned and closed by OwnedFd.
            let fd = unsafe { libbpf_sys::bpf_link_get_fd_by_id(link_id) };
            if fd < 0 {
                return Err(std::io::Error::last_os_error()).context("opening the TCX link");
            }
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let rc = unsafe { libbpf_sys::bpf_link_detach(fd.as_raw_fd()) };
            if rc < 0 {
                return Err(std::io::Error::from_raw_os_error(-rc)).context("detaching the TCX link");
            }
            Ok(())
        }
        _ => {
            let hook = tc_hook(inst.ifindex);
            let opts = tc_opts();
            // SAFETY: hook and opts are valid and initialised.
            let rc = unsafe { libbpf_sys::bpf_tc_detach(&hook, &opts) };
            if rc < 0 {
                return Err(std::io::Error::from_raw_os_error(-rc)).context("deleting the tc filter");
            }
            Ok(())
        }
    }
}

/// (program id, link id) of every TCX ingress program of an interface.
fn tcx_ingress(ifindex: u32) -> Vec<(u32, u32)> {
    let mut prog_ids = [0u32; 64];
    let mut link_ids = [0u32; 64];
    let mut opts = libbpf_sys::bpf_prog_query_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_query_opts>() as _,
        prog_ids: prog_ids.as_mut_ptr(),
        link_ids: link_ids.as_mut_ptr(),
        __bindgen_anon_1: libbpf_sys::bpf_prog_query_opts__bindgen_ty_1 { count: prog_ids.len() as u32 },
        ..Default::default()
    };
    // SAFETY: the id arrays hold `count` entries and outlive the call.
    let rc =
        unsafe { libbpf_sys::bpf_prog_query_opts(ifindex as i32, libbpf_sys::BPF_TCX_INGRESS, &mut opts) };
    if rc < 0 {
        return Vec::new(); // no TCX on this kernel, or nothing attached
    }
    // SAFETY: both union members are the same u32.
    let n = (unsafe { opts.__bindgen_anon_1.count } as usize).min(prog_ids.len());
    prog_ids[..n].iter().copied().zip(link_ids[..n].iter().copied()).collect()
}

/// Program id of ebpf-cast's legacy tc filter on an interface, if there is one.
fn tc_ingress(ifindex: u32) -> Option<u32> {
    let hook = tc_hook(ifindex);
    let mut opts = tc_opts();
    // A missing clsact qdisc is the common answer: keep libbpf from printing it as a warning.
    let printer = libbpf_rs::get_print();
    libbpf_rs::set_print(None);
    // SAFETY: hook and opts are valid and initialised.
    let rc = unsafe { libbpf_sys::bpf_tc_query(&hook, &mut opts) };
    if let Some((level, callback)) = printer {
        libbpf_rs::set_print(Some((level, callback)));
    }
    (rc == 0 && opts.prog_id != 0).then_some(opts.prog_id)
}

fn tc_hook(ifindex: u32) -> libbpf_sys::bpf_tc_hook {
    libbpf_sys::bpf_tc_hook {
        sz: std::mem::size_of::<libbpf_sys::bpf_tc_hook>() as _,
        ifindex: ifindex as i32,
        attach_point: TC_INGRESS,
        ..Default::default()
    }
}

fn tc_opts() -> libbpf_sys::bpf_tc_opts {
    libbpf_sys::bpf_tc_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_tc_opts>() as _,
        handle: TC_HANDLE,
        priority: TC_PRIORITY,
        ..Default::default()
    }
}

/// Describes a program if it is one of ebpf-cast's.
fn describe(ifindex: u32, ifname: &str, hook: Hook, prog_id: u32, link_id: Option<u32>) -> Option<Installed> {
    let info = prog_info(prog_id)?;
    let role = match info.name.as_str() {
        SWITCH_PROG => "switch",
        CAST_PROG => "cast",
        _ => return None,
    };
    Some(Installed {
        interface: ifname.to_string(),
        ifindex,
        hook,
        role,
        prog_id,
        link_id,
        since_unix: boot_time_to_unix(info.load_time),
        map_ids: info.map_ids,
    })
}

struct ProgInfo {
    name: String,
    load_time: Duration,
    map_ids: Vec<u32>,
}

fn prog_info(prog_id: u32) -> Option<ProgInfo> {
    // SAFETY: bpf(2) wrappers with buffers that outlive the calls; the fd is owned.
    unsafe {
        let fd = libbpf_sys::bpf_prog_get_fd_by_id(prog_id);
        if fd < 0 {
            return None;
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let mut map_ids = vec![0u32; 64];
        let mut info = libbpf_sys::bpf_prog_info {
            nr_map_ids: map_ids.len() as u32,
            map_ids: map_ids.as_mut_ptr() as u64,
            ..Default::default()
        };
        let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
        if libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) != 0 {
            return None;
        }
        map_ids.truncate(info.nr_map_ids.min(64) as usize);
        let name = std::ffi::CStr::from_ptr(info.name.as_ptr()).to_string_lossy().into_owned();
        Some(ProgInfo { name, load_time: Duration::from_nanos(info.load_time), map_ids })
    }
}

/// Converts a time since boot (as the kernel reports load times) to Unix seconds.
fn boot_time_to_unix(since_boot: Duration) -> u64 {
    let boot = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME);
    let real = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME);
    match (boot, real) {
        (Ok(b), Ok(r)) => {
            let up = Duration::from(b);
            let now = Duration::from(r);
            now.saturating_sub(up.saturating_sub(since_boot)).as_secs()
        }
        _ => 0,
    }
}

/// One of the maps `map_ids` whose name (the kernel keeps 15 characters) passes `want`.
fn map_where(map_ids: &[u32], want: impl Fn(&str) -> bool) -> Option<libbpf_rs::MapHandle> {
    map_ids.iter().find_map(|&id| {
        let map = libbpf_rs::MapHandle::from_map_id(id).ok()?;
        want(&map.name().to_string_lossy()).then_some(map)
    })
}

/// Finds a map of an attached program by name.
pub fn map_by_name(inst: &Installed, name: &str) -> Option<libbpf_rs::MapHandle> {
    map_where(&inst.map_ids, |n| n == name)
}

/// Finds a map of the loaded program `prog_id` by name.
pub fn prog_map_by_name(prog_id: u32, name: &str) -> Option<libbpf_rs::MapHandle> {
    map_where(&prog_info(prog_id)?.map_ids, |n| n == name)
}

/// One of a program's global data maps: libbpf names them "<object>.rodata", "<object>.bss", ...
pub fn global_map(inst: &Installed, suffix: &str) -> Option<libbpf_rs::MapHandle> {
    map_where(&inst.map_ids, |n| n.ends_with(suffix))
}

/// The value of one of a program's global data maps.
pub fn global_data(inst: &Installed, suffix: &str) -> Option<Vec<u8>> {
    global_map(inst, suffix)?.lookup(&0u32.to_ne_bytes(), libbpf_rs::MapFlags::ANY).ok().flatten()
}
