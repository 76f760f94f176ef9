//! `ebpf-cast send FILE.ts IP:PORT`: streams an MPEG-TS file over UDP in real time (paced by
//! the stream's PCR), 7 TS packets a datagram, optionally behind an RFC 2250 RTP header.
use std::{
    io::{IsTerminal, Read, Write},
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::{error::input, mpegts, signals::Stop};

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The .ts file to stream, or - for standard input
    pub file: String,
    /// Destination IP:PORT (unicast or multicast)
    pub dest: SocketAddr,
    /// Put an RFC 2250 RTP header (payload type 33) in front of every datagram
    #[arg(long)]
    pub rtp: bool,
    /// Send at this constant bit rate instead of the stream's own timing (e.g. 5M, 800k)
    #[arg(long, value_name = "BITRATE", value_parser = parse_bitrate, conflicts_with = "as_fast_as_possible")]
    pub rate: Option<u64>,
    /// Send without pacing
    #[arg(long)]
    pub as_fast_as_possible: bool,
    /// Play the file N times
    #[arg(long = "loop", value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub loops: u32,
    /// TS packets per datagram
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u8).range(1..=7))]
    pub packets_per_datagram: u8,
    /// Multicast TTL
    #[arg(long, default_value_t = 1)]
    pub ttl: u32,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn parse_bitrate(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1e3),
        Some((i, 'm' | 'M')) => (&s[..i], 1e6),
        Some((i, 'g' | 'G')) => (&s[..i], 1e9),
        _ => (s, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok((v * mult) as u64),
        _ => Err(format!("'{s}' is not a bit rate: give bits per second, e.g. 5M, 800k or 2500000")),
    }
}

/// Checks that `data` is MPEG-TS: whole 188-byte packets, each starting with the sync byte.
pub fn validate_ts(data: &[u8], name: &str) -> Result<()> {
    let bad = |why: String| {
        input(format!(
            "{name} is not an MPEG-TS file ({why}): give a .ts file, e.g. made with `ffmpeg ... -f mpegts`"
        ))
    };
    if data.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if data.len() % mpegts::TS_SIZE != 0 {
        return Err(bad(format!("{} bytes is not a whole number of 188-byte packets", data.len())));
    }
    if let Some(i) = data.chunks(mpegts::TS_SIZE).position(|p| p[0] != 0x47) {
        return Err(bad(format!("packet {i} has no sync byte 0x47")));
    }
    Ok(())
}

/// When each TS packet is due, from the start of the stream: interpolated between PCRs.
pub fn packet_times(ts: &[u8]) -> Vec<Duration> {
    let n = ts.len() / mpegts::TS_SIZE;
    let pcrs: Vec<(usize, u64)> =
        ts.chunks(mpegts::TS_SIZE).enumerate().filter_map(|(i, p)| mpegts::pcr(p).map(|v| (i, v))).collect();
    if pcrs.len() < 2 {
        return vec![Duration::ZERO; n];
    }
    let ticks = |a: u64, b: u64| b.wrapping_sub(a) & ((1u64 << 33) * 300 - 1);
    let (first_i, first_pcr) = pcrs[0];
    let mut times = vec![0f64; n];
    for w in pcrs.windows(2) {
        let ((i0, p0), (i1, _)) = (w[0], w[1]);
        let dt = ticks(p0, w[1].1) as f64 / 27e6;
        let t0 = ticks(first_pcr, p0) as f64 / 27e6;
        for (k, t) in times.iter_mut().enumerate().take(i1).skip(i0) {
            *t = t0 + dt * (k - i0) as f64 / (i1 - i0) as f64;
        }
    }
    // Before the first PCR and after the last: the rate of the nearest PCR interval.
    let (li, lp) = *pcrs.last().unwrap();
    let (pi, pp) = pcrs[pcrs.len() - 2];
    let per_packet = ticks(pp, lp) as f64 / 27e6 / (li - pi) as f64;
    let t_last = ticks(first_pcr, lp) as f64 / 27e6;
    for (k, t) in times.iter_mut().enumerate().skip(li) {
        *t = t_last + per_packet * (k - li) as f64;
    }
    for t in times.iter_mut().take(first_i) {
        *t = 0.0;
    }
    times.into_iter().map(|t| Duration::from_secs_f64(t.max(0.0))).collect()
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub datagrams: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub bitrate: f64,
}

