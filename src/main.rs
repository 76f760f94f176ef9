//! ebpf-cast: parse the command line and dispatch to the subcommand's module.
use clap::Parser;
use ebpf_cast::{cast, cli, demo, error, out, recv, send, stats, status, switch};

fn main() {
    let cli = cli::Cli::parse();
    if let Some(ns) = &cli.netns {
        if let Err(err) = enter_netns(ns) {
            eprintln!("ebpf-cast: error: {err:#}");
            std::process::exit(error::exit_code(&err));
        }
    }
    let result = match cli.command {
        cli::Command::Switch(args) => switch::run(&args),
        cli::Command::Cast(args) => cast::run(&args),
        cli::Command::Demo(args) => demo::run(&args),
        cli::Command::Send(args) => send::run(&args),
        cli::Command::Recv(args) => recv::run(&args),
        cli::Command::Stats(args) => stats::run(&args),
        cli::Command::Out(cmd) => out::run(&cmd),
        cli::Command::Status { json } => status::run(json),
        cli::Command::Detach { interface, orphans } => {
            let removed = if orphans { status::remove_orphans() } else { Ok(()) };
            removed.and_then(|()| interface.map_or(Ok(()), |i| status::detach(&i)))
        }
    };
    if let Err(err) = result {
        eprintln!("ebpf-cast: error: {err:#}");
        std::process::exit(error::exit_code(&err));
    }
}

/// Joins a named network namespace (of `ip netns add`) before anything else runs.
fn enter_netns(name: &str) -> anyhow::Result<()> {
    let path = format!("/run/netns/{name}");
    let f = std::fs::File::open(&path).map_err(|e| {
        error::input(format!("no network namespace {name} ({path}: {e}); list them with `ip netns`"))
    })?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| anyhow::anyhow!("entering network namespace {name}: {e} (needs root)"))?;
    Ok(())
}
