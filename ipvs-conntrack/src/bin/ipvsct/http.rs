//! A tiny HTTP/1.1 server and a `curl -I`-like client, each working inside a network namespace.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipvs_conntrack::{Error, Netns};

use crate::failure::Failure;

/// Time limit for one read, write or connect.
pub const IO_LIMIT: Duration = Duration::from_secs(2);
/// Largest request or response head read.
const MAX_HEAD: usize = 8 * 1024;
/// The body the server would send for GET.
const BODY: &str = "hello from ipvsct demo\n";

/// Reads until the blank line that ends an HTTP head (bounded by [`MAX_HEAD`]).
fn read_head(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "HTTP head too long",
            ));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the end of the HTTP head",
            ));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    Ok(buf)
}

/// The response to one request head.
fn response(head: &[u8]) -> String {
    let is_head = head.starts_with(b"HEAD ");
    format!(
        "HTTP/1.1 200 OK\r\nServer: ipvsct-demo\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}",
        BODY.len(),
        if is_head { "" } else { BODY }
    )
}

/// Serves one connection: read the request, answer, wait for the client to close, close.
fn handle(mut s: TcpStream) -> io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(IO_LIMIT))?;
    s.set_write_timeout(Some(IO_LIMIT))?;
    let head = read_head(&mut s)?;
    s.write_all(response(&head).as_bytes())?;
    // Like a keep-alive server: the client closes first, then we close our side.
    let mut sink = [0u8; 256];
    while s.read(&mut sink)? > 0 {}
    Ok(())
}

/// The HTTP server: one thread inside the server namespace, stopped on drop.
#[derive(Debug)]
pub struct Server {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    handle: Option<JoinHandle<ipvs_conntrack::Result<()>>>,
}

impl Server {
    /// Starts serving on `addr` inside `netns`; returns once the socket listens.
    /// The thread stops by itself after `lifetime`.
    pub fn start(netns: &Netns, addr: SocketAddr, lifetime: Duration) -> Result<Server, Failure> {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (stop2, served2) = (Arc::clone(&stop), Arc::clone(&served));
        let handle = netns.spawn("ipvsct-demo-http", move || {
            let listener = match TcpListener::bind(addr).and_then(|l| {
                l.set_nonblocking(true)?;
                Ok(l)
            }) {
                Ok(l) => l,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("cannot listen on {addr}: {e}")));
                    return Ok(());
                }
            };
            let _ = ready_tx.send(Ok(()));
            let deadline = Instant::now() + lifetime;
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((s, _)) => {
                        // A client that misbehaves only loses its own connection.
                        if handle(s).is_ok() {
                            served2.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(source) => {
                        return Err(Error::Io {
                            op: "accept",
                            source,
                        })
                    }
                }
            }
            Ok(())
        })?;
        let server = Server {
            stop,
            served,
            handle: Some(handle),
        };
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(server),
            Ok(Err(msg)) => Err(Failure::new(msg)),
            // The thread ended without a word: setns failed; `stop` reports why.
            Err(_) => Err(server
                .stop()
                .err()
                .unwrap_or_else(|| Failure::new("the HTTP server did not start"))),
        }
    }

    /// Requests served so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Stops the server thread and waits for it; returns the number of requests served.
    pub fn stop(mut self) -> Result<u64, Failure> {
        self.shutdown()?;
        Ok(self.served())
    }

    fn shutdown(&mut self) -> Result<(), Failure> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(Failure::from(e)),
            Some(Err(_)) => Err(Failure::new("the HTTP server thread panicked")),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// One `curl -I`: connect, send HEAD, read the response head, close. Returns the status code.
pub fn head_request(addr: SocketAddr) -> io::Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr, IO_LIMIT)?;
    s.set_read_timeout(Some(IO_LIMIT))?;
    s.set_write_timeout(Some(IO_LIMIT))?;
    let req = format!(
        "HEAD / HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: ipvsct-demo\r\nAccept: */*\r\n\r\n"
    );
    s.write_all(req.as_bytes())?;
    let head = read_head(&mut s)?;
    let text = String::from_utf8_lossy(&head);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP status line"))?;
    Ok(code)
}

/// Makes `n` HEAD requests one after another from inside `netns`; returns their status codes.
pub fn head_requests(netns: &Netns, addr: SocketAddr, n: usize) -> Result<Vec<u16>, Failure> {
    let codes = netns.run(move || {
        (0..n)
            .map(|_| {
                head_request(addr).map_err(|source| Error::Io {
                    op: "HTTP request",
                    source,
                })
            })
            .collect::<ipvs_conntrack::Result<Vec<u16>>>()
    })?;
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_head_requests_on_loopback() {
        // Port 0 on loopback: the kernel picks a free port; find it through a probe bind.
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let server = Server::start(&Netns::Current, addr, Duration::from_secs(20)).unwrap();
        let codes = head_requests(&Netns::Current, addr, 3).unwrap();
        assert_eq!(codes, vec![200, 200, 200]);
        // The server counts a connection once the client has closed it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.served() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(server.stop().unwrap(), 3);
    }

    #[test]
    fn response_has_body_only_for_get() {
        let h = response(b"HEAD / HTTP/1.1\r\n\r\n");
        assert!(h.ends_with("Content-Length: 23\r\n\r\n"), "{h}");
        let g = response(b"GET / HTTP/1.1\r\n\r\n");
        assert!(g.ends_with("\r\n\r\nhello from ipvsct demo\n"), "{g}");
    }
}