pub enum Pacing {
    Pcr,
    Rate(u64),
    None,
}

/// How a stream is sent.
pub struct StreamOpts {
    pub packets_per_datagram: usize,
    pub rtp: bool,
    pub pacing: Pacing,
    pub loops: u32,
}

/// Streams `ts` to `dest` on `sock`; calls `progress` about twice a second.
pub fn stream(
    sock: &UdpSocket,
    dest: SocketAddr,
    ts: &[u8],
    opts: &StreamOpts,
    stop: Option<&Stop>,
    mut progress: impl FnMut(&Summary),
) -> Result<Summary> {
    let (ppd, rtp, pacing, loops) = (opts.packets_per_datagram, opts.rtp, &opts.pacing, opts.loops);
    let times = packet_times(ts);
    let clip_len = times.last().copied().unwrap_or_default()
        + times.len().checked_sub(2).map_or(Duration::ZERO, |i| times[i + 1].saturating_sub(times[i]));
    let start = Instant::now();
    let mut sum = Summary::default();
    let mut last_report = Instant::now();
    let mut seq: u16 = 0;
    let ssrc: u32 = std::process::id().wrapping_mul(2_654_435_761);
    let mut buf = Vec::with_capacity(12 + 7 * mpegts::TS_SIZE);
    'outer: for lap in 0..loops {
        for (d, chunk) in ts.chunks(ppd * mpegts::TS_SIZE).enumerate() {
            if stop.is_some_and(Stop::requested) {
                break 'outer;
            }
            let first = d * ppd;
            let due = match pacing {
                Pacing::Pcr => Some(clip_len * lap + times[first]),
                Pacing::Rate(bps) => Some(Duration::from_secs_f64(sum.bytes as f64 * 8.0 / *bps as f64)),
                Pacing::None => None,
            };
            if let Some(due) = due {
                let now = start.elapsed();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            buf.clear();
            if rtp {
                let ts90k = (times[first].as_secs_f64() * 90_000.0) as u32;
                buf.extend_from_slice(&[0x80, 33]);
                buf.extend_from_slice(&seq.to_be_bytes());
                buf.extend_from_slice(&ts90k.to_be_bytes());
                buf.extend_from_slice(&ssrc.to_be_bytes());
                seq = seq.wrapping_add(1);
            }
            buf.extend_from_slice(chunk);
            sock.send_to(&buf, dest).with_context(|| format!("sending to {dest}"))?;
            sum.datagrams += 1;
            sum.bytes += buf.len() as u64;
            if last_report.elapsed() >= Duration::from_millis(500) {
                last_report = Instant::now();
                sum.seconds = start.elapsed().as_secs_f64();
                sum.bitrate = sum.bytes as f64 * 8.0 / sum.seconds.max(1e-9);
                progress(&sum);
            }
        }
    }
    sum.seconds = start.elapsed().as_secs_f64();
    sum.bitrate = sum.bytes as f64 * 8.0 / sum.seconds.max(1e-9);
    Ok(sum)
}

