//! Attaching a tc program at ingress: TCX first, a clsact qdisc + cls_bpf filter as fallback.
//! An Attachment detaches on Drop and removes only what it created.
use std::{fmt, os::fd::AsFd, process::Command, ptr};

use anyhow::{anyhow, Context, Result};
use libbpf_rs::{AsRawLibbpf, Link, Program, TcHook, TC_EGRESS, TC_INGRESS};
use serde::Serialize;

use crate::kernel::iface::Iface;

/// Handle and priority of ebpf-cast's legacy tc filters, fixed so that `status` and
/// `detach` can find them and a second instance cannot take the same interface.
pub const TC_HANDLE: u32 = 0xec;
pub const TC_PRIORITY: u32 = 0xec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// TCX where the kernel has it (6.6+), else clsact + cls_bpf
    Auto,
    /// TCX only: the link goes away with the process
    Tcx,
    /// clsact qdisc + cls_bpf filter (survives kill -9; remove with `ebpf-cast detach`)
    Tc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    Tcx,
    Tc,
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Hook::Tcx => "tcx",
            Hook::Tc => "tc",
        })
    }
}

enum Inner {
    Tcx(#[allow(dead_code)] Link),
    Tc { hook: TcHook, created_qdisc: bool },
}

/// A program attached at ingress of one interface, detached when dropped.
pub struct Attachment {
    pub ifname: String,
    pub ifindex: u32,
    pub hook: Hook,
    inner: Inner,
}

/// Attaches `prog` at ingress of `iface`. The program must have been loaded with
/// attach type TcxIngress unless `mode` is Tc.
pub fn attach(prog: &Program, iface: &Iface, mode: AttachMode) -> Result<Attachment> {
    if mode != AttachMode::Tc {
        match attach_tcx(prog, iface.index) {
            Ok(link) => {
                return Ok(Attachment {
                    ifname: iface.name.clone(),
                    ifindex: iface.index,
                    hook: Hook::Tcx,
                    inner: Inner::Tcx(link),
                })
            }
            Err(e) if mode == AttachMode::Tcx => {
                return Err(e).with_context(|| {
                    format!(
                        "attaching to {} with TCX (needs kernel 6.6 or later; try --attach tc)",
                        iface.name
                    )
                })
            }
            Err(_) => {} // an older kernel: fall back to clsact below
        }
    }
    attach_tc(prog, iface)
}

fn attach_tcx(prog: &Program, ifindex: u32) -> Result<Link> {
    // SAFETY: the program is loaded and outlives this call; NULL opts are allowed.
    let link = unsafe {
        libbpf_sys::bpf_program__attach_tcx(prog.as_libbpf_object().as_ptr(), ifindex as i32, ptr::null())
    };
    let link = ptr::NonNull::new(link).ok_or_else(std::io::Error::last_os_error)?;
    // SAFETY: libbpf returned a valid link that we now own.
    Ok(unsafe { Link::from_ptr(link) })
}

fn attach_tc(prog: &Program, iface: &Iface) -> Result<Attachment> {
    let mut hook = TcHook::new(prog.as_fd());
    hook.ifindex(iface.index as i32)
        .replace(false)
        .handle(TC_HANDLE)
        .priority(TC_PRIORITY)
        .attach_point(TC_INGRESS);
    let created_qdisc = create_clsact(iface)?;
    match hook.attach() {
        Ok(_) => Ok(Attachment {
            ifname: iface.name.clone(),
            ifindex: iface.index,
            hook: Hook::Tc,
            inner: Inner::Tc { hook, created_qdisc },
        }),
        Err(e) => {
            if created_qdisc {
                remove_clsact_if_unused(iface.index, &iface.name);
            }
            Err(anyhow!(e)).with_context(|| format!("attaching a tc filter at ingress of {}", iface.name))
        }
    }
}

/// Creates the clsact qdisc; Ok(false) when it was already there (then it is not ours to remove).
fn create_clsact(iface: &Iface) -> Result<bool> {
    let mut hook = clsact_hook(iface.index);
    // SAFETY: hook is a valid, initialised bpf_tc_hook.
    let rc = unsafe { libbpf_sys::bpf_tc_hook_create(&mut hook) };
    match -rc {
        0 => Ok(true),
        libc::EEXIST => Ok(false),
        errno => Err(std::io::Error::from_raw_os_error(errno))
            .with_context(|| format!("creating a clsact qdisc on {}", iface.name)),
    }
}

fn clsact_hook(ifindex: u32) -> libbpf_sys::bpf_tc_hook {
    libbpf_sys::bpf_tc_hook {
        sz: std::mem::size_of::<libbpf_sys::bpf_tc_hook>() as _,
        ifindex: ifindex as i32,
        attach_point: TC_INGRESS | TC_EGRESS,
        ..Default::default()
    }
}

/// Deletes a clsact qdisc that ebpf-cast created, unless some other filter now lives on it.
fn remove_clsact_if_unused(ifindex: u32, ifname: &str) {
    let has_filters = ["ingress", "egress"].iter().any(|dir| {
        Command::new("tc")
            .args(["filter", "show", "dev", ifname, dir])
            .output()
            .map(|o| !o.status.success() || !o.stdout.is_empty())
            .unwrap_or(true) // cannot tell: leave the qdisc alone
    });
    if !has_filters {
        let mut hook = clsact_hook(ifindex);
        // SAFETY: hook is a valid bpf_tc_hook for our own qdisc.
        unsafe { libbpf_sys::bpf_tc_hook_destroy(&mut hook) };
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Inner::Tc { hook, created_qdisc } = &mut self.inner {
            let _ = hook.detach();
            if *created_qdisc {
                remove_clsact_if_unused(self.ifindex, &self.ifname);
            }
        }
        // A TCX link detaches when its Link is dropped.
    }
}

/// Options of the commands that attach a program and run until stopped.
#[derive(Debug, clap::Args)]
pub struct RunOpts {
    /// How the program is attached at ingress
    #[arg(long, value_enum, default_value_t = AttachMode::Auto)]
    pub attach: AttachMode,
    /// Print the tables and the counters as JSON (one object per line)
    #[arg(long)]
    pub json: bool,
    /// Also print the counters every SECS seconds while running
    #[arg(long, value_name = "SECS")]
    pub stats_interval: Option<f64>,
}

impl RunOpts {
    /// The statistics interval, checked.
    pub fn interval(&self) -> anyhow::Result<Option<std::time::Duration>> {
        match self.stats_interval {
            Some(secs) if !(secs > 0.0 && secs.is_finite()) => Err(crate::error::input(format!(
                "--stats-interval {secs}: give a positive number of seconds"
            ))),
            other => Ok(other.map(std::time::Duration::from_secs_f64)),
        }
    }
}
