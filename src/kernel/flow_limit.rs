//! The kernel's flow limit (net.core.flow_limit_cpu_bitmap). When RPS steers the input to the
//! cast's CPUs, the CPUs that receive it queue it onto their backlogs, where each hub's copy of
//! a datagram queues too. Under overload the input fills the backlog, and the hub's copies,
//! each carrying the datagram for many outputs, are refused after the work was done. A CPU in
//! the bitmap stops queueing a flow that made more than half of its recent packets once the
//! backlog it queues onto is half full: on the CPUs that steer the input, that keeps half of the
//! backlog for the hubs.
use std::collections::BTreeSet;

use super::sysctl;

pub const SYSCTL: &str = "/proc/sys/net/core/flow_limit_cpu_bitmap";

/// A set of CPUs, as the kernel prints and parses cpumasks (hex, 32-bit groups split by commas).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cpus(BTreeSet<usize>);

impl Cpus {
    pub fn parse(s: &str) -> Option<Cpus> {
        let mut set = BTreeSet::new();
        for (i, c) in s.trim().chars().rev().filter(|c| *c != ',').enumerate() {
            let d = c.to_digit(16)?;
            set.extend((0..4).filter(|b| d & (1 << b) != 0).map(|b| i * 4 + b));
        }
        Some(Cpus(set))
    }

