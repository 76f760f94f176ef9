//! Named network namespaces (of `ip netns add`), entered by the calling thread.
use crate::error;

/// Joins a named network namespace: the calling thread's sockets, links and ifindexes are then
/// that namespace's (threads it spawns inherit it).
pub fn enter(name: &str) -> anyhow::Result<()> {
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
