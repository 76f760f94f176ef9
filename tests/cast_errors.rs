//! Bad input to `ebpf-cast cast`: exact error text, exit code 2, and nothing attached.
mod common;

use common::*;

fn cast_in(ns: &Netns, args: &[String]) -> (i32, String) {
    let mut c = ns.cmd(bin());
    c.arg("cast").args(args);
    let out = run(c);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn bad_outputs_and_policies_are_refused_with_the_fix() {
    require_root!();
    let ns = Netns::new("casterr");
    ns.ip("link add name in0 type veth peer name in1");
    ns.ip("link add name o1 type veth peer name p1");
    let many: Vec<String> = std::iter::once("in0".to_string())
        .chain((0..1025).flat_map(|i| ["--to".to_string(), format!("x{i}")]))
        .collect();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            s(&["in0", "--to", "nosuch0"]),
            "ebpf-cast: error: no interface named nosuch0 in this network namespace; list them with `ip link`\n",
        ),
        (
            s(&["in0", "--to", "o1", "--to", "o1:key"]),
            "ebpf-cast: error: output o1 is given twice: list each output once, with one policy\n",
        ),
        (
            s(&["in0", "--to", "o1", "--to", "in0:key"]),
            "ebpf-cast: error: the input in0 is also an output: a stream cannot be cast back where it came from\n",
        ),
        (many, "ebpf-cast: error: 1025 outputs: at most 1024 per cast\n"),
        (
            s(&["in0", "--to", "o1", "--port", "1", "--port", "2", "--port", "3", "--port", "4", "--port", "5",
                "--port", "6", "--port", "7", "--port", "8", "--port", "9"]),
            "ebpf-cast: error: 9 --port values: at most 8\n",
        ),
        (
            s(&["in0", "--to", "o1", "--port", "0"]),
            "ebpf-cast: error: --port 0 is no destination port: give the stream's UDP port, 1 to 65535\n",
        ),
        (
            s(&["in0", "--to", "o1", "--port", "5000", "--port", "5000"]),
            "ebpf-cast: error: --port 5000 is given twice: list each port once\n",
        ),
        (
            s(&["lo", "--to", "o1"]),
            "ebpf-cast: error: interface lo is not Ethernet (link type 772): ebpf-cast switches Ethernet \
             frames; pick an Ethernet, veth or tap interface (see `ip -d link show lo`)\n",
        ),
    ];
    for (args, want) in cases {
        let (code, err) = cast_in(&ns, &args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err, want, "{:?}", &args[..args.len().min(6)]);
        assert!(ns.sh(&format!("{} status", bin())).contains("no ebpf-cast program is attached"));
    }
    // A malformed policy is a usage error reported by the parser, naming the output.
    let (code, err) = cast_in(&ns, &s(&["in0", "--to", "o1:half"]));
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "invalid value 'o1:half' for '--to <OUT[:POLICY]>': output o1: malformed policy 'half': use all, \
             ref, key, nonref=F with F from 0 to 1 (e.g. nonref=0.5), or max=RATE in bits/s (e.g. max=800k)"
        ),
        "{err}"
    );
    let (code, err) = cast_in(&ns, &s(&["in0", "--to", "o1:max=100"]));
    assert_eq!(code, 2);
    assert!(err.contains("policy 'max=100': give a cap from 1k to 4G, in bits/s of UDP payload"), "{err}");
    let (code, err) = cast_in(&ns, &s(&["in0", "--to", "o1:nonref=2"]));
    assert_eq!(code, 2);
    assert!(err.contains("malformed policy 'nonref=2'"), "{err}");
    let (code, err) = cast_in(&ns, &s(&["in0", "--to", "o1", "--pid", "0x2000"]));
    assert_eq!(code, 2);
    assert!(err.contains("'0x2000' is not a video PID: give 0x10 to 0x1ffe"), "{err}");
}
