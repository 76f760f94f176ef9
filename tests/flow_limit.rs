//! A cast whose input RPS steers to other CPUs turns on the kernel's flow limit on the CPUs that
//! steer it, and raises the backlog limit that the flow limit halves for the input (more when
//! the copies queue there too), for as long as it runs; outputs added at run time raise the
//! backlog limit again, as does a limit lowered under it; the casts of one `run --config`
//! process put back the values from before it when the last stops (a test binary of its own:
//! the sysctls are the whole host's).
mod common;

use std::time::{Duration, Instant};

use common::{control::*, *};

use ebpf_cast::kernel::flow_limit::{Cpus, SYSCTL};
const BACKLOG: &str = "/proc/sys/net/core/netdev_max_backlog";

fn bitmap() -> Cpus {
    Cpus::parse(&std::fs::read_to_string(SYSCTL).unwrap()).unwrap()
}

fn backlog() -> u64 {
    std::fs::read_to_string(BACKLOG).unwrap().trim().parse().unwrap()
}

/// Starts `cast in0 --json ARGS` and returns it with its first event (the outputs and the note).
fn start(e: &Edge, args: &[impl AsRef<std::ffi::OsStr>]) -> (Proc, serde_json::Value) {
    start_on(e, "in0", "cam1", args)
}

/// Starts `cast INPUT --name NAME --json ARGS`, likewise.
fn start_on(
    e: &Edge,
    input: &str,
    name: &str,
    args: &[impl AsRef<std::ffi::OsStr>],
) -> (Proc, serde_json::Value) {
    let mut c = std::process::Command::new(bin());
    c.args(["--netns", &e.edge.name, "cast", input, "--name", name, "--json"]).args(args);
    let mut p = Proc::spawn(c);
    let seen = p.wait_for("\"event\":\"outputs\"", Duration::from_secs(20));
    let line = seen.lines().last().unwrap().to_string();
    (p, serde_json::from_str(&line).unwrap())
}

/// The tests change the same host sysctls: one at a time.
static HOST: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The host's two sysctls, this test's alone, at the kernel's defaults (flow limit off, backlog
/// 1000) until dropped, then as they were.
struct Host {
    _restore: (Restore, Restore),
    _one: std::sync::MutexGuard<'static, ()>,
}

fn host_at_defaults() -> Host {
    let one = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let restore = (Restore::save(SYSCTL), Restore::save(BACKLOG));
    std::fs::write(SYSCTL, "0").unwrap();
    std::fs::write(BACKLOG, "1000").unwrap();
    Host { _restore: restore, _one: one }
}

fn ncpu() -> usize {
    let ncpu = libbpf_rs::num_possible_cpus().unwrap();
    assert!(ncpu >= 2, "RPS to another CPU needs two of them (this machine has {ncpu})");
    ncpu
}

/// RPS steers the edge's `dev` to CPU `to`: every other one steers it. Returns those.
fn steer(e: &Edge, dev: &str, to: usize) -> Cpus {
    e.edge.sh(&format!("printf %x {} > /sys/class/net/{dev}/queues/rx-0/rps_cpus", 1u64 << to));
    Cpus::parse(&format!("{:x}", ((1u64 << ncpu()) - 1) & !(1u64 << to))).unwrap()
}

/// `--to o1 .. --to oN`.
fn outputs(n: usize) -> Vec<String> {
    (1..=n).flat_map(|i| ["--to".to_string(), format!("o{i}")]).collect()
}

/// Both sysctls are back at the values from before `what` (the kernel's defaults here).
fn back_to_defaults(what: &str) {
    assert_eq!(backlog(), 1000, "the value from before {what}");
    assert!(bitmap().is_empty(), "the value from before {what}: {}", bitmap().describe());
}

