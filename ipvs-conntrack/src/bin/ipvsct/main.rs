//! `ipvsct`: conntrack and IPVS tables with their state timeouts.
#![forbid(unsafe_code)]

mod capacity;
mod capacity_ipvs;
mod capture_cmd;
mod conntrack;
mod decode_cmd;
mod demo;
mod demo_ipvs;
mod exporter;
mod failure;
mod http;
mod ipvs;
mod output;
mod sandbox;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::failure::Failure;

/// Conntrack and IPVS tables from netlink, with the state timeouts of every entry.
#[derive(Debug, Parser)]
#[command(name = "ipvsct", version, propagate_version = true)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Connection tracking: list, get, count, per-CPU stats, state timeouts.
    #[command(subcommand)]
    Conntrack(conntrack::ConntrackCommand),
    /// IPVS: services, destinations, counters, timeouts, daemons, connections, explain.
    Ipvs(ipvs::IpvsArgs),
    /// The capacity model of the conntrack table (and of IPVS when loaded): Little's law over
    /// counts, states, timeouts and rates.
    Capacity(capacity::CapacityArgs),
    /// Builds a throw-away two-namespace sandbox, makes 50 HTTP requests and explains
    /// the conntrack entries they leave behind (needs root).
    Demo(demo::DemoArgs),
    /// Serves Prometheus metrics of the conntrack and IPVS tables on /metrics.
    Exporter(exporter::ExporterArgs),
    /// Runs another ipvsct command and records its netlink traffic into a pcap file.
    Capture(capture_cmd::CaptureArgs),
    /// Decodes a netlink pcap file (from `ipvsct capture`, or tcpdump on an nlmon device).
    Decode(decode_cmd::DecodeArgs),
}

/// Runs one parsed command.
fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Conntrack(c) => conntrack::run(c),
        Command::Demo(a) => demo::run(&a),
        Command::Capacity(a) => capacity::run(&a),
        Command::Ipvs(a) => ipvs::run(a),
        Command::Exporter(a) => exporter::run(&a),
        Command::Capture(a) => capture_cmd::run(&a),
        Command::Decode(a) => decode_cmd::run(&a),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_list_with_filters() {
        let cli = Cli::try_parse_from([
            "ipvsct",
            "conntrack",
            "list",
            "--netns",
            "blue",
            "--json",
            "--proto",
            "tcp",
            "--dport",
            "80",
            "--state",
            "time_wait",
        ])
        .unwrap();
        let Command::Conntrack(conntrack::ConntrackCommand::List(l)) = cli.command else {
            panic!("not a list command");
        };
        assert_eq!(l.common.netns.as_deref(), Some("blue"));
        assert!(l.common.json);
        assert_eq!(l.dport, Some(80));
        assert_eq!(l.proto.as_deref(), Some("tcp"));
        assert!(
            Cli::try_parse_from(["ipvsct", "conntrack", "list", "--dying", "--unconfirmed"])
                .is_err()
        );
    }
}
