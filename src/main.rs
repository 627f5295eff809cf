//! `salvor`: offline forensics of Docker hosts.
//!
//! This binary only wires the library crates together: `salvor-source` opens the evidence,
//! `salvor-docker` models the data-root and rebuilds layers (through `salvor-tarsplit`),
//! `salvor-export` writes archives. Each sub-command lives in `commands/`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod commands;
mod output;
mod progress;

/// The exit codes, shown by `salvor --help` and by the `--help` of every command that
/// checks layers or writes output.
macro_rules! exit_codes {
    () => {
        "\
EXIT CODES:
  0  success; for `verify`, `extract` and `report`, every layer's content rebuilt
     byte-exact and every metadata difference is explained by a copy artifact
  1  findings: a layer's content did not verify, a metadata finding, a layer exported
     with --force, a config that does not hash to its image id, a log file not readable
  2  error: the evidence or an argument could not be used (an ambiguous name), the
     output was refused (the evidence, inside it, or existing without --overwrite), or
     writing output failed
  3  evidence damaged: the archive or disk image is truncated or corrupt (a cut copy?);
     the first line on stderr says so (even with --quiet), the command still runs on
     what is readable, and 3 wins over 0 and 1"
    };
}

/// What `salvor --help` shows after the options.
const EXIT_HELP: &str = concat!(
    exit_codes!(),
    "

EXAMPLES:
  salvor --root /mnt/evidence/var/lib/docker images
  salvor --root host-triage.tar.gz verify
  salvor --root /mnt/evidence extract nginx:latest -o nginx.tar
  docker load -i nginx.tar"
);

/// What the `--help` of `verify`, `extract`, `export`, `timeline` and `report` shows after
/// the options.
const EXIT_CODES_HELP: &str = exit_codes!();

/// Offline forensics of Docker hosts: list, verify and extract images byte-exact from a
/// dead host's storage, without a Docker daemon and without altering the evidence.
#[derive(Parser, Debug)]
#[command(name = "salvor", version, after_help = EXIT_HELP)]
pub struct Cli {
    /// The evidence: a Docker data-root (`/var/lib/docker`), a host's root directory, a tar
    /// archive of either (plain, gzip or zstd), or a disk image (raw, qcow2, VMDK, VHDX, E01;
    /// `IMAGE:p3` or `IMAGE:lv:vg/name` picks a volume). Read-only, never modified.
    #[arg(long, short = 'r', env = "SALVOR_ROOT", global = true)]
    pub root: Option<PathBuf>,
    /// The data-root's path, when salvor should not look for it: inside a directory or
    /// archive, on the chosen volume of a disk image, or as the host saw it (mapped to a
    /// volume through the image's /etc/fstab). E.g. `/srv/docker` on a host with two.
    #[arg(long, value_name = "PATH", global = true)]
    pub data_root: Option<PathBuf>,
    /// devicemapper in direct-lvm mode: the LVM thin pool holding Docker's devices, as
    /// `VG/LV` (in the `--root` disk image), `IMAGE` (another disk image, e.g. the host's
    /// second disk; its one pool with devices LVM does not know) or `IMAGE:VG/LV`. Without
    /// it salvor uses the pool the host configured (`dm.thinpooldev`) or the only candidate.
    #[arg(long, value_name = "[IMAGE:]VG/LV | IMAGE", global = true)]
    pub thin_pool: Option<String>,
    /// The Docker Engine version that wrote the evidence (e.g. 20.10.24, 26.1.5), when the
    /// evidence does not tell: salvor reads it from the host's dpkg database or `dockerd`
    /// binary, else bounds it from the data-root's layout (`salvor info` says which).
    /// `export` and an offline commit write that engine's tar headers.
    #[arg(long, value_name = "VERSION", global = true)]
    pub engine_version: Option<String>,

    /// A containerd root inside the evidence (`/var/lib/containerd`,
    /// `/var/lib/docker/containerd/daemon`, k3s' `/var/lib/rancher/k3s/agent/containerd`),
    /// when salvor should not look for one. Without it salvor reads every containerd root it
    /// finds: Docker's own, /var/lib/containerd, the root of /etc/containerd/config.toml,
    /// k3s, RKE2, microk8s.
    #[arg(long, value_name = "PATH", global = true)]
    pub containerd_root: Option<PathBuf>,

