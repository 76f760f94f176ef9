//! The switch program run by the kernel on crafted frames (BPF_PROG_TEST_RUN), inside a fresh
//! network namespace so that nothing can leave it.
mod common;

use std::mem::MaybeUninit;

use common::*;
use ebpf_cast::kernel::skel::{self, switch::*};
use libbpf_rs::{skel::OpenSkel, MapCore, MapFlags, ProgramInput};

const TC_ACT_OK: u32 = 0;
const TC_ACT_REDIRECT: u32 = 7;
/// test_run runs the program on the namespace's loopback device.
const LO: u32 = 1;

fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    if len >= 14 {
        f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes()); // local experimental ethertype
    }
    f
}

/// Loads the program in `mode`, optionally maps lo -> `out`, and returns (retvals, packets, bytes, errors).
fn run_frames(
    mode: types::sw_mode,
    port: Option<u32>,
    frames: Vec<Vec<u8>>,
) -> (Vec<Result<u32, String>>, [u64; 3]) {
    let ns = Netns::new("prog");
    ns.enter(move || {
        let mut obj = MaybeUninit::uninit();
        let mut open = skel::open(SwitchSkelBuilder::default(), &mut obj).unwrap();
        open.maps.rodata_data.as_deref_mut().unwrap().sw_mode = mode;
        let skel = open.load().unwrap();
        let ncpu = libbpf_rs::num_possible_cpus().unwrap();
        if let Some(out) = port {
            let v = types::sw_port { out_ifindex: out, ..Default::default() };
            let bytes = unsafe { plain::as_bytes(&v) }.to_vec();
            skel.maps.ecsw_ports.update_percpu(&LO.to_ne_bytes(), &vec![bytes; ncpu], MapFlags::ANY).unwrap();
        }
        let rets = frames
            .iter()
            .map(|f| {
                let input = ProgramInput { data_in: Some(f), ..Default::default() };
                skel.progs.ecast_switch_in.test_run(input).map(|o| o.return_value).map_err(|e| e.to_string())
            })
            .collect();
        let mut sums = [0u64; 3];
        for p in skel::per_cpu::<types::sw_port>(&skel.maps.ecsw_ports, LO).unwrap() {
            sums[0] += p.packets;
            sums[1] += p.bytes;
            sums[2] += p.errors;
        }
        (rets, sums)
    })
}

#[test]
fn known_port_is_redirected_and_counted() {
    require_root!();
    let (rets, [packets, bytes, errors]) =
        run_frames(types::sw_mode::SW_MODE_REDIRECT, Some(4242), vec![frame(60), frame(1514), frame(14)]);
    assert_eq!(rets, vec![Ok(TC_ACT_REDIRECT); 3]);
    assert_eq!((packets, bytes, errors), (3, 60 + 1514 + 14, 0));
}

#[test]
fn unknown_port_passes_untouched() {
    require_root!();
    let (rets, sums) = run_frames(types::sw_mode::SW_MODE_REDIRECT, None, vec![frame(60), frame(1514)]);
    assert_eq!(rets, vec![Ok(TC_ACT_OK); 2]);
    assert_eq!(sums, [0, 0, 0]);
}

#[test]
fn runt_frame_never_reaches_the_program() {
    require_root!();
    // The kernel refuses frames shorter than an Ethernet header before the program runs
    // (and the program itself passes any frame under 14 bytes): nothing is counted.
    let (rets, sums) = run_frames(types::sw_mode::SW_MODE_REDIRECT, Some(4242), vec![frame(13), frame(12)]);
    assert!(rets.iter().all(|r| r.as_ref().is_err_and(|e| e.contains("Invalid argument"))), "{rets:?}");
    assert_eq!(sums, [0, 0, 0]);
}

#[test]
fn clone_mode_counts_a_failed_clone_and_passes_the_original() {
    require_root!();
    // ifindex 4242 does not exist in the fresh namespace: the clone fails, the original goes on.
    let (rets, [packets, bytes, errors]) =
        run_frames(types::sw_mode::SW_MODE_CLONE, Some(4242), vec![frame(100), frame(200)]);
    assert_eq!(rets, vec![Ok(TC_ACT_OK); 2]);
    assert_eq!((packets, bytes, errors), (2, 300, 2));
}
