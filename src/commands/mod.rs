//! One module per sub-command; `run` opens the evidence and dispatches.

use anyhow::bail;
use salvor_sink::{EvidenceGuard, OutputPolicy};
use salvor_docker::Store;

use crate::{Cli, Command};

mod containers;
mod extract;
mod images;
mod inspect;
mod report;
pub mod rootfs;
mod target;
mod timeline;
mod verify;

/// Exit code for "the command ran and found problems in the evidence".
pub const EXIT_FINDINGS: u8 = 1;

/// The evidence, for commands that write nothing.
#[allow(dead_code)]
pub fn open_store(cli: &Cli) -> anyhow::Result<Store> {
    Ok(open_store_and_outputs(cli)?.0)
}

/// Opens the evidence, and the policy every output goes through: the evidence and every
/// file salvor read to open it are protected (`salvor_sink::EvidenceGuard`), `--overwrite`
/// applies.
pub fn open_store_and_outputs(cli: &Cli) -> anyhow::Result<(Store, OutputPolicy)> {
    let Some(root) = &cli.root else {
        bail!("no evidence given: pass --root PATH (or set SALVOR_ROOT) naming a Docker data-root, a host root directory, or an archive of either");
    };
    let opened = match crate::evidence::open(root, cli.data_root.as_deref(), cli.spool_limit) {
        Ok(o) => o,
        Err(e) => {
            for line in crate::evidence::damage_lines(&crate::evidence::error_damage(&e)) {
                eprintln!("{line}");
            }
            return Err(e);
        }
    };
    // Damage of the evidence is said first, even with --quiet: it is the verdict on
    // everything that follows.
    for line in crate::evidence::damage_lines(&opened.damage) {
        eprintln!("{line}");
    }
    if !opened.damage.is_empty() {
        crate::output::set_evidence_damage(crate::evidence::damage_json(&opened.damage));
    }
    let damage = opened.damage.clone();
    let outputs = output_policy(cli, &opened);
    if let (Some(v), false) = (&opened.volume, cli.quiet) {
        eprintln!(
            "salvor: note: reading volume {v} of the disk image ({})",
            opened.source.describe()
        );
    }
    let mut store = Store::open_at(opened.source.clone(), opened.data_root.clone())?;
    store.add_damage(damage.iter().cloned());
    // devicemapper in direct-lvm mode: read again with the LVM thin pool.
    let chosen = crate::evidence::choose_thin_pool(&store, &opened, cli.thin_pool.as_deref())?;
    if let Some((pool, origin)) = chosen.pool {
        store = Store::open_at_with_thin_pool(opened.source, opened.data_root, pool, origin)?;
        store.add_damage(damage);
    }
    if let (Some(note), false) = (chosen.note, cli.quiet) {
        eprintln!("salvor: note: {note}");
    }
    let consequences = store
        .problems
        .iter()
        .filter(|p| store.is_consequence_of_damage(p))
        .count();
    if !cli.quiet && consequences > 0 {
        eprintln!(
            "salvor: note: {consequences} piece(s) of metadata are missing or cut because the evidence is damaged; `salvor info` lists them"
        );
    }
    if !cli.quiet && store.problems.len() > consequences {
        eprintln!(
            "salvor: note: {} piece(s) of metadata could not be read or do not add up; `salvor info` lists them",
            store.problems.len() - consequences
        );
    }
    Ok((store, outputs))
}

