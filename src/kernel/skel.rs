//! The generated CO-RE skeletons, and how every command opens them.

use std::{ffi::CString, mem::MaybeUninit, sync::OnceLock};

use anyhow::{Context, Result};
use libbpf_rs::skel::SkelBuilder;

// The generated code is libbpf-cargo's, not ours to lint.
#[allow(clippy::all, dead_code, non_camel_case_types, non_snake_case, unused_imports)]
pub mod switch {
    include!(concat!(env!("OUT_DIR"), "/switch.skel.rs"));
}
#[allow(clippy::all, dead_code, non_camel_case_types, non_snake_case, unused_imports)]
pub mod cast {
    include!(concat!(env!("OUT_DIR"), "/cast.skel.rs"));
}
#[allow(clippy::all, dead_code, non_camel_case_types, non_snake_case, unused_imports)]
pub mod hub {
    include!(concat!(env!("OUT_DIR"), "/hub.skel.rs"));
}
#[allow(clippy::all, dead_code, non_camel_case_types, non_snake_case, unused_imports)]
pub mod hub_end {
    include!(concat!(env!("OUT_DIR"), "/hub_end.skel.rs"));
}

// SAFETY: the generated types are #[repr(C)] plain data with no pointers or invariants.
unsafe impl plain::Plain for switch::types::sw_port {}
unsafe impl plain::Plain for switch::types::rodata {}
unsafe impl plain::Plain for cast::types::cast_ostat {}
unsafe impl plain::Plain for cast::types::flow_key {}
unsafe impl plain::Plain for cast::types::cast_flow {}
unsafe impl plain::Plain for cast::types::cast_cap {}
unsafe impl plain::Plain for cast::types::cast_admission {}
unsafe impl plain::Plain for cast::types::rodata {}
unsafe impl plain::Plain for cast::types::bss {}

/// Opens a skeleton, with the kernel BTF path of preflight::kernel_btf_path() when it is not the default.
pub fn open<'obj, B: SkelBuilder<'obj>>(
    builder: B,
    obj: &'obj mut MaybeUninit<libbpf_rs::OpenObject>,
) -> Result<B::Output> {
    static BTF: OnceLock<Option<CString>> = OnceLock::new();
    let btf = BTF.get_or_init(|| {
        std::env::var_os("EBPF_CAST_KERNEL_BTF").and_then(|p| CString::new(p.into_encoded_bytes()).ok())
    });
    let opened = match btf {
        Some(path) => {
            let opts = libbpf_sys::bpf_object_open_opts {
                sz: std::mem::size_of::<libbpf_sys::bpf_object_open_opts>() as _,
                btf_custom_path: path.as_ptr(),
                ..Default::default()
            };
            builder.open_opts(opts, obj)
        }
        None => builder.open(obj),
    };
    opened.context("opening the BPF object")
}

/// The values of a per-CPU map's `key`, one per possible CPU (none if the key has no value).
pub fn per_cpu<T: plain::Plain + Copy>(map: &dyn libbpf_rs::MapCore, key: u32) -> Result<Vec<T>> {
    let per_cpu = map
        .lookup_percpu(&key.to_ne_bytes(), libbpf_rs::MapFlags::ANY)
        .with_context(|| format!("reading {}", map.name().to_string_lossy()))?
        .unwrap_or_default();
    per_cpu
        .iter()
        .map(|b| {
            from_bytes(b)
                .with_context(|| format!("a value of {} has another size", map.name().to_string_lossy()))
        })
        .collect()
}

/// Reads a #[repr(C)] value of a map from its bytes.
pub fn from_bytes<T: plain::Plain + Copy>(bytes: &[u8]) -> Option<T> {
    plain::from_bytes::<T>(bytes).ok().copied()
}
