//! `extract`: write images as an archive that `docker load`, skopeo and umoci accept.
//!
//! The logic is `salvor_core::extract` (layers rebuilt from the evidence while they are
//! written, each verified against its diff_id; with `--force` the layers that do not verify
//! exported *as found*, marked FORCED); this module writes the output, shows progress and
//! prints the report.

use std::io::{self, Write};
use std::path::Path;

use salvor_core::extract::{plan, spool_dir, why_not_verified, ExtractOptions};
use salvor_docker::Store;
use salvor_export::{ExportError, Format};
use serde_json::json;

use crate::commands::verify::check_with_progress;
use crate::commands::EXIT_FINDINGS;
use crate::output::{human_size, print_json, short_id};
use crate::progress::bytes_bar;
use crate::FormatArg;

/// How `extract` writes.
pub struct ExtractOpts<'a> {
    pub output: &'a Path,
    pub format: FormatArg,
    pub dir: bool,
    pub force: bool,
    pub json: bool,
    pub quiet: bool,
    /// For committed containers.
    pub tag: Option<&'a str>,
    pub names: Option<salvor_whiteout::TarNames>,
    /// Where outputs may go (the evidence guard, `--overwrite`).
    pub outputs: &'a salvor_sink::OutputPolicy,
}

pub fn extract(store: &Store, queries: &[String], o: &ExtractOpts) -> anyhow::Result<u8> {
    let (output, format, dir, json_out, quiet) = (o.output, o.format, o.dir, o.json, o.quiet);
    // Refused before any work (and before a commit spools beside it).
    if dir {
        o.outputs.check_dir(output)?;
    } else {
        o.outputs.check_file(output)?;
    }
    let options = ExtractOptions {
        force: o.force,
        tag: o.tag,
        names: o.names.clone(),
        spool_dir: spool_dir(output),
    };
    let mut warn = |n: String| {
        eprintln!("salvor: warning: extract: {}", crate::output::printable(&n));
    };
    let mut plan = plan(store, queries, &options, &mut warn, |chains| {
        check_with_progress(store, chains, quiet)
    })?;
    let format_out = match format {
        FormatArg::Docker => Format::Docker,
        FormatArg::DockerLegacy => Format::DockerLegacy,
        FormatArg::Oci => Format::Oci,
    };
    let pb = bytes_bar(plan.total, quiet, "extracting");
    let inc = |n: u64| pb.inc(n);
    let source = plan.layers(store, &inc);
    // A write error is the output's (a full disk), whatever the layer source made of it.
    let failed = |e: ExportError| match e {
        ExportError::Sink(s) => anyhow::Error::from(s),
        e => anyhow::Error::from(e).context(format!("cannot write {}", output.display())),
    };
    let to_export = std::mem::take(&mut plan.to_export);
    let write = || -> anyhow::Result<_> {
        Ok(if dir {
            let sink = o.outputs.dir(output)?;
            let r = salvor_export::export_dir_into(&to_export, &source, format_out, true, &sink)
                .map_err(failed)?;
            sink.commit()?;
            r
        } else {
            let mut sink = o.outputs.file(output)?;
            // The archive's own sha256 (a whole SHA-256 pass) is computed where it is
            // reported: --json, or a file output without -q. Standard output is not
            // hashed (the stream is the receiver's to hash where it lands).
            let to_stdout = salvor_sink::is_stdout(output);
            let res = salvor_export::export_tar_to_with(
                &to_export,
                &source,
                format_out,
                &mut sink,
                output,
                json_out || (!quiet && !to_stdout),
            );
            if let Some(e) = sink.write_error() {
                return Err(e.into());
            }
            let r = res.map_err(failed)?;
            sink.commit()?;
            r
        })
    };
    let (report, checked) = plan.write_and_check(store, &source, write)?;
    pb.finish_and_clear();
    let synthesised = plan.synthesised();
    let (images, committed, forced, spooled, renamed) = (
        &plan.images,
        &plan.committed,
        &plan.forced,
        &plan.spooled,
        &plan.renamed,
    );
    if !quiet && !json_out {
        for c in committed {
            eprintln!(
                "committed container {} as image {}{} ({})",
                c.container,
                short_id(c.image.id.as_str()),
                c.image
                    .repo_tags
                    .first()
                    .map(|t| format!(" {t}"))
                    .unwrap_or_default(),
                match &c.layer {
                    Some((d, _, _)) => format!("new layer {}", short_id(d)),
                    None => "no changes: no new layer".into(),
                }
            );
            if c.layer.is_some() {
                eprintln!(
                    "salvor: {}: layer headers as {}",
                    c.container,
                    crate::output::printable(&c.headers.how)
                );
            }
        }
    }
    if json_out {
        print_json(&json!({
            "output": output,
            "format": format!("{format:?}"),
            "images": images.iter().map(|i| json!({"id": i.id, "tags": i.repo_tags})).collect::<Vec<_>>(),
            "archive_sha256": report.archive_sha256,
            "bytes": report.bytes,
            "layers_written": report.layers_written,
            "forced_layers": forced.iter().map(|(chain, r)| {
                let sp = spooled.get(chain);
                json!({
                    "status": "FORCED",
                    "chain_id": chain,
                    "original_diff_id": r.diff_id,
                    "diff_id": sp.map(|s| &s.digest),
                    "size": sp.map(|s| s.size),
                    "verify": r,
                    "as_found": sp.map(|s| &s.report),
                })
            }).collect::<Vec<_>>(),
            "renamed_images": renamed.iter().map(|(old, new)| json!({"original_id": old, "id": new})).collect::<Vec<_>>(),
            "copy_artifacts": checked.artifacts_json(),
            "layers": checked.layers.values().map(salvor_forensic::verify::LayerVerdict::json).collect::<Vec<_>>(),
            "committed": committed.iter().map(|c| json!({"container": c.container, "image": c.image.id, "tags": c.image.repo_tags, "layer": c.layer.as_ref().map(|l| &l.0), "headers": c.headers.how, "headers_uncertain": c.headers.uncertain})).collect::<Vec<_>>(),
            "synthesised_configs": synthesised,
            "files": report.files.iter().map(|(p, h, s)| json!({"path": p, "sha256": h, "size": s})).collect::<Vec<_>>(),
        }))?;
    } else if !quiet {
        let mut err = io::stderr().lock();
        if let Some(line) = checked.copy_line() {
            writeln!(err, "{}", crate::output::printable(&line))?;
        }
        for v in checked.layers.values() {
            if let Some(line) = v.summary_line() {
                writeln!(err, "{}", crate::output::printable(&line))?;
            }
        }
        writeln!(
            err,
            "wrote {} ({}, {} image(s), {} layer(s), content of all verified{})",
            output.display(),
            human_size(report.bytes),
            images.len(),
            report.layers_written,
            if forced.is_empty() {
                ""
            } else {
                " except those listed below"
            }
        )?;
        match &report.archive_sha256 {
            Some(h) => writeln!(err, "archive sha256:{h}")?,
            None => writeln!(
                err,
                "archive sha256: not computed for standard output (hash the stream where it lands, or use --json)"
            )?,
        }
        for (chain, r) in forced {
            let sp = spooled.get(chain);
            writeln!(
                err,
                "FORCED: layer {} exported as found: diff_id {} (recorded {}); {}",
                short_id(chain),
                sp.map(|s| s.digest.as_str()).unwrap_or("?"),
                r.diff_id.as_deref().unwrap_or("none"),
                why_not_verified(r)
            )?;
            if let Some(sp) = sp {
                let a = &sp.report;
                writeln!(
                    err,
                    "  as found: {} entries, {} rewritten header(s), {} missing, {} planted",
                    a.entries, a.rewritten, a.missing, a.planted
                )?;
            }
        }
        for (old, new) in renamed {
            writeln!(
                err,
                "FORCED: image {} is written as {} (its config names the as-found layers)",
                short_id(old),
                short_id(new)
            )?;
        }
        if !synthesised.is_empty() {
            writeln!(err, "note: config(s) {} were synthesised from pre-1.10 metadata as Docker 1.10's migration would", synthesised.join(", "))?;
        }
    }
    Ok(if plan.clean(&checked) {
        0
    } else {
        EXIT_FINDINGS
    })
}
