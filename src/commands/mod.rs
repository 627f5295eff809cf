//! One module per sub-command; `run` opens the evidence and dispatches.

use anyhow::bail;
use salvor_core::evidence;
use salvor_core::probe::{ProbeReport, VolumeProbe};
use salvor_core::{Evidence, EvidenceError, EvidenceOptions, Host};
use salvor_docker::Store;
use salvor_sink::OutputPolicy;

use crate::{Cli, Command};

mod containers;
mod extract;
mod images;
mod inspect;
mod report;
pub mod rootfs;
mod stores;
mod target;
mod timeline;
mod verify;

/// Exit code for "the command ran and found problems in the evidence".
pub const EXIT_FINDINGS: u8 = 1;

/// Opens the evidence and its stores, and the policy every output goes through: the
/// evidence and every file salvor read to open it are protected (`salvor_sink::EvidenceGuard`),
/// `--overwrite` applies. Damage and notes are said on stderr as they are found.
pub fn open_host_and_outputs(cli: &Cli) -> anyhow::Result<(Host, OutputPolicy)> {
    let Some(root) = &cli.root else {
        bail!("no evidence given: pass --root PATH (or set SALVOR_ROOT) naming a Docker data-root, a host root directory, or an archive of either");
    };
    let evidence = match Evidence::open(root, evidence_options(cli)) {
        Ok(o) => o,
        Err(e) => {
            for line in evidence::damage_lines(&e.damage()) {
                eprintln!("{line}");
            }
            return Err(e.into_anyhow());
        }
    };
    // Damage of the evidence is said first, even with --quiet: it is the verdict on
    // everything that follows.
    for line in evidence::damage_lines(evidence.damage()) {
        eprintln!("{line}");
    }
    if !evidence.damage().is_empty() {
        crate::output::set_evidence_damage(evidence::damage_json(evidence.damage()));
    }
    let outputs = OutputPolicy::new(evidence.guard(), cli.overwrite);
    if let (Some(v), false) = (evidence.volume(), cli.quiet) {
        eprintln!(
            "salvor: note: reading volume {v} of the disk image ({})",
            evidence.source().describe()
        );
    }
    let mut host = Host::open(&evidence).map_err(EvidenceError::into_anyhow)?;
    if let Some(ns) = &cli.namespace {
        let known: Vec<String> = host
            .stores()
            .identities()
            .into_iter()
            .filter_map(|i| i.namespace)
            .collect();
        if !known.contains(ns) {
            bail!(
                "--namespace {ns:?}: no store of that namespace (namespaces found: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
        host.retain_namespace(ns);
    }
    if !cli.quiet {
        for note in host.notes() {
            eprintln!("salvor: note: {note}");
        }
    }
    let (consequences, others) = host.metadata_problems();
    if !cli.quiet && consequences > 0 {
        eprintln!(
            "salvor: note: {consequences} piece(s) of metadata are missing or cut because the evidence is damaged; `salvor info` lists them"
        );
    }
    if !cli.quiet && others > 0 {
        eprintln!(
            "salvor: note: {others} piece(s) of metadata could not be read or do not add up; `salvor info` lists them"
        );
    }
    Ok((host, outputs))
}

/// What the global options (and `extract --passwd/--group`) say about the evidence.
fn evidence_options(cli: &Cli) -> EvidenceOptions {
    let mut also_read = Vec::new();
    if let Command::Extract { passwd, group, .. } = &cli.command {
        for (f, what) in [(passwd, "the --passwd file"), (group, "the --group file")] {
            if let Some(f) = f {
                also_read.push((f.clone(), what.to_string()));
            }
        }
    }
    EvidenceOptions {
        data_root: cli.data_root.clone(),
        thin_pool: cli.thin_pool.clone(),
        spool_limit: cli.spool_limit,
        also_read,
        engine_version: cli.engine_version.clone(),
        containerd_root: cli.containerd_root.clone(),
        platform: cli.platform.clone(),
    }
}

pub fn run(cli: &Cli) -> anyhow::Result<u8> {
    if let Command::Probe { json } = &cli.command {
        return probe(cli, *json);
    }
    let (host, outputs) = open_host_and_outputs(cli)?;
    // Every command writes standard output: it may not have been redirected onto or into
    // the evidence (`salvor … images >> evidence/x`).
    outputs.guard.check_stdout()?;
    let damaged = !host.damage().is_empty();
    let code = match host.docker() {
        // Docker's graphdriver store alone: every command as it always was.
        Some(docker) if host.docker_only() && !matches!(cli.command, Command::Pods { .. }) => {
            run_command(cli, docker, &outputs)?
        }
        _ => stores::run(cli, &host, &outputs)?,
    };
    // Damaged evidence wins over "clean" and "findings".
    Ok(if damaged {
        code.max(salvor_core::EXIT_DAMAGED)
    } else {
        code
    })
}

/// Runs the command on Docker's graphdriver store.
pub(crate) fn run_command(cli: &Cli, store: &Store, outputs: &OutputPolicy) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Probe { .. } => unreachable!("handled above"),
        Command::Pods { .. } => unreachable!("pods are every store's (commands::stores)"),
        Command::Info { json } => images::info(store, *json),
        Command::Images {
            json,
            no_trunc,
            all,
        } => images::images(store, *json, *no_trunc, *all),
        Command::Tree { json } => images::tree(store, *json),
        // As `docker inspect` without --type: a container before an image (exact matches);
        // --config is about images only.
        Command::Inspect { image, config } => {
            let want = if *config {
                salvor_docker::Want::Image
            } else {
                salvor_docker::Want::Either {
                    prefer: salvor_docker::Kind::Container,
                }
            };
            match target::resolve(store, "inspect", image, want)?.target {
                salvor_docker::Target::Container(c) => containers::inspect_container(store, &c),
                salvor_docker::Target::Image(img) => inspect::inspect(store, img, *config),
            }
        }
        Command::History {
            image,
            json,
            no_trunc,
        } => inspect::history(store, image, *json, *no_trunc),
        Command::Verify { images, json } => verify::verify(store, images, *json, cli.quiet),
        Command::Extract {
            images,
            output,
            format,
            dir,
            force,
            json,
            tag,
            passwd,
            group,
        } => extract::extract(
            store,
            images,
            &extract::ExtractOpts {
                output,
                format: *format,
                dir: *dir,
                force: *force,
                json: *json,
                quiet: cli.quiet,
                tag: tag.as_deref(),
                names: rootfs::tar_names(passwd.as_deref(), group.as_deref())?,
                outputs,
            },
        ),
        Command::Diff { container, json } => rootfs::diff(store, container, *json),
        Command::Export {
            target,
            output,
            with_volumes,
            names,
        } => rootfs::export(
            store,
            target,
            output,
            *names,
            *with_volumes,
            cli.quiet,
            outputs,
        ),
        Command::Containers { json, no_trunc } => containers::containers(store, *json, *no_trunc),
        Command::Logs {
            container,
            timestamps,
            since,
            until,
            tail,
        } => containers::logs_cmd(
            store,
            container,
            *timestamps,
            since.as_deref(),
            until.as_deref(),
            tail.as_deref(),
        ),
        Command::Volumes { json } => containers::volumes(store, *json),
        Command::Timeline {
            format,
            containers,
            images,
            volumes,
            logs,
            output,
        } => timeline::timeline(
            cli,
            store,
            *format,
            containers,
            *images,
            *volumes,
            *logs,
            output.as_deref(),
            outputs,
        ),
        Command::Report {
            output,
            images,
            logs,
            no_volumes,
        } => report::report(cli, store, output, *images, *logs, !*no_volumes, outputs),
    }
}