/// The guard for `opened`: the evidence root, the disk image's files, the `--thin-pool`
/// image, the `--passwd`/`--group` files.
fn output_policy(cli: &Cli, opened: &crate::evidence::Opened) -> OutputPolicy {
    let mut guard = EvidenceGuard::new();
    if let Some(root) = &cli.root {
        match &opened.disk {
            Some(disk) => {
                guard.protect_evidence(&disk.container.path);
                for f in disk.files() {
                    guard.protect(&f, "a file of the evidence disk image");
                }
            }
            None => {
                guard.protect_evidence(root);
            }
        }
    }
    if let Some(tp) = &cli.thin_pool {
        let image = std::iter::once(tp.as_str())
            .chain(tp.match_indices(':').map(|(i, _)| &tp[..i]))
            .map(std::path::Path::new)
            .find(|p| p.is_file());
        if let Some(image) = image {
            if let Ok(disk) = salvor_disk::Disk::open(image) {
                for f in disk.files() {
                    guard.protect(&f, "a file of the --thin-pool disk image");
                }
            }
            guard.protect(image, "the --thin-pool disk image");
        }
    }
    if let Command::Extract { passwd, group, .. } = &cli.command {
        for (f, what) in [(passwd, "the --passwd file"), (group, "the --group file")] {
            if let Some(f) = f {
                guard.protect(f, what);
            }
        }
    }
    OutputPolicy::new(guard, cli.overwrite)
}

pub fn run(cli: &Cli) -> anyhow::Result<u8> {
    if let Command::Probe { json } = &cli.command {
        return probe(cli, *json);
    }
    let (store, outputs) = open_store_and_outputs(cli)?;
    // Every command writes standard output: it may not have been redirected onto or into
    // the evidence (`salvor … images >> evidence/x`).
    outputs.guard.check_stdout()?;
    let damaged = !store.damage.is_empty();
    let code = run_command(cli, store, &outputs)?;
    // Damaged evidence wins over "clean" and "findings".
    Ok(if damaged {
        code.max(crate::evidence::EXIT_DAMAGED)
    } else {
        code
    })
}

fn run_command(cli: &Cli, store: Store, outputs: &OutputPolicy) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Probe { .. } => unreachable!("handled above"),
        Command::Info { json } => images::info(&store, *json),
        Command::Images { json, no_trunc } => images::images(&store, *json, *no_trunc),
        Command::Tree { json } => images::tree(&store, *json),
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
            match target::resolve(&store, "inspect", image, want)?.target {
                salvor_docker::Target::Container(c) => containers::inspect_container(&store, &c),
                salvor_docker::Target::Image(img) => inspect::inspect(&store, img, *config),
            }
        }
        Command::History {
            image,
            json,
            no_trunc,
        } => inspect::history(&store, image, *json, *no_trunc),
        Command::Verify { images, json } => verify::verify(&store, images, *json, cli.quiet),
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
            &store,
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
        Command::Diff { container, json } => rootfs::diff(&store, container, *json),
        Command::Export {
            target,
            output,
            with_volumes,
            names,
        } => rootfs::export(
            &store,
            target,
            output,
            *names,
            *with_volumes,
            cli.quiet,
            outputs,
        ),
        Command::Containers { json, no_trunc } => containers::containers(&store, *json, *no_trunc),
        Command::Logs {
            container,
            timestamps,
            since,
            until,
            tail,
        } => containers::logs_cmd(
            &store,
            container,
            *timestamps,
            since.as_deref(),
            until.as_deref(),
            tail.as_deref(),
        ),
        Command::Volumes { json } => containers::volumes(&store, *json),
        Command::Timeline {
            format,
            containers,
            images,
            volumes,
            logs,
            output,
        } => timeline::timeline(
            cli,
            &store,
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
        } => report::report(cli, &store, output, *images, *logs, !*no_volumes, outputs),
    }
}

