//! `ipvsct capture -o FILE.pcap -- COMMAND…`: runs another ipvsct command and records
//! every netlink datagram it sends and receives (dumps, events, IPVS reads, the nlctrl
//! lookups) into a pcap file of link type LINKTYPE_NETLINK, the format nlmon + tcpdump
//! write. `ipvsct decode`, tshark and Wireshark read it.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser};
use ipvs_conntrack::capture::Capture;

use crate::failure::Failure;
use crate::{Cli, Command};

/// Options of `ipvsct capture`.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// The pcap file to write (created, or truncated if it exists).
    #[arg(short = 'o', long = "output", value_name = "FILE.pcap")]
    pub output: PathBuf,
    /// The ipvsct command to run and record, e.g. `-- conntrack list --json`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

/// Runs the command with every netlink socket recording into the file.
pub fn run(a: &CaptureArgs) -> Result<(), Failure> {
    let argv = std::iter::once(OsString::from("ipvsct")).chain(a.command.iter().cloned());
    let inner = Cli::try_parse_from(argv).unwrap_or_else(|e| e.exit());
    if matches!(inner.command, Command::Capture(_)) {
        return Err(Failure::usage(
            "capture: the command to record cannot be another capture",
        ));
    }
    let capture = Capture::create(&a.output).map_err(|e| Failure::new(e.to_string()))?;
    capture.install();
    let result = crate::run(inner);
    let path = a.output.display().to_string();
    match capture.finish() {
        Ok(n) => {
            eprintln!("ipvsct: captured {n} netlink datagrams to {path}");
            result
        }
        Err(e) => {
            // The command's own failure, if any, matters more than the capture's.
            result?;
            Err(Failure::new(format!("capture to {path}: {e}")))
        }
    }
}
