//! A running cast's state pinned under bpffs, one directory per instance, so that other
//! invocations (`stats`, `status`, `out`) can read and steer it.
use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::{error::input, kernel::skel::cast::types};

pub const BPFFS: &str = "/sys/fs/bpf";
pub const ROOT: &str = "/sys/fs/bpf/ebpf-cast";
/// Lock files of the instances (see Instance::lock).
const LOCKS: &str = "/run/ebpf-cast";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Mounts bpffs on /sys/fs/bpf when it is not there (a fresh boot, or `ip netns exec`, which
/// remounts /sys: pins made there are seen only in that mount namespace; prefer --netns).
pub fn ensure_bpffs() -> Result<()> {
    let is_bpffs = nix::sys::statfs::statfs(BPFFS).is_ok_and(|s| s.filesystem_type().0 == BPF_FS_MAGIC);
    if !is_bpffs {
        nix::mount::mount(Some("bpf"), BPFFS, Some("bpf"), nix::mount::MsFlags::empty(), None::<&str>)
            .with_context(|| format!("mounting the BPF filesystem on {BPFFS}"))?;
    }
    Ok(())
}

/// Instances are kept per network namespace: ROOT/net-INODE/NAME.
pub fn ns_dir() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata("/proc/thread-self/ns/net").map(|m| m.ino()).unwrap_or(0);
    Path::new(ROOT).join(format!("net-{ino}"))
}

pub fn dir(name: &str) -> PathBuf {
    ns_dir().join(name)
}

