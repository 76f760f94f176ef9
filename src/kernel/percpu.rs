//! Where one of the kernel's per-CPU variables lies from another. Every CPU's copy of the
//! per-CPU area has the same layout, which the kernel's BTF gives (its `.data..percpu`
//! section): the cast program reaches this CPU's runqueue through the running task, and from
//! there the CPU's input backlog (`softnet_data`), which BPF cannot name on kernels built
//! without KALLSYMS_ALL.
use libbpf_rs::btf::{types::DataSec, Btf, BtfType};

/// Bytes from `runqueues` to `softnet_data`; None where the BTF does not say. Read once per
/// process (every hub's programs need it).
pub fn rq_to_softnet() -> Option<i64> {
    static ONCE: std::sync::OnceLock<Option<i64>> = std::sync::OnceLock::new();
    *ONCE.get_or_init(read)
}

fn read() -> Option<i64> {
    let btf = Btf::from_vmlinux().ok()?;
    let sec: DataSec = btf.type_by_name(".data..percpu")?;
    let offset = |name: &str| {
        sec.iter().find_map(|v| {
            let var: BtfType = btf.type_by_id(v.ty)?;
            (var.name()? == name).then_some(i64::from(v.offset))
        })
    };
    Some(offset("softnet_data")? - offset("runqueues")?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_variables_are_in_the_per_cpu_section() {
        // This kernel's BTF (every kernel ebpf-cast runs on has one): both are there, the
        // backlog after the runqueue as the kernel links them today.
        let delta = super::rq_to_softnet().expect("runqueues and softnet_data in the BTF");
        assert!(delta != 0 && delta.abs() < 1 << 20, "{delta}");
    }
}