/// `salvor probe`: what the evidence is, down to the data-root.
fn probe(cli: &Cli, json: bool) -> anyhow::Result<u8> {
    let Some(root) = &cli.root else {
        bail!("no evidence given: pass --root PATH");
    };
    let (v, damage) = match crate::evidence::probe(root, cli.spool_limit) {
        Ok(x) => x,
        Err(e) => {
            for line in crate::evidence::damage_lines(&crate::evidence::error_damage(&e)) {
                eprintln!("{line}");
            }
            return Err(e);
        }
    };
    for line in crate::evidence::damage_lines(&damage) {
        eprintln!("{line}");
    }
    if json {
        crate::output::print_json(&v)?;
    } else {
        // The JSON is the report; print it readably with the key facts first.
        println!("Evidence:   {}", v["evidence"].as_str().unwrap_or(""));
        println!("Kind:       {}", v["kind"].as_str().unwrap_or(""));
        if let Some(d) = v.get("docker").and_then(|d| d.as_array()) {
            let c = &v["disk"]["container"];
            println!(
                "Container:  {} ({} bytes virtual)",
                c["detail"].as_str().or(c["format"].as_str()).unwrap_or("?"),
                c["virtual_size"]
            );
            let pools = v["disk"]["thin_pools"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let vols = v["disk"]["volumes"].as_array().cloned().unwrap_or_default();
            let w = vols
                .iter()
                .chain(&pools)
                .filter_map(|x| x["spec"].as_str())
                .map(str::len)
                .max()
                .unwrap_or(0)
                .max(12);
            if !vols.is_empty() {
                println!("Volumes:");
                for vol in &vols {
                    println!(
                        "  {:<w$} {:>14} bytes  {}",
                        vol["spec"].as_str().unwrap_or(""),
                        vol["size"],
                        describe_content(&vol["content"])
                    );
                }
            }
            if !pools.is_empty() {
                println!("Thin pools:");
            }
            for t in &pools {
                let ids = t["device_ids"].as_array().map_or(0, |a| a.len());
                let lvm = t["lvm_volumes"].as_object().map_or(0, |o| o.len());
                match t["error"].as_str() {
                    Some(e) => println!("  {:<w$} unreadable: {e}", t["spec"].as_str().unwrap_or("")),
                    None => println!(
                        "  {:<w$} {} KiB blocks, {ids} thin device(s): {lvm} LVM thin volume(s), {} LVM does not know (Docker direct-lvm keeps its layers there)",
                        t["spec"].as_str().unwrap_or(""),
                        t["data_block_size"].as_u64().unwrap_or(0) / 1024,
                        ids - lvm.min(ids)
                    ),
                }
            }
            for w in v["disk"]["warnings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                println!("Warning:    {}", w.as_str().unwrap_or(""));
            }
            println!("Docker:");
            for x in d {
                println!(
                    "  {:<w$} {}",
                    x["volume"].as_str().unwrap_or(""),
                    match (x["data_root"].as_str(), x["error"].as_str()) {
                        (Some(dr), _) => format!(
                            "data-root at {dr} ({})",
                            x["filesystem"].as_str().unwrap_or("")
                        ),
                        (None, Some(e)) => format!("not readable: {e}"),
                        (None, None) =>
                            format!("no data-root ({})", x["filesystem"].as_str().unwrap_or("")),
                    }
                );
            }
        } else {
            println!(
                "Data root:  {}",
                v["data_root"].as_str().unwrap_or("(none found)")
            );
            if let Some(e) = v["error"].as_str() {
                println!("Error:      {e}");
            }
        }
    }
    Ok(if damage.is_empty() {
        0
    } else {
        crate::evidence::EXIT_DAMAGED
    })
}

/// One line about what a volume holds.
fn describe_content(c: &serde_json::Value) -> String {
    let t = c["type"].as_str().unwrap_or("unknown");
    match t {
        "ext" => format!(
            "{} (block size {}, label {:?}, journal {})",
            c["version"].as_str().unwrap_or("ext"),
            c["block_size"],
            c["label"].as_str().unwrap_or(""),
            if c["needs_recovery"] == true {
                "dirty: replayed in memory"
            } else if c["has_journal"] == true {
                "clean"
            } else {
                "none"
            }
        ),
        "xfs" => format!(
            "xfs v{} (label {:?})",
            c["version"],
            c["label"].as_str().unwrap_or("")
        ),
        other => other.to_string(),
    }
}