/// Instance names: interface-like, safe as a directory name.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if !ok {
        return Err(input(format!(
            "'{name}' is not an instance name: use 1 to 15 letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(())
}

/// Makes a directory for pins, or checks the one that is there. /sys/fs/bpf is usually
/// world-writable (mode 1777): a directory a user planted there could take the cast's control
/// path away, so only one that root alone can write, and no symlink, is used.
fn safe_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => check_owned(path),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// Fails unless `path` is a directory (not a symlink) owned by root that no one else can write.
fn check_owned(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !m.file_type().is_dir() || m.uid() != 0 || m.mode() & 0o022 != 0 {
        anyhow::bail!(
            "{} is not a directory that root alone can write (owner uid {}, mode {:o}): ebpf-cast did not \
             make it and will not use it; remove it (`rm -r {}`) and start again",
            path.display(),
            m.uid(),
            m.mode() & 0o7777,
            path.display()
        );
    }
    Ok(())
}

/// Makes the instance's directory `d` afresh (stale pins of a dead instance removed) in its
/// parents. The last instance to stop removes the parents, so one that stops while this one
/// starts may take them away in between: then they are made again.
fn make_dirs(d: &Path) -> Result<()> {
    let fresh = || -> Result<()> {
        safe_dir(Path::new(ROOT))?;
        safe_dir(&ns_dir())?;
        if std::fs::symlink_metadata(d).is_ok() {
            check_owned(d)?;
            std::fs::remove_dir_all(d).with_context(|| format!("removing stale pins in {}", d.display()))?;
        }
        safe_dir(d)
    };
    let mut tries = 0;
    loop {
        match fresh() {
            Err(_) if tries < 3 && !d.parent().is_some_and(Path::exists) => tries += 1,
            r => return r,
        }
    }
}

/// Removes the namespace's directory and ROOT where no other instance is left in them: nothing of
/// ebpf-cast's stays in bpffs once the last one stops.
fn remove_parents(ns: &Path) {
    if std::fs::remove_dir(ns).is_ok() {
        remove_root_if_empty();
    }
}

/// Removes ROOT unless an instance's directory is still in it.
pub fn remove_root_if_empty() {
    let _ = std::fs::remove_dir(ROOT);
}

/// Pins made by the running cast; removed on Drop.
pub struct Pinned {
    dir: PathBuf,
}

impl Pinned {
    /// Pins the maps into the instance's directory (root only).
    pub fn new(name: &str, maps: &mut [(&str, &mut libbpf_rs::MapMut)]) -> Result<Pinned> {
        ensure_bpffs()?;
        let d = dir(name);
        make_dirs(&d)?;
        let pinned = Pinned { dir: d.clone() };
        for (file, map) in maps.iter_mut() {
            let path = d.join(file);
            map.pin(&path).with_context(|| format!("pinning {}", path.display()))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(pinned)
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(name) = self.dir.file_name().and_then(|n| n.to_str()) {
            let _ = std::fs::remove_file(lock_path(name));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(parent) = self.dir.parent() {
            remove_parents(parent);
        }
    }
}

/// Removes an instance's pins (of a dead process, or before `detach`).
pub fn remove(name: &str) -> Result<()> {
    let _ = std::fs::remove_file(lock_path(name));
    let d = dir(name);
    std::fs::remove_dir_all(&d).with_context(|| format!("removing {}", d.display()))?;
    remove_parents(&ns_dir());
    Ok(())
}

/// A cast instance opened through its pins.
pub struct Instance {
    pub name: String,
    pub bss: MapHandle,
    pub ostats: MapHandle,
    pub flows: MapHandle,
    /// The budgets of capped outputs, by slot.
    pub caps: MapHandle,
    /// The backlog limit the program checks broadcasts against.
    pub backlog: MapHandle,
    /// Per CPU: the copies that hubs' clones waiting in the backlog will make, and the datagrams
    /// refused for want of room there.
    pub admission: MapHandle,
}

impl Instance {
    /// Opens a cast of this network namespace by name: through its pins, or, where they cannot
    /// be seen (`ip netns exec` gives each invocation a /sys of its own), through the program
    /// attached in the namespace and its maps, found from the kernel.
    pub fn open(name: &str) -> Result<Instance> {
        check_name(name)?;
        let d = dir(name);
        if !d.exists() {
            if let Some(inst) = attached().into_iter().find(|i| i.name == name) {
                return Ok(inst);
            }
            let known = list();
            let hint = if known.is_empty() {
                "no cast is running (start one with `ebpf-cast cast`)".to_string()
            } else {
                format!("running: {}", known.join(", "))
            };
            return Err(input(format!("no cast named {name} in this network namespace: {hint}")));
        }
        for p in [Path::new(ROOT), &ns_dir(), &d] {
            check_owned(p)?;
        }
        let open = |f: &str| {
            MapHandle::from_pinned_path(d.join(f))
                .with_context(|| format!("opening {} (root only)", d.join(f).display()))
        };
        Ok(Instance {
            name: name.to_string(),
            bss: open("bss")?,
            ostats: open("ostats")?,
            flows: open("flows")?,
            caps: open("caps")?,
            backlog: open("backlog")?,
            admission: open("admission")?,
        })
    }

    /// What the programs of its hubs share with it.
    pub fn shared(&self) -> crate::hub::Shared<'_> {
        crate::hub::Shared { ostats: &self.ostats, backlog: &self.backlog, admission: &self.admission }
    }

    /// Serialises changes to this instance across processes and mount namespaces: a lock file
    /// in /run (which `ip netns exec` shares, unlike /sys), root's alone.
    pub fn lock(&self) -> Result<nix::fcntl::Flock<std::fs::File>> {
        lock_file(&lock_path(&self.name))
    }

    /// The instance's .bss: output tables and metadata.
    pub fn read_bss(&self) -> Result<Box<types::bss>> {
        let bytes = self.bss.lookup(&0u32.to_ne_bytes(), MapFlags::ANY)?.context("empty .bss")?;
        let mut b: Box<types::bss> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: bss is plain data and `bytes` holds exactly one value.
        let dst = unsafe { plain::as_mut_bytes(&mut *b) };
        anyhow::ensure!(
            dst.len() == bytes.len(),
            "the pinned .bss has another layout: a different ebpf-cast version?"
        );
        dst.copy_from_slice(&bytes);
        Ok(b)
    }

    pub fn write_bss(&self, b: &types::bss) -> Result<()> {
        // SAFETY: bss is plain data.
        let bytes = unsafe { plain::as_bytes(b) };
        self.bss.update(&0u32.to_ne_bytes(), bytes, MapFlags::ANY).context("writing the instance's tables")
    }

    /// Zeroes the counters of one output slot, on every CPU, and its budget.
    pub fn zero_output(&self, slot: u32) -> Result<()> {
        let ncpu = libbpf_rs::num_possible_cpus()?;
        let zero = vec![0u8; std::mem::size_of::<types::cast_ostat>()];
        self.ostats.update_percpu(&slot.to_ne_bytes(), &vec![zero; ncpu], MapFlags::ANY)?;
        let zero = vec![0u8; std::mem::size_of::<types::cast_cap>()];
        self.caps.update(&slot.to_ne_bytes(), &zero, MapFlags::ANY)?;
        Ok(())
    }
}

/// (slot, interface, policy) of every output in use.
pub fn slot_outputs(meta: &types::cast_meta) -> Vec<(u32, String, crate::policy::Policy)> {
    (0..meta.n_slots as usize)
        .filter_map(|slot| {
            let name = cstr(&meta.slot_name[slot]);
            let policy = crate::policy::Policy::from_entry(meta.slot_level[slot], meta.slot_cap[slot]);
            (!name.is_empty()).then_some((slot as u32, name, policy))
        })
        .collect()
}

/// Inodes of the network namespaces that exist: some process lives in them or a name
/// (/run/netns) holds them.
fn live_netns() -> std::collections::HashSet<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut live = std::collections::HashSet::new();
    for dir in ["/proc", "/run/netns"] {
        let Ok(rd) = std::fs::read_dir(dir) else { continue };
        for e in rd.flatten() {
            let p = if dir == "/proc" { e.path().join("ns/net") } else { e.path() };
            if let Ok(m) = std::fs::metadata(&p) {
                live.insert(m.ino());
            }
        }
    }
    live
}

/// Entries of `dir` named net-INODE... whose network namespace no longer exists.
fn of_dead_netns(dir: &str) -> Vec<PathBuf> {
    let live = live_netns();
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    let name = e.file_name();
                    let ino = name
                        .to_str()
                        .and_then(|n| n.strip_prefix("net-"))
                        .and_then(|i| i.split(|c: char| !c.is_ascii_digit()).next())
                        .and_then(|i| i.parse().ok());
                    ino.is_some_and(|i: u64| !live.contains(&i))
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Pin directories (ROOT/net-INODE) of network namespaces that no longer exist. Their casts
/// cannot be reached any more.
pub fn orphans() -> Vec<PathBuf> {
    of_dead_netns(ROOT)
}

/// Lock files of casts whose network namespace no longer exists.
pub fn orphan_locks() -> Vec<PathBuf> {
    of_dead_netns(LOCKS)
}

/// The lock file of an instance of this network namespace (removed with its pins).
fn lock_path(name: &str) -> PathBuf {
    let ns = ns_dir();
    let ns = ns.file_name().and_then(|n| n.to_str()).unwrap_or("net-0").to_string();
    Path::new(LOCKS).join(format!("{ns}-{name}.lock"))
}

/// Opens and locks `path` (created if need be, root's alone) in the lock directory, /run/ebpf-cast,
/// which every mount namespace shares (`ip netns exec` makes its own /sys, not /run).
pub fn lock_file(path: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    safe_dir(Path::new(LOCKS))?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("locking {}: {e}", path.display()))
}

/// A file of the lock directory, for state that ebpf-cast processes share (see lock_file).
pub fn shared_path(name: &str) -> PathBuf {
    Path::new(LOCKS).join(name)
}

/// Names of the instances of this network namespace: those with pins, and those attached
/// here whose pins this invocation cannot see.
pub fn list() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(ns_dir())
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    for inst in attached() {
        if !v.contains(&inst.name) {
            v.push(inst.name);
        }
    }
    v.sort();
    v
}

/// The casts whose program is attached in this network namespace, opened through the kernel:
/// the program's maps by id (.bss, cast_ostats, cast_flows); the name is in its .bss.
fn attached() -> Vec<Instance> {
    let Ok(all) = crate::kernel::installed::all() else { return Vec::new() };
    all.iter()
        .filter(|i| i.role == "cast")
        .filter_map(|i| {
            let mut inst = Instance {
                name: String::new(),
                bss: crate::kernel::installed::global_map(i, ".bss")?,
                ostats: crate::kernel::installed::map_by_name(i, "cast_ostats")?,
                flows: crate::kernel::installed::map_by_name(i, "cast_flows")?,
                caps: crate::kernel::installed::map_by_name(i, "cast_caps")?,
                backlog: crate::kernel::installed::map_by_name(i, "cast_backlog")?,
                admission: crate::kernel::installed::map_by_name(i, "cast_admission")?,
            };
            inst.name = cstr(&inst.read_bss().ok()?.cast_meta.name);
            Some(inst)
        })
        .collect()
}

/// Whether the process that made an instance is still running. Its pid and start time name it
/// (a pid alone may have been reused), whatever its binary is called. A killed one that its
/// parent has not reaped yet, a zombie, is not running: its links and file descriptors are gone.
pub fn owner_alive(meta: &types::cast_meta) -> bool {
    meta.owner_pid != 0 && start_time(meta.owner_pid) == Some(meta.owner_start)
}

/// A live (not zombie) process's start time, in clock ticks after boot (/proc/PID/stat).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, in parentheses: field 3 (the state) on; the start time is field 22.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

pub fn cstr(b: &[i8]) -> String {
    let bytes: Vec<u8> = b.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Makes the device drops of these output slots count from now (one look at every interface),
/// and the datagrams the cast refused (`refused`: its totals now, as `refused()` reads them).
pub fn count_losses_from_now(
    meta: &mut types::cast_meta,
    slots: impl IntoIterator<Item = u32>,
    refused: Refused,
) {
    let now = super::iface::tx_dropped();
    for s in slots {
        let name = cstr(&meta.slot_name[s as usize]);
        let s = s as usize;
        meta.slot_drops_base[s] = now.get(&name).copied().unwrap_or(0);
        meta.slot_refused_base[s] = refused.datagrams;
        meta.slot_refused_bytes_base[s] = refused.bytes;
    }
}

/// The datagrams a cast refused for want of room in the backlog (lost to every output), and
/// their bytes: since it started, summed over the CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refused {
    pub datagrams: u64,
    pub bytes: u64,
}

/// What the cast program's `cast_admission` map holds now.
pub fn refused(admission: &dyn MapCore) -> Result<Refused> {
    let mut r = Refused::default();
    for a in crate::kernel::skel::per_cpu::<types::cast_admission>(admission, 0)? {
        r.datagrams += a.refused;
        r.bytes += a.refused_bytes;
    }
    Ok(r)
}

pub fn set_cstr(dst: &mut [i8], s: &str) {
    dst.fill(0);
    let room = dst.len() - 1;
    for (d, c) in dst.iter_mut().zip(s.bytes().take(room)) {
        *d = c as i8;
    }
}
