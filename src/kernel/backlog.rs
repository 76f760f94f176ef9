//! The kernel's per-CPU input backlog (net.core.netdev_max_backlog) takes every copy sent to a
//! veth whose peer does not run NAPI: one datagram to N outputs queues N copies at once, and
//! copies over the limit are dropped silently. Raise the limit for the number of outputs.
use super::sysctl;

const SYSCTL: &str = "/proc/sys/net/core/netdev_max_backlog";
const KERNEL_DEFAULT: u64 = 1000;

/// Backlog that holds the copies of a burst of datagrams (several arrive per softirq run).
pub fn needed(outputs: usize) -> u64 {
    (outputs as u64 * 8).max(KERNEL_DEFAULT)
}

/// The limit ebpf-cast raised; put back on drop if nobody changed it since.
pub struct Raised(sysctl::Changed);

/// Outcome of ensure(): what to tell the user.
pub enum Backlog {
    Enough(u64),
    Raised(Raised),
    /// Could not raise it: the message says what to run.
    TooLow(String),
}

/// Makes sure the backlog holds `outputs` copies per datagram, raising it when `tune` is set.
pub fn ensure(outputs: usize, tune: bool) -> Backlog {
    let want = needed(outputs);
    if want <= KERNEL_DEFAULT {
        return Backlog::Enough(KERNEL_DEFAULT); // the kernel's minimum default is enough
    }
    let hint = format!(
        "net.core.netdev_max_backlog should be at least {want} for {outputs} outputs, or copies are \
         dropped silently: run `sysctl -w net.core.netdev_max_backlog={want}` in the host's network namespace"
    );
    let Some(cur) = read() else {
        return Backlog::TooLow(format!("cannot read the backlog limit; {hint}"));
    };
    if cur >= want {
        return Backlog::Enough(cur);
    }
    if !tune {
        return Backlog::TooLow(format!("the limit is {cur}; {hint}"));
    }
    match sysctl::change(SYSCTL, want.to_string()) {
        Some(c) => Backlog::Raised(Raised(c)),
        None => Backlog::TooLow(format!("the limit is {cur} and could not be raised; {hint}")),
    }
}

/// Sets the limit to `limit` (the benchmark and the tests); the guard puts it back.
pub fn set(limit: u64) -> anyhow::Result<Raised> {
    sysctl::change(SYSCTL, limit.to_string())
        .map(Raised)
        .ok_or_else(|| anyhow::anyhow!("cannot set {SYSCTL}"))
}

impl Raised {
    pub fn describe(&self) -> String {
        format!(
            "raised net.core.netdev_max_backlog from {} to {} (restored on exit)",
            self.0.old(),
            self.0.now()
        )
    }
}

/// The limit now (of the host).
fn read() -> Option<u64> {
    sysctl::read(SYSCTL).and_then(|s| s.parse().ok())
}
