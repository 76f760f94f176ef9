//! Bad input to `ebpf-cast switch`: exact error text, exit code, and nothing left attached.
mod common;

use std::time::Duration;

use common::*;

fn switch_in(ns: &Netns, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut c = ns.cmd(bin());
    c.arg("switch").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = run(c);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn nothing_attached(ns: &Netns) {
    let out = ns.sh(&format!("{} status", bin()));
    assert_eq!(out.trim(), "no ebpf-cast program is attached in this network namespace");
    assert!(!ns.sh("tc qdisc show").contains("clsact"), "no qdisc left behind");
}

fn ns_with_ports() -> Netns {
    let ns = Netns::new("err");
    ns.ip("link add name a type veth peer name b");
    ns.ip("link add name c type veth peer name d");
    for dev in ["a", "b", "c", "d"] {
        ns.ip(&format!("link set dev {dev} up"));
    }
    ns
}

#[test]
fn bad_interfaces_are_refused_with_the_fix() {
    require_root!();
    let ns = ns_with_ports();
    let cases: &[(&[&str], &str)] = &[
        (&["a", "nosuch0"], "no interface named nosuch0 in this network namespace; list them with `ip link`"),
        (&["a", "a"], "the same interface twice (a): a switch needs two different interfaces"),
        (
            &["lo", "a"],
            "interface lo is not Ethernet (link type 772): ebpf-cast switches Ethernet frames; pick an \
             Ethernet, veth or tap interface (see `ip -d link show lo`)",
        ),
        (&["a", "bad/name"], "'bad/name' is not a valid interface name (1 to 15 characters, no '/')"),
    ];
    for (args, msg) in cases {
        let (code, err) = switch_in(&ns, args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err, format!("ebpf-cast: error: {msg}\n"), "{args:?}");
        nothing_attached(&ns);
    }
}

#[test]
fn an_interface_used_by_a_running_instance_is_refused() {
    require_root!();
    let ns = ns_with_ports();
    let mut first = Proc::spawn({
        let mut c = ns.cmd(bin());
        c.args(["switch", "a", "b"]);
        c
    });
    first.wait_for("Ctrl-C to stop", Duration::from_secs(20));
    let prog_id = ns.sh(&format!("{} status --json", bin()));
    let v: serde_json::Value = serde_json::from_str(&prog_id).unwrap();
    let id = v["attachments"][0]["prog_id"].as_u64().unwrap();
    let (code, err) = switch_in(&ns, &["c", "a"], &[]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        format!(
            "ebpf-cast: error: interface a is already used by another ebpf-cast switch (program {id}, \
             attached via tcx): stop that process, or run `ebpf-cast detach a` if it is gone\n"
        )
    );
    // c was not touched, and the first instance still owns exactly a and b.
    let st: serde_json::Value = serde_json::from_str(&ns.sh(&format!("{} status --json", bin()))).unwrap();
    let mut ifs: Vec<&str> =
        st["attachments"].as_array().unwrap().iter().map(|e| e["interface"].as_str().unwrap()).collect();
    ifs.sort();
    assert_eq!(ifs, ["a", "b"]);
}

#[test]
fn missing_privileges_and_missing_btf_are_explained() {
    require_root!();
    let ns = ns_with_ports();
    let out = as_nobody(Some(&ns), &["switch", "a", "b"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ebpf-cast: error: ebpf-cast switch needs root (missing CAP_BPF and CAP_NET_ADMIN): run it as \
         root, e.g. `sudo ebpf-cast ...`\n"
    );
    nothing_attached(&ns);
    // Unprivileged, the kernel would list nothing: status says why instead of "nothing attached".
    let out = as_nobody(Some(&ns), &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ebpf-cast: error: ebpf-cast status needs root (missing CAP_BPF and CAP_NET_ADMIN): run it as \
         root, e.g. `sudo ebpf-cast ...`\n"
    );

    let (code, err) = switch_in(&ns, &["a", "b"], &[("EBPF_CAST_KERNEL_BTF", "/nonexistent/vmlinux")]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "ebpf-cast: error: this kernel has no BTF (/nonexistent/vmlinux is missing): ebpf-cast needs a \
         kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian 11 and later have it), or point \
         EBPF_CAST_KERNEL_BTF at the kernel's BTF file\n"
    );
    nothing_attached(&ns);
}
