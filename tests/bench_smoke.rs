//! Smoke test of the benchmark: `bench/run --quick --rx backlog` with N = 4 builds its topology,
//! runs every mechanism and each delivers copies, losslessly and under overload. (The numbers
//! themselves are not judged here.)
mod common;

use common::*;

#[test]
fn quick_bench_runs_every_mechanism() {
    require_root!();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("ebpf-cast-bench-{}", std::process::id()));
    let run = std::process::Command::new(root.join("bench/run"))
        .args(["--quick", "--rx", "backlog", "--n", "4", "--out"])
        .arg(&out)
        .current_dir(root)
        .output()
        .expect("running bench/run");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "bench/run failed:\n{stderr}");
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let mut seen = Vec::new();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col =
        |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name} column"));
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!((f[col("rx")], f[col("n")]), ("backlog", "4"));
        let mech = f[col("mechanism")];
        for c in ["copies_per_s_median", "lossless_copies_per_s", "overload_copies_per_s"] {
            let v: f64 = f[col(c)].parse().unwrap();
            assert!(v > 0.0, "{mech}: {c} is {v}: {line}");
        }
        seen.push(mech.to_string());
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "bridge",
            "cast-all",
            "cast-all-synthetic",
            "cast-mixed",
            "mirred",
            "relay",
            "tc-peer-xdp-hub",
            "tc-xdp-hub",
            "xdp-broadcast"
        ]
    );
    assert!(out.join("results.md").exists());
    let left = sh("ip netns list");
    assert!(!left.contains("ecb"), "bench namespaces left behind: {left}");
    let _ = std::fs::remove_dir_all(&out);
}
