//! Compiles every kernel program in src/bpf/ with clang and generates its CO-RE skeleton.
use std::{env, path::PathBuf};

use libbpf_cargo::SkeletonBuilder;

const PROGRAMS: &[&str] =
    &["src/bpf/switch", "src/bpf/cast", "src/bpf/hub", "src/bpf/hub_end", "bench/feed", "tests/probe/csum"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok(other) => panic!("no vmlinux.h for {other}: run vmlinux/gen.sh on such a machine"),
        Err(_) => "x86",
    };
    let vmlinux = format!("-Ivmlinux/{arch}");
    // bench/feed: the benchmark's tc -> hub probe; tests/probe/csum: a test's checksum probe.
    // Neither is part of the tool.
    for path in PROGRAMS {
        let name = path.rsplit('/').next().unwrap_or(path);
        let src = format!("{path}.bpf.c");
        SkeletonBuilder::new()
            .source(&src)
            .clang_args([vmlinux.as_str(), "-Isrc/bpf", "-Wall", "-Werror", "-O2", "-g"])
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {src}: {e:#}"));
    }
    // The same MPEG-TS rules, for userspace (recv, demo, tests).
    cc::Build::new().file("src/bpf/mpegts_host.c").include("src/bpf").warnings(true).compile("mpegts");
    // libbpf-cargo tracks no header dependencies: rebuild on any change under src/bpf or vmlinux.
    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-changed=bench/feed.bpf.c");
    println!("cargo:rerun-if-changed=tests/probe");
    println!("cargo:rerun-if-changed=vmlinux");
}