    /// The platform a multi-platform image (an OCI index, a manifest list) resolves to, as
    /// `os/arch[/variant]`: `linux/arm64`, `linux/arm/v7`. Default: linux/amd64.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", global = true)]
    pub platform: Option<String>,

    /// Only the stores of this containerd namespace (`k8s.io`, `moby`, `default`), as
    /// `ctr -n` does: an image or container several namespaces hold is then one.
    #[arg(long, value_name = "NAMESPACE", global = true)]
    pub namespace: Option<String>,
    /// No progress bars or notes on stderr (evidence damage is still said).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Replace an existing output file (`-o`). Without it an existing file is refused; a
    /// directory output must be new or empty either way. No output is ever written onto or
    /// into the evidence, or onto a file salvor reads.
    #[arg(long, global = true)]
    pub overwrite: bool,
    /// Most temporary space decompressing a gzip/zstd evidence archive may take (it is
    /// spooled to $TMPDIR): e.g. 500M, 10G, 2T, or `unlimited`. Default: 32 x the
    /// archive's size, at least 1 GiB; 64 MiB of free space is always kept.
    #[arg(long, value_name = "SIZE", env = "SALVOR_SPOOL_LIMIT", global = true, value_parser = salvor_source::parse_size)]
    pub spool_limit: Option<u64>,
    /// The sub-command to run.
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
/// salvor's sub-commands, one per question an investigator asks of the evidence.
pub enum Command {
    /// What the evidence is: for a disk image, its container format, partitions, LVM
    /// volumes, filesystems (journal state) and on which volume the Docker data-root is.
    Probe {
        /// Print the report as JSON (container format, partitions, volumes, filesystems).
        #[arg(long)]
        json: bool,
    },
    /// What salvor found: data-root, layout, storage driver, counts, unreadable metadata.
    Info {
        /// Print what was found as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List images like `docker images -a`, every store of the host in one table: ENGINE
    /// (NAMESPACE where the engine has one) REPOSITORY TAG IMAGE ID CREATED SIZE.
    Images {
        /// One JSON object per image: engine, namespace, id, tags, digests, diff ids, chain ids,
        /// parent, created, size, platform, and whether the config was unreadable.
        #[arg(long)]
        json: bool,
        /// Show full image ids.
        #[arg(long)]
        no_trunc: bool,
        /// Also intermediate images (untagged parents of other images, left by builds), which
        /// the table hides as `docker images` does; --json always lists every image.
        #[arg(long, short = 'a')]
        all: bool,
    },
    /// The layer tree: chain ids, diff ids, sizes, and which images use which layers.
    Tree {
        /// Print the layer tree as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A container like `docker inspect` (containers first, as docker does), else an image
    /// like `docker image inspect` (or its exact config bytes with --config).
    Inspect {
        /// A container (name or id) or an image (`repo:tag`, `repo@sha256:…`, id): a full id,
        /// then an exact name or tag, then a unique id prefix; a prefix that matches several
        /// images or containers is an error listing them.
        image: String,
        /// Print the image config exactly as stored.
        #[arg(long)]
        config: bool,
    },
    /// An image's history like `docker history`.
    History {
        /// `repo:tag`, `repo@sha256:…`, or an image id (full or a unique prefix).
        image: String,
        /// One JSON object per history entry, newest first: id, created, created_by, author,
        /// comment, empty_layer, size.
        #[arg(long)]
        json: bool,
        /// Full image ids and untruncated CREATED BY commands.
        #[arg(long)]
        no_trunc: bool,
    },
    /// Rebuild every layer of the images (all images by default) and check each sha256
    /// against its diff_id (CONTENT), and audit every layer directory against its tar
    /// headers (METADATA); exit 0 only if all content verifies and every metadata difference
    /// is a copy artifact.
    #[command(after_help = EXIT_CODES_HELP)]
    Verify {
        /// Images (`repo:tag`, `repo`, `repo@sha256:…`, id or unique id prefix).
        images: Vec<String>,
        /// Print each image's and layer's verdict as JSON (CONTENT, METADATA, findings).
        #[arg(long)]
        json: bool,
    },
    /// Write images as an archive `docker load`, skopeo and umoci accept. A CONTAINER is
    /// committed first (offline `docker commit`: its image plus one layer of its changes).
    #[command(after_help = EXIT_CODES_HELP)]
    Extract {
        /// Images (`repo:tag`, `repo` for all its tags, `repo@sha256:…`, id or unique id
        /// prefix), or a container (name or id) to commit; an image wins over a container
        /// of the same name.
        #[arg(required = true)]
        images: Vec<String>,
        /// Output tar file (`-` for stdout), or directory with --dir (new or empty).
        /// Never the evidence or inside it; an existing file needs --overwrite. A file's
        /// sha256 is said on stderr (and in --json); standard output is hashed only with
        /// --json.
        #[arg(long, short = 'o')]
        output: PathBuf,
        /// Archive format: `docker` (docker save of Engine >= 25), `docker-legacy` (<= 24)
        /// or `oci` (a plain OCI image layout).
        #[arg(long, value_enum, default_value_t = FormatArg::Docker)]
        format: FormatArg,
        /// Write a directory instead of a tar.
        #[arg(long)]
        dir: bool,
        /// Also export layers that do not verify, or that the disk holds otherwise (mode,
        /// owner, link, whiteout, planted file), as found: their sha256 becomes their diff_id
        /// in the config (so the image id changes); marked FORCED in the output, in
        /// `salvor-forced.json` and in the manifests' `io.salvor.forced` annotations; exit 1.
        #[arg(long)]
        force: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// For a CONTAINER (an offline `docker commit`): tag the committed image.
        #[arg(long)]
        tag: Option<String>,
        /// For a CONTAINER: uname/gname for the committed layer's headers from these files.
        /// Default: as the engine that wrote the evidence (Engine >= 23: none; Docker <= 20.10:
        /// the daemon host's /etc/passwd and /etc/group, read from the host root when the
        /// evidence is one, else none, and said).
        #[arg(long)]
        passwd: Option<PathBuf>,
        /// For a CONTAINER: the group file for the committed layer's gname fields (with
        /// --passwd).
        #[arg(long)]
        group: Option<PathBuf>,
    },
    /// What a container changed, like `docker diff`: A (added), C (changed), D (deleted),
    /// against its image and init layer, with overlay and aufs whiteouts translated.
    Diff {
        /// Container name or id (full or a unique prefix).
        container: String,
        /// Print the changes as JSON: `kind` (A, C or D), `path`, and `path_hex` for a name
        /// that is not UTF-8.
        #[arg(long)]
        json: bool,
    },
    /// The flattened filesystem of a container or an image as a tar, like `docker export`:
    /// all layers merged with whiteouts and opaque directories applied.
    #[command(after_help = EXIT_CODES_HELP)]
    Export {
        /// A container (id, short id or name) or an image.
        target: String,
        /// Output tar file (`-` for stdout). Never the evidence or inside it; an existing
        /// file needs --overwrite.
        #[arg(long, short = 'o')]
        output: PathBuf,
        /// Also the container's named and anonymous volumes, at their mount points (bind
        /// mounts are host paths: they are reported, never followed).
        #[arg(long)]
        with_volumes: bool,
        /// uname/gname in the tar headers: `auto` writes what the engine that wrote the
        /// evidence wrote (Engine >= 23: none; Docker 20.10: the container's own /etc/passwd
        /// and /etc/group); the mode field follows that engine too (file-type bits up to
        /// 20.10). `salvor info` shows the engine version and how it was found.
        #[arg(long, value_enum, default_value_t = commands::rootfs::NamesArg::Auto)]
        names: commands::rootfs::NamesArg,
    },
    /// List containers like `docker ps -a`, ENGINE first (CREATED and STATUS as absolute UTC
    /// times).
    Containers {
        /// One JSON object per container, the fields of `docker ps -a --format json`, plus
        /// `engine`.
        #[arg(long)]
        json: bool,
        /// Full ids and commands.
        #[arg(long)]
        no_trunc: bool,
    },
    /// Kubernetes pods of every containerd store (from the CRI's sandboxes and the
    /// kubelet's labels): namespace, pod, uid, sandbox id, created, its containers and
    /// their images and states.
    Pods {
        /// One JSON object per pod, with its containers.
        #[arg(long)]
        json: bool,
        /// Full ids.
        #[arg(long)]
        no_trunc: bool,
    },
    /// A container's logs like `docker logs` (json-file and local drivers, rotated logs
    /// included): stdout lines to stdout, stderr lines to stderr.
    Logs {
        /// Container name or id (full or a unique prefix).
        container: String,
        /// Prefix each line with its RFC 3339 time (nanoseconds).
        #[arg(long, short = 't')]
        timestamps: bool,
        /// Only lines at or after this time (RFC 3339, YYYY-MM-DD, or unix seconds).
        #[arg(long)]
        since: Option<String>,
        /// Only lines at or before this time.
        #[arg(long)]
        until: Option<String>,
        /// Only the last N lines ("all" for every line).
        #[arg(long, short = 'n')]
        tail: Option<String>,
    },
    /// Volumes like `docker volume ls`, with the containers that mount them, and bind mounts
    /// (host paths, never followed).
    Volumes {
        /// Print volumes and bind mounts as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A timeline of every file in the containers' read-write and init layers (and, on
    /// request, volumes and image layers) with m/a/c/birth times, plus host events (images
    /// created and pulled, history, containers created/started/finished, log lines), as a
    /// Sleuth Kit bodyfile (`mactime -b FILE -d`) or JSON lines; sorted by time, then name.
    #[command(after_help = EXIT_CODES_HELP)]
    Timeline {
        /// `bodyfile` for Sleuth Kit's `mactime -b FILE -d`, or `jsonl` (one JSON object per
        /// file and time, nanosecond precision).
        #[arg(long, value_enum, default_value_t = TimelineFormatArg::Bodyfile)]
        format: TimelineFormatArg,
        /// Only these containers (name or id prefix; repeatable). Default: all.
        #[arg(long = "container", value_name = "ID", num_args = 1..)]
        containers: Vec<String>,
        /// Also every image layer's files.
        #[arg(long)]
        images: bool,
        /// Also every volume's files.
        #[arg(long)]
        volumes: bool,
        /// Also one event per container log line (can be many).
        #[arg(long)]
        logs: bool,
        /// Write to this file (never inside the evidence) instead of stdout.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Write a case directory (new or empty, outside the evidence): summary.md,
    /// inventory.json, verify.json, timeline.jsonl and MANIFEST.sha256. Deterministic.
    #[command(after_help = EXIT_CODES_HELP)]
    Report {
        /// The case directory: new or empty, never the evidence or inside it.
        #[arg(long, short = 'o')]
        output: PathBuf,
        /// Put every image layer's files into the timeline too.
        #[arg(long)]
        images: bool,
        /// Put log lines into the timeline too.
        #[arg(long)]
        logs: bool,
        /// Leave volumes out of the timeline.
        #[arg(long)]
        no_volumes: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
/// The timeline's output format.
pub enum TimelineFormatArg {
    /// Sleuth Kit bodyfile (TSK 3: MD5|name|inode|mode|UID|GID|size|atime|mtime|ctime|crtime).
    Bodyfile,
    /// One JSON object per file and distinct time, nanosecond precision.
    Jsonl,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
/// The archive layout `extract` writes.
pub enum FormatArg {
    /// `docker save` of Engine ≥ 25: OCI layout plus manifest.json.
    Docker,
    /// `docker save` of Engine ≤ 24: `<v1id>/layer.tar`.
    DockerLegacy,
    /// A plain OCI image layout.
    Oci,
}

/// `salvor … | head`: the reader went away. Printing then fails with EPIPE, which
/// `println!`/`eprintln!` turn into a panic; end quietly with the output-failure code
/// instead of a panic message and exit code 101. Every other panic keeps the default hook.
fn quiet_on_closed_pipes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(2);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_pipes();
    let cli = Cli::parse();
    match commands::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // The error chain on one line, each cause once (`salvor_source::error_chain`:
            // messages never repeat their cause, so this is anyhow's `{:#}`).
            let msg = salvor_source::error_chain(e.as_ref());
            // Not eprintln!: a closed stderr must not turn the error into a panic.
            let _ = writeln!(std::io::stderr(), "salvor: error: {msg}");
            ExitCode::from(salvor_core::evidence::error_exit_code(&e))
        }
    }
}
