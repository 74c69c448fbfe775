//! The demo's throw-away sandbox: two network namespaces joined by a veth pair, conntrack
//! switched on in the server one by an nft rule, all removed again on drop.
//!
//! Everything is created inside the two namespaces (the veth pair is born in the
//! client namespace with its peer moved straight into the server namespace), so
//! the host's interfaces, addresses and rule sets are never touched.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use ipvs_conntrack::Netns;

use crate::failure::Failure;

/// Longest time any one `ip`/`nft` command may take.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(15);

/// Client side address (in the client namespace).
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);
/// Server side address, the "VIP" the client connects to (in the server namespace).
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 2);
/// Prefix length of the sandbox subnet 10.213.0.0/24.
pub const PREFIX_LEN: u8 = 24;
/// Name of the veth end in the client namespace.
pub const CLIENT_IF: &str = "veth-c";
/// Name of the veth end in the server namespace.
pub const SERVER_IF: &str = "veth-s";
/// The nft table that turns conntrack on in the server namespace.
pub const NFT_TABLE: &str = "ipvsct_demo";

/// The rule set loaded into the server namespace: any `ct` expression makes the
/// kernel track connections in that namespace; the counter counts new ones.
pub fn nft_ruleset() -> String {
    format!(
        "table inet {NFT_TABLE} {{\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority 0; policy accept;\n\
         \t\tct state new counter comment \"ipvsct demo: conntrack on\"\n\
         \t}}\n\
         }}\n"
    )
}

/// Names of namespaces created so far, shared with the Ctrl-C handler.
pub type Registry = Arc<Mutex<Vec<String>>>;

/// Runs a command with a time limit, feeding `stdin`; returns its stdout or a one-line failure.
pub fn run_cmd(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, Failure> {
    let shown = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::new(format!("cannot run `{shown}`: {e}")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // The commands here read a few hundred bytes; a failed write shows in the exit status.
        let _ = pipe.write_all(text.as_bytes());
    }
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::new(format!(
                    "`{shown}` did not finish within {} s",
                    COMMAND_LIMIT.as_secs()
                )));
            }
            Err(e) => return Err(Failure::new(format!("waiting for `{shown}`: {e}"))),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        Err(Failure::new(format!(
            "`{shown}` failed ({status}): {}",
            stderr.trim()
        )))
    }
}

