//! The command line. Doc comments here are the `--help` text.
use clap::{Parser, Subcommand};

use crate::{
    cast::CastArgs, demo::DemoArgs, recv::RecvArgs, send::SendArgs, stats::StatsArgs, switch::SwitchArgs,
};

/// ebpf-cast: an in-kernel, content-aware packet switch for live video.
///
/// Programs at the tc ingress hook forward frames between interfaces (`switch`) or replicate an
/// MPEG-TS video stream to many outputs with a quality policy each (`cast`). Needs root and a
/// kernel with BTF. New here? Run `ebpf-cast demo`.
#[derive(Debug, Parser)]
#[command(name = "ebpf-cast", version, about, long_about, arg_required_else_help = true)]
pub struct Cli {
    /// Run in this network namespace (as `ip netns exec NAME`, but keeping the host's
    /// /sys/fs/bpf, so that pins are shared between invocations)
    #[arg(long, global = true, value_name = "NAME")]
    pub netns: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Cross-connect two Ethernet interfaces in the kernel (an L2 switch of two ports).
    ///
    /// Every frame that arrives on A leaves on B and every frame that arrives on B leaves on A.
    /// Prints the interface table, runs until Ctrl-C or SIGTERM, then prints the per-direction
    /// counters and detaches.
    ///
    /// Example: ebpf-cast switch eth1 tap0 --stats-interval 5
    Switch(SwitchArgs),
    /// Replicate MPEG-TS video arriving on IN to many outputs, each with a quality policy.
    ///
    /// Every TS packet of every datagram is classified in the kernel by the video frame it
    /// belongs to (keyframe, reference, non-reference, from the H.264/H.265 NAL headers). Each
    /// output receives whole frames only: the packets of the frames its policy drops are cut out
    /// of the datagram, continuity counters are renumbered and PCRs are kept, so every output
    /// decodes cleanly. Outputs must be interfaces of this network namespace (their veth peers
    /// may be elsewhere).
    ///
    /// Example: ebpf-cast cast eth0 --to veth1 --to veth2:nonref=0.5 --to veth3:key --port 5000
    Cast(CastArgs),
    /// See it work: a camera, an edge node and three consumers in private namespaces.
    ///
    /// Builds a sandbox of network namespaces, casts the built-in 10 s clip to consumers with
    /// policies all, nonref=0.5 and key, prints a live table and a final comparison, and
    /// removes everything it made (also on Ctrl-C).
    Demo(DemoArgs),
    /// Stream an MPEG-TS file over UDP, paced in real time by its PCR.
    ///
    /// Example: ebpf-cast send camera.ts 10.0.0.1:5000 --rtp --loop 3
    Send(SendArgs),
    /// Receive a UDP MPEG-TS stream, save it and report what arrived.
    ///
    /// Reports datagrams, bit rate, TS packets per PID, continuity errors, the largest PCR gap and
    /// the video frames by kind, classified with the same rules as the kernel program.
    ///
    /// Example: ebpf-cast recv 0.0.0.0:5000 --out got.ts --duration 10
    Recv(RecvArgs),
    /// Change the outputs of a running cast: add, del, set.
    ///
    /// Example: ebpf-cast out add eth1 vm4:nonref=0.5; ebpf-cast out set eth1 vm4 key
    #[command(subcommand)]
    Out(crate::out::OutCmd),
    /// Counters of running casts (per output and per flow), from their maps.
    ///
    /// Example: ebpf-cast stats eth1 --watch 2
    Stats(StatsArgs),
    /// List the casts and the attached ebpf-cast programs of this network namespace.
    Status {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Run every cast of a TOML file in one process, as a service: SIGHUP re-reads the file.
    ///
    /// A reload applies the difference live: outputs added, removed or changed through the same
    /// path as `out add|del|set` (the others lose nothing), casts removed from the file stop, new
    /// ones start. A file with an error is refused and the running casts stay as they are.
    /// Example config: /usr/share/doc/ebpf-cast/ebpf-cast.toml (`check-config` checks one).
    ///
    /// Example: ebpf-cast run --config /etc/ebpf-cast/ebpf-cast.toml --metrics 127.0.0.1:9464
    Run(crate::run::RunArgs),
    /// Check a configuration file: exit 0, or 2 with every error, its line and the fix.
    CheckConfig {
        /// The TOML file
        file: std::path::PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// Example: ebpf-cast completions bash > /etc/bash_completion.d/ebpf-cast
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Remove every ebpf-cast program from an interface (e.g. a tc filter left by kill -9), or
    /// with --orphans the pins of casts whose network namespace is gone.
    Detach {
        /// The interface to clean
        #[arg(required_unless_present = "orphans")]
        interface: Option<String>,
        /// Remove the pins of casts whose network namespace no longer exists (`status` lists them)
        #[arg(long)]
        orphans: bool,
    },
}
