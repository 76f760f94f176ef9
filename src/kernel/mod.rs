//! Everything that touches the kernel directly, below the commands: the generated skeletons
//! (`skel`), attaching at ingress (`attach`) and finding what is attached (`installed`), the
//! pins of running casts (`pins`), the checks before loading (`preflight`), the input backlog
//! sysctl (`backlog`), the flow limit for RPS-steered inputs (`flow_limit`), both through
//! `sysctl`, the layout of per-CPU variables (`percpu`), interfaces (`iface`), and network
//! namespaces (`netns` for `--netns`, `sandbox` for private ones).
pub mod attach;
pub mod backlog;
pub mod flow_limit;
pub mod iface;
pub mod installed;
pub mod netns;
pub mod percpu;
pub mod pins;
pub mod preflight;
pub mod sandbox;
pub mod skel;
pub mod sysctl;
