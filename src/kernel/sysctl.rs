//! Sysctls that exist only in the host's network namespace (net.core.*): read and written from
//! a thread that has entered it when this process lives in another one.
use std::{collections::BTreeMap, fs, path::Path};

/// The value of `path` (under /proc/sys), trimmed.
pub fn read(path: &'static str) -> Option<String> {
    in_host_netns(move || fs::read_to_string(path).ok()).flatten().map(|s| s.trim().to_string())
}

/// Writes `value` to `path`; false if it could not. Private: a change goes through `change`,
/// whose guard puts the value from before back.
fn write(path: &'static str, value: String) -> bool {
    in_host_netns(move || fs::write(path, value).is_ok()) == Some(true)
}

/// A sysctl that ebpf-cast changed, held by this process: put back as it was before any
/// ebpf-cast process changed it when the last process holding it lets go, unless someone else
/// changed it since.
pub struct Changed {
    path: &'static str,
    old: String,
    now: String,
}

/// What ebpf-cast processes did to a sysctl, shared by all of them in a locked file
/// (/run/ebpf-cast/sysctl-NAME). The casts of `run --config` live in one process, each camera
/// may have a `cast` process (or unit) of its own, and each raises what it needs on top of the
/// others. Were each to put back the value it found, the one that stops first would find
/// another's value and leave it, and the last would put back the first one's raise; or the
/// first would take a setting away from one that still uses it.
#[derive(Debug, PartialEq)]
struct Shared {
    before: String,           // put back when the last holder goes
    ours: String,             // what an ebpf-cast process wrote last
    holders: Vec<(u32, u64)>, // the processes that use it (pid, start time)
}

impl Shared {
    fn parse(text: &str) -> Option<Shared> {
        let mut s = Shared { before: String::new(), ours: String::new(), holders: Vec::new() };
        let mut seen = (false, false);
        for line in text.lines() {
            match line.split_once('=')? {
                ("before", v) => (s.before, seen.0) = (v.to_string(), true),
                ("ours", v) => (s.ours, seen.1) = (v.to_string(), true),
                ("holder", v) => {
                    let (pid, start) = v.split_once(' ')?;
                    s.holders.push((pid.parse().ok()?, start.parse().ok()?));
                }
                _ => return None,
            }
        }
        (seen == (true, true)).then_some(s)
    }

    fn text(&self) -> String {
        let mut t = format!("before={}\nours={}\n", self.before, self.ours);
        for (pid, start) in &self.holders {
            t += &format!("holder={pid} {start}\n");
        }
        t
    }

    /// Forgets holders that are gone (killed, say) and this process.
    fn prune(&mut self, me: (u32, u64)) {
        self.holders
            .retain(|&(pid, start)| (pid, start) != me && super::pins::start_time(pid) == Some(start));
    }

    fn hold(&mut self, me: (u32, u64)) {
        if !self.holders.contains(&me) {
            self.holders.push(me);
        }
    }
}

/// This process's guards per sysctl (it holds the sysctl while it has one), and its copy of the
/// shared state when the file cannot be used.
#[derive(Default)]
struct Local {
    guards: usize,
    fallback: Option<Shared>,
}

static HELD: std::sync::Mutex<BTreeMap<&'static str, Local>> = std::sync::Mutex::new(BTreeMap::new());

fn held() -> std::sync::MutexGuard<'static, BTreeMap<&'static str, Local>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

fn me() -> (u32, u64) {
    let pid = std::process::id();
    (pid, super::pins::start_time(pid).unwrap_or(0))
}

/// Runs `f` on the shared state of `path` (None: nobody holds it), with every other ebpf-cast
/// process kept out, and stores what `f` leaves. Without the file (no /run), the state is this
/// process's alone.
fn with_shared<T>(path: &'static str, local: &mut Local, f: impl FnOnce(&mut Option<Shared>) -> T) -> T {
    use std::io::{Read, Seek, Write};
    let name = format!("sysctl-{}", path.trim_start_matches("/proc/sys/").replace('/', "."));
    let file = super::pins::shared_path(&name);
    let Ok(mut lock) = super::pins::lock_file(&file) else {
        return f(&mut local.fallback);
    };
    let mut text = String::new();
    let _ = lock.read_to_string(&mut text);
    let mut state = Shared::parse(&text);
    let out = f(&mut state);
    match &state {
        Some(s) => {
            let _ =
                lock.set_len(0).and_then(|_| lock.rewind()).and_then(|_| lock.write_all(s.text().as_bytes()));
        }
        None => {
            let _ = fs::remove_file(&file); // under the lock: the next one makes a new file
        }
    }
    out
}

