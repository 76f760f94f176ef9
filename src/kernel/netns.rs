//! Named network namespaces (of `ip netns add`), entered by the calling thread.
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
    std::thread::spawn(move || {
        if let Some(n) = &name {
            enter(n)?;
        }
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?
}
