//! ebpf-cast as a library: the subcommands and the kernel programs' skeletons, also used by the tests.
pub mod attach;
pub mod backlog;
pub mod cast;
pub mod cli;
pub mod error;
pub mod iface;
pub mod installed;
pub mod mpegts;
pub mod policy;
pub mod preflight;
pub mod recv;
pub mod send;
pub mod signals;
pub mod skel;
pub mod status;
pub mod switch;
