//! Why a command failed: a one-line message for stderr and the exit code.

use std::io;
use std::process::ExitCode;

use ipvs_conntrack::Error;

/// Exit code for a failed command.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a bad combination of arguments (clap uses the same code).
pub const EXIT_USAGE: u8 = 2;

/// A failed command: what to print on stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code of the process.
    pub code: u8,
    /// One-line message (empty: print nothing).
    pub message: String,
}

impl Failure {
    /// A failure with exit code 1.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }

    /// A bad argument combination (exit code 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// Prints the message (flattened to one line) and returns the exit code.
    pub fn report(&self) -> ExitCode {
        if !self.message.is_empty() {
            let line = self.message.replace(['\n', '\r'], " ");
            eprintln!("ipvsct: {line}");
        }
        ExitCode::from(self.code)
    }

    /// Maps an error writing to stdout: a closed pipe (`| head`) ends quietly with success.
    pub fn from_output(e: io::Error) -> Failure {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure {
                code: 0,
                message: String::new(),
            }
        } else {
            Failure::new(format!("writing output: {e}"))
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let hint = match &e {
            Error::Namespace { source, .. } => match source.raw_os_error() {
                Some(1) | Some(13) => {
                    " (entering a network namespace needs CAP_SYS_ADMIN: run as root)"
                }
                Some(2) => " (no such namespace: see `ip netns list`)",
                _ => "",
            },
            _ => "",
        };
        Failure::new(format!("{e}{hint}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_and_namespace_messages() {
        let f = Failure::from(Error::Permission {
            op: "conntrack dump",
        });
        assert!(f.message.contains("run as root"), "{}", f.message);
        assert!(f.message.contains("CAP_NET_ADMIN"), "{}", f.message);
        assert_eq!(f.code, EXIT_FAILURE);
        let f = Failure::from(Error::Namespace {
            netns: "blue".into(),
            source: io::Error::from_raw_os_error(2),
        });
        assert!(
            f.message.starts_with("network namespace blue"),
            "{}",
            f.message
        );
        assert!(f.message.ends_with("see `ip netns list`)"), "{}", f.message);
        let quiet = Failure::from_output(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!((quiet.code, quiet.message.as_str()), (0, ""));
    }
}
