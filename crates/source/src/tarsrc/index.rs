//! Indexing: one pass over the tar stream, building the member table.

use super::*;

pub(super) struct Indexer {
    pub(super) nodes: Vec<Node>,
    pub(super) paths: HashMap<Box<[u8]>, u32>,
    pub(super) warnings: Vec<String>,
    pub(super) dropped_warnings: usize,
    pub(super) globals: Vec<(Vec<u8>, Vec<u8>)>,
    /// The member whose data the archive cut (left out).
    pub(super) cut: Option<String>,
    /// The archive ended without an end-of-archive marker (at a member boundary).
    pub(super) no_trailer: bool,
}

impl Indexer {
    pub(super) fn warn(&mut self, w: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(w);
        } else {
            self.dropped_warnings += 1;
        }
    }

    /// Reads an extension header's data (bounded); `None` if it was too large (skipped).
    pub(super) fn read_extension(
        &mut self,
        s: &mut dyn Stream,
        size: u64,
        what: &str,
        at: u64,
    ) -> io::Result<Option<Vec<u8>>> {
        let padded = size.div_ceil(BLOCK) * BLOCK;
        if size > MAX_EXTENSION_HEADER {
            let skipped = s.skip(padded)?;
            if skipped < padded {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated"));
            }
            self.warn(format!("{what} header at offset {at} is {size} bytes (limit {MAX_EXTENSION_HEADER}): the member it describes is left out"));
            return Ok(None);
        }
        let mut buf = vec![0u8; padded as usize];
        if read_full(s, &mut buf)? < buf.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated"));
        }
        buf.truncate(size as usize);
        Ok(Some(buf))
    }

    pub(super) fn run(&mut self, s: &mut dyn Stream) -> std::result::Result<(), String> {
        let mut pos: u64 = 0;
        let mut header = [0u8; BLOCK as usize];
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Option<Vec<(Vec<u8>, Vec<u8>)>> = None;
        // The next member must be left out (its extension header was refused).
        let mut poisoned = false;
        loop {
            let got = read_full(s, &mut header)
                .map_err(|e| format!("read error at offset {pos}: {e}"))?;
            if got == 0 {
                if long_name.is_some() || long_link.is_some() || pax.is_some() || poisoned {
                    return Err(format!(
                        "archive ends after an extension header at offset {pos}"
                    ));
                }
                // No end-of-archive marker, but the last member is complete.
                self.no_trailer = true;
                return Ok(());
            }
            if got < header.len() {
                return Err(format!("truncated header at offset {pos}"));
            }
            if header.iter().all(|b| *b == 0) {
                return Ok(());
            }
            if !checksum_ok(&header) {
                return Err(format!(
                    "bad header checksum at offset {pos} (not a tar header)"
                ));
            }
            let typeflag = header[156];
            let is_gnu = &header[257..265] == b"ustar  \0";
            let is_ustar = &header[257..263] == b"ustar\0";
            let hsize = numeric(&header, 124, 12)
                .filter(|v| *v >= 0)
                .ok_or_else(|| format!("bad size field at offset {pos}"))?
                as u64;
            let data_off = pos + BLOCK;

            match typeflag {
                b'L' | b'K' | b'x' | b'g' => {
                    let what = match typeflag {
                        b'L' => "GNU long name",
                        b'K' => "GNU long link",
                        b'x' => "PAX",
                        _ => "PAX global",
                    };
                    let data = self
                        .read_extension(s, hsize, what, pos)
                        .map_err(|e| format!("{what} header at offset {pos}: {e}"))?;
                    pos = data_off + hsize.div_ceil(BLOCK) * BLOCK;
                    let Some(data) = data else {
                        if typeflag != b'g' {
                            poisoned = true;
                        }
                        continue;
                    };
                    match typeflag {
                        b'L' | b'K' => {
                            let mut v = data;
                            while v.last() == Some(&0) {
                                v.pop();
                            }
                            if typeflag == b'L' {
                                long_name = Some(v);
                            } else {
                                long_link = Some(v);
                            }
                        }
                        _ => match pax_records(&data) {
                            Ok(recs) if typeflag == b'x' => {
                                pax.get_or_insert_with(Vec::new).extend(recs)
                            }
                            Ok(recs) => self.globals.extend(recs),
                            Err(e) => {
                                self.warn(format!("{what} header at offset {pos}: {e}; the member it describes is left out"));
                                poisoned = typeflag == b'x';
                            }
                        },
                    }
                    continue;
                }
                _ => {}
            }

            // A member. Merge global then local PAX records.
            let mut recs: Vec<(Vec<u8>, Vec<u8>)> = self.globals.clone();
            recs.extend(pax.take().unwrap_or_default());
            let mut size = hsize;
            for (k, v) in &recs {
                if k == b"size" {
                    if let Some(n) = std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                    {
                        size = n;
                    }
                }
            }
            let padded = size
                .div_ceil(BLOCK)
                .checked_mul(BLOCK)
                .ok_or_else(|| format!("bad PAX size at offset {pos}"))?;
            let next = data_off
                .checked_add(padded)
                .ok_or_else(|| format!("size overflow at offset {pos}"))?;

            let mut path: Vec<u8> = match long_name.take() {
                Some(n) => n,
                None => {
                    let name = field(&header, 0, 100);
                    let prefix = if is_ustar {
                        field(&header, 345, 155)
                    } else {
                        &[][..]
                    };
                    if prefix.is_empty() {
                        name.to_vec()
                    } else {
                        [prefix, b"/", name].concat()
                    }
                }
            };
            let mut link: Vec<u8> = long_link
                .take()
                .unwrap_or_else(|| field(&header, 157, 100).to_vec());
            let mode = numeric(&header, 100, 8).unwrap_or(0) as u32 & 0o7777;
            let mut uid = numeric(&header, 108, 8).unwrap_or(0) as u32;
            let mut gid = numeric(&header, 116, 8).unwrap_or(0) as u32;
            let mut mtime = ts_secs(numeric(&header, 136, 12).unwrap_or(0));
            let mut atime = Timestamp::default();
            let mut ctime = Timestamp::default();
            if is_gnu {
                atime = ts_secs(numeric(&header, 345, 12).unwrap_or(0));
                ctime = ts_secs(numeric(&header, 357, 12).unwrap_or(0));
            }
            let (mut major, mut minor) = if is_gnu || is_ustar {
                (
                    numeric(&header, 329, 8).unwrap_or(0) as u32,
                    numeric(&header, 337, 8).unwrap_or(0) as u32,
                )
            } else {
                (0, 0)
            };
            let mut xattrs: Vec<(OsString, Vec<u8>)> = Vec::new();
            let mut sparse = typeflag == b'S';
            let mut realsize: Option<u64> = None;
            for (k, v) in recs {
                let num = || {
                    std::str::from_utf8(&v)
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                };
                match k.as_slice() {
                    b"path" => path = v.clone(),
                    b"linkpath" => link = v.clone(),
                    b"uid" => uid = num().map_or(uid, |n| n as u32),
                    b"gid" => gid = num().map_or(gid, |n| n as u32),
                    b"mtime" => mtime = pax_time(&v).unwrap_or(mtime),
                    b"atime" => atime = pax_time(&v).unwrap_or(atime),
                    b"ctime" => ctime = pax_time(&v).unwrap_or(ctime),
                    b"SCHILY.devmajor" => major = num().map_or(major, |n| n as u32),
                    b"SCHILY.devminor" => minor = num().map_or(minor, |n| n as u32),
                    b"RHT.security.selinux" => {
                        xattrs.push((OsString::from("security.selinux"), v.clone()))
                    }
                    b"GNU.sparse.realsize" | b"GNU.sparse.size" => {
                        sparse = true;
                        realsize = num();
                    }
                    b"GNU.sparse.major"
                    | b"GNU.sparse.map"
                    | b"GNU.sparse.offset"
                    | b"GNU.sparse.numblocks" => sparse = true,
                    b"GNU.sparse.name" => {
                        sparse = true;
                        path = v.clone();
                    }
                    _ => {
                        if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                            xattrs.retain(|(n, _)| n.as_bytes() != name);
                            xattrs.push((OsString::from_vec(name.to_vec()), v.clone()));
                        } else if let Some(name) = k.strip_prefix(b"LIBARCHIVE.xattr.") {
                            let name = percent_decode(name);
                            let trimmed = v.trim_ascii();
                            let unpadded = trimmed
                                .strip_suffix(b"==")
                                .or_else(|| trimmed.strip_suffix(b"="))
                                .unwrap_or(trimmed);
                            match base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded)
                            {
                                Ok(val) => {
                                    xattrs.retain(|(n, _)| n.as_bytes() != name.as_slice());
                                    xattrs.push((OsString::from_vec(name), val));
                                }
                                Err(_) => self.warn(format!(
                                    "{}: undecodable LIBARCHIVE.xattr value for {}",
                                    String::from_utf8_lossy(&path),
                                    String::from_utf8_lossy(&name)
                                )),
                            }
                        }
                    }
                }
            }
            xattrs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

            // Skip the member's data now; a truncated member is left out.
            let skipped = s.skip(padded).map_err(|e| {
                format!(
                    "read error in member {} at offset {pos}: {e}",
                    String::from_utf8_lossy(&path)
                )
            })?;
            if skipped < size {
                self.cut = Some(String::from_utf8_lossy(&path).into_owned());
                return Err(format!(
                    "member {} (offset {pos}) is truncated: {skipped} of {size} data bytes present; it is left out",
                    String::from_utf8_lossy(&path)
                ));
            }
            pos = next;

            if poisoned {
                poisoned = false;
                continue;
            }
            if matches!(typeflag, b'V' | b'M' | b'N') {
                self.warn(format!(
                    "skipped GNU special member (type {}) at offset {}",
                    typeflag as char,
                    data_off - BLOCK
                ));
                continue;
            }
            let kind = match typeflag {
                b'1' => None,
                b'2' => Some(FileKind::Symlink),
                b'3' => Some(FileKind::CharDevice),
                b'4' => Some(FileKind::BlockDevice),
                b'5' | b'D' => Some(FileKind::Dir),
                b'6' => Some(FileKind::Fifo),
                b'0' | 0 if path.ends_with(b"/") => Some(FileKind::Dir),
                _ => Some(FileKind::Regular),
            };
            let Some(norm) = normalize_bytes(&path) else {
                self.warn(format!(
                    "member {} contains '..': left out",
                    String::from_utf8_lossy(&path)
                ));
                continue;
            };
            let idx =
                u32::try_from(self.nodes.len()).map_err(|_| "too many members".to_string())?;
            let node = match kind {
                None => {
                    // Hardlink: share the inode of the named member, as it is now.
                    let target = normalize_bytes(&link);
                    let found = target
                        .as_ref()
                        .and_then(|t| self.paths.get(t.as_slice()).copied());
                    let Some(t) = found else {
                        self.warn(format!(
                            "hardlink {} -> {}: target not in the archive (before it); left out",
                            String::from_utf8_lossy(&path),
                            String::from_utf8_lossy(&link)
                        ));
                        continue;
                    };
                    let inode = self.nodes[t as usize].inode;
                    let mut n = self.nodes[inode as usize].clone();
                    n.inode = inode;
                    n
                }
                Some(kind) => {
                    if kind != FileKind::CharDevice && kind != FileKind::BlockDevice {
                        major = 0;
                        minor = 0;
                    }
                    Node {
                        kind,
                        mode,
                        uid,
                        gid,
                        size: match kind {
                            FileKind::Regular => realsize.unwrap_or(size),
                            FileKind::Symlink => link.len() as u64,
                            _ => 0,
                        },
                        mtime,
                        atime,
                        ctime,
                        rdev_major: major,
                        rdev_minor: minor,
                        offset: data_off,
                        link: (kind == FileKind::Symlink).then(|| link.clone().into_boxed_slice()),
                        xattrs,
                        inode: idx,
                        sparse: sparse && kind == FileKind::Regular,
                    }
                }
            };
            self.nodes.push(node);
            self.paths.insert(norm.into_boxed_slice(), idx);
        }
    }
}
