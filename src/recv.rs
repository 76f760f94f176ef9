//! `ebpf-cast recv IP:PORT`: receives a UDP (or RTP) MPEG-TS stream, writes it, and reports
//! what arrived: rates, packets per PID, continuity errors, PCR gaps and video frames by kind,
//! classified by the kernel's own rules (mpegts.h).
use std::{
    collections::BTreeMap,
    io::Write,
    net::{IpAddr, SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::{
    error::input,
    mpegts::{self, Codec, FrameKind, TS_SIZE},
    signals::Stop,
};

#[derive(Debug, clap::Args)]
pub struct RecvArgs {
    /// Address and port to listen on (a multicast group is joined)
    pub listen: SocketAddr,
    /// Write the received transport stream here
    #[arg(long, value_name = "FILE.ts")]
    pub out: Option<String>,
    /// Stop after this many seconds
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// Stop after this many datagrams
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this many seconds without a datagram (once one has arrived)
    #[arg(long, value_name = "S")]
    pub idle: Option<f64>,
    /// Expect RTP (RFC 2250). Detected by itself otherwise
    #[arg(long)]
    pub rtp: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct PidReport {
    pub packets: u64,
    pub cc_errors: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Frames {
    pub key: u64,
    #[serde(rename = "ref")]
    pub reference: u64,
    pub nonref: u64,
}

impl Frames {
    pub fn total(&self) -> u64 {
        self.key + self.reference + self.nonref
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub datagrams: u64,
    pub bytes: u64,
    pub ts_packets: u64,
    pub seconds: f64,
    pub bitrate: f64,
    pub rtp: bool,
    pub video_pid: Option<u16>,
    pub codec: Option<&'static str>,
    pub frames: Frames,
    pub cc_errors: u64,
    pub max_pcr_gap_ms: f64,
    pub pids: BTreeMap<u16, PidReport>,
}

/// Analyses TS packets as they arrive.
#[derive(Debug, Default)]
pub struct Analyzer {
    report: Report,
    last_cc: BTreeMap<u16, u8>,
    pmt_pid: Option<u16>,
    video: Option<(u16, Codec)>,
    last_pcr: Option<u64>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Analyzer {
    /// Takes one datagram; returns its TS part (the RTP header removed).
    pub fn datagram<'a>(&mut self, d: &'a [u8], force_rtp: bool) -> &'a [u8] {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.report.datagrams += 1;
        self.report.bytes += d.len() as u64;
        let skip = if force_rtp || d.first() != Some(&0x47) { mpegts::rtp_header_len(d) } else { None };
        if skip.is_some() {
            self.report.rtp = true;
        }
        let ts = &d[skip.unwrap_or(0)..];
        for p in ts.chunks_exact(TS_SIZE) {
            self.packet(p.try_into().unwrap());
        }
        ts
    }

    pub fn packet(&mut self, p: &[u8; TS_SIZE]) {
        if p[0] != 0x47 {
            return;
        }
        let pid = mpegts::pid(p);
        self.report.ts_packets += 1;
        let entry = self.report.pids.entry(pid).or_default();
        entry.packets += 1;
        // Continuity: +1 for a packet with payload, unchanged without; duplicates allowed once.
        if pid != mpegts::PID_NONE {
            let discontinuity = p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x80 != 0;
            let cc = mpegts::cc(p);
            if let Some(&last) = self.last_cc.get(&pid) {
                let want = if mpegts::has_payload(p) { (last + 1) & 0x0f } else { last };
                if cc != want && !(mpegts::has_payload(p) && cc == last) && !discontinuity {
                    entry.cc_errors += 1;
                    self.report.cc_errors += 1;
                }
            }
            self.last_cc.insert(pid, cc);
        }
        if let Some(pcr) = mpegts::pcr(p) {
            if let Some(last) = self.last_pcr {
                let gap = pcr.wrapping_sub(last) as f64 / 27_000.0;
                if gap < 60_000.0 {
                    self.report.max_pcr_gap_ms = self.report.max_pcr_gap_ms.max(gap);
                }
            }
            self.last_pcr = Some(pcr);
        }
        if !mpegts::pusi(p) {
            return;
        }
        if pid == 0 {
            self.pmt_pid = mpegts::pat_pmt_pid(p).or(self.pmt_pid);
        } else if Some(pid) == self.pmt_pid {
            self.video = mpegts::pmt_video(p).or(self.video);
        } else if let Some((vpid, codec)) = self.video {
            if pid == vpid && mpegts::has_payload(p) {
                match mpegts::frame_kind(p, codec) {
                    FrameKind::Key => self.report.frames.key += 1,
                    FrameKind::Ref => self.report.frames.reference += 1,
                    FrameKind::NonRef => self.report.frames.nonref += 1,
                }
            }
        }
    }

    pub fn report(&self) -> Report {
        let mut r = self.report.clone();
        if let (Some(a), Some(b)) = (self.first, self.last) {
            r.seconds = (b - a).as_secs_f64();
            if r.seconds > 0.0 {
                r.bitrate = r.bytes as f64 * 8.0 / r.seconds;
            }
        }
        r.video_pid = self.video.map(|v| v.0);
        r.codec = self.video.map(|v| v.1.name());
        r
    }
}

impl Report {
    pub fn print_text(&self) {
        println!(
            "received {} datagrams, {} bytes, {} TS packets in {:.2} s ({:.3} Mbit/s){}",
            self.datagrams,
            self.bytes,
            self.ts_packets,
            self.seconds,
            self.bitrate / 1e6,
            if self.rtp { ", RTP" } else { "" }
        );
        match (self.video_pid, self.codec) {
            (Some(pid), Some(codec)) => println!(
                "video PID {pid:#x} ({codec}): {} frames: {} key, {} reference, {} non-reference",
                self.frames.total(),
                self.frames.key,
                self.frames.reference,
                self.frames.nonref
            ),
            _ => println!("no H.264/H.265 video found in a PAT/PMT"),
        }
        println!("continuity errors: {}; largest PCR gap: {:.1} ms", self.cc_errors, self.max_pcr_gap_ms);
        println!("{:>8} {:>10} {:>10}", "PID", "packets", "CC errors");
        for (pid, p) in &self.pids {
            println!("{:>#8x} {:>10} {:>10}", pid, p.packets, p.cc_errors);
        }
    }
}

/// Binds `listen`, joining the group if it is multicast.
pub fn bind(listen: SocketAddr) -> Result<UdpSocket> {
    let sock = UdpSocket::bind(listen).map_err(|e| input(format!("cannot listen on {listen}: {e}")))?;
    // Room for bursts: ask for 8 MiB (the kernel caps it at net.core.rmem_max); less is no error.
    let _ = nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::RcvBuf, &(8 << 20));
    match listen.ip() {
        IpAddr::V4(g) if g.is_multicast() => sock.join_multicast_v4(&g, &std::net::Ipv4Addr::UNSPECIFIED)?,
        IpAddr::V6(g) if g.is_multicast() => sock.join_multicast_v6(&g, 0)?,
        _ => {}
    }
    Ok(sock)
}

pub fn run(args: &RecvArgs) -> Result<()> {
    let sock = bind(args.listen)?;
    let mut out = match &args.out {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| input(format!("cannot write {path}: {e}")))?,
        )),
        None => None,
    };
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    let stop = Stop::install()?;
    let start = Instant::now();
    let deadline = args.duration.map(|s| start + Duration::from_secs_f64(s));
    let idle = args.idle.map(Duration::from_secs_f64);
    let mut an = Analyzer::default();
    let mut buf = vec![0u8; 65536];
    let mut last_rx: Option<Instant> = None;
    loop {
        if stop.requested()
            || deadline.is_some_and(|d| Instant::now() >= d)
            || args.count.is_some_and(|n| an.report.datagrams >= n)
            || matches!((idle, last_rx), (Some(i), Some(l)) if l.elapsed() >= i)
        {
            break;
        }
        match sock.recv(&mut buf) {
            Ok(n) => {
                last_rx = Some(Instant::now());
                let ts = an.datagram(&buf[..n], args.rtp);
                if let Some(w) = out.as_mut() {
                    w.write_all(ts).context("writing the capture")?;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e).context("receiving"),
        }
    }
    if let Some(mut w) = out {
        w.flush()?;
    }
    let report = an.report();
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        report.print_text();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(pid: u16, cc: u8, payload: bool) -> [u8; TS_SIZE] {
        let mut p = [0xffu8; TS_SIZE];
        p[..4].copy_from_slice(&[0x47, (pid >> 8) as u8, pid as u8, if payload { 0x10 } else { 0x20 } | cc]);
        if !payload {
            p[4] = 183;
            p[5] = 0;
        }
        p
    }

    #[test]
    fn counts_continuity_errors_per_pid() {
        let mut a = Analyzer::default();
        for (cc, payload) in [(0, true), (1, true), (1, false), (2, true), (4, true), (4, true), (5, true)] {
            a.packet(&pkt(0x100, cc, payload));
        }
        a.packet(&pkt(0x101, 7, true));
        a.packet(&pkt(0x101, 9, true));
        let r = a.report();
        assert_eq!(r.pids[&0x100].cc_errors, 1, "2 -> 4 skips 3; 4 again is a duplicate");
        assert_eq!(r.pids[&0x101].cc_errors, 1);
        assert_eq!(r.cc_errors, 2);
        assert_eq!(r.ts_packets, 9);
    }

    #[test]
    fn strips_rtp_when_present() {
        let mut a = Analyzer::default();
        let mut d = vec![0x80, 33, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        d.extend_from_slice(&pkt(0x100, 0, true));
        assert_eq!(a.datagram(&d, false).len(), TS_SIZE);
        let plain = pkt(0x100, 1, true);
        assert_eq!(a.datagram(&plain, false).len(), TS_SIZE);
        let r = a.report();
        assert!(r.rtp);
        assert_eq!((r.datagrams, r.ts_packets, r.cc_errors), (2, 2, 0));
    }
}
