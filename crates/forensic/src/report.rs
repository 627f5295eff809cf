//! A case directory: everything salvor can say about the evidence, written once,
//! deterministically, with a manifest.
//!
//! [`write_report`] writes into an empty (or new) directory outside the evidence:
//!
//! | file | what |
//! |---|---|
//! | `summary.md` | human-readable: evidence, data-root, driver, images, containers, the verdict per image and layer with findings, volumes, problems |
//! | `inventory.json` | the model: images, layers, containers, volumes, bind mounts, problems |
//! | `verify.json` | every layer rebuilt and checked against its diff_id (the shape of `salvor verify --json`) |
//! | `timeline.jsonl` | the JSON-lines timeline ([`crate::timeline`]) |
//! | `MANIFEST.sha256` | `sha256sum -c` compatible: the sha256 of every other file |
//!
//! Nothing depends on the wall clock or on the order threads finish in: the same evidence
//! gives a byte-identical directory.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use salvor_model::ContainerStore;
use salvor_sink::{DirSink, Tagged};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::timeline::{clean_bytes, write_timeline, TimelineFormat, TimelineOptions};
use crate::verify::{check, layers_of, verdicts};

/// What goes into a report.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// The timeline's scope (all containers and volumes by default from the CLI).
    pub timeline: TimelineOptions,
    /// Written into summary.md and inventory.json (`salvor 0.1.0`).
    pub generator: String,
}

