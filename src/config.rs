//! The node's casts in one TOML file (`run --config`, `check-config`): every option of `cast`
//! has a key, and each error names its line and the fix.
use std::{collections::BTreeSet, ops::Range, path::Path};

use serde::Deserialize;
use toml::Spanned;

use crate::{
    cast::CastArgs,
    kernel::attach::{AttachMode, RunOpts},
    mpegts::{Codec, PID_NONE},
    out::NewOutput,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    metrics: Option<Spanned<String>>,
    #[serde(default)]
    cast: Vec<RawCast>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCast {
    name: Option<Spanned<String>>,
    input: Spanned<String>,
    #[serde(default)]
    ports: Option<Spanned<Vec<u16>>>,
    netns: Option<Spanned<String>>,
    pid: Option<Spanned<u16>>,
    codec: Option<Spanned<String>>,
    attach: Option<Spanned<String>>,
    #[serde(default)]
    no_tune: bool,
    hub_min: Option<usize>,
    #[serde(default)]
    json: bool,
    stats_interval: Option<Spanned<f64>>,
    #[serde(default)]
    output: Vec<RawOutput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    interface: Spanned<String>,
    policy: Option<Spanned<String>>,
    dst: Option<Spanned<String>>,
    mac: Option<Spanned<String>>,
}

/// A checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub metrics: Option<std::net::SocketAddr>,
    pub casts: Vec<CastEntry>,
}

/// One cast of the file, as `cast` would take it on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct CastEntry {
    pub name: String,
    pub netns: Option<String>,
    pub input: String,
    pub ports: Vec<u16>,
    pub pid: Option<u16>,
    pub codec: Option<Codec>,
    pub attach: AttachMode,
    pub no_tune: bool,
    pub hub_min: usize,
    pub json: bool,
    pub stats_interval: Option<f64>,
    /// (interface, the spec as `--to` takes it)
    pub outputs: Vec<(String, String)>,
}

impl CastEntry {
    /// What identifies a running cast: its network namespace and name.
    pub fn key(&self) -> (String, String) {
        (self.netns.clone().unwrap_or_default(), self.name.clone())
    }

    /// The same cast as command-line arguments.
    pub fn args(&self) -> CastArgs {
        CastArgs {
            input: self.input.clone(),
            to: self.outputs.iter().map(|(_, spec)| spec.parse().expect("checked when read")).collect(),
            port: self.ports.clone(),
            pid: self.pid,
            codec: self.codec,
            run: RunOpts { attach: self.attach, json: self.json, stats_interval: self.stats_interval },
            no_tune: self.no_tune,
            hub_min: self.hub_min,
            name: Some(self.name.clone()),
            metrics: None,
        }
    }

    /// Everything but the outputs: a change here restarts the cast.
    pub fn same_but_outputs(&self, other: &CastEntry) -> bool {
        CastEntry { outputs: vec![], ..self.clone() } == CastEntry { outputs: vec![], ..other.clone() }
    }
}

/// Reads and checks a file: Err holds every error, one per line, as "FILE:LINE: what; fix".
pub fn load(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text)
        .map_err(|errs| errs.iter().map(|e| format!("{}:{e}", path.display())).collect::<Vec<_>>().join("\n"))
}

