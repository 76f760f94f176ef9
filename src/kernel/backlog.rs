//! The kernel's per-CPU input backlog (net.core.netdev_max_backlog) takes every copy sent to a
//! veth whose peer does not run NAPI: one datagram to N outputs queues N copies at once, and
//! copies over the limit are dropped silently. Raise the limit for the number of outputs.
use super::sysctl;

const SYSCTL: &str = "/proc/sys/net/core/netdev_max_backlog";
const KERNEL_DEFAULT: u64 = 1000;

/// Backlog that holds the copies of a burst of datagrams (several arrive per softirq run), for
/// `outputs` outputs of which `queued` queue their copies there (veths with TSO on).
///
/// With the flow limit on the input (flow_limit.rs), which refuses it once the backlog is half
/// full, the input keeps the kernel default's room for its bursts below that half (bench, N = 4
/// to 64: the lossless rate 1.1-1.6x). Copies that queue there need room as well, for the copies
/// of every input queued ahead of them: the CPU takes its whole queue of inputs before the copies
/// they made, so after a stall of the CPU (a host that preempts a VM's CPU for a few ms) a
/// backlog of 2,000 loses copies from 2,000 / N inputs on. 500 entries per such output, up to
/// 8,000 (a 4 ms stall at 2 M copies/s; bench, plain veths, N = 16 to 256: the lossless rate
/// 1.6-3.8x, saturation at N = 16 0.86x, from N = 64 1.1-1.2x; mixed policies lost a third of
/// their saturation rate at N = 16 and doubled their lossless rate). Not more at N = 4, where the
/// deeper queue only held more inputs, which fall out of the caches at saturation (0.86-0.91x
/// at 8,000, the lossless rate 1.0-1.25x), nor without such outputs (NAPI receivers, N = 4, a
/// floor of 4,000: 0.66-0.70x mirred against 0.81-0.91x).
pub fn needed(outputs: usize, queued: usize, flow_limited: bool) -> u64 {
    let floor = match flow_limited {
        false => KERNEL_DEFAULT,
        true => (queued as u64 * 500).clamp(2 * KERNEL_DEFAULT, 8 * KERNEL_DEFAULT),
    };
    (outputs as u64 * 8).max(floor)
}

/// The limit ebpf-cast raised; put back on drop if nobody changed it since.
pub struct Raised(sysctl::Changed);

/// Outcome of ensure(): what to tell the user.
pub enum Backlog {
    /// The limit, high enough; with the guard of another ebpf-cast process's raise, shared
    /// (put back only when the last process that holds it stops).
    Enough(u64, Option<Raised>),
    Raised(Raised),
    /// Could not raise it to `want`: the message says what to run.
    TooLow {
        want: u64,
        message: String,
    },
}

/// Makes sure the backlog holds `outputs` copies per datagram (and the input's bursts, when the
/// flow limit acts on it, and the copies of those bursts when `queued` outputs queue them
/// there), raising it when `tune` is set.
pub fn ensure(outputs: usize, queued: usize, flow_limited: bool, tune: bool) -> Backlog {
    let want = needed(outputs, queued, flow_limited);
    if want <= KERNEL_DEFAULT {
        return Backlog::Enough(KERNEL_DEFAULT, None); // the kernel's minimum default is enough
    }
    let with = if flow_limited { " with the flow limit on the input" } else { "" };
    let hint = format!(
        "net.core.netdev_max_backlog should be at least {want} for {outputs} outputs{with}, or datagrams \
         and copies are dropped silently: run `sysctl -w net.core.netdev_max_backlog={want}` in the host's \
         network namespace"
    );
    let Some(cur) = read() else {
        return Backlog::TooLow { want, message: format!("{}; {hint}", sysctl::UNREACHABLE) };
    };
    if cur >= want {
        return Backlog::Enough(cur, sysctl::share(SYSCTL).map(Raised));
    }
    if !tune {
        return Backlog::TooLow { want, message: format!("the limit is {cur}; {hint}") };
    }
    match sysctl::change(SYSCTL, want.to_string()) {
        Some(c) => Backlog::Raised(Raised(c)),
        None => {
            Backlog::TooLow { want, message: format!("the limit is {cur} and could not be raised; {hint}") }
        }
    }
}

/// Sets the limit to `limit` (the benchmark and the tests); the guard puts it back.
pub fn set(limit: u64) -> anyhow::Result<Raised> {
    sysctl::change(SYSCTL, limit.to_string())
        .map(Raised)
        .ok_or_else(|| anyhow::anyhow!("cannot set {SYSCTL}"))
}

impl Backlog {
    /// What to tell the user, if anything.
    pub fn note(&self) -> Option<String> {
        match self {
            Backlog::Enough(..) => None,
            Backlog::Raised(r) => Some(r.describe()),
            Backlog::TooLow { message, .. } => Some(format!("warning: {message}")),
        }
    }

    /// Follows the outputs that `ebpf-cast out add` gives a running cast: raises the limit
    /// again when they need more (kept until exit, not lowered as outputs leave), or warns once
    /// per new need. A limit lowered under the cast (another cast putting back the value it
    /// found, or someone else) is raised again too. Returns what to tell the user.
    pub fn follow(
        &mut self,
        outputs: usize,
        queued: usize,
        flow_limited: bool,
        tune: bool,
    ) -> Option<String> {
        let want = needed(outputs, queued, flow_limited);
        let now = read();
        let covered = match self {
            Backlog::TooLow { want, .. } => *want, // warned about this need already
            _ => now.unwrap_or(0),
        };
        if want <= covered {
            return None;
        }
        // Our own raise (made only with `tune`) goes further and still puts back the value
        // from before the cast.
        if let Backlog::Raised(r) | Backlog::Enough(_, Some(r)) = self {
            if r.0.set(want.to_string()) {
                let note = format!("{outputs} outputs: {}", r.describe());
                if let Backlog::Enough(_, shared) = self {
                    *self = Backlog::Raised(shared.take().expect("matched above"));
                }
                return Some(note);
            }
        }
        let was = match self {
            Backlog::Enough(limit, _) => Some(*limit),
            Backlog::Raised(r) => r.0.now().parse().ok(),
            Backlog::TooLow { .. } => None,
        };
        let lowered = was.zip(now).filter(|(was, now)| now < was);
        *self = ensure(outputs, queued, flow_limited, tune);
        let note = self.note()?;
        Some(match lowered {
            Some((was, now)) => {
                format!("{outputs} outputs: the limit went from {was} to {now} under the cast; {note}")
            }
            None => format!("{outputs} outputs: {note}"),
        })
    }
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
pub fn read() -> Option<u64> {
    sysctl::read(SYSCTL).and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_holds_the_copies_and_with_the_flow_limit_the_input_and_its_copies() {
        assert_eq!(needed(4, 4, false), KERNEL_DEFAULT, "the default holds a few outputs' copies");
        assert_eq!(needed(4, 0, true), 2 * KERNEL_DEFAULT, "the input keeps 1000 below the half");
        assert_eq!(needed(4, 4, true), 2 * KERNEL_DEFAULT, "a few outputs' copies fit in the rest");
        assert_eq!(needed(8, 8, true), 4 * KERNEL_DEFAULT, "500 entries per output whose copies queue");
        assert_eq!(needed(64, 64, true), 8 * KERNEL_DEFAULT, "at most 8000");
        assert_eq!(needed(64, 0, true), 2 * KERNEL_DEFAULT, "NAPI receivers: no copy queues there");
        assert_eq!(needed(1024, 0, false), 8192);
        assert_eq!(needed(1024, 1024, true), 8192, "8 per output is more than the floor");
    }
}
