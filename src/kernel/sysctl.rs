//! Sysctls that exist only in the host's network namespace (net.core.*): read and written from
//! a thread that has entered it when this process lives in another one.
use std::{fs, path::Path};

/// The value of `path` (under /proc/sys), trimmed.
pub fn read(path: &'static str) -> Option<String> {
    in_host_netns(move || fs::read_to_string(path).ok()).flatten().map(|s| s.trim().to_string())
}

/// Writes `value` to `path`; false if it could not. Private: a change goes through `change`,
/// whose guard puts the old value back.
fn write(path: &'static str, value: String) -> bool {
    in_host_netns(move || fs::write(path, value).is_ok()) == Some(true)
}

/// A sysctl this process changed: put back as it was when dropped, unless someone changed it
/// since.
pub struct Changed {
    path: &'static str,
    old: String,
    now: String,
}

/// Sets `path` to `value`; None if it could not be read or written.
pub fn change(path: &'static str, value: String) -> Option<Changed> {
    let old = read(path)?;
    if !write(path, value.clone()) {
        return None;
    }
    // As the kernel prints it (a cpumask comes back in its own format).
    let now = read(path).unwrap_or(value);
    Some(Changed { path, old, now })
}

impl Changed {
    pub fn old(&self) -> &str {
        &self.old
    }

    pub fn now(&self) -> &str {
        &self.now
    }

    /// Changes it again, keeping the value to put back; false if it could not, or if someone
    /// else changed it since (it is theirs then).
    pub fn set(&mut self, value: String) -> bool {
        if read(self.path).as_deref() != Some(self.now.as_str()) || !write(self.path, value.clone()) {
            return false;
        }
        self.now = read(self.path).unwrap_or(value);
        true
    }
}

impl Drop for Changed {
    fn drop(&mut self) {
        if read(self.path).as_deref() == Some(self.now.as_str()) {
            write(self.path, std::mem::take(&mut self.old));
        }
    }
}

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
