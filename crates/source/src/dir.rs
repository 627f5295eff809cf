//! Mounted-directory evidence (to be written).
use crate::*;
#[derive(Debug)]
pub struct DirSource { root: PathBuf }
impl DirSource { pub fn new(root: &Path) -> Result<Self> { Ok(Self { root: root.to_path_buf() }) } }
impl Source for DirSource {
    fn describe(&self) -> String { format!("directory {}", self.root.display()) }
    fn metadata(&self, path: &Path) -> Result<Metadata> { Err(SourceError::NotFound { path: path.into() }) }
    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>> { Err(SourceError::NotFound { path: path.into() }) }
    fn open(&self, path: &Path) -> Result<Box<dyn FileReader>> { Err(SourceError::NotFound { path: path.into() }) }
    fn read_link(&self, path: &Path) -> Result<PathBuf> { Err(SourceError::NotFound { path: path.into() }) }
    fn xattrs(&self, path: &Path) -> Result<Vec<(OsString, Vec<u8>)>> { Err(SourceError::NotFound { path: path.into() }) }
}
