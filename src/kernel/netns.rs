//! Network namespaces entered by the calling thread: named ones (of `ip netns add`), and the
//! unnamed one a cast makes for its hubs.
use std::{fs::File, sync::OnceLock};

use crate::error;

static STARTED_IN: OnceLock<Option<File>> = OnceLock::new();

/// The network namespace this process started in, if it entered another one since.
pub fn started_in() -> Option<&'static File> {
    STARTED_IN.get().and_then(Option::as_ref)
}

/// Joins a named network namespace: the calling thread's sockets, links and ifindexes are then
/// that namespace's (threads it spawns inherit it).
pub fn enter(name: &str) -> anyhow::Result<()> {
    // The namespace this process started in, kept for what only the host's has (sysctl.rs).
    STARTED_IN.get_or_init(|| std::fs::File::open("/proc/thread-self/ns/net").ok());
    let path = format!("/run/netns/{name}");
    let f = std::fs::File::open(&path).map_err(|e| {
        error::input(format!("no network namespace {name} ({path}: {e}); list them with `ip netns`"))
    })?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| anyhow::anyhow!("entering network namespace {name}: {e} (needs root)"))?;
    Ok(())
}

/// Runs `f` on a thread in the named namespace (or in this thread's, for None).
pub fn run_in<T: Send + 'static>(
    name: Option<&str>,
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let name = name.map(str::to_string);
    on_thread(move || {
        if let Some(n) = &name {
            enter(n)?;
        }
        f()
    })
}

/// Makes a network namespace with no name and no IPv6 (nothing speaks there unasked): the
/// returned file is what keeps it, and everything in it, alive.
pub fn make_unnamed() -> anyhow::Result<File> {
    on_thread(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| anyhow::anyhow!("making a network namespace: {e} (needs root)"))?;
        for conf in ["all", "default"] {
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6"), "1");
        }
        Ok(File::open("/proc/thread-self/ns/net")?)
    })
}

/// Runs `f` on a thread in the namespace `ns` (a file of /proc/*/ns/net, or one that
/// make_unnamed returned); programs it starts run there too.
pub fn run_in_file<T: Send + 'static>(
    ns: &File,
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let ns = ns.try_clone()?;
    on_thread(move || {
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| anyhow::anyhow!("entering a network namespace: {e}"))?;
        f()
    })
}

/// Runs `f` on a thread of its own, whose namespace changes leave the caller's alone.
fn on_thread<T: Send + 'static>(f: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> anyhow::Result<T> {
    std::thread::spawn(f).join().map_err(|_| anyhow::anyhow!("a worker thread panicked"))?
}
