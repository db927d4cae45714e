//! Exit codes of `logs-sse` and the failures that lead to them.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | done: `tail` interrupted or `--exit-after` reached; `publish` delivered every log |
//! | 1 | `publish`: the gateway rejected some logs (each one is reported on stderr) |
//! | 2 | usage: bad flags, a malformed channel name, or the gateway answered 400 |
//! | 3 | `publish`: the gateway could not be reached or kept failing; logs not delivered (`tail` retries) |
//! | 4 | authentication failed (401): missing, malformed or expired token |
//! | 5 | forbidden (403), or a `tail` channel was denied |
//! | 6 | `tail --fail-on-gap`: logs may be missing (history no longer covered the cursor) |

use std::fmt;
use std::process::ExitCode;

/// Why a command stopped before doing all it was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Rejected(String),
    Usage(String),
    Unreachable(String),
    Unauthorized(String),
    Forbidden(String),
    Gap(String),
}

impl Failure {
    /// The documented process exit code.
    pub fn code(&self) -> u8 {
        match self {
            Failure::Rejected(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Unreachable(_) => 3,
            Failure::Unauthorized(_) => 4,
            Failure::Forbidden(_) => 5,
            Failure::Gap(_) => 6,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, message) = match self {
            Failure::Rejected(m) => ("logs rejected", m),
            Failure::Usage(m) => ("usage", m),
            Failure::Unreachable(m) => ("gateway unavailable", m),
            Failure::Unauthorized(m) => ("authentication failed", m),
            Failure::Forbidden(m) => ("forbidden", m),
            Failure::Gap(m) => ("gap", m),
        };
        write!(f, "{what}: {message}")
    }
}

/// The help text's table of exit codes.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done (tail interrupted or --exit-after reached; publish delivered every log)
  1  publish: the gateway rejected some logs (each is reported on stderr)
  2  usage: bad flags, a malformed channel name, or the gateway answered 400
  3  publish: the gateway could not be reached or kept failing, logs not delivered
     (tail keeps retrying, like tail -f)
  4  authentication failed (401)
  5  forbidden (403), or a tail channel was denied
  6  tail --fail-on-gap: logs may be missing";
