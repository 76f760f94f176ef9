//! Output policies and how they map to the kernel's drop levels (see cast.h: an output with
//! level L receives the TS packets whose priority is >= L).
use std::{fmt, str::FromStr};

use serde::Serialize;

use crate::kernel::skel::cast::types::cast_level;

/// Policy levels as cast.h defines them (table entries hold them in 16 bits).
pub const LEVEL_ALL: u16 = cast_level::LEVEL_ALL.0 as u16;
pub const LEVEL_REF: u16 = cast_level::LEVEL_REF.0 as u16;
pub const LEVEL_KEY: u16 = cast_level::LEVEL_KEY.0 as u16;
pub const LEVEL_CAP: u16 = cast_level::LEVEL_CAP.0 as u16;
pub const LEVEL_NOVIDEO: u16 = cast_level::LEVEL_NOVIDEO.0 as u16;

/// The largest cap (table entries hold it in 32 bits).
const MAX_CAP: u64 = 4_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(into = "String")]
pub enum Policy {
    /// Every packet.
    All,
    /// Drop this share (0..=1) of the non-reference frames, spread evenly.
    NonRef(f64),
    /// No non-reference frames.
    Ref,
    /// Keyframes only.
    Key,
    /// At most this many bits/s of UDP payload: the level is chosen in the kernel at every
    /// frame start, from what the output was sent in the last second.
    Max(u32),
}

impl Policy {
    /// The kernel's level: non-reference frames rank 0..255, so nonref=F drops those ranked
    /// below round(F * 256); a higher F therefore drops a superset of a lower F.
    pub fn level(self) -> u16 {
        match self {
            Policy::All => LEVEL_ALL,
            Policy::NonRef(f) => (f * 256.0).round().clamp(0.0, 256.0) as u16,
            Policy::Ref => LEVEL_REF,
            Policy::Key => LEVEL_KEY,
            Policy::Max(_) => LEVEL_CAP,
        }
    }

    /// The cap in bits/s, 0 for the other policies.
    pub fn cap(self) -> u32 {
        match self {
            Policy::Max(bps) => bps,
            _ => 0,
        }
    }

    /// The policy of a table entry's level and cap (the inverse of level() and cap()).
    pub fn from_entry(level: u16, cap: u32) -> Policy {
        match level {
            LEVEL_ALL => Policy::All,
            LEVEL_REF => Policy::Ref,
            LEVEL_KEY => Policy::Key,
            LEVEL_CAP => Policy::Max(cap),
            l => Policy::NonRef(f64::from(l) / 256.0),
        }
    }
}

/// What a level chosen for a capped output means: a policy, or `skip` while whole GOPs are
/// skipped (the keyframe did not fit).
pub fn level_name(level: u16) -> String {
    match level {
        LEVEL_NOVIDEO => "skip".to_string(),
        l => Policy::from_entry(l, 0).to_string(),
    }
}

/// A bit rate the way people write it: 800k, 2M, 1.5M or 2500000.
fn bits_per_second(v: f64) -> String {
    if v >= 1e9 && v % 1e7 == 0.0 {
        format!("{}G", v / 1e9)
    } else if v >= 1e6 && v % 1e4 == 0.0 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 && v % 10.0 == 0.0 {
        format!("{}k", v / 1e3)
    } else {
        format!("{v}")
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::All => f.write_str("all"),
            Policy::NonRef(x) => write!(f, "nonref={x}"),
            Policy::Ref => f.write_str("ref"),
            Policy::Key => f.write_str("key"),
            Policy::Max(bps) => write!(f, "max={}", bits_per_second(f64::from(*bps))),
        }
    }
}

impl From<Policy> for String {
    fn from(p: Policy) -> String {
        p.to_string()
    }
}

pub const POLICY_HELP: &str =
    "all, ref, key, nonref=F with F from 0 to 1 (e.g. nonref=0.5), or max=RATE in bits/s (e.g. max=800k)";

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Policy, String> {
        match s {
            "all" => Ok(Policy::All),
            "ref" => Ok(Policy::Ref),
            "key" => Ok(Policy::Key),
            _ => {
                let bad = || format!("malformed policy '{s}': use {POLICY_HELP}");
                if let Some(rate) = s.strip_prefix("max=") {
                    let bps = crate::send::parse_bitrate(rate).map_err(|_| bad())?;
                    if !(1000..=MAX_CAP).contains(&bps) {
                        return Err(format!(
                            "policy '{s}': give a cap from 1k to {}, in bits/s of UDP payload",
                            bits_per_second(MAX_CAP as f64)
                        ));
                    }
                    return Ok(Policy::Max(bps as u32));
                }
                let share = s.strip_prefix("nonref=").ok_or_else(bad)?;
                let f: f64 = share.parse().map_err(|_| bad())?;
                if !(0.0..=1.0).contains(&f) {
                    return Err(bad());
                }
                Ok(Policy::NonRef(f))
            }
        }
    }
}

/// `OUT[:POLICY]` as given to --to.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    pub interface: String,
    pub policy: Policy,
}

impl FromStr for OutputSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<OutputSpec, String> {
        let (name, policy) = match s.split_once(':') {
            Some((n, p)) => (n, p.parse::<Policy>().map_err(|e| format!("output {n}: {e}"))?),
            None => (s, Policy::All),
        };
        if name.is_empty() {
            return Err(format!("'{s}': an output needs an interface name, e.g. veth1:{}", "nonref=0.5"));
        }
        Ok(OutputSpec { interface: name.to_string(), policy })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mpegts::nonref_prio;

