//! The walk and the host events of a timeline: the [`Collector`] turns directories and the
//! engine's metadata into [`Entry`]s and feeds them to the sorter.

use super::*;
use salvor_model::{LogStream, ViewFiles};

/// An RFC 3339 time as engines write it (Go's layout, lenient), to the nanosecond.
fn parse_time(s: &str) -> Option<Timestamp> {
    salvor_oci::Time::parse_lenient(s).map(|t| Timestamp {
        sec: t.unix(),
        nsec: t.nanos(),
    })
}

impl Collector<'_> {
    pub(super) fn problem(&mut self, path: &Path, what: impl Into<String>) {
        let mut what = what.into();
        if let Some(rest) = what.strip_prefix(&format!("{}: ", path.display())) {
            what = rest.to_string();
        }
        self.summary.problems.push(Problem {
            path: path.to_path_buf(),
            what,
        });
    }

    pub(super) fn walk_layer(
        &mut self,
        scope: &str,
        view: &LayerView,
        meta: &Path,
    ) -> io::Result<()> {
        // The layer's own files (overlay `diff/`, aufs branch, snapshot root, overlay v1
        // `upper/`).
        match (&view.files, view.own_root()) {
            (ViewFiles::Unavailable { reason }, _) => {
                self.problem(meta, format!("{scope}: files not walked: {reason}"));
                Ok(())
            }
            (_, Some(root)) => {
                let root = root.to_path_buf();
                self.walk(scope, &root)
            }
            (_, None) => {
                self.problem(meta, format!("{scope}: files not reachable; not walked"));
                Ok(())
            }
        }
    }

    /// Walks one directory tree, depth first in name order: one directory listing per
    /// level in memory (names only), each entry's metadata read as it is reached, so the
    /// walk is linear in the tree and bounded by its depth times the widest listing.
    pub(super) fn walk(&mut self, scope: &str, root: &Path) -> io::Result<()> {
        let md = match self.src.metadata(root) {
            Ok(m) => m,
            Err(e) => {
                self.problem(root, salvor_model::error_chain(&e));
                return Ok(());
            }
        };
        if !md.is_dir() {
            self.problem(root, format!("{scope}: is a {}, not a directory", md.kind));
            return Ok(());
        }
        let opaque = self.is_opaque_dir(root);
        self.file_entry(scope, b"/", root, &md, None, false, opaque)?;
        // Per open directory: its evidence path, its path inside the layer, and the
        // entries not yet visited.
        let mut stack: Vec<(
            PathBuf,
            Vec<u8>,
            std::vec::IntoIter<salvor_source::DirEntry>,
        )> = Vec::new();
        if let Some(it) = self.listing(root) {
            stack.push((root.to_path_buf(), Vec::new(), it));
        }
        while let Some((dir, inside, it)) = stack.last_mut() {
            let Some(e) = it.next() else {
                stack.pop();
                continue;
            };
            let ev = dir.join(&e.name);
            let name = e.name.as_bytes();
            let mut cpath = inside.clone();
            cpath.push(b'/');
            cpath.extend_from_slice(name);
            let md = match self.src.metadata(&ev) {
                Ok(m) => m,
                Err(err) => {
                    self.problem(&ev, salvor_model::error_chain(&err));
                    continue;
                }
            };
            let parent_path: Vec<u8> = if inside.is_empty() {
                b"/".to_vec()
            } else {
                inside.clone()
            };
            if name == b".wh..wh..opq" || name == b".wh..opq" {
                self.file_entry(
                    scope,
                    &parent_path,
                    &ev,
                    &md,
                    Some("opaque-marker"),
                    false,
                    true,
                )?;
                continue;
            }
            if md.is_overlay_whiteout() {
                self.file_entry(scope, &cpath, &ev, &md, Some("whiteout"), true, false)?;
                continue;
            }
            if let Some(target) = name.strip_prefix(b".wh.") {
                if !target.is_empty() && !name.starts_with(b".wh..wh.") {
                    let mut del = inside.clone();
                    del.push(b'/');
                    del.extend_from_slice(target);
                    self.file_entry(scope, &del, &ev, &md, Some("whiteout"), true, false)?;
                    continue;
                }
            }
            let opaque = md.is_dir() && self.is_opaque_dir(&ev);
            self.file_entry(scope, &cpath, &ev, &md, None, false, opaque)?;
            if md.is_dir() {
                if let Some(it) = self.listing(&ev) {
                    stack.push((ev, cpath, it));
                }
            }
        }
        Ok(())
    }

    /// The entries of directory `dir`, or `None` (and a problem) when it cannot be read.
    pub(super) fn listing(
        &mut self,
        dir: &Path,
    ) -> Option<std::vec::IntoIter<salvor_source::DirEntry>> {
        match self.src.read_dir(dir) {
            Ok(e) => Some(e.into_iter()),
            Err(e) => {
                self.problem(dir, salvor_model::error_chain(&e));
                None
            }
        }
    }

    pub(super) fn is_opaque_dir(&self, dir: &Path) -> bool {
        match self.src.xattrs(dir) {
            Ok(x) => x.iter().any(|(n, v)| {
                n.as_bytes().ends_with(b".opaque") && v.first().is_some_and(|b| *b == b'y')
            }),
            Err(_) => false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn file_entry(
        &mut self,
        scope: &str,
        cpath: &[u8],
        ev: &Path,
        md: &Metadata,
        special: Option<&str>,
        deleted: bool,
        opaque: bool,
    ) -> io::Result<()> {
        let link_target = if md.is_symlink() {
            match self.src.read_link(ev) {
                Ok(t) => Some(clean_bytes(t.as_os_str().as_bytes())),
                Err(e) => {
                    self.problem(ev, salvor_model::error_chain(&e));
                    None
                }
            }
        } else {
            None
        };
        let path = clean_bytes(cpath);
        let evidence = clean_bytes(ev.as_os_str().as_bytes());
        let scope = &format!("{}{scope}", self.prefix);
        let mut name = format!("[{scope}] {path}");
        if let Some(t) = &link_target {
            name.push_str(" -> ");
            name.push_str(t);
        }
        if deleted {
            name.push_str(" (deleted)");
        }
        if opaque {
            name.push_str(" (opaque: lower layers' contents hidden)");
        }
        name.push_str(&format!(" (evidence: {evidence})"));
        let kind = special.unwrap_or(kind_name(md.kind)).to_string();
        let e = Entry {
            name,
            scope: scope.to_string(),
            path,
            kind,
            event: None,
            deleted,
            opaque,
            link_target,
            evidence: Some(evidence),
            mode: ls_mode(md.kind, md.mode),
            uid: md.uid,
            gid: md.gid,
            size: md.size,
            inode: md.ino,
            mtime: Some(md.mtime.into()),
            atime: known(md.atime),
            ctime: known(md.ctime),
            btime: md.btime.map(Time::from),
        };
        self.push(e)
    }

    pub(super) fn event(
        &mut self,
        scope: &str,
        event: &str,
        what: &str,
        time: Time,
        evidence: Option<&Path>,
    ) -> io::Result<()> {
        let evidence = evidence.map(|p| clean_bytes(p.as_os_str().as_bytes()));
        let scope = &format!("{}{scope}", self.prefix);
        let mut name = format!("[{scope}] {what}");
        if let Some(ev) = &evidence {
            name.push_str(&format!(" (evidence: {ev})"));
        }
        let e = Entry {
            name,
            scope: scope.to_string(),
            path: what.to_string(),
            kind: "event".into(),
            event: Some(event.to_string()),
            deleted: false,
            opaque: false,
            link_target: None,
            evidence,
            mode: String::new(),
            uid: 0,
            gid: 0,
            size: 0,
            inode: 0,
            mtime: Some(time),
            atime: Some(time),
            ctime: Some(time),
            btime: Some(time),
        };
        self.push(e)
    }

    pub(super) fn push(&mut self, e: Entry) -> io::Result<()> {
        self.summary.entries += 1;
        match self.format {
            TimelineFormat::Bodyfile => {
                let t = e.mtime.unwrap_or_default();
                self.sorter.push(Item {
                    sec: t.sec,
                    nsec: t.nsec,
                    name: e.name.clone(),
                    tie: String::new(),
                    line: bodyfile_line(&e),
                })
            }
            TimelineFormat::Jsonl => {
                for line in json_lines(&e) {
                    let json = serde_json::to_string(&line)?;
                    self.sorter.push(Item {
                        sec: line.sec,
                        nsec: line.nsec,
                        name: line.entry.name,
                        tie: line.macb,
                        line: json,
                    })?;
                }
                Ok(())
            }
        }
    }

    pub(super) fn image_events(&mut self) -> io::Result<()> {
        let store = self.store;
        let mut seen_history: BTreeSet<(Time, String, String)> = BTreeSet::new();
        for img in store.images() {
            let tag = img
                .names
                .first()
                .map(|t| clean_str(t))
                .unwrap_or_else(|| "<none>".into());
            let scope = format!("image {} {tag}", short_hex(&img.id));
            let config_path = img.config_path.as_deref();
            if let Some(t) = img.created.as_deref().and_then(parse_time).filter(real) {
                self.event(
                    &scope,
                    "image-created",
                    "image created (config \"created\")",
                    t.into(),
                    config_path,
                )?;
            }
            match store.image_last_updated(&img.id) {
                Ok(Some(r)) if real(&r.time) => self.event(
                    &scope,
                    "image-last-updated",
                    "image pulled, loaded or tagged (lastUpdated)",
                    r.time.into(),
                    Some(&r.path),
                )?,
                Ok(Some(r)) => self.problem(&r.path, "not an RFC 3339 time"),
                Ok(None) => {}
                Err(p) => self.problem(&p.path, p.what),
            }
            let Some(cfg) = store
                .config_bytes(&img.id)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            else {
                continue;
            };
            let Some(hist) = cfg.get("history").and_then(|h| h.as_array()) else {
                continue;
            };
            for (i, h) in hist.iter().enumerate() {
                let Some(t) = h
                    .get("created")
                    .and_then(|v| v.as_str())
                    .and_then(parse_time)
                    .filter(real)
                else {
                    continue;
                };
                let by = h.get("created_by").and_then(|v| v.as_str()).unwrap_or("");
                let comment = h.get("comment").and_then(|v| v.as_str()).unwrap_or("");
                if !seen_history.insert((t.into(), by.to_string(), comment.to_string())) {
                    continue;
                }
                let mut what = format!("history[{i}]: {}", clean_str(&truncate(by, 300)));
                if !comment.is_empty() {
                    what.push_str(&format!(" ({})", clean_str(&truncate(comment, 200))));
                }
                self.event(&scope, "image-history", &what, t.into(), config_path)?;
            }
        }
        Ok(())
    }

    pub(super) fn container_events(&mut self, c: &ContainerRecord) -> io::Result<()> {
        let scope = format!("container {}", container_label(c));
        let cfg = c.config_path.as_deref();
        let image = clean_str(
            &self
                .store
                .container_image_name(&c.id)
                .unwrap_or_else(|| c.image.clone()),
        );
        let exit = c
            .state
            .exit_code
            .map_or_else(|| "?".to_string(), |x| x.to_string());
        let items = [
            (
                c.created.as_deref(),
                "container-created",
                format!("container created (image {image})"),
            ),
            (
                c.state.started_at.as_deref(),
                "container-started",
                "container started".to_string(),
            ),
            (
                c.state.finished_at.as_deref(),
                "container-finished",
                format!("container finished (exit code {exit})"),
            ),
        ];
        for (t, ev, what) in items {
            if let Some(t) = t.and_then(parse_time).filter(real) {
                self.event(&scope, ev, &what, t.into(), cfg)?;
            }
        }
        Ok(())
    }

    pub(super) fn log_events(
        &mut self,
        c: &ContainerRecord,
        dir: &Path,
        label: &str,
    ) -> io::Result<()> {
        let store = self.store;
        let reader = match store.container_logs(&c.id) {
            Ok(r) => r,
            Err(e) => {
                self.problem(dir, format!("logs: {}", salvor_model::error_chain(&e)));
                return Ok(());
            }
        };
        for entry in reader {
            match entry {
                Ok(e) => {
                    let Some(t) = e.time else { continue };
                    let stream = match e.stream {
                        LogStream::Stdout => "stdout",
                        LogStream::Stderr => "stderr",
                    };
                    let mut line = &e.line[..];
                    while let Some(rest) = line.strip_suffix(b"\n") {
                        line = rest;
                    }
                    let text = clean_bytes(&line[..line.len().min(400)]);
                    let ev = PathBuf::from(format!("{}@{}", e.file.display(), e.offset));
                    self.event(
                        &format!("container {label} log {stream}"),
                        "log-line",
                        &text,
                        t.into(),
                        Some(&ev),
                    )?;
                }
                Err(err) => self.problem(dir, format!("logs: {}", salvor_model::error_chain(&err))),
            }
        }
        Ok(())
    }
}

/// Go's zero time (`0001-01-01T00:00:00Z`) and anything before 1 AD mean "never".
fn real(t: &Timestamp) -> bool {
    t.sec > -62_135_596_800
}

/// Zero means "not recorded" for atime/ctime (a tar without PAX times).
fn known(t: Timestamp) -> Option<Time> {
    if t.sec == 0 && t.nsec == 0 {
        None
    } else {
        Some(t.into())
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::Regular => "file",
        FileKind::Dir => "dir",
        FileKind::Symlink => "symlink",
        FileKind::CharDevice => "char-device",
        FileKind::BlockDevice => "block-device",
        FileKind::Fifo => "fifo",
        FileKind::Socket => "socket",
    }
}
