//! Errors the user can fix by changing the command line: they exit with code 2.
use std::fmt;

/// Bad input (an interface, a policy, an option): the message names it and the fix.
#[derive(Debug)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Shorthand: `return Err(input(format!(...)))`.
pub fn input(msg: impl Into<String>) -> anyhow::Error {
    InputError(msg.into()).into()
}

/// Exit code for an error: 2 for bad input, 1 for everything else.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<InputError>().is_some() {
        2
    } else {
        1
    }
}