/// Sets `path` to `value`; None if it could not be read or written.
pub fn change(path: &'static str, value: String) -> Option<Changed> {
    hold(path, |state, me| {
        let old = read(path)?;
        if state.as_ref().is_none_or(|s| s.ours != old) {
            // Nobody holds it, or someone else set it since an ebpf-cast process did: the
            // value found goes back.
            let holders = state.take().map(|s| s.holders).unwrap_or_default();
            *state = Some(Shared { before: old.clone(), ours: old.clone(), holders });
        }
        if !write(path, value.clone()) {
            return None;
        }
        // As the kernel prints it (a cpumask comes back in its own format).
        let now = read(path).unwrap_or(value);
        let s = state.as_mut().expect("set above");
        s.prune(me);
        s.hold(me);
        s.ours = now.clone();
        Some(Changed { path, old, now })
    })
}

/// Holds `path` without changing it, when its value is what an ebpf-cast process wrote (and it
/// is what this one needs): a process that still holds it will not put back the value from
/// before while this one runs, and the last of them will; one killed before it could (a cast
/// that its service manager restarts, say) leaves that to this one. None when no ebpf-cast
/// process changed it.
pub fn share(path: &'static str) -> Option<Changed> {
    hold(path, |state, me| {
        let s = state.as_mut()?;
        let now = read(path)?;
        s.prune(me);
        if s.ours != now {
            return None;
        }
        s.hold(me);
        Some(Changed { path, old: now.clone(), now })
    })
}

/// A new guard of `path` for this process, if `f` (on the shared state) makes one.
fn hold(
    path: &'static str,
    f: impl FnOnce(&mut Option<Shared>, (u32, u64)) -> Option<Changed>,
) -> Option<Changed> {
    let mut held = held();
    let local = held.entry(path).or_default();
    let guard = with_shared(path, local, |state| f(state, me()));
    match guard {
        Some(_) => local.guards += 1,
        None if local.guards == 0 => {
            held.remove(path); // holds nothing
        }
        None => {}
    }
    guard
}

impl Changed {
    /// The value this guard found.
    pub fn old(&self) -> &str {
        &self.old
    }

    pub fn now(&self) -> &str {
        &self.now
    }

    /// Changes it again; false if it could not, or if someone else changed it since an ebpf-cast
    /// process did (it is theirs then).
    pub fn set(&mut self, value: String) -> bool {
        let mut held = held();
        let Some(local) = held.get_mut(self.path) else { return false };
        let now = with_shared(self.path, local, |state| {
            let s = state.as_mut()?;
            if read(self.path).as_deref() != Some(s.ours.as_str()) || !write(self.path, value.clone()) {
                return None;
            }
            s.ours = read(self.path).unwrap_or(value);
            Some(s.ours.clone())
        });
        now.map(|now| self.now = now).is_some()
    }
}

impl Drop for Changed {
    fn drop(&mut self) {
        let mut held = held();
        let Some(local) = held.get_mut(self.path) else { return };
        local.guards -= 1;
        if local.guards > 0 {
            return; // another cast of this process still runs on it
        }
        release(self.path, local);
        held.remove(self.path);
    }
}

/// This process lets go of `path`: the last holder puts back the value from before.
fn release(path: &'static str, local: &mut Local) {
    with_shared(path, local, |state| {
        let Some(s) = state.as_mut() else { return };
        s.prune(me());
        if s.holders.is_empty() {
            if read(path).as_deref() == Some(s.ours.as_str()) {
                write(path, s.before.clone());
            }
            *state = None;
        }
    });
}

/// Lets go of every sysctl this process holds, as the drop of its last guards would: for a
/// process that exits from a signal handler, whose guards never drop.
pub fn release_all() {
    let mut held = held();
    for (path, local) in held.iter_mut() {
        release(path, local);
    }
    held.clear();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_state_reads_back_what_it_wrote_and_refuses_anything_else() {
        let s = Shared {
            before: "00000000".into(),
            ours: "00000001,00000000".into(),
            holders: vec![(7, 99), (8, 100)],
        };
        assert_eq!(Shared::parse(&s.text()), Some(s));
        let none = Shared { before: "1000".into(), ours: "2000".into(), holders: vec![] };
        assert_eq!(Shared::parse(&none.text()), Some(none));
        assert_eq!(Shared::parse(""), None, "an empty (new) file: nobody holds it");
        assert_eq!(Shared::parse("before=1000\n"), None);
        assert_eq!(Shared::parse("before=1\nours=2\nholder=x 1\n"), None);
        assert_eq!(Shared::parse("before=1\nours=2\nwho=3\n"), None);
    }

    #[test]
    fn holders_that_are_gone_are_forgotten() {
        let me = me();
        let dead = (u32::MAX - 1, 1); // no such pid
        let reused = (1, u64::MAX); // PID 1, with another start time
        let mut s = Shared { before: "1000".into(), ours: "2000".into(), holders: vec![dead, reused, me] };
        s.prune(me);
        assert!(s.holders.is_empty(), "{:?}", s.holders);
        s.hold(me);
        s.hold(me);
        assert_eq!(s.holders, vec![me]);
    }
}
