//! `GET /metrics` over HTTP: the counters of running casts in the Prometheus text format
//! (a plain blocking server on one thread: a scrape every few seconds needs no more).
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, Result};

/// A cast to report: its name and network namespace (None: the serving thread's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub netns: Option<String>,
}

/// Binds `addr` and serves the targets' counters until the process ends.
pub fn serve(addr: SocketAddr, targets: Arc<Mutex<Vec<Target>>>) -> Result<()> {
    let listener = TcpListener::bind(addr).with_context(|| format!("serving metrics on {addr}"))?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let list = targets.lock().map(|t| t.clone()).unwrap_or_default();
            let _ = answer(conn, &list);
        }
    });
    Ok(())
}

fn answer(mut conn: TcpStream, targets: &[Target]) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&req).lines().next().unwrap_or_default().to_string();
    let mut parts = line.split_whitespace();
    let (status, body) = match (parts.next(), parts.next()) {
        (Some("GET"), Some("/metrics")) => (
            "200 OK",
            crate::stats::prometheus_of(targets.iter().map(|t| (t.name.as_str(), t.netns.as_deref()))),
        ),
        (Some("GET"), _) => ("404 Not Found", "try /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "GET /metrics only\n".to_string()),
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
