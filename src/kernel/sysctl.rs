//! Sysctls that exist only in the host's network namespace (net.core.*): read and written from
//! a thread that has entered it when this process lives in another one.
use std::{collections::BTreeMap, fs, path::Path};

/// The value of `path` (under /proc/sys), trimmed.
pub fn read(path: &'static str) -> Option<String> {
    in_host_netns(move || fs::read_to_string(path).ok()).flatten().map(|s| s.trim().to_string())
}

/// Writes `value` to `path`; false if it could not. Private: a change goes through `change`,
/// whose guard puts the old value back.
fn write(path: &'static str, value: String) -> bool {
    in_host_netns(move || fs::write(path, value).is_ok()) == Some(true)
}

/// A sysctl this process changed: put back as it was when the last of the process's guards of
/// it is dropped, unless someone else changed it since.
pub struct Changed {
    path: &'static str,
    old: String,
    now: String,
}

/// What this process wrote to a sysctl, shared by its guards: the casts of `run --config` live
/// in one process, and each raises what it needs on top of the others. Were each to put back the
/// value it found, the one that stops first would find another's value and leave it, and the
/// last would put back the first one's raise: the host would keep it after exit.
struct Held {
    before: String, // put back when the last guard goes
    ours: String,   // what this process wrote last
    guards: usize,
}

static HELD: std::sync::Mutex<BTreeMap<&'static str, Held>> = std::sync::Mutex::new(BTreeMap::new());

fn held() -> std::sync::MutexGuard<'static, BTreeMap<&'static str, Held>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets `path` to `value`; None if it could not be read or written.
pub fn change(path: &'static str, value: String) -> Option<Changed> {
    let mut held = held();
    let old = read(path)?;
    if !write(path, value.clone()) {
        return None;
    }
    // As the kernel prints it (a cpumask comes back in its own format).
    let now = read(path).unwrap_or(value);
    let h = held.entry(path).or_insert(Held { before: old.clone(), ours: old.clone(), guards: 0 });
    if h.ours != old {
        h.before = old.clone(); // someone else set it since this process did: theirs goes back
    }
    h.ours = now.clone();
    h.guards += 1;
    Some(Changed { path, old, now })
}

impl Changed {
    /// The value this guard found.
    pub fn old(&self) -> &str {
        &self.old
    }

    pub fn now(&self) -> &str {
        &self.now
    }

    /// Changes it again; false if it could not, or if someone else changed it since this process
    /// did (it is theirs then).
    pub fn set(&mut self, value: String) -> bool {
        let mut held = held();
        let Some(h) = held.get_mut(self.path) else { return false };
        if read(self.path).as_deref() != Some(h.ours.as_str()) || !write(self.path, value.clone()) {
            return false;
        }
        self.now = read(self.path).unwrap_or(value);
        h.ours = self.now.clone();
        true
    }
}

impl Drop for Changed {
    fn drop(&mut self) {
        let mut held = held();
        let Some(h) = held.get_mut(self.path) else { return };
        h.guards -= 1;
        if h.guards > 0 {
            return; // another cast of this process still runs on it
        }
        let h = held.remove(self.path).expect("held above");
        if read(self.path).as_deref() == Some(h.ours.as_str()) {
            write(self.path, h.before);
        }
    }
}

/// Why a host sysctl could not be read, for a warning: the usual cause is `ip netns exec`, where
/// the host's namespace is reached through PID 1's, which a sandbox may not let this process open.
pub const UNREACHABLE: &str = "net.core.* lives only in the host's network namespace, which this process cannot reach (under \
     `ip netns exec` it goes through PID 1's, which this process may not open; `ebpf-cast --netns NAME` keeps the host's at hand)";

/// Runs `f` where net.core's host-only sysctls exist: here, or on a thread in the namespace
/// this process started in (before `--netns`), or else in that of PID 1 (under `ip netns exec`).
fn in_host_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    const HOST_ONLY: &str = "/proc/sys/net/core/netdev_max_backlog";
    if Path::new(HOST_ONLY).exists() {
        return Some(f());
    }
    let started = super::netns::started_in().and_then(|f| f.try_clone().ok());
    std::thread::spawn(move || {
        let host = [started, fs::File::open("/proc/1/ns/net").ok()].into_iter().flatten().find(|ns| {
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).is_ok()
                && Path::new(HOST_ONLY).exists()
        });
        host.map(|_| f())
    })
    .join()
    .ok()
    .flatten()
}
