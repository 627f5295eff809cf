//! `timeline`: a bodyfile or JSON-lines timeline of the containers' files and host events.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context};
use salvor_forensic::{write_timeline, TimelineFormat, TimelineOptions};
use salvor_store::Store;

use crate::{Cli, TimelineFormatArg};

#[allow(clippy::too_many_arguments)]
pub fn timeline(
    cli: &Cli,
    store: &Store,
    format: TimelineFormatArg,
    containers: &[String],
    images: bool,
    volumes: bool,
    logs: bool,
    output: Option<&Path>,
) -> anyhow::Result<u8> {
    let opts = TimelineOptions {
        containers: containers.to_vec(),
        images,
        volumes,
        logs,
    };
    let format = match format {
        TimelineFormatArg::Bodyfile => TimelineFormat::Bodyfile,
        TimelineFormatArg::Jsonl => TimelineFormat::Jsonl,
    };
    let summary = match output {
        None => {
            let stdout = io::stdout();
            let mut w = BufWriter::with_capacity(256 << 10, stdout.lock());
            let s = write_timeline(store, &opts, format, &mut w)?;
            w.flush()?;
            s
        }
        Some(path) => {
            if path.exists() {
                bail!(
                    "{}: already exists (a timeline is only written to a new file)",
                    path.display()
                );
            }
            // The same rule as reports: never inside the evidence.
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                check_outside(cli, parent)?;
            } else {
                check_outside(cli, Path::new("."))?;
            }
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut w = BufWriter::with_capacity(256 << 10, f);
            let s = write_timeline(store, &opts, format, &mut w)?;
            w.flush()?;
            s
        }
    };
    if !cli.quiet {
        eprintln!(
            "salvor: timeline: {} file(s) and event(s), {} line(s)",
            summary.entries, summary.lines
        );
        for p in summary.problems.iter().take(20) {
            eprintln!("salvor: note: {}: {}", p.path.display(), p.what);
        }
        if summary.problems.len() > 20 {
            eprintln!(
                "salvor: note: … {} more problem(s)",
                summary.problems.len() - 20
            );
        }
    }
    Ok(0)
}

/// Refuses an output directory inside the evidence directory.
fn check_outside(cli: &Cli, dir: &Path) -> anyhow::Result<()> {
    let (Some(ev), Ok(d)) = (cli.root.as_deref(), std::fs::canonicalize(dir)) else {
        return Ok(());
    };
    if let Ok(ev) = std::fs::canonicalize(ev) {
        if d.starts_with(&ev) {
            bail!(
                "{}: is inside the evidence {} (the evidence is never written)",
                dir.display(),
                ev.display()
            );
        }
    }
    Ok(())
}
