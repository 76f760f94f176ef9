//! `ebpf-cast run --config FILE`: every cast of a TOML file in one process, each on a thread of
//! its own (in its network namespace); SIGHUP re-reads the file and applies the difference.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context, Result};

use crate::{
    config::{self, CastEntry, Config},
    error::input,
    kernel::preflight,
    metrics::{self, Target},
    out::OutCmd,
    signals::Stop,
};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The TOML file of the node's casts (see `check-config`)
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Serve the counters of every cast at http://ADDR:PORT/metrics (overrides the file's
    /// `metrics`)
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
}

/// `check-config FILE`: every error with its line, exit 2; or a summary.
pub fn check(path: &Path) -> Result<()> {
    let cfg = config::load(path).map_err(input)?;
    let outputs: usize = cfg.casts.iter().map(|c| c.outputs.len()).sum();
    println!("{}: {} casts, {outputs} outputs: OK", path.display(), cfg.casts.len());
    Ok(())
}

struct Running {
    entry: CastEntry,
    stop: Stop,
    thread: JoinHandle<Result<()>>,
    started: std::time::Instant,
}

fn start(entry: &CastEntry) -> Running {
    let stop = Stop::from_flag(Arc::new(AtomicBool::new(false)));
    let (e, s) = (entry.clone(), stop.clone());
    let thread = std::thread::spawn(move || {
        if let Some(ns) = &e.netns {
            crate::kernel::netns::enter(ns)?;
        }
        crate::cast::run_until(&e.args(), &s)
    });
    Running { entry: entry.clone(), stop, thread, started: std::time::Instant::now() }
}

fn targets(cfg: &Config) -> Vec<Target> {
    cfg.casts.iter().map(|c| Target { name: c.name.clone(), netns: c.netns.clone() }).collect()
}

pub fn run(args: &RunArgs) -> Result<()> {
    let cfg = config::load(&args.config).map_err(input)?;
    preflight::require_bpf_privileges("ebpf-cast run")?;
    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handlers")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .context("installing the signal handlers")?;
    let shared = Arc::new(Mutex::new(targets(&cfg)));
    if let Some(addr) = args.metrics.or(cfg.metrics) {
        metrics::serve(addr, shared.clone())?;
        log(&format!("serving metrics on http://{addr}/metrics"));
    }
    let mut cfg = cfg;
    let mut running: BTreeMap<(String, String), Running> =
        cfg.casts.iter().map(|c| (c.key(), start(c))).collect();
    let mut retry = Retry::default();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        reap(&mut running, &mut retry);
        // A cast that ended (its input is not there yet, or went away) is tried again.
        for c in &cfg.casts {
            if !running.contains_key(&c.key()) && retry.due(&c.key()) {
                running.insert(c.key(), start(c));
            }
        }
        if reload.swap(false, Ordering::SeqCst) {
            match config::load(&args.config) {
                Err(e) => log(&format!("reload refused, the running casts stay as they were:\n{e}")),
                Ok(new) => {
                    apply(&new, &mut running);
                    *shared.lock().unwrap_or_else(|p| p.into_inner()) = targets(&new);
                    log(&format!("reloaded {}", args.config.display()));
                    cfg = new;
                }
            }
        }
    }
    for r in running.values() {
        r.stop.request();
    }
    let mut failed = false;
    for ((_, name), r) in running {
        if let Err(e) = r.thread.join().unwrap_or_else(|_| Err(anyhow::anyhow!("panicked"))) {
            log(&format!("cast {name}: {e:#}"));
            failed = true;
        }
    }
    anyhow::ensure!(!failed, "some casts ended with an error");
    Ok(())
}

/// When to try again the casts that ended by themselves, and what each last said.
#[derive(Default)]
struct Retry {
    at: BTreeMap<(String, String), (std::time::Instant, String)>,
}

/// Casts are tried again this long after they ended.
const RETRY: Duration = Duration::from_secs(5);

impl Retry {
    fn due(&self, key: &(String, String)) -> bool {
        self.at.get(key).is_none_or(|(t, _)| std::time::Instant::now() >= *t)
    }