/// `salvor probe`: what the evidence is, down to the data-root.
fn probe(cli: &Cli, json: bool) -> anyhow::Result<u8> {
    let Some(root) = &cli.root else {
        bail!("no evidence given: pass --root PATH");
    };
    let (report, damage) = match salvor_core::probe(root, cli.spool_limit) {
        Ok(x) => x,
        Err(e) => {
            for line in evidence::damage_lines(&evidence::error_damage(&e)) {
                eprintln!("{line}");
            }
            return Err(e);
        }
    };
    for line in evidence::damage_lines(&damage) {
        eprintln!("{line}");
    }
    if json {
        crate::output::print_json(&report)?;
    } else {
        print_probe(&report);
    }
    Ok(if damage.is_empty() {
        0
    } else {
        salvor_core::EXIT_DAMAGED
    })
}

/// The probe report, readably, with the key facts first.
fn print_probe(report: &ProbeReport) {
    let path_str = |p: &std::path::Path| p.to_str().unwrap_or("").to_string();
    match report {
        ProbeReport::Disk(d) => {
            println!("Evidence:   {}", path_str(&d.evidence));
            println!("Kind:       {}", d.kind);
            let c = &d.disk.container;
            println!(
                "Container:  {} ({} bytes virtual)",
                c.detail.clone().unwrap_or_else(|| c.format.to_string()),
                c.virtual_size
            );
            let pools = &d.disk.thin_pools;
            let vols = &d.disk.volumes;
            let w = vols
                .iter()
                .map(|v| v.spec.len())
                .chain(pools.iter().map(|t| t.spec.len()))
                .max()
                .unwrap_or(0)
                .max(12);
            if !vols.is_empty() {
                println!("Volumes:");
                // The size is not padded: this printer once walked `serde_json::Value`s,
                // whose Display ignores widths, and its output stays as it was.
                for vol in vols {
                    println!(
                        "  {:<w$} {} bytes  {}",
                        vol.spec,
                        vol.size,
                        describe_content(&vol.content)
                    );
                }
            }
            if !pools.is_empty() {
                println!("Thin pools:");
            }
            for t in pools {
                let ids = t.device_ids.len();
                let lvm = t.lvm_volumes.len();
                match &t.error {
                    Some(e) => println!("  {:<w$} unreadable: {e}", t.spec),
                    None => println!(
                        "  {:<w$} {} KiB blocks, {ids} thin device(s): {lvm} LVM thin volume(s), {} LVM does not know (Docker direct-lvm keeps its layers there)",
                        t.spec,
                        t.data_block_size.unwrap_or(0) / 1024,
                        ids - lvm.min(ids)
                    ),
                }
            }
            for w in &d.disk.warnings {
                println!("Warning:    {w}");
            }
            println!("Docker:");
            for x in &d.docker {
                println!("  {:<w$} {}", x.volume, describe_volume(x));
            }
        }
        ProbeReport::Tree(t) => {
            println!("Evidence:   {}", path_str(&t.evidence));
            println!("Kind:       {}", t.kind);
            println!(
                "Data root:  {}",
                t.data_root.as_deref().unwrap_or("(none found)")
            );
            for c in &t.containerd {
                println!("Containerd: {c}");
            }
            if let Some(e) = &t.error {
                println!("Error:      {e}");
            }
        }
    }
}

