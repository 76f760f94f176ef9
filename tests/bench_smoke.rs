//! Smoke test of the benchmark: `bench/run --quick` with N = 4 builds its topology, runs every
//! mechanism and each delivers copies. (The numbers themselves are not judged here.)
mod common;

use common::*;

#[test]
fn quick_bench_runs_every_mechanism() {
    if !need_root() {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("ebpf-cast-bench-{}", std::process::id()));
    let run = std::process::Command::new(root.join("bench/run"))
        .args(["--quick", "--n", "4", "--out"])
        .arg(&out)
        .current_dir(root)
        .output()
        .expect("running bench/run");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "bench/run failed:\n{stderr}");
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let mut seen = Vec::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[0], "4");
        let copies: f64 = f[2].parse().unwrap();
        assert!(copies > 0.0, "{} delivered nothing: {line}", f[1]);
        seen.push(f[1].to_string());
    }
    seen.sort();
    assert_eq!(seen, ["bridge", "cast-all", "cast-all-synthetic", "cast-mixed", "mirred", "relay"]);
    assert!(out.join("results.md").exists());
    let left = sh("ip netns list");
    assert!(!left.contains("ecb"), "bench namespaces left behind: {left}");
    let _ = std::fs::remove_dir_all(&out);
}
