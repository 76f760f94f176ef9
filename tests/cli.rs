//! The command line as any Unix tool's: output into a pipe whose reader has gone.
mod common;

use std::{
    os::unix::process::ExitStatusExt,
    process::{Command, Stdio},
};

use common::*;

/// Runs `ebpf-cast args` with its standard output a pipe closed before it writes: it must end
/// from SIGPIPE, silently, as `ebpf-cast stats --json | head -1` would once head is done.
fn into_a_closed_pipe(args: &[&str]) {
    let (rd, wr) = nix::unistd::pipe().unwrap();
    drop(rd);
    let out = Command::new(bin()).args(args).stdout(Stdio::from(wr)).stderr(Stdio::piped()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert_eq!(out.status.signal(), Some(nix::libc::SIGPIPE), "{args:?}: {:?} {err}", out.status);
}

#[test]
fn printing_commands_end_quietly_when_their_reader_has_gone() {
    into_a_closed_pipe(&["completions", "bash"]);
    into_a_closed_pipe(&["completions", "zsh"]);
}

#[test]
fn status_ends_quietly_when_its_reader_has_gone() {
    require_root!();
    into_a_closed_pipe(&["status", "--json"]);
}
