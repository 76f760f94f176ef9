//! Private network namespaces, for the demo, the benchmark and the tests: one set of primitives
//! on namespaces by name, and a guard that removes the ones it made (on Drop, and so on Ctrl-C,
//! which ends the demo's loop). They get no default route: traffic stays inside.
use std::{process::Command, thread::JoinHandle};

use anyhow::{bail, Context, Result};

pub struct Sandbox {
    prefix: String,
    made: Vec<String>,
}

impl Sandbox {
    pub fn new(tag: &str) -> Sandbox {
        Sandbox { prefix: format!("ec{tag}{}", std::process::id()), made: Vec::new() }
    }

    /// Creates namespace `name` (prefixed; see add()); returns its full name.
    pub fn netns(&mut self, name: &str) -> Result<String> {
        let full = format!("{}-{name}", self.prefix);
        add(&full)?;
        self.made.push(full.clone());
        Ok(full)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            del(ns);
        }
    }
}

/// Creates namespace `ns` with its loopback up and no IPv6 (no router solicitation or MLD
/// report crosses it: what flows is what the caller sends).
pub fn add(ns: &str) -> Result<()> {
    run("ip", &["netns", "add", ns])?;
    ip(ns, "link set dev lo up")?;
    run("ip", &["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
    run("ip", &["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])?;
    Ok(())
}

/// Deletes namespace `ns`, and so its veths, their qdiscs and TCX links (if it exists).
pub fn del(ns: &str) {
    let _ = Command::new("ip").args(["netns", "del", ns]).stderr(std::process::Stdio::null()).status();
}

/// Runs a program to its end: its output, or an error with what it wrote to stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program} (install it)"))?;
    if !out.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip -n NS ARGS` (ARGS split at whitespace); returns its output.
pub fn ip(ns: &str, args: &str) -> Result<String> {
    let mut v = vec!["-n", ns];
    v.extend(args.split_whitespace());
    run("ip", &v)
}

/// `ip -n NS -batch`: many `ip` commands (one per line) in one process.
pub fn ip_batch(ns: &str, cmds: &str) -> Result<()> {
    let path = std::env::temp_dir().join(format!("ebpf-cast-batch-{}-{ns}", std::process::id()));
    std::fs::write(&path, cmds).with_context(|| format!("writing {}", path.display()))?;
    let r = run("ip", &["-n", ns, "-batch", &path.to_string_lossy()]);
    let _ = std::fs::remove_file(&path);
    r.map(|_| ())
}

pub fn mac(ns: &str, dev: &str) -> Result<String> {
    Ok(run("ip", &["netns", "exec", ns, "cat", &format!("/sys/class/net/{dev}/address")])?.trim().to_string())
}

/// Moves the calling thread into namespace `ns`: sockets it opens from now on live there.
pub use super::netns::enter;

/// Runs `f` on a new thread inside namespace `ns`.
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> JoinHandle<Result<T>> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter(&ns)?;
        f()
    })
}
