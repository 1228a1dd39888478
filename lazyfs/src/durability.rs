//! What the last syncs left on "disk", kept as undo records against the backing directory,
//! which always holds the live state: for each file changed since its last `fsync`, its length
//! then and the original bytes of every page changed since; for each directory changed since
//! its last `fsync`, what each changed name pointed to then. A power cut applies the records,
//! and the backing directory is what a machine that lost power would find.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The unit in which original bytes are saved before their first change since a sync.
pub const PAGE_BYTES: u64 = 4096;

/// A file's content as of its last `fsync`/`fdatasync`, as far as it has changed since.
#[derive(Debug, Default)]
pub struct FileSince {
    /// The file's length at its last sync.
    pub synced_len: u64,
    /// Page number → the page's bytes at the last sync (shorter than a page at the end).
    pub pages: HashMap<u64, Vec<u8>>,
}

impl FileSince {
    pub fn new(synced_len: u64) -> Self {
        Self {
            synced_len,
            pages: HashMap::new(),
        }
    }

    /// Saves the synced bytes of `[start, end)` that are not saved yet, read from `file`
    /// (which still holds them: every change before went through here).
    pub fn save(&mut self, file: &File, start: u64, end: u64) -> io::Result<()> {
        let end = end.min(self.synced_len);
        if start >= end {
            return Ok(());
        }
        for page in start / PAGE_BYTES..end.div_ceil(PAGE_BYTES) {
            if self.pages.contains_key(&page) {
                continue;
            }
            let offset = page * PAGE_BYTES;
            let len = PAGE_BYTES.min(self.synced_len - offset);
            let mut bytes = vec![0; usize::try_from(len).unwrap_or(0)];
            file.read_exact_at(&mut bytes, offset)?;
            self.pages.insert(page, bytes);
        }
        Ok(())
    }

    /// Puts the synced content back into `file`.
    pub fn restore(&self, file: &File) -> io::Result<()> {
        for (page, bytes) in &self.pages {
            file.write_all_at(bytes, page * PAGE_BYTES)?;
        }
        file.set_len(self.synced_len)
    }
}

/// Directory inode → (name → the inode it pointed to at the directory's last `fsync`, `None`
/// if it did not exist), for the names changed since.
pub type DirsSince = HashMap<u64, BTreeMap<OsString, Option<u64>>>;