pub fn run(args: &SendArgs) -> Result<()> {
    let data = if args.file == "-" {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v).context("reading standard input")?;
        v
    } else {
        std::fs::read(&args.file).map_err(|e| input(format!("cannot read {}: {e}", args.file)))?
    };
    validate_ts(&data, &args.file)?;
    let bind: SocketAddr = if args.dest.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().unwrap();
    let sock = UdpSocket::bind(bind).context("opening a UDP socket")?;
    if args.dest.ip().is_multicast() {
        match args.dest {
            SocketAddr::V4(_) => sock.set_multicast_ttl_v4(args.ttl)?,
            SocketAddr::V6(_) => {} // hop limit: the system default
        }
    }
    let pacing = match (args.rate, args.as_fast_as_possible) {
        (Some(bps), _) => Pacing::Rate(bps),
        (None, true) => Pacing::None,
        _ => Pacing::Pcr,
    };
    let stop = Stop::install()?;
    let tty = std::io::stderr().is_terminal();
    let sum = stream(
        &sock,
        args.dest,
        &data,
        &StreamOpts {
            packets_per_datagram: usize::from(args.packets_per_datagram),
            rtp: args.rtp,
            pacing,
            loops: args.loops,
        },
        Some(&stop),
        |s| {
            if tty {
                eprint!("\r{:7.1} s  {:8.3} Mbit/s  {:9} datagrams", s.seconds, s.bitrate / 1e6, s.datagrams);
                let _ = std::io::stderr().flush();
            }
        },
    )?;
    if tty {
        eprintln!();
    }
    if args.json {
        println!("{}", serde_json::to_string(&sum)?);
    } else {
        println!(
            "sent {} datagrams, {} bytes in {:.2} s ({:.3} Mbit/s) to {}",
            sum.datagrams,
            sum.bytes,
            sum.seconds,
            sum.bitrate / 1e6,
            args.dest
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates_parse_with_suffixes() {
        assert_eq!(parse_bitrate("5M"), Ok(5_000_000));
        assert_eq!(parse_bitrate("800k"), Ok(800_000));
        assert_eq!(parse_bitrate("2500000"), Ok(2_500_000));
        assert!(parse_bitrate("fast").is_err());
        assert!(parse_bitrate("-1M").is_err());
    }

    #[test]
    fn refuses_what_is_not_ts() {
        let err = validate_ts(b"hello", "x.mp4").unwrap_err().to_string();
        assert_eq!(
            err,
            "x.mp4 is not an MPEG-TS file (5 bytes is not a whole number of 188-byte packets): give a .ts \
             file, e.g. made with `ffmpeg ... -f mpegts`"
        );
        let mut two = vec![0x47u8; 376];
        two[188] = 0;
        assert!(validate_ts(&two, "y.ts").unwrap_err().to_string().contains("packet 1 has no sync byte"));
        assert!(validate_ts(&[], "z.ts").unwrap_err().to_string().contains("it is empty"));
    }

    fn pcr_packet(pcr_27mhz: u64) -> Vec<u8> {
        let base = pcr_27mhz / 300;
        let ext = pcr_27mhz % 300;
        let mut p = vec![0x47, 0x01, 0x00, 0x20, 183, 0x10];
        p.extend_from_slice(&[
            (base >> 25) as u8,
            (base >> 17) as u8,
            (base >> 9) as u8,
            (base >> 1) as u8,
            ((base & 1) << 7) as u8 | 0x7e | (ext >> 8) as u8,
            ext as u8,
        ]);
        p.resize(188, 0xff);
        p
    }

    #[test]
    fn times_follow_the_pcr() {
        let mut ts = pcr_packet(27_000_000);
        ts.extend(std::iter::repeat_n(0x47, 188 * 9).collect::<Vec<u8>>());
        ts.extend(pcr_packet(27_000_000 + 2_700_000)); // 100 ms later, 10 packets on
        ts.extend(std::iter::repeat_n(0x47, 188 * 4).collect::<Vec<u8>>());
        let t = packet_times(&ts);
        assert_eq!(t.len(), 15);
        assert_eq!(t[0], Duration::ZERO);
        assert!((t[5].as_secs_f64() - 0.05).abs() < 1e-6);
        assert!((t[10].as_secs_f64() - 0.1).abs() < 1e-6);
        assert!((t[14].as_secs_f64() - 0.14).abs() < 1e-6, "extrapolated: {:?}", t[14]);
    }
}