    #[test]
    fn parses_every_policy() {
        assert_eq!("all".parse::<Policy>(), Ok(Policy::All));
        assert_eq!("ref".parse::<Policy>(), Ok(Policy::Ref));
        assert_eq!("key".parse::<Policy>(), Ok(Policy::Key));
        assert_eq!("nonref=0.5".parse::<Policy>(), Ok(Policy::NonRef(0.5)));
        assert_eq!("nonref=1".parse::<Policy>(), Ok(Policy::NonRef(1.0)));
        assert_eq!("max=800k".parse::<Policy>(), Ok(Policy::Max(800_000)));
        assert_eq!("max=1.5M".parse::<Policy>(), Ok(Policy::Max(1_500_000)));
        assert_eq!("max=2500000".parse::<Policy>(), Ok(Policy::Max(2_500_000)));
        for bad in ["max=999", "max=5G"] {
            let err = bad.parse::<Policy>().unwrap_err();
            assert!(err.contains("give a cap from 1k to"), "{bad}: {err}");
        }
        for bad in [
            "",
            "nonref",
            "nonref=",
            "nonref=1.5",
            "nonref=-0.1",
            "nonref=x",
            "keys",
            "ALL",
            "max=",
            "max=fast",
        ] {
            let err = bad.parse::<Policy>().unwrap_err();
            assert!(err.starts_with(&format!("malformed policy '{bad}'")), "{bad}: {err}");
        }
    }

    #[test]
    fn output_specs_default_to_all() {
        assert_eq!(
            "veth1".parse::<OutputSpec>(),
            Ok(OutputSpec { interface: "veth1".into(), policy: Policy::All })
        );
        assert_eq!("v2:key".parse::<OutputSpec>().unwrap().policy, Policy::Key);
        assert_eq!(
            "v3:half".parse::<OutputSpec>().unwrap_err(),
            format!("output v3: malformed policy 'half': use {POLICY_HELP}")
        );
        assert!(":key".parse::<OutputSpec>().is_err());
    }

    #[test]
    fn levels_map_back_to_policies() {
        for p in [
            Policy::All,
            Policy::Ref,
            Policy::Key,
            Policy::NonRef(0.5),
            Policy::NonRef(0.25),
            Policy::Max(800_000),
        ] {
            assert_eq!(Policy::from_entry(p.level(), p.cap()), p);
        }
        for (p, shown) in [
            (Policy::Max(800_000), "max=800k"),
            (Policy::Max(2_000_000), "max=2M"),
            (Policy::Max(1_234_567), "max=1234567"),
        ] {
            assert_eq!(p.to_string(), shown);
            assert_eq!(shown.parse::<Policy>(), Ok(p));
        }
        assert_eq!(level_name(LEVEL_NOVIDEO), "skip");
        assert_eq!(level_name(128), "nonref=0.5");
    }

    #[test]
    fn levels_are_ordered_and_nested() {
        assert_eq!(Policy::All.level(), 0);
        assert_eq!(Policy::NonRef(0.0).level(), 0);
        assert_eq!(Policy::NonRef(0.5).level(), 128);
        assert_eq!(Policy::NonRef(1.0).level(), Policy::Ref.level());
        assert!(Policy::Ref.level() < Policy::Key.level());
        assert!(Policy::Key.level() < Policy::Max(800_000).level(), "capped outputs come last in a table");
    }

    /// A share F drops exactly round(256 F) of every 256 consecutive non-reference frames,
    /// evenly (at most one apart in any window of 2^k), and a higher F drops a superset.
    #[test]
    fn decimation_is_exact_even_and_monotone() {
        for f in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0] {
            let level = Policy::NonRef(f).level();
            let dropped: Vec<bool> = (0..256).map(|n| nonref_prio(n) < level).collect();
            assert_eq!(dropped.iter().filter(|d| **d).count(), level as usize, "F = {f}");
            for w in [2, 4, 8, 16] {
                let counts: Vec<usize> =
                    dropped.chunks(w).map(|c| c.iter().filter(|d| **d).count()).collect();
                let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                assert!(max - min <= 1, "F = {f}, window {w}: {counts:?}");
            }
        }
        // Ranks are a permutation of 0..256, so a higher share drops a superset of the frames.
        let mut ranks: Vec<u16> = (0..256).map(nonref_prio).collect();
        ranks.sort();
        assert_eq!(ranks, (0..256).collect::<Vec<u16>>());
        let shares = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0];
        for w in shares.windows(2) {
            let (lo, hi) = (Policy::NonRef(w[0]).level(), Policy::NonRef(w[1]).level());
            assert!(lo <= hi, "F = {} drops no more than F = {}", w[0], w[1]);
            for n in 0..256 {
                assert!(
                    nonref_prio(n) >= lo || nonref_prio(n) < hi,
                    "frame {n}: dropped at F = {} but kept at F = {}",
                    w[0],
                    w[1]
                );
            }
        }
        assert_eq!(nonref_prio(0), 0);
        assert_eq!(nonref_prio(1), 128);
        assert_eq!(nonref_prio(2), 64);
        assert_eq!(nonref_prio(256 + 3), 192);
    }
}
