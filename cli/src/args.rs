//! The command line of `logs-sse` (clap), turned into each command's options.

use std::io::IsTerminal;
use std::num::NonZeroU32;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use logs_sse_protocol::Channel;

use crate::batch::{InputFormat, Target};
use crate::exit::{Failure, EXIT_CODES_HELP};
use crate::publish::PublishOptions;
use crate::tail::TailOptions;

#[derive(Debug, Parser)]
#[command(name = "logs-sse", version, about = "Follow and publish Datashop log channels", after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Gateway base URL: http:// (a node) or, built with TLS, https:// (the proxy; SSL_CERT_FILE replaces the system CAs).
    #[arg(
        long,
        global = true,
        env = "LOGS_SSE_GATEWAY",
        default_value = "http://127.0.0.1:3002"
    )]
    pub gateway: String,

    /// `tail`: subscriber JWT; `publish`: the service's publish token.
    #[arg(long, global = true, env = "LOGS_SSE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Follow channels like `tail -f`, resuming from cursors after a drop.
    Tail(TailArgs),
    /// Publish stdin, line by line or NDJSON, to one resource's channel.
    Publish(PublishArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct TailArgs {
    /// Channels, e.g. logs:etl:ws123:wf456 or logs:etl:ws123 (whole service).
    #[arg(required = true, value_name = "CHANNEL")]
    pub channels: Vec<String>,

    /// Start with the latest N logs of each channel the history holds.
    #[arg(long, value_name = "N")]
    pub history: Option<NonZeroU32>,

    /// Print each log event as the gateway's JSON line.
    #[arg(long)]
    pub json: bool,

    /// Colour levels: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,

    /// Exit with code 6 when logs may be missing instead of warning.
    #[arg(long)]
    pub fail_on_gap: bool,

    /// Exit after printing this many logs.
    #[arg(long, value_name = "N")]
    pub exit_after: Option<u64>,

    /// No notices on stderr (gaps and errors are still reported).
    #[arg(long, short)]
    pub quiet: bool,
}

impl TailArgs {
    pub fn into_options(self, base: String, token: Option<String>) -> Result<TailOptions, Failure> {
        let channels = self
            .channels
            .iter()
            .flat_map(|arg| arg.split(','))
            .filter(|c| !c.is_empty())
            .map(|c| {
                c.parse::<Channel>()
                    .map_err(|e| Failure::Usage(format!("channel {c:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let color = match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        };
        Ok(TailOptions {
            base,
            token,
            channels,
            history: self.history,
            json: self.json,
            color,
            fail_on_gap: self.fail_on_gap,
            exit_after: self.exit_after,
            quiet: self.quiet,
        })
    }
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct PublishArgs {
    /// Service of the logs (the token must grant it), e.g. etl.
    #[arg(long)]
    pub service: String,
    /// Workspace id.
    #[arg(long)]
    pub workspace: String,
    /// Resource id (workflow, function, job): the channel is
    /// logs:{service}:{workspace}:{resource}.
    #[arg(long)]
    pub resource: String,
    /// Level of plain-text lines.
    #[arg(long, default_value = "info")]
    pub level: String,
    /// How lines become logs.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: InputFormat,
    /// Most logs in one request (the gateway's --max-batch is 1000 by default).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch_size: u64,
    /// Longest a line waits for its batch to fill, in milliseconds.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub linger_ms: u64,
    /// Retries of a batch after a temporary failure (connection, 429, 5xx).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub retries: u32,
    /// Copy stdin to stdout too, so the job's output stays visible.
    #[arg(long)]
    pub tee: bool,
}

impl PublishArgs {
    pub fn into_options(self, base: String, token: Option<String>) -> PublishOptions {
        PublishOptions {
            base,
            token,
            target: Target {
                service: self.service,
                workspace: self.workspace,
                resource: self.resource,
                level: self.level,
            },
            format: self.format,
            batch_size: usize::try_from(self.batch_size).unwrap_or(500),
            linger: Duration::from_millis(self.linger_ms),
            retries: self.retries,
            tee: self.tee,
        }
    }
}
