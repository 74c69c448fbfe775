//! `ipvsct exporter`: serves `/metrics` (Prometheus) for one namespace's conntrack and
//! IPVS tables. The metrics are collected on each scrape by
//! [`ipvs_conntrack::metrics::Collector`]; this file is only the HTTP side (tiny_http).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ipvs_conntrack::metrics::{Collector, CollectorOptions, Format};
use ipvs_conntrack::Netns;
use tiny_http::{Header, Method, Request, Response, Server};

use crate::failure::Failure;

/// Default listen address: loopback only (expose it deliberately with `--listen`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9857";

/// Options of `ipvsct exporter`.
#[derive(Debug, Args)]
pub struct ExporterArgs {
    /// Address and port to serve on (port 0 picks a free one; the address is printed on stderr).
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Network namespace whose tables are exported: an `ip netns` name or a path (default: the current one).
    #[arg(long, value_name = "NAME|PATH")]
    pub netns: Option<String>,
    /// Do not read IPVS (no `node_ipvs_*` / `ipvsct_ipvs_*` metrics besides `ipvsct_ipvs_up`).
    #[arg(long)]
    pub no_ipvs: bool,
    /// Do not listen for NEW conntrack events (no rate of new connections).
    #[arg(long)]
    pub no_events: bool,
    /// Exit after answering this many requests (for scripts and tests).
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u64>,
}

/// Runs the exporter until Ctrl-C (or `--max-requests`).
pub fn run(a: &ExporterArgs) -> Result<(), Failure> {
    let ns = a.netns.as_deref().map_or(Netns::Current, Netns::parse);
    let opts = CollectorOptions {
        ipvs: !a.no_ipvs,
        count_new_connections: !a.no_events,
    };
    let mut collector = Collector::open(&ns, &opts)?;
    // Fail early (permissions, namespace) rather than on the first scrape.
    collector.collect()?;
    let server = Server::http(a.listen)
        .map_err(|e| Failure::new(format!("cannot listen on {}: {e}", a.listen)))?;
    let bound = server
        .server_addr()
        .to_ip()
        .map_or_else(|| a.listen.to_string(), |s| s.to_string());
    eprintln!(
        "ipvsct exporter: serving http://{bound}/metrics ({})",
        ns_text(&ns)
    );

    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| Failure::new(format!("cannot install the Ctrl-C handler: {e}")))?;
    let mut served = 0u64;
    // Bounded by Ctrl-C / --max-requests: every wait lasts at most 200 ms.
    while !stop.load(Ordering::SeqCst) && a.max_requests.is_none_or(|m| served < m) {
        let req = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => return Err(Failure::new(format!("HTTP server: {e}"))),
        };
        served += 1;
        if let Err(e) = answer(req, &mut collector) {
            eprintln!("ipvsct exporter: writing a response: {e}");
        }
    }
    Ok(())
}

fn ns_text(ns: &Netns) -> String {
    match ns {
        Netns::Current => "current network namespace".to_owned(),
        other => format!("network namespace {other}"),
    }
}

/// Adds a header (the names and values here are ASCII constants, which always parse).
fn with_header<R: std::io::Read>(resp: Response<R>, name: &str, value: &str) -> Response<R> {
    match Header::from_bytes(name.as_bytes(), value.as_bytes()) {
        Ok(h) => resp.with_header(h),
        Err(()) => resp,
    }
}

/// Answers one request: `/metrics`, the index page, or 404/405.
fn answer(req: Request, collector: &mut Collector) -> std::io::Result<()> {
    let path = req.url().split('?').next().unwrap_or("").to_owned();
    // OpenMetrics when the scraper asks for it (Prometheus does), else text format 0.0.4.
    let accept = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Accept"))
        .map(|h| h.value.as_str().to_owned());
    let format = Format::from_accept(accept.as_deref());
    let head = *req.method() == Method::Head;
    if *req.method() != Method::Get && !head {
        return req.respond(with_header(
            Response::from_string("only GET and HEAD\n").with_status_code(405),
            "Allow",
            "GET, HEAD",
        ));
    }
    match path.as_str() {
        "/metrics" => match collector.scrape(format) {
            Ok(text) => req.respond(with_header(
                Response::from_string(text),
                "Content-Type",
                format.content_type(),
            )),
            Err(e) => {
                eprintln!("ipvsct exporter: scrape failed: {e}");
                req.respond(with_header(
                    Response::from_string(format!("scrape failed: {e}\n")).with_status_code(500),
                    "Content-Type",
                    "text/plain; charset=utf-8",
                ))
            }
        },
        "/" => req.respond(with_header(
            Response::from_string(
                "<html><head><title>ipvsct exporter</title></head><body>\
                 <h1>ipvsct exporter</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n",
            ),
            "Content-Type",
            "text/html; charset=utf-8",
        )),
        _ => req.respond(Response::from_string("not found\n").with_status_code(404)),
    }
}
