//! Checks made before anything is loaded: privileges and kernel BTF.
use std::path::PathBuf;

use anyhow::{bail, Result};

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// Where the kernel's BTF is read from; EBPF_CAST_KERNEL_BTF points elsewhere
/// (a kernel whose BTF is shipped as a file rather than in sysfs).
pub fn kernel_btf_path() -> PathBuf {
    std::env::var_os("EBPF_CAST_KERNEL_BTF")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/sys/kernel/btf/vmlinux"))
}

/// Fails with what to do when the process cannot load and attach tc programs.
pub fn require_bpf_privileges(what: &str) -> Result<()> {
    require_privileges(what)?;
    let btf = kernel_btf_path();
    if !btf.exists() {
        bail!(
            "this kernel has no BTF ({} is missing): ebpf-cast needs a kernel built with \
             CONFIG_DEBUG_INFO_BTF=y (Debian 11 and later have it), or point \
             EBPF_CAST_KERNEL_BTF at the kernel's BTF file",
            btf.display()
        );
    }
    Ok(())
}

/// Fails with what to do when the process cannot see or change BPF programs and links
/// (without them the kernel shows an unprivileged process nothing, which is no answer).
pub fn require_privileges(what: &str) -> Result<()> {
    let caps = effective_caps().unwrap_or(0);
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    let bpf = has(CAP_BPF) || has(CAP_SYS_ADMIN);
    let net = has(CAP_NET_ADMIN);
    if !(bpf && net) {
        let missing: Vec<&str> = [(!bpf, "CAP_BPF"), (!net, "CAP_NET_ADMIN")]
            .iter()
            .filter(|(m, _)| *m)
            .map(|(_, n)| *n)
            .collect();
        bail!(
            "{what} needs root (missing {}): run it as root, e.g. `sudo ebpf-cast ...`",
            missing.join(" and ")
        );
    }
    Ok(())
}

fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status)
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_effective_capabilities() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name: x\n"), None);
    }
}
