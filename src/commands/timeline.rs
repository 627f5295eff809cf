//! `timeline`: a bodyfile or JSON-lines timeline of the containers' files and host events.

use std::path::Path;

use salvor_docker::Store;
use salvor_forensic::{write_timeline, TimelineFormat, TimelineOptions};

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
    outputs: &salvor_sink::OutputPolicy,
) -> anyhow::Result<u8> {
    // No -o: standard output, through the sink as well.
    let mut sink = outputs.file(output.unwrap_or(Path::new("-")))?;
    // The one resolver, containers only (images are there to say what else a query names).
    let mut ids: Vec<String> = Vec::new();
    if !containers.is_empty() {
        let (all, _) = store.containers();
        for q in containers {
            let found = salvor_docker::resolve::Resolver {
                images: &store.images,
                containers: &all,
            }
            .resolve(q, salvor_docker::Want::Container)
            .map_err(salvor_docker::StoreError::from)?;
            if let salvor_docker::Target::Container(found) = found.target {
                if !ids.contains(&found.id) {
                    ids.push(found.id.clone());
                }
            }
        }
    }
    let opts = TimelineOptions {
        containers: ids,
        images,
        volumes,
        logs,
    };
    let format = match format {
        TimelineFormatArg::Bodyfile => TimelineFormat::Bodyfile,
        TimelineFormatArg::Jsonl => TimelineFormat::Jsonl,
    };
    let res = write_timeline(store, &opts, format, &mut sink);
    // A write error is the output's (a full disk), whatever the writer made of it.
    if let Some(e) = sink.write_error() {
        return Err(e.into());
    }
    let summary = res?;
    sink.commit()?;
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
