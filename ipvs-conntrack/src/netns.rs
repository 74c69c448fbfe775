//! Network namespaces: naming one, and running socket setup inside it without
//! moving the calling thread.
//!
//! Work that must happen inside a namespace (opening a netlink socket, reading
//! `/proc/sys/net`) runs on a short-lived helper thread that enters the
//! namespace with `setns(2)` and then exits. A netlink socket stays bound to
//! the namespace it was created in, so the caller gets a socket for the target
//! namespace while its own thread never changes namespace, even when the work
//! fails half-way.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};

use crate::error::{Error, Result};

/// Directory where `ip netns add` creates named namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Which network namespace a client works in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Netns {
    /// The namespace of the calling thread.
    #[default]
    Current,
    /// A namespace named as `ip netns` names it (`/run/netns/NAME`).
    Named(String),
    /// A namespace file such as `/proc/<pid>/ns/net` or a bind mount.
    Path(PathBuf),
}

impl Netns {
    /// A namespace by `ip netns` name.
    pub fn named(name: impl Into<String>) -> Self {
        Netns::Named(name.into())
    }

    /// A namespace by file path.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Netns::Path(path.into())
    }

    /// The namespace of process `pid`.
    pub fn pid(pid: u32) -> Self {
        Netns::Path(PathBuf::from(format!("/proc/{pid}/ns/net")))
    }

    /// Parses a command-line value: a path if it contains `/`, a name otherwise.
    pub fn parse(s: &str) -> Self {
        if s.contains('/') {
            Netns::Path(PathBuf::from(s))
        } else {
            Netns::Named(s.to_owned())
        }
    }

    /// The namespace file, or `None` for the current namespace.
    pub fn file_path(&self) -> Result<Option<PathBuf>> {
        match self {
            Netns::Current => Ok(None),
            Netns::Named(name) => {
                if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                    return Err(Error::Namespace {
                        netns: name.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            "a namespace name must be non-empty and contain no '/'",
                        ),
                    });
                }
                Ok(Some(Path::new(NETNS_RUN_DIR).join(name)))
            }
            Netns::Path(p) => Ok(Some(p.clone())),
        }
    }

    /// Runs `f` with the calling context inside this namespace and returns its result.
    ///
    /// For [`Netns::Current`] `f` runs on the calling thread; otherwise on a
    /// helper thread that enters the namespace and exits when `f` returns.
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send,
        F: FnOnce() -> Result<T> + Send,
    {
        let Some(path) = self.file_path()? else {
            return f();
        };
        let ns_err = |source: std::io::Error| Error::Namespace {
            netns: self.to_string(),
            source,
        };
        let file = File::open(&path).map_err(ns_err)?;
        std::thread::scope(|scope| {
            let handle = scope.spawn(move || -> Result<T> {
                setns(&file, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| ns_err(std::io::Error::from_raw_os_error(e as i32)))?;
                f()
            });
            match handle.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Starts a named thread that enters this namespace and runs `f` there (for long-lived work such as a server).
    ///
    /// The namespace file is opened before the thread starts, so a missing
    /// namespace fails here; a failing `setns(2)` is the thread's result.
    pub fn spawn<T, F>(&self, name: &str, f: F) -> Result<std::thread::JoinHandle<Result<T>>>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let label = self.to_string();
        let file = match self.file_path()? {
            Some(path) => Some(File::open(&path).map_err(|source| Error::Namespace {
                netns: label.clone(),
                source,
            })?),
            None => None,
        };
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || -> Result<T> {
                if let Some(file) = file {
                    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| Error::Namespace {
                        netns: label,
                        source: std::io::Error::from_raw_os_error(e as i32),
                    })?;
                }
                f()
            })
            .map_err(|source| Error::Io {
                op: "spawn namespace thread",
                source,
            })
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netns::Current => f.write_str("<current>"),
            Netns::Named(n) => f.write_str(n),
            Netns::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

impl From<&str> for Netns {
    fn from(s: &str) -> Self {
        Netns::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_name_and_path() {
        assert_eq!(Netns::parse("ns1"), Netns::Named("ns1".into()));
        assert_eq!(
            Netns::parse("/proc/1/ns/net"),
            Netns::Path("/proc/1/ns/net".into())
        );
        assert!(Netns::named("../x").file_path().is_err());
        assert_eq!(
            Netns::named("a").file_path().unwrap(),
            Some(PathBuf::from("/run/netns/a"))
        );
    }

    #[test]
    fn missing_namespace_is_namespace_error() {
        let err = Netns::named("ipvsct-does-not-exist")
            .run(|| Ok(()))
            .unwrap_err();
        assert!(matches!(err, Error::Namespace { .. }), "{err}");
    }

    #[test]
    fn spawn_enters_own_namespace() {
        // The thread enters the namespace of this very process: same inode as the caller's.
        let me =
            std::fs::metadata("/proc/self/ns/net").map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        let Ok(me) = me else {
            eprintln!("SKIPPED: /proc/self/ns/net is not readable");
            return;
        };
        let h = Netns::pid(std::process::id())
            .spawn("netns-spawn-test", || {
                let m = std::fs::metadata("/proc/thread-self/ns/net")
                    .map_err(|e| Error::io("stat ns", e))?;
                Ok(std::os::unix::fs::MetadataExt::ino(&m))
            })
            .unwrap();
        match h.join().unwrap() {
            Ok(ino) => assert_eq!(ino, me),
            // Without CAP_SYS_ADMIN setns fails even into our own namespace.
            Err(Error::Namespace { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(1), "{source}")
            }
            Err(e) => panic!("unexpected error {e}"),
        }
        assert!(matches!(
            Netns::named("ipvsct-does-not-exist").spawn("x", || Ok(())),
            Err(Error::Namespace { .. })
        ));
    }

    #[test]
    fn current_runs_inline() {
        let id = std::thread::current().id();
        let same = Netns::Current
            .run(|| Ok(std::thread::current().id() == id))
            .unwrap();
        assert!(same);
    }
}