/// Parses and checks the text of a file: Err holds every error as "LINE: what; fix".
pub fn parse(text: &str) -> Result<Config, Vec<String>> {
    let line =
        |r: Option<Range<usize>>| r.map_or(1, |r| text[..r.start.min(text.len())].matches('\n').count() + 1);
    let raw: RawFile =
        toml::from_str(text).map_err(|e| vec![format!("{}: {}", line(e.span()), e.message())])?;
    let mut errs = Vec::new();
    let mut err = |span: Range<usize>, msg: String| errs.push(format!("{}: {msg}", line(Some(span))));
    let metrics = raw.metrics.as_ref().and_then(|m| match m.get_ref().parse() {
        Ok(a) => Some(a),
        Err(_) => {
            err(
                m.span(),
                format!("metrics = \"{}\" is not ADDRESS:PORT; write e.g. \"127.0.0.1:9464\"", m.get_ref()),
            );
            None
        }
    });
    if raw.cast.is_empty() {
        err(
            0..0,
            "no [[cast]]: add one with input = \"IF\" and an [[cast.output]] with interface = \"OUT\"".into(),
        );
    }
    let mut casts = Vec::new();
    let mut seen = BTreeSet::new();
    let mut inputs = BTreeSet::new();
    for c in &raw.cast {
        let name = c.name.as_ref().map_or_else(|| c.input.get_ref().clone(), |n| n.get_ref().clone());
        let name_span = c.name.as_ref().map_or(c.input.span(), Spanned::span);
        if let Err(e) = crate::kernel::pins::check_name(&name) {
            err(name_span.clone(), format!("{e:#}"));
        }
        let netns = c.netns.as_ref().map(|n| n.get_ref().clone());
        let ns_label = netns.clone().unwrap_or_else(|| "the host's".into());
        if !seen.insert((netns.clone(), name.clone())) {
            err(
                name_span,
                format!("a second cast named {name} in {ns_label} network namespace: give it another name"),
            );
        }
        if !inputs.insert((netns.clone(), c.input.get_ref().clone())) {
            err(
                c.input.span(),
                format!(
                    "{} is the input of another cast in {ns_label} network namespace: one cast per input",
                    c.input.get_ref()
                ),
            );
        }
        let ports = c.ports.as_ref().map(|p| p.get_ref().clone()).unwrap_or_default();
        if let Some(p) = &c.ports {
            let unique: BTreeSet<_> = ports.iter().collect();
            if ports.contains(&0) || unique.len() != ports.len() || ports.len() > 8 {
                err(p.span(), "ports: give 1 to 8 different UDP ports from 1 to 65535".into());
            }
        }
        if let Some(p) = &c.pid {
            if !(0x10..PID_NONE).contains(p.get_ref()) {
                err(p.span(), format!("pid = {:#x} is not a video PID: give 0x10 to 0x1ffe", p.get_ref()));
            }
        }
        let codec = c.codec.as_ref().and_then(|k| match k.get_ref().as_str() {
            "h264" => Some(Codec::H264),
            "h265" => Some(Codec::H265),
            other => {
                err(k.span(), format!("codec = \"{other}\": write \"h264\" or \"h265\""));
                None
            }
        });
        if let (Some(k), None) = (&c.codec, &c.pid) {
            err(k.span(), "codec needs pid: the codec of a PID the PMT does not name".into());
        }
        let attach = c.attach.as_ref().map_or(AttachMode::Auto, |a| match a.get_ref().as_str() {
            "auto" => AttachMode::Auto,
            "tcx" => AttachMode::Tcx,
            "tc" => AttachMode::Tc,
            other => {
                err(a.span(), format!("attach = \"{other}\": write \"auto\", \"tcx\" or \"tc\""));
                AttachMode::Auto
            }
        });
        if let Some(s) = &c.stats_interval {
            if !(*s.get_ref() > 0.0 && s.get_ref().is_finite()) {
                err(s.span(), "stats_interval: give a positive number of seconds".into());
            }
        }
        if c.output.is_empty() {
            err(
                c.input.span(),
                format!("cast {name} has no output: add [[cast.output]] with interface = \"OUT\""),
            );
        }
        let mut outputs = Vec::new();
        for o in &c.output {
            let mut spec = o.interface.get_ref().clone();
            if let Some(p) = &o.policy {
                spec.push(':');
                spec.push_str(p.get_ref());
            }
            for (key, v) in [("dst", &o.dst), ("mac", &o.mac)] {
                if let Some(v) = v {
                    spec.push_str(&format!(",{key}={}", v.get_ref()));
                }
            }
            match spec.parse::<NewOutput>() {
                Ok(_) if o.interface.get_ref() == c.input.get_ref() => err(
                    o.interface.span(),
                    format!("{} is the input of {name}: it cannot be an output too", c.input.get_ref()),
                ),
                Ok(_) if outputs.iter().any(|(i, _)| i == o.interface.get_ref()) => err(
                    o.interface.span(),
                    format!("{} is an output of {name} twice: keep one", o.interface.get_ref()),
                ),
                Ok(_) => outputs.push((o.interface.get_ref().clone(), spec)),
                Err(e) => {
                    let span = [&o.policy, &o.dst, &o.mac]
                        .into_iter()
                        .flatten()
                        .map(Spanned::span)
                        .next()
                        .unwrap_or(o.interface.span());
                    err(span, e);
                }
            }
        }
        casts.push(CastEntry {
            name,
            netns,
            input: c.input.get_ref().clone(),
            ports,
            pid: c.pid.as_ref().map(|p| *p.get_ref()),
            codec,
            attach,
            no_tune: c.no_tune,
            hub_min: c.hub_min.unwrap_or(crate::hub::MIN_MEMBERS),
            json: c.json,
            stats_interval: c.stats_interval.as_ref().map(|s| *s.get_ref()),
            outputs,
        });
    }
    if errs.is_empty() {
        Ok(Config { metrics, casts })
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
metrics = "127.0.0.1:9464"

[[cast]]
name = "cam1"
input = "in0"
ports = [5000]

[[cast.output]]
interface = "o1"
[[cast.output]]
interface = "o2"
policy = "key"
dst = "10.79.2.2:6000"
"#;

    #[test]
    fn reads_a_node() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.metrics, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(c.casts.len(), 1);
        let cast = &c.casts[0];
        assert_eq!(
            (cast.name.as_str(), cast.input.as_str(), cast.ports.as_slice()),
            ("cam1", "in0", &[5000][..])
        );
        assert_eq!(
            cast.outputs,
            [("o1".into(), "o1".into()), ("o2".into(), "o2:key,dst=10.79.2.2:6000".into())]
        );
        assert_eq!(cast.args().to.len(), 2);
        assert_eq!(cast.args().hub_min, crate::hub::MIN_MEMBERS, "hubs by default");
        let no_hubs =
            parse("[[cast]]\ninput = \"in0\"\nhub_min = 0\n[[cast.output]]\ninterface = \"o1\"\n").unwrap();
        assert_eq!(no_hubs.casts[0].args().hub_min, 0);
        let capped =
            parse("[[cast]]\ninput = \"in0\"\n[[cast.output]]\ninterface = \"o1\"\npolicy = \"max=800k\"\n")
                .unwrap();
        assert_eq!(capped.casts[0].args().to[0].policy, crate::policy::Policy::Max(800_000));
    }

    #[test]
    fn names_every_error_with_its_line() {
        let bad = "[[cast]]\ninput = \"in0\"\nports = [0]\ncodec = \"av1\"\n[[cast.output]]\ninterface = \"o1\"\npolicy = \"half\"\n[[cast.output]]\ninterface = \"in0\"\n";
        let errs = parse(bad).unwrap_err();
        assert_eq!(errs.len(), 5, "{errs:#?}");
        assert!(errs[0].starts_with("3: ports"), "{errs:#?}");
        assert!(errs[1].starts_with("4: codec = \"av1\""), "{errs:#?}");
        assert!(errs[2].starts_with("4: codec needs pid"), "{errs:#?}");
        assert!(errs[3].starts_with("7: "), "{errs:#?}");
        assert!(errs[4].starts_with("9: in0 is the input of in0"), "{errs:#?}");
        let syntax = parse("[[cast]]\ninput = in0\n").unwrap_err();
        assert!(syntax[0].starts_with("2: "), "{syntax:?}");
        let unknown = parse("[[cast]]\ninput = \"in0\"\nport = 5000\n").unwrap_err();
        assert!(unknown[0].starts_with("3: unknown field `port`"), "{unknown:?}");
    }
}