/// Where a volume's data-root is, or why there is none.
fn describe_volume(x: &VolumeProbe) -> String {
    let fs = x.filesystem.as_deref().unwrap_or("");
    let cd = if x.containerd.is_empty() {
        String::new()
    } else {
        format!("; containerd at {}", x.containerd.join(", "))
    };
    match (&x.data_root, &x.error) {
        (Some(dr), _) => format!("data-root at {dr} ({fs}){cd}"),
        (None, Some(e)) => format!("not readable: {e}"),
        (None, None) if !cd.is_empty() => format!("no Docker data-root ({fs}){cd}"),
        (None, None) => format!("no data-root ({fs})"),
    }
}

/// One line about what a volume holds.
fn describe_content(c: &salvor_disk::Content) -> String {
    use salvor_disk::Content;
    match c {
        Content::Ext {
            version,
            block_size,
            label,
            needs_recovery,
            has_journal,
            ..
        } => format!(
            "{version} (block size {block_size}, label {label:?}, journal {})",
            if *needs_recovery {
                "dirty: replayed in memory"
            } else if *has_journal {
                "clean"
            } else {
                "none"
            }
        ),
        Content::Xfs { version, label, .. } => format!("xfs v{version} (label {label:?})"),
        Content::Btrfs { .. } => "btrfs".into(),
        Content::Swap => "swap".into(),
        Content::Luks { .. } => "luks".into(),
        Content::LvmPv { .. } => "lvm_pv".into(),
        Content::ThinPoolMetadata => "thin_pool_metadata".into(),
        Content::Unknown => "unknown".into(),
    }
}
