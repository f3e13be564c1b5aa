//! `StartupError`: why hearth could not start, in one sentence a
//! non-developer can act on. Runtime errors never reach the user this way;
//! they are logged and answered per request.

use std::fmt;

#[derive(Debug)]
pub struct StartupError {
    message: String,
}

impl StartupError {
    /// A bad flag or value on the command line.
    pub fn usage(message: impl Into<String>) -> StartupError {
        StartupError { message: message.into() }
    }

    /// Anything in the environment: a busy port, an unreadable key, a data
    /// directory that cannot be written.
    pub fn env(message: impl Into<String>) -> StartupError {
        StartupError { message: message.into() }
    }

    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        2
    }
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StartupError {}