/// What a report found.
#[derive(Debug, Clone, Default)]
pub struct ReportSummary {
    /// `(file name, sha256 hex)` of every file written, MANIFEST.sha256 last.
    pub files: Vec<(String, String)>,
    /// Every image and layer verified.
    pub all_verified: bool,
    /// Images that did not verify.
    pub images_failed: usize,
    /// Layers that did not verify (by content or by metadata).
    pub layers_failed: usize,
    /// Problems met reading the evidence (listed in summary.md).
    pub problems: usize,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A file of the report could not be written.
    #[error("{path}")]
    Io {
        /// The file of the report (its final path in the output directory).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The timeline could not be written.
    #[error(transparent)]
    Timeline(#[from] crate::timeline::TimelineError),
    /// The output: refused, or writing it failed (names the output path).
    #[error(transparent)]
    Sink(#[from] salvor_sink::SinkError),
    /// The store's containers or volumes could not be read.
    #[error(transparent)]
    Store(#[from] salvor_model::ModelError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A file being written, hashed as it goes.
struct Hashed {
    w: BufWriter<Tagged<File>>,
    h: Sha256,
}

impl Write for Hashed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.w.write(buf)?;
        self.h.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

struct Writer<'a> {
    dir: &'a DirSink,
    files: Vec<(String, String)>,
    /// Put before every file's name (`k8s.io/`: a store's directory of a multi-store report).
    prefix: String,
}

impl Writer<'_> {
    fn file<T>(
        &mut self,
        name: &str,
        body: impl FnOnce(&mut Hashed) -> Result<T, ReportError>,
    ) -> Result<T, ReportError> {
        let name = &format!("{}{name}", self.prefix);
        let path = self.dir.final_path(name);
        let f = self.dir.create_file(name)?;
        let mut h = Hashed {
            w: BufWriter::with_capacity(256 << 10, f),
            h: Sha256::new(),
        };
        let r = body(&mut h);
        let flushed = h.flush();
        // A write error is the output's (a full disk), whatever the body made of it.
        if let Some(e) = h.w.get_ref().error() {
            return Err(e.into());
        }
        let r = r?;
        flushed.map_err(io_err(&path))?;
        h.w.get_ref().get_ref().sync_all().map_err(io_err(&path))?;
        self.files
            .push((name.to_string(), hex::encode(h.h.finalize())));
        Ok(r)
    }
}

fn json_to(path: &str, v: &serde_json::Value, w: &mut Hashed) -> Result<(), ReportError> {
    let p = PathBuf::from(path);
    serde_json::to_writer_pretty(&mut *w, v).map_err(|e| io_err(&p)(e.into()))?;
    w.write_all(b"\n").map_err(io_err(&p))
}

/// Writes the case directory into `out` (a [`DirSink`] from a guarded
/// [`salvor_sink::OutputPolicy`]: new or empty, never inside the evidence), and commits it
/// only when every file is complete: a failure (a full disk) leaves no directory, and never
/// a MANIFEST over a truncated tree. `progress` gets the bytes rebuilt while layers are
/// verified.
pub fn write_report(
    store: &dyn ContainerStore,
    out: DirSink,
    opts: &ReportOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ReportSummary, ReportError> {
    let mut w = Writer {
        dir: &out,
        files: Vec::new(),
        prefix: String::new(),
    };
    let found = write_store(
        store,
        &mut w,
        opts,
        progress,
        "their sha256 in `MANIFEST.sha256` (`sha256sum -c MANIFEST.sha256` in this directory)",
    )?;
    let summary = finish(w, found)?;
    out.commit()?;
    Ok(summary)
}

/// [`write_report`] of several stores of one host (Docker's graphdriver store, each
/// containerd namespace): each store's files in a directory of its own (`dirs`, one per
/// store: `docker`, `containerd-k8s.io` …), a `summary.md` above them naming each store and
/// its verdict, and one `MANIFEST.sha256` of every file, with its path.
pub fn write_report_stores(
    stores: &[(&dyn ContainerStore, String)],
    out: DirSink,
    opts: &ReportOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ReportSummary, ReportError> {
    let mut w = Writer {
        dir: &out,
        files: Vec::new(),
        prefix: String::new(),
    };
    let mut total = Found {
        all_ok: true,
        ..Found::default()
    };
    let mut rows = Vec::new();
    for (store, dir) in stores {
        out.create_dir(dir)?;
        w.prefix = format!("{dir}/");
        let f = write_store(
            *store,
            &mut w,
            opts,
            progress,
            "their sha256 in the `MANIFEST.sha256` one directory up (`sha256sum -c MANIFEST.sha256` there)",
        )?;
        rows.push(format!(
            "| [{}]({}/summary.md) | {} | {} |\n",
            md_escape(dir),
            md_escape(dir),
            md_escape(&store.identity().to_string()),
            if f.all_ok {
                "every image and layer verified".to_string()
            } else {
                format!(
                    "FINDINGS: {} image(s), {} layer(s) did not verify",
                    f.images_failed, f.layers_failed
                )
            }
        ));
        total.all_ok &= f.all_ok;
        total.images_failed += f.images_failed;
        total.layers_failed += f.layers_failed;
        total.problems += f.problems;
    }
    w.prefix = String::new();
    let mut s = String::new();
    s.push_str("# salvor report\n\n");
    s.push_str(&format!("Written by {}.\n\n", md_escape(&opts.generator)));
    s.push_str(&format!(
        "This host has {} stores; each has its own directory with its summary, inventory, verification and timeline.\n\n| store | engine | verdict |\n|---|---|---|\n",
        stores.len()
    ));
    for r in &rows {
        s.push_str(r);
    }
    s.push_str("\nThe sha256 of every file is in `MANIFEST.sha256` (`sha256sum -c MANIFEST.sha256` in this directory).\n");
    w.file("summary.md", |h| {
        h.write_all(s.as_bytes())
            .map_err(io_err(Path::new("summary.md")))
    })?;
    let summary = finish(w, total)?;
    out.commit()?;
    Ok(summary)
}

/// What one store's part of a report found.
#[derive(Default)]
struct Found {
    all_ok: bool,
    images_failed: usize,
    layers_failed: usize,
    problems: usize,
}

/// MANIFEST.sha256 of every file written, and the summary.
fn finish(mut w: Writer<'_>, f: Found) -> Result<ReportSummary, ReportError> {
    w.prefix = String::new();
    let mut files = w.files.clone();
    files.sort();
    let manifest: String = files.iter().map(|(n, h)| format!("{h}  {n}\n")).collect();
    w.file("MANIFEST.sha256", |h| {
        h.write_all(manifest.as_bytes())
            .map_err(io_err(Path::new("MANIFEST.sha256")))
    })?;
    let mut files = w.files;
    files.sort_by(|a, b| {
        (a.0 == "MANIFEST.sha256")
            .cmp(&(b.0 == "MANIFEST.sha256"))
            .then(a.0.cmp(&b.0))
    });
    Ok(ReportSummary {
        files,
        all_verified: f.all_ok,
        images_failed: f.images_failed,
        layers_failed: f.layers_failed,
        problems: f.problems,
    })
}

/// One store's summary.md, inventory.json, verify.json and timeline.jsonl, through `w`.
fn write_store(
    store: &dyn ContainerStore,
    w: &mut Writer<'_>,
    opts: &ReportOptions,
    progress: &(dyn Fn(u64) + Sync),
    manifest_note: &str,
) -> Result<Found, ReportError> {
    // The model.
    let containers = store.containers()?;
    let volumes = store.volumes()?;
    let binds = store.bind_mounts();
    let mut problems = store.problems();
    problems.extend(store.container_problems());
    problems.extend(store.volume_problems());
    problems.sort();
    problems.dedup();
    let warnings: Vec<String> = store.source().warnings().to_vec();
    let damage = store.damage();

    // Verification.
    let images = store.images();
    let layers = store.layers();
    // Every layer of every image, then layers no image uses (still evidence).
    let mut chains = layers_of(&images);
    for l in &layers {
        if !chains.contains(&l.id) {
            chains.push(l.id.clone());
        }
    }
    let checked = check(store, &chains, progress);
    let verdicts = verdicts(store, &images, &checked);
    let all_ok = verdicts.iter().all(|v| v.ok) && checked.all_ok();

    // timeline.jsonl first: its problems go into the summary.
    let tl = w.file("timeline.jsonl", |h| {
        Ok(write_timeline(
            store,
            &opts.timeline,
            TimelineFormat::Jsonl,
            h,
        )?)
    })?;

    // The generator, then the store in its engine's own shape.
    let mut inventory = serde_json::Map::new();
    inventory.insert("generator".into(), json!(opts.generator));
    match store.inventory_json() {
        serde_json::Value::Object(o) => inventory.extend(o),
        other => {
            inventory.insert("store".into(), other);
        }
    }
    let inventory = serde_json::Value::Object(inventory);
    w.file("inventory.json", |h| {
        json_to("inventory.json", &inventory, h)
    })?;

    let verify = checked.json(&verdicts, store);
    w.file("verify.json", |h| json_to("verify.json", &verify, h))?;

    // summary.md
    let mut s = String::new();
    let md = |x: &str| md_escape(x);
    s.push_str("# salvor report\n\n");
    s.push_str(&format!("Written by {}.\n\n", md(&opts.generator)));
    // Damage of the evidence is said before anything else.
    for d in &damage {
        s.push_str(&format!(
            "**EVIDENCE DAMAGED** ({}): {}. Everything below is read up to the damage; files missing because of it are not findings about the host.\n\n",
            d.kind,
            md(&d.to_string())
        ));
    }
    s.push_str("## Evidence\n\n| | |\n|---|---|\n");
    let identity = store.identity();
    let data_root = if identity.root.as_os_str().is_empty() {
        "/ (the evidence is the data-root)".to_string()
    } else {
        format!("/{}", identity.root.display())
    };
    let layout = store.layout_description();
    for (k, v) in [
        ("Evidence", Some(md(&store.source().describe()))),
        ("Data root", Some(md(&data_root))),
        ("Layout", layout.as_deref().map(md)),
        ("Storage driver", Some(md(&identity.driver))),
        ("Images", Some(images.len().to_string())),
        ("Layers", Some(layers.len().to_string())),
        ("Containers", Some(containers.len().to_string())),
        ("Volumes", Some(volumes.len().to_string())),
    ] {
        if let Some(v) = v {
            s.push_str(&format!("| {k} | {v} |\n"));
        }
    }
    let images_failed = verdicts.iter().filter(|v| !v.ok).count();
    let layers_failed = checked.layers.values().filter(|v| !v.ok()).count();
    let n_layers = checked.layers.len();
    s.push_str("\n## Verdict\n\n");
    s.push_str("Each layer has two verdicts: **content** (rebuilt from the files on disk and its tar-split: every file's CRC-64 and size, the stream's sha256 against its diff_id; this alone decides \"verified\") and **metadata** (the layer directory against the engine's record: mode, owner, mtime, xattrs, links, planted and missing files).\n\n");
    if let Some(line) = checked.copy_line() {
        s.push_str(&format!(
            "Note: {}. Those differences are classed copy-artifact; every other difference is a finding.\n\n",
            md(&line)
        ));
    }
    if all_ok {
        s.push_str(&format!(
            "All {} image(s) and {n_layers} layer(s) verified: every layer rebuilt byte-exact from the files on disk and hashes to its diff_id, and every layer directory matches the engine's record of it{}.\n",
            verdicts.len(),
            if checked.explained.is_empty() { "" } else { " but for the copy artifacts above" }
        ));
    } else {
        let content_failed = checked
            .layers
            .values()
            .filter(|v| v.content() != "verified")
            .count();
        s.push_str(&format!(
            "**FINDINGS: {images_failed} of {} image(s) and {layers_failed} of {n_layers} layer(s) did not verify** ({content_failed} layer(s) by content, {} by metadata). See \"Layers\" below and verify.json.\n",
            verdicts.len(),
            layers_failed - content_failed.min(layers_failed)
        ));
    }

    s.push_str("\n## Images\n\n| Image ID | Tags | Created | Size (bytes) | Layers | Verify |\n|---|---|---|---|---|---|\n");
    for (img, v) in images.iter().zip(&verdicts) {
        let tags = if img.names.is_empty() {
            "<none>".to_string()
        } else {
            img.names.join(", ")
        };
        let verdict = if v.ok {
            "verified".to_string()
        } else {
            format!("**FAILED**: {}", v.problems.join("; "))
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            md(&img.id),
            md(&tags),
            md(img.created.as_deref().unwrap_or("")),
            store
                .image_size(&img.id)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            img.layers.len(),
            md(&verdict)
        ));
    }

    s.push_str("\n## Layers\n\n| Chain ID | Diff ID | Content | Metadata | Files | Bytes |\n|---|---|---|---|---|---|\n");
    let bold = |x: String, plain: bool| if plain { x } else { format!("**{x}**") };
    for (c, v) in &checked.layers {
        let r = &v.rebuild;
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            md(c),
            md(r.diff_id.as_deref().unwrap_or("?")),
            bold(md(&v.content_cell()), v.content() == "verified"),
            bold(md(&v.metadata_cell()), v.metadata_findings() == 0),
            r.files,
            r.bytes,
        ));
    }
    for (c, v) in &checked.layers {
        if v.content() == "verified" && matches!(v.metadata(), "clean" | "not-audited") {
            continue;
        }
        let r = &v.rebuild;
        s.push_str(&format!(
            "\n### Layer {} (diff {})\n\n- content: {}; metadata: {}\n",
            md(c),
            md(r.diff_id.as_deref().unwrap_or("?")),
            md(&v.content_cell()),
            md(&v.metadata_cell())
        ));
        if let Some(e) = &r.error {
            s.push_str(&format!("- error: {}\n", md(e)));
        }
        if let Some(a) = &r.actual {
            if Some(a) != r.diff_id.as_ref() {
                s.push_str(&format!("- rebuilt stream hashes to {}\n", md(a)));
            }
        }
        for f in &r.findings {
            s.push_str(&format!(
                "- {}: {} ({})\n",
                md(&f.path),
                md(f.kind.as_str()),
                md(&f.detail)
            ));
        }
        if let Some(a) = &v.audit {
            for f in &a.findings {
                s.push_str(&format!(
                    "- {}: {} (expected {}, found {}){}\n",
                    md(&f.path),
                    md(f.kind.as_str()),
                    md(&f.expected),
                    md(&f.found),
                    if f.class == crate::audit::FindingClass::CopyArtifact {
                        " — copy-artifact"
                    } else {
                        ""
                    }
                ));
            }
            if a.omitted > 0 {
                s.push_str(&format!(
                    "- … {} more audit finding(s), not kept (counted as findings)\n",
                    a.omitted
                ));
            }
            for n in &a.notes {
                s.push_str(&format!("- audit note: {}\n", md(n)));
            }
        }
    }

    s.push_str("\n## Containers\n\n| Container ID | Name | Image | Created | Started | Finished | Status | Exit code |\n|---|---|---|---|---|---|---|---|\n");
    let mut sorted: Vec<_> = containers.iter().collect();
    sorted.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    for c in &sorted {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            md(&c.id),
            md(&c.name),
            md(&store
                .container_image_name(&c.id)
                .unwrap_or_else(|| c.image.clone())),
            md(c.created.as_deref().unwrap_or("")),
            md(c.state.started_at.as_deref().unwrap_or("")),
            md(c.state.finished_at.as_deref().unwrap_or("")),
            md(&c.state.status),
            c.state.exit_code.map(|x| x.to_string()).unwrap_or_default()
        ));
    }

