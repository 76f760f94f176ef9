//! Output policies and how they map to the kernel's drop levels (see cast.h: an output with
//! level L receives the TS packets whose priority is >= L).
use std::{fmt, str::FromStr};

use serde::Serialize;

use crate::skel::cast::types::cast_level;

/// Policy levels as cast.h defines them (table entries hold them in 16 bits).
pub const LEVEL_ALL: u16 = cast_level::LEVEL_ALL.0 as u16;
pub const LEVEL_REF: u16 = cast_level::LEVEL_REF.0 as u16;
pub const LEVEL_KEY: u16 = cast_level::LEVEL_KEY.0 as u16;

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
        }
    }
}

impl Policy {
    /// The policy a kernel level stands for (the inverse of level()).
    pub fn from_level(level: u16) -> Policy {
        match level {
            LEVEL_ALL => Policy::All,
            LEVEL_REF => Policy::Ref,
            LEVEL_KEY => Policy::Key,
            l => Policy::NonRef(f64::from(l) / 256.0),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::All => f.write_str("all"),
            Policy::NonRef(x) => write!(f, "nonref={x}"),
            Policy::Ref => f.write_str("ref"),
            Policy::Key => f.write_str("key"),
        }
    }
}

impl From<Policy> for String {
    fn from(p: Policy) -> String {
        p.to_string()
    }
}

pub const POLICY_HELP: &str = "all, ref, key or nonref=F with F from 0 to 1 (e.g. nonref=0.5)";

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Policy, String> {
        match s {
            "all" => Ok(Policy::All),
            "ref" => Ok(Policy::Ref),
            "key" => Ok(Policy::Key),
            _ => {
                let bad = || format!("malformed policy '{s}': use {POLICY_HELP}");
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
        for bad in ["", "nonref", "nonref=", "nonref=1.5", "nonref=-0.1", "nonref=x", "keys", "ALL"] {
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
        for p in [Policy::All, Policy::Ref, Policy::Key, Policy::NonRef(0.5), Policy::NonRef(0.25)] {
            assert_eq!(Policy::from_level(p.level()), p);
        }
    }

    #[test]
    fn levels_are_ordered_and_nested() {
        assert_eq!(Policy::All.level(), 0);
        assert_eq!(Policy::NonRef(0.0).level(), 0);
        assert_eq!(Policy::NonRef(0.5).level(), 128);
        assert_eq!(Policy::NonRef(1.0).level(), Policy::Ref.level());
        assert!(Policy::Ref.level() < Policy::Key.level());
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