    /// Notes an end; says it unless it is what the last try of this cast said too.
    fn ended(&mut self, key: &(String, String), what: String) {
        let said_before = self.at.get(key).is_some_and(|(_, w)| *w == what);
        if !said_before {
            log(&format!("cast {} {what}; trying again every {} s", key.1, RETRY.as_secs()));
        }
        self.at.insert(key.clone(), (std::time::Instant::now() + RETRY, what));
    }
}

/// Casts whose thread ended by themselves (their input went away, say).
fn reap(running: &mut BTreeMap<(String, String), Running>, retry: &mut Retry) {
    let ended: Vec<_> =
        running.iter().filter(|(_, r)| r.thread.is_finished()).map(|(k, _)| k.clone()).collect();
    for k in ended {
        if let Some(r) = running.remove(&k) {
            if r.started.elapsed() > RETRY {
                retry.at.remove(&k); // it ran: its end is news
            }
            let what = match r.thread.join() {
                Ok(Ok(())) => "ended".to_string(),
                Ok(Err(e)) => format!("stopped: {e:#}"),
                Err(_) => "panicked".to_string(),
            };
            retry.ended(&k, what);
        }
    }
}

/// Applies the difference between two configurations to the running casts.
fn apply(new: &Config, running: &mut BTreeMap<(String, String), Running>) {
    let new_by_key: BTreeMap<_, _> = new.casts.iter().map(|c| (c.key(), c)).collect();
    // Gone, or changed in more than its outputs: stop (and start again below).
    let stale: Vec<_> = running
        .iter()
        .filter(|(k, r)| new_by_key.get(*k).is_none_or(|n| !n.same_but_outputs(&r.entry)))
        .map(|(k, _)| k.clone())
        .collect();
    for k in stale {
        if let Some(r) = running.remove(&k) {
            r.stop.request();
            let _ = r.thread.join();
            log(&format!("stopped cast {}", k.1));
        }
    }
    for c in &new.casts {
        match running.get_mut(&c.key()) {
            None => {
                running.insert(c.key(), start(c));
                log(&format!("started cast {}", c.name));
            }
            Some(r) => {
                for cmd in output_changes(&r.entry, c) {
                    let ns = c.netns.clone();
                    match crate::kernel::netns::run_in(ns.as_deref(), move || crate::out::run(&cmd)) {
                        Ok(()) => {}
                        Err(e) => log(&format!("cast {}: {e:#}", c.name)),
                    }
                }
                r.entry = c.clone();
            }
        }
    }
}

/// The `out` commands that turn one cast's outputs into another's.
fn output_changes(old: &CastEntry, new: &CastEntry) -> Vec<OutCmd> {
    let mut cmds = Vec::new();
    let spec_of =
        |e: &CastEntry, iface: &str| e.outputs.iter().find(|(i, _)| i == iface).map(|(_, s)| s.clone());
    for (iface, spec) in &old.outputs {
        match spec_of(new, iface) {
            None => cmds.push(OutCmd::Del { name: new.name.clone(), output: iface.clone() }),
            Some(s) if s == *spec => {}
            Some(s) => {
                let (was, now): (crate::out::NewOutput, crate::out::NewOutput) =
                    (spec.parse().expect("checked"), s.parse().expect("checked"));
                if (was.dst, was.mac) == (now.dst, now.mac) {
                    cmds.push(OutCmd::Set {
                        name: new.name.clone(),
                        output: iface.clone(),
                        policy: now.policy,
                    });
                } else {
                    cmds.push(OutCmd::Del { name: new.name.clone(), output: iface.clone() });
                    cmds.push(OutCmd::Add { name: new.name.clone(), spec: now });
                }
            }
        }
    }
    for (iface, spec) in &new.outputs {
        if spec_of(old, iface).is_none() {
            cmds.push(OutCmd::Add { name: new.name.clone(), spec: spec.parse().expect("checked") });
        }
    }
    cmds
}

/// What the service does, on stdout (the journal, under systemd).
fn log(msg: &str) {
    use std::io::Write;
    println!("ebpf-cast run: {msg}");
    let _ = std::io::stdout().flush();
}