    s.push_str("\n## Volumes\n\n| Name | Created | Used by |\n|---|---|---|\n");
    for v in &store.volume_details() {
        let users: Vec<String> = v
            .used_by
            .iter()
            .map(|(name, destination)| format!("{name} at {destination}"))
            .collect();
        s.push_str(&format!(
            "| {} | {} | {} |\n",
            md(&v.name),
            md(v.created_at.as_deref().unwrap_or("")),
            md(&users.join(", "))
        ));
    }
    if !binds.is_empty() {
        s.push_str("\n### Bind mounts (host paths, never followed)\n\n| Container | Source | Destination | In the evidence |\n|---|---|---|---|\n");
        for b in &binds {
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                md(&b.container_name),
                md(&b.source),
                md(&b.destination),
                if b.inside_evidence { "yes" } else { "no" }
            ));
        }
    }

    s.push_str(&format!(
        "\n## Timeline\n\ntimeline.jsonl: {} line(s) for {} file(s) and event(s) (container read-write and init layers{}{}; host events from the engine's metadata{}).\n",
        tl.lines,
        tl.entries,
        if opts.timeline.volumes { ", volumes" } else { "" },
        if opts.timeline.images { ", image layers" } else { "" },
        if opts.timeline.logs { "; log lines" } else { "" },
    ));

    let mut all_problems: Vec<String> = problems
        .iter()
        .map(|p| {
            format!(
                "{}: {}",
                clean_bytes(p.path.as_os_str().as_encoded_bytes()),
                p.what
            )
        })
        .collect();
    for p in &tl.problems {
        let line = format!(
            "{}: {}",
            clean_bytes(p.path.as_os_str().as_encoded_bytes()),
            p.what
        );
        if !all_problems.contains(&line) {
            all_problems.push(line);
        }
    }
    all_problems.extend(warnings.iter().map(|w| format!("evidence: {w}")));
    s.push_str("\n## Problems\n\n");
    if all_problems.is_empty() {
        s.push_str("None: every piece of metadata could be read and adds up.\n");
    } else {
        for p in &all_problems {
            s.push_str(&format!("- {}\n", md(p)));
        }
    }
    s.push_str(&format!(
        "\n## Files\n\n`summary.md`, `inventory.json`, `verify.json`, `timeline.jsonl`; {manifest_note}.\n"
    ));
    w.file("summary.md", |h| {
        h.write_all(s.as_bytes())
            .map_err(io_err(Path::new("summary.md")))
    })?;
    Ok(Found {
        all_ok,
        images_failed,
        layers_failed,
        problems: all_problems.len(),
    })
}

/// Markdown-safe text: control characters and non-UTF-8 escaped, markup characters
/// backslash-escaped, so a hostile name cannot forge table cells, links or HTML.
pub fn md_escape(s: &str) -> String {
    let cleaned = clean_bytes(s.as_bytes());
    let mut out = String::with_capacity(cleaned.len());
    for c in cleaned.chars() {
        if "`*_[]<>|#".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