/// Directories searched after PATH: `ip` and `nft` live in sbin, which a user's PATH may lack.
const SBIN_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// The full path of an executable named `program` in PATH or the sbin directories.
pub fn find_program(program: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN_DIRS.iter().map(std::path::PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .map(|p| p.to_string_lossy().into_owned())
}

/// The full path of `program`, or a failure naming the Debian package to install.
pub fn require_tool(program: &str, package: &str) -> Result<String, Failure> {
    find_program(program).ok_or_else(|| {
        Failure::new(format!(
            "the `{program}` command is missing: install it with `apt-get install -y {package}`"
        ))
    })
}

/// The commands the sandbox runs, by full path.
#[derive(Clone, Debug)]
pub struct Tools {
    /// `ip` (iproute2).
    pub ip: String,
    /// `nft` (nftables).
    pub nft: String,
}

impl Tools {
    /// Finds `ip` and `nft`, or fails naming the package to install.
    pub fn find() -> Result<Tools, Failure> {
        Ok(Tools {
            ip: require_tool("ip", "iproute2")?,
            nft: require_tool("nft", "nftables")?,
        })
    }
}

/// Deletes namespaces by name with `ip`; returns those that still exist afterwards.
pub fn delete_namespaces(ip: &str, names: &[String]) -> Vec<String> {
    let mut failed = Vec::new();
    for n in names {
        if run_cmd(ip, &["netns", "del", n], None).is_err()
            && std::path::Path::new(ipvs_conntrack::netns::NETNS_RUN_DIR)
                .join(n)
                .exists()
        {
            failed.push(n.clone());
        }
    }
    failed
}

/// The client and server namespaces and their veth pair; removed on drop.
#[derive(Debug)]
pub struct Sandbox {
    /// Client namespace name.
    pub client: String,
    /// Server namespace name.
    pub server: String,
    tools: Tools,
    registry: Registry,
}

impl Sandbox {
    /// The namespace names used for process `pid`.
    pub fn names(pid: u32) -> (String, String) {
        (
            format!("ipvsct-demo-c-{pid}"),
            format!("ipvsct-demo-s-{pid}"),
        )
    }

    /// Creates both namespaces, the veth pair, addresses and the nft rule; `say` reports each step.
    pub fn create(
        pid: u32,
        tools: &Tools,
        registry: Registry,
        say: &mut dyn FnMut(&str),
    ) -> Result<Sandbox, Failure> {
        let (client, server) = Self::names(pid);
        let ip = tools.ip.as_str();
        // Left over by an earlier run that had the same pid and was killed hard.
        delete_namespaces(ip, &[client.clone(), server.clone()]);
        let sb = Sandbox {
            client,
            server,
            tools: tools.clone(),
            registry,
        };
        for ns in [&sb.client, &sb.server] {
            run_cmd(ip, &["netns", "add", ns], None)?;
            sb.registry
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(ns.clone());
        }
        say(&format!(
            "created network namespaces {} (client) and {} (server)",
            sb.client, sb.server
        ));
        let (c, s) = (sb.client.as_str(), sb.server.as_str());
        run_cmd(
            ip,
            &[
                "-n", c, "link", "add", CLIENT_IF, "type", "veth", "peer", "name", SERVER_IF,
                "netns", s,
            ],
            None,
        )?;
        let c_addr = format!("{CLIENT_ADDR}/{PREFIX_LEN}");
        let s_addr = format!("{SERVER_ADDR}/{PREFIX_LEN}");
        for (ns, ifname, addr) in [(c, CLIENT_IF, &c_addr), (s, SERVER_IF, &s_addr)] {
            run_cmd(ip, &["-n", ns, "addr", "add", addr, "dev", ifname], None)?;
            run_cmd(ip, &["-n", ns, "link", "set", "lo", "up"], None)?;
            run_cmd(ip, &["-n", ns, "link", "set", ifname, "up"], None)?;
        }
        say(&format!(
            "joined them with a veth pair: {CLIENT_IF} {c_addr} <-> {SERVER_IF} {s_addr}"
        ));
        run_cmd(
            ip,
            &["netns", "exec", s, &tools.nft, "-f", "-"],
            Some(&nft_ruleset()),
        )?;
        say(&format!(
            "enabled conntrack in {s} with an nft rule: table inet {NFT_TABLE}, chain input: `ct state new counter`"
        ));
        Ok(sb)
    }

    /// The client namespace.
    pub fn client_netns(&self) -> Netns {
        Netns::named(self.client.as_str())
    }

    /// The server namespace.
    pub fn server_netns(&self) -> Netns {
        Netns::named(self.server.as_str())
    }

    /// The nft rule's packet counter (new connections seen), if it can be read.
    pub fn new_connection_counter(&self) -> Option<u64> {
        let out = run_cmd(
            &self.tools.ip,
            &[
                "netns",
                "exec",
                &self.server,
                &self.tools.nft,
                "list",
                "chain",
                "inet",
                NFT_TABLE,
                "input",
            ],
            None,
        )
        .ok()?;
        let rest = out.split("counter packets ").nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    }

    /// Removes everything now; returns the namespaces removed, or a failure naming what is left.
    pub fn close(mut self) -> Result<Vec<String>, Failure> {
        self.remove()
    }

    fn remove(&mut self) -> Result<Vec<String>, Failure> {
        let names = [self.client.clone(), self.server.clone()];
        let mut reg = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let created: Vec<String> = names.iter().filter(|n| reg.contains(n)).cloned().collect();
        let failed = delete_namespaces(&self.tools.ip, &created);
        reg.retain(|n| !created.contains(n) || failed.contains(n));
        if failed.is_empty() {
            Ok(created)
        } else {
            Err(Failure::new(format!(
                "could not remove namespace(s) {}: remove them with `ip netns del NAME`",
                failed.join(", ")
            )))
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Err(f) = self.remove() {
            eprintln!("ipvsct: {}", f.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ruleset_and_commands() {
        let (c, s) = Sandbox::names(42);
        assert_eq!(
            (c.as_str(), s.as_str()),
            ("ipvsct-demo-c-42", "ipvsct-demo-s-42")
        );
        let r = nft_ruleset();
        assert!(r.starts_with("table inet ipvsct_demo {"), "{r}");
        assert!(
            r.contains("type filter hook input priority 0; policy accept;"),
            "{r}"
        );
        assert!(r.contains("ct state new counter"), "{r}");
        assert_eq!(
            run_cmd("sh", &["-c", "cat; echo done"], Some("in ")).unwrap(),
            "in done\n"
        );
        let e = run_cmd("sh", &["-c", "echo oops >&2; exit 3"], None).unwrap_err();
        assert!(e.message.contains("oops"), "{}", e.message);
        assert!(e.message.contains("exit status: 3"), "{}", e.message);
        assert!(find_program("sh").is_some_and(|p| p.ends_with("/sh")));
        assert_eq!(find_program("ipvsct-no-such-tool"), None);
        let e = require_tool("ipvsct-no-such-tool", "nftables").unwrap_err();
        assert!(
            e.message.contains("apt-get install -y nftables"),
            "{}",
            e.message
        );
    }
}
