//! `report`: a deterministic case directory (summary.md, inventory.json, verify.json,
//! timeline.jsonl, MANIFEST.sha256).

use std::path::Path;

use rayon::prelude::*;
use salvor_docker::Store;
use salvor_forensic::{write_report, ReportOptions, TimelineOptions};

use crate::commands::EXIT_FINDINGS;
use crate::progress::bytes_bar;
use crate::Cli;

pub fn report(
    cli: &Cli,
    store: &Store,
    output: &Path,
    images: bool,
    logs: bool,
    volumes: bool,
    outputs: &salvor_sink::OutputPolicy,
) -> anyhow::Result<u8> {
    // Refused before any work; built beside it, renamed into place when complete.
    let sink = outputs.dir(output)?;
    let opts = options(images, logs, volumes);
    let total: u64 = store
        .layers
        .values()
        .collect::<Vec<_>>()
        .par_iter()
        .map(|l| store.layer_tar_size(l).unwrap_or(0))
        .sum();
    finish(cli, store, sink, &opts, total, output)
}

/// `report` of one store of any engine (a containerd namespace): its layers' sizes as the
/// store records them for the progress bar.
pub fn report_store(
    cli: &Cli,
    store: &dyn salvor_model::ContainerStore,
    output: &Path,
    images: bool,
    logs: bool,
    volumes: bool,
    outputs: &salvor_sink::OutputPolicy,
) -> anyhow::Result<u8> {
    let sink = outputs.dir(output)?;
    let opts = options(images, logs, volumes);
    let total = crate::output::total(store.layers().iter().filter_map(|l| l.size));
    finish(cli, store, sink, &opts, total, output)
}

/// The report's options: every container, volumes and logs as asked, salvor's version.
fn options(images: bool, logs: bool, volumes: bool) -> ReportOptions {
    ReportOptions {
        timeline: TimelineOptions {
            containers: Vec::new(),
            images,
            volumes,
            logs,
        },
        generator: format!("salvor {}", env!("CARGO_PKG_VERSION")),
    }
}

/// `report` of several stores: one directory per store (`named`), a summary above them.
pub fn report_stores(
    cli: &Cli,
    named: &[(&dyn salvor_model::ContainerStore, String)],
    output: &Path,
    images: bool,
    logs: bool,
    volumes: bool,
    outputs: &salvor_sink::OutputPolicy,
) -> anyhow::Result<u8> {
    let sink = outputs.dir(output)?;
    let opts = options(images, logs, volumes);
    let total = crate::output::total(
        named
            .iter()
            .flat_map(|(s, _)| s.layers())
            .filter_map(|l| l.size),
    );
    let pb = bytes_bar(total, cli.quiet, "verifying");
    let progress = |n: u64| pb.inc(n);
    let summary = salvor_forensic::write_report_stores(named, sink, &opts, &progress)?;
    pb.finish_and_clear();
    report_summary(cli, &summary, output);
    Ok(if summary.all_verified {
        0
    } else {
        EXIT_FINDINGS
    })
}

fn finish(
    cli: &Cli,
    store: &dyn salvor_model::ContainerStore,
    sink: salvor_sink::DirSink,
    opts: &ReportOptions,
    total: u64,
    output: &Path,
) -> anyhow::Result<u8> {
    let pb = bytes_bar(total, cli.quiet, "verifying");
    let progress = |n: u64| pb.inc(n);
    let summary = write_report(store, sink, opts, &progress)?;
    pb.finish_and_clear();
    report_summary(cli, &summary, output);
    Ok(if summary.all_verified {
        0
    } else {
        EXIT_FINDINGS
    })
}

/// What was written, and the verdict, on stderr.
fn report_summary(cli: &Cli, summary: &salvor_forensic::ReportSummary, output: &Path) {
    if !cli.quiet {
        for (name, hash) in &summary.files {
            eprintln!(
                "salvor: wrote {} (sha256 {hash})",
                output.join(name).display()
            );
        }
        if summary.all_verified {
            eprintln!("salvor: report: every image and layer verified");
        } else {
            eprintln!(
                "salvor: report: FINDINGS: {} image(s), {} layer(s) did not verify (see summary.md)",
                summary.images_failed, summary.layers_failed
            );
        }
    }
}
