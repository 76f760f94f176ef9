//! ebpf-cast: parse the command line and dispatch to the subcommand's module.
use clap::Parser;
use ebpf_cast::{cast, cli, demo, error, out, recv, run, send, stats, status, switch};

fn main() {
    let cli = cli::Cli::parse();
    if let Some(ns) = &cli.netns {
        if let Err(err) = ebpf_cast::kernel::netns::enter(ns) {
            eprintln!("ebpf-cast: error: {err:#}");
            std::process::exit(error::exit_code(&err));
        }
    }
    // Commands that print and exit end quietly when their reader goes away (`stats | head`), as
    // Unix tools do: Rust ignores SIGPIPE, so each print into a closed pipe panicked. The
    // others keep ignoring it: a cast must clean up whatever becomes of its output.
    if matches!(
        cli.command,
        cli::Command::Stats(_)
            | cli::Command::Status { .. }
            | cli::Command::Completions { .. }
            | cli::Command::CheckConfig { .. }
    ) {
        // SAFETY: the default action, set before any other thread exists.
        let _ = unsafe {
            nix::sys::signal::signal(nix::sys::signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl)
        };
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
        cli::Command::Run(args) => run::run(&args),
        cli::Command::CheckConfig { file } => run::check(&file),
        cli::Command::Completions { shell } => {
            let mut cmd = <cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "ebpf-cast", &mut std::io::stdout());
            Ok(())
        }
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