/// Polls `f` for up to 10 s until it holds.
fn until(f: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

#[test]
fn the_cpus_that_rps_steers_the_input_from_get_the_flow_limit_while_the_cast_runs() {
    require_root!();
    let _host = host_at_defaults();
    let e = Edge::new(8, "10.211.0.1", "10.211.0.2");
    let steering = steer(&e, "in0", ncpu() - 1);
    let outs = outputs(8);
    let (cast, first) = start(&e, &outs);
    assert_eq!(bitmap(), steering, "while the cast runs");
    assert_eq!(
        backlog(),
        4000,
        "the input keeps the default's 1000 below the flow limit's half, 8 outputs' copies 500 each"
    );
    let note = first["note"].as_str().unwrap_or_default();
    assert!(
        note.contains(&format!("turned on the kernel's flow limit on CPU {}", steering.describe()))
            && note.contains("raised net.core.netdev_max_backlog from 1000 to 4000 (restored on exit)")
            && note.contains("restored on exit"),
        "{first}"
    );
    e.stop_clean(cast);
    assert!(bitmap().is_empty(), "restored when the cast stops");
    assert_eq!(backlog(), 1000, "restored when the cast stops");

    // Outputs whose copies do not queue there (TSO off: their peers' NAPI may take them): room
    // for the input only.
    for i in 1..=8 {
        e.edge.sh(&format!("ethtool -K o{i} tso off"));
    }
    let (cast, _) = start(&e, &outs);
    assert_eq!(backlog(), 2000, "no copy queues on the backlog");
    e.stop_clean(cast);

    // --no-tune: the same advice, and the setting untouched.
    let (cast, first) = start(&e, &["--to", "o1", "--no-tune"]);
    assert!(bitmap().is_empty(), "--no-tune changes nothing");
    assert_eq!(backlog(), 1000, "--no-tune changes nothing");
    let note = first["note"].as_str().unwrap_or_default();
    assert!(
        note.starts_with(&format!("warning: RPS steers in0 from CPU {}", steering.describe()))
            && note.contains(&format!("sysctl -w net.core.flow_limit_cpu_bitmap={}", steering.to_mask())),
        "{first}"
    );
    e.stop_clean(cast);

    // Without RPS there is nothing to steer: nothing is said or changed.
    e.edge.sh("echo 0 > /sys/class/net/in0/queues/rx-0/rps_cpus");
    let (cast, first) = start(&e, &["--to", "o1"]);
    assert!(bitmap().is_empty());
    assert_eq!(backlog(), 1000, "no flow limit, no need for more");
    assert!(first["note"].is_null(), "{first}");
    e.stop_clean(cast);
}

/// `out add` past 125 outputs (8 backlog entries each, without the flow limit) raises the limit
/// again, within the cast's one-second watch; the value from before the cast comes back at exit.
/// With --no-tune the cast warns instead.
#[test]
fn outputs_added_at_run_time_raise_the_backlog_limit_again() {
    require_root!();
    let _host = host_at_defaults();
    let e = Edge::new(1, "10.212.0.1", "10.212.0.2");
    e.edge.sh("echo 0 > /sys/class/net/in0/queues/rx-0/rps_cpus"); // no flow limit, no floor
    const MORE: usize = 125;
    let sink = Netns::new("sink");
    let pairs: String = (1..=MORE)
        .map(|i| {
            format!("link add name x{i} type veth peer name y{i} netns {}\nlink set dev x{i} up\n", sink.name)
        })
        .collect();
    e.edge.ip_batch(&pairs);
    let xs: Vec<String> = (1..=MORE).map(|i| format!("x{i}")).collect();

    let (cast, first) = start(&e, &["--to", "o1"]);
    assert!(first["note"].is_null(), "one output needs no more than the default: {first}");
    for x in &xs {
        e.ok(&["out", "add", "cam1", x]);
    }
    until(|| backlog() == 1008);
    assert_eq!(backlog(), 1008, "8 entries for each of the 126 outputs");
    e.ok(&["out", "del", "cam1", "x125"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(backlog(), 1008, "not lowered while the cast runs");
    let rest = cast.stop(nix::sys::signal::Signal::SIGTERM);
    assert!(
        rest.contains("\"event\":\"backlog\"")
            && rest.contains(
                "126 outputs: raised net.core.netdev_max_backlog from 1000 to 1008 (restored on exit)"
            ),
        "{rest}"
    );
    assert_eq!(backlog(), 1000, "restored when the cast stops");
    e.assert_clean();

    // --no-tune: a warning that names the value to set, and the limit untouched.
    let mut args = vec!["--no-tune", "--to", "o1"];
    for x in &xs[..MORE - 1] {
        args.extend(["--to", x.as_str()]);
    }
    let (cast, first) = start(&e, &args);
    assert!(first["note"].is_null(), "125 outputs fit in the default: {first}");
    e.ok(&["out", "add", "cam1", "x125"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(backlog(), 1000, "--no-tune changes nothing");
    let rest = cast.stop(nix::sys::signal::Signal::SIGTERM);
    assert!(
        rest.contains(
            "126 outputs: warning: the limit is 1000; net.core.netdev_max_backlog should be at least 1008"
        ) && rest.contains("sysctl -w net.core.netdev_max_backlog=1008"),
        "{rest}"
    );
    e.assert_clean();
}

/// A limit lowered under a running cast (another cast putting back the value it found, or an
/// operator) is raised again within the cast's watch, and at exit the cast puts back the value
/// it found then, not the one from before it started.
#[test]
fn a_backlog_limit_lowered_under_the_cast_is_raised_again() {
    require_root!();
    let _host = host_at_defaults();
    let e = Edge::new(8, "10.213.0.1", "10.213.0.2");
    steer(&e, "in0", ncpu() - 1);

    let (cast, _) = start(&e, &outputs(8));
    assert_eq!(backlog(), 4000, "raised at the start");
    std::fs::write(BACKLOG, "1200").unwrap();
    until(|| backlog() == 4000);
    assert_eq!(backlog(), 4000, "raised again while the cast runs");
    let rest = cast.stop(nix::sys::signal::Signal::SIGTERM);
    assert!(
        rest.contains(
            "8 outputs: the limit went from 4000 to 1200 under the cast; raised \
             net.core.netdev_max_backlog from 1200 to 4000 (restored on exit)"
        ),
        "{rest}"
    );
    assert_eq!(backlog(), 1200, "the value found at the second raise comes back");
    assert!(bitmap().is_empty(), "restored when the cast stops");
    e.assert_clean();
}

/// `run --config` casts share one process: one that stops first leaves the settings to the
/// others, and the values from before the process come back when the last one stops, whatever
/// the order (each putting back what it found left the first one's raise on the host).
#[test]
fn casts_of_one_service_put_back_the_settings_from_before_it_whatever_stops_first() {
    require_root!();
    let _host = host_at_defaults();
    let e = Edge::new(8, "10.214.0.1", "10.214.0.2");
    veth(&e.edge, "in2", &e.cam, "c2");
    // cam1's input is steered from every CPU but the last, cam2's from every CPU but the first.
    steer(&e, "in0", ncpu() - 1);
    steer(&e, "in2", 0);
    let all = Cpus::parse(&format!("{:x}", (1u64 << ncpu()) - 1)).unwrap();

    let cam1 = "[[cast]]\nname = \"cam1\"\ninput = \"in0\"\n[[cast.output]]\ninterface = \"o1\"\n";
    let cam2: String = std::iter::once("[[cast]]\nname = \"cam2\"\ninput = \"in2\"\n".to_string())
        .chain((2..=8).map(|i| format!("[[cast.output]]\ninterface = \"o{i}\"\n")))
        .collect();
    let dir = std::env::temp_dir().join(format!("ebpf-cast-held-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("node.toml");
    std::fs::write(&file, cam1).unwrap();
    let mut svc = Proc::spawn({
        let mut c = std::process::Command::new(bin());
        c.args(["--netns", &e.edge.name, "run", "--config"]).arg(&file);
        c
    });
    svc.wait_for("Ctrl-C to stop", Duration::from_secs(20));
    assert!(until(|| backlog() == 2000), "cam1: 1 output with the flow limit: {}", backlog());
    assert!(!bitmap().is_empty(), "cam1 turned the flow limit on");

    // cam2 starts second and raises both further; cam1 stops first.
    std::fs::write(&file, format!("{cam1}\n{cam2}")).unwrap();
    svc.signal(nix::sys::signal::Signal::SIGHUP);
    svc.wait_for("started cast cam2", Duration::from_secs(10));
    assert!(until(|| backlog() == 3500), "cam2: 7 outputs that queue, 500 each: {}", backlog());
    assert!(until(|| bitmap() == all), "both inputs' steering CPUs: {:?}", bitmap().describe());
    std::fs::write(&file, &cam2).unwrap();
    svc.signal(nix::sys::signal::Signal::SIGHUP);
    svc.wait_for("stopped cast cam1", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(backlog(), 3500, "cam2 still runs on it");
    assert_eq!(bitmap(), all, "cam2 still runs on it (cam1's CPUs are not taken away under it)");

    svc.stop(nix::sys::signal::Signal::SIGTERM);
    back_to_defaults("the service");
    let _ = std::fs::remove_dir_all(&dir);
    e.assert_clean();
}

/// Two `cast` processes, one per camera: cam1 on in0, cam2 on in2, their inputs steered by RPS
/// to CPU `to.0` and `to.1`; cam1 with 1 output (o1) and cam2 with 7 (o2 .. o8), or the other
/// way round with `swap`.
fn two_casts(e: &Edge, to: (usize, usize), swap: bool) -> (Proc, Proc) {
    veth(&e.edge, "in2", &e.cam, "c2");
    steer(e, "in0", to.0);
    steer(e, "in2", to.1);
    let (one, seven) = (outputs(1), outputs(8).split_off(2));
    let (outs1, outs2) = if swap { (seven, one) } else { (one, seven) };
    let (cam1, _) = start(e, &outs1);
    let (cam2, _) = start_on(e, "in2", "cam2", &outs2);
    (cam1, cam2)
}

#[test]
fn separate_casts_put_back_the_settings_from_before_them_whatever_stops_first() {
    require_root!();
    let _host = host_at_defaults();
    let e = Edge::new(8, "10.219.0.1", "10.219.0.2");
    // cam2 starts second and raises both further (its input is steered from other CPUs, and 7
    // outputs queue); cam1 stops first.
    let (cam1, cam2) = two_casts(&e, (ncpu() - 1, 0), false);
    let all = Cpus::parse(&format!("{:x}", (1u64 << ncpu()) - 1)).unwrap();
    assert!(until(|| backlog() == 3500), "cam2: 7 outputs that queue, 500 each: {}", backlog());
    assert_eq!(bitmap(), all, "both inputs' steering CPUs");
    stop_cast(cam1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(backlog(), 3500, "cam2 still runs on it");
    assert_eq!(bitmap(), all, "cam2 still runs on it");
    stop_cast(cam2);
    back_to_defaults("the casts");
    e.assert_clean();
}

#[test]
fn a_cast_that_finds_another_casts_settings_enough_keeps_them_until_it_stops() {
    require_root!();
    let _host = host_at_defaults();
    let e = Edge::new(8, "10.221.0.1", "10.221.0.2");
    // Both inputs are steered from the same CPUs, and cam1's 7 outputs raise the backlog more
    // than cam2's one needs: cam2 changes nothing, and cam1 stops first.
    let (cam1, cam2) = two_casts(&e, (ncpu() - 1, ncpu() - 1), true);
    assert!(until(|| backlog() == 3500), "cam1: 7 outputs that queue, 500 each: {}", backlog());
    let cpus = bitmap();
    assert!(!cpus.is_empty(), "cam1 turned the flow limit on");
    stop_cast(cam1);
    std::thread::sleep(Duration::from_millis(1500)); // a cast looks at the backlog limit every second
    assert_eq!(bitmap(), cpus, "cam2 still runs on the flow limit that cam1 turned on");
    assert_eq!(backlog(), 3500, "cam2 still runs on it (and would have raised it again to 2,000)");
    stop_cast(cam2);
    back_to_defaults("the casts");
    e.assert_clean();
}

#[test]
fn a_cast_restarted_after_kill_9_puts_back_the_settings_from_before_the_first() {
    require_root!();
    let _host = host_at_defaults();
    let e = Edge::new(8, "10.222.0.1", "10.222.0.2");
    steer(&e, "in0", ncpu() - 1);
    let (first, _) = start(&e, &outputs(1));
    assert!(until(|| backlog() == 2000), "1 output with the flow limit: {}", backlog());
    let cpus = bitmap();
    assert!(!cpus.is_empty(), "the flow limit is on");
    first.signal(nix::sys::signal::Signal::SIGKILL);
    drop(first);
    // Its service manager restarts it: it finds its own settings.
    let (second, note) = start(&e, &outputs(1));
    assert_eq!((backlog(), bitmap()), (2000, cpus.clone()), "{note}");
    stop_cast(second);
    back_to_defaults("the first cast");
    e.assert_clean();
}