    pub fn contains(&self, cpu: usize) -> bool {
        self.0.contains(&cpu)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The kernel's format: groups of 8 hex digits, most significant first, split by commas.
    pub fn to_mask(&self) -> String {
        let groups = self.0.last().map_or(1, |c| c / 32 + 1);
        (0..groups)
            .rev()
            .map(|g| {
                let v = (0..32).fold(0u32, |v, b| v | (u32::from(self.contains(g * 32 + b)) << b));
                format!("{v:08x}")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// "0,2-5" style, for people.
    pub fn describe(&self) -> String {
        let cpus: Vec<usize> = self.0.iter().copied().collect();
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < cpus.len() {
            let mut j = i;
            while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
                j += 1;
            }
            out.push(if i == j { cpus[i].to_string() } else { format!("{}-{}", cpus[i], cpus[j]) });
            i = j + 1;
        }
        out.join(",")
    }
}

/// The CPUs that steer the input: those outside every RPS mask of its receive queues, when RPS
/// is on (None when it is off, or steers to every CPU).
pub fn steering_cpus(rps_masks: &[Cpus], ncpu: usize) -> Option<Cpus> {
    let rps: BTreeSet<usize> = rps_masks.iter().flat_map(|m| m.0.iter().copied()).collect();
    if rps.is_empty() {
        return None;
    }
    let steering = Cpus((0..ncpu).filter(|c| !rps.contains(c)).collect());
    (!steering.is_empty()).then_some(steering)
}

/// The bitmap ebpf-cast widened by `added`; put back on drop if nobody changed it since.
pub struct Widened {
    changed: sysctl::Changed,
    added: Cpus,
}

impl Widened {
    pub fn describe(&self) -> String {
        format!(
            "turned on the kernel's flow limit on CPU {} (RPS steers the input from there; \
             net.core.flow_limit_cpu_bitmap {} -> {}, restored on exit)",
            self.added.describe(),
            self.changed.old(),
            self.changed.now()
        )
    }
}

/// Outcome of ensure().
pub enum FlowLimit {
    /// RPS does not steer the input: nothing to limit.
    NotSteered,
    /// The bitmap has the steering CPUs already; with the guard of another ebpf-cast process's
    /// change, shared (put back only when the last process that holds it stops).
    On(Option<sysctl::Changed>),
    Widened(Widened),
    /// Could not set it: the message says what to run.
    Off(String),
}

impl FlowLimit {
    /// The input is refused once the backlog it queues onto is half full.
    pub fn acts(&self) -> bool {
        matches!(self, FlowLimit::On(_) | FlowLimit::Widened(_))
    }
}

/// Turns the flow limit on for the CPUs that steer `input` by RPS (when `tune` is set).
pub fn ensure(input: &str, tune: bool) -> FlowLimit {
    let Ok(masks) = rps_masks(input) else {
        return FlowLimit::NotSteered; // no sysfs to read it from: nothing to go on
    };
    let ncpu = libbpf_rs::num_possible_cpus().unwrap_or(1);
    let Some(steering) = steering_cpus(&masks, ncpu) else {
        return FlowLimit::NotSteered;
    };
    let cur = sysctl::read(SYSCTL);
    let have = cur.as_deref().and_then(Cpus::parse).unwrap_or_default();
    let added = Cpus(steering.0.difference(&have.0).copied().collect());
    if added.is_empty() {
        return FlowLimit::On(sysctl::share(SYSCTL));
    }
    let want = Cpus(have.0.union(&steering.0).copied().collect());
    let hint = format!(
        "RPS steers {input} from CPU {}: under overload its datagrams fill the backlog that the hubs' \
         copies need; run `sysctl -w net.core.flow_limit_cpu_bitmap={}` in the host's network namespace",
        steering.describe(),
        want.to_mask()
    );
    if !tune {
        return FlowLimit::Off(hint);
    }
    if cur.is_none() {
        return FlowLimit::Off(format!("{}; {hint}", sysctl::UNREACHABLE));
    }
    match sysctl::change(SYSCTL, want.to_mask()) {
        Some(changed) => FlowLimit::Widened(Widened { changed, added }),
        None => FlowLimit::Off(format!("could not set the flow limit; {hint}")),
    }
}

/// The RPS masks of `input`'s receive queues, from a sysfs of this thread's network namespace:
/// with `--netns` the process's /sys shows another one's devices, so a thread mounts its own
/// (as `ip netns exec` does), in a mount namespace of its own.
fn rps_masks(input: &str) -> anyhow::Result<Vec<Cpus>> {
    let input = input.to_string();
    std::thread::spawn(move || -> anyhow::Result<Vec<Cpus>> {
        use nix::mount::{mount, umount2, MntFlags, MsFlags};
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>)?;
        let _ = umount2("/sys", MntFlags::MNT_DETACH);
        mount(Some("sysfs"), "/sys", Some("sysfs"), MsFlags::empty(), None::<&str>)?;
        let mut masks = Vec::new();
        for q in std::fs::read_dir(format!("/sys/class/net/{input}/queues"))? {
            let q = q?;
            if q.file_name().to_string_lossy().starts_with("rx-") {
                let s = std::fs::read_to_string(q.path().join("rps_cpus"))?;
                masks.push(Cpus::parse(&s).ok_or_else(|| anyhow::anyhow!("rps_cpus: {s:?}"))?);
            }
        }
        Ok(masks)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("reading the RPS masks panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_parse_and_print_as_the_kernel_does() {
        let m = Cpus::parse("00000000,00000005").unwrap();
        assert!(m.contains(0) && !m.contains(1) && m.contains(2));
        assert_eq!(m.to_mask(), "00000005");
        let wide = Cpus::parse("1,00000000").unwrap();
        assert!(wide.contains(32) && !wide.contains(0));
        assert_eq!(wide.to_mask(), "00000001,00000000");
        assert_eq!(Cpus::parse("0").unwrap().to_mask(), "00000000");
        assert!(Cpus::parse("0").unwrap().is_empty());
        assert!(Cpus::parse("xyz").is_none());
        assert_eq!(Cpus::parse("3d").unwrap().describe(), "0,2-5");
    }

    #[test]
    fn the_steering_cpus_are_those_outside_every_rps_mask() {
        let two = |s| Cpus::parse(s).unwrap();
        assert_eq!(steering_cpus(&[two("2")], 2), Some(two("1")));
        assert_eq!(steering_cpus(&[two("2"), two("4")], 4), Some(two("9")));
        assert_eq!(steering_cpus(&[two("0")], 2), None, "RPS off");
        assert_eq!(steering_cpus(&[two("3")], 2), None, "RPS to every CPU");
    }
}
