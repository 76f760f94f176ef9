//! ebpf-cast: parse the command line and dispatch to the subcommand's module.
use clap::Parser;
use ebpf_cast::{cast, cli, demo, error, recv, send, status, switch};

fn main() {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Switch(args) => switch::run(&args),
        cli::Command::Cast(args) => cast::run(&args),
        cli::Command::Demo(args) => demo::run(&args),
        cli::Command::Send(args) => send::run(&args),
        cli::Command::Recv(args) => recv::run(&args),
        cli::Command::Status { json } => status::run(json),
        cli::Command::Detach { interface } => status::detach(&interface),
    };
    if let Err(err) = result {
        eprintln!("ebpf-cast: error: {err:#}");
        std::process::exit(error::exit_code(&err));
    }
}
