//! Private network namespaces for the demo: uniquely named, removed on Drop (and so on
//! Ctrl-C, which ends the demo's loop), never given a default route.
use std::{fs::File, process::Command, thread::JoinHandle};

use anyhow::{bail, Context, Result};

pub struct Sandbox {
    prefix: String,
    made: Vec<String>,
}

impl Sandbox {
    pub fn new(tag: &str) -> Sandbox {
        Sandbox { prefix: format!("ec{tag}{}", std::process::id()), made: Vec::new() }
    }

    /// Creates namespace `name` (prefixed) with its loopback up; returns its full name.
    pub fn netns(&mut self, name: &str) -> Result<String> {
        let full = format!("{}-{name}", self.prefix);
        run(&["netns", "add", &full])?;
        self.made.push(full.clone());
        ip(&full, "link set dev lo up")?;
        // No IPv6 chatter: what crosses the sandbox is the demo's stream only.
        sysctl(&full, "net.ipv6.conf.all.disable_ipv6", "1");
        sysctl(&full, "net.ipv6.conf.default.disable_ipv6", "1");
        Ok(full)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn run(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip (install iproute2)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// `ip -n NS ARGS`
pub fn ip(ns: &str, args: &str) -> Result<()> {
    let mut v = vec!["-n", ns];
    v.extend(args.split_whitespace());
    run(&v)
}

fn sysctl(ns: &str, key: &str, value: &str) {
    let _ =
        Command::new("ip").args(["netns", "exec", ns, "sysctl", "-qw", &format!("{key}={value}")]).status();
}

pub fn mac(ns: &str, dev: &str) -> Result<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat", &format!("/sys/class/net/{dev}/address")])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs `f` on a new thread inside namespace `ns`.
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> JoinHandle<Result<T>> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = File::open(&path).with_context(|| format!("opening {path}"))?;
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).context("entering the namespace")?;
        f()
    })
}
