//! The FUSE operations: a pass-through to the backing directory that records, before each
//! change, what the last sync had left (see [`crate::durability`]).
//!
//! Inodes are numbered here and located by (parent inode, name), so a renamed directory takes
//! its children along. A name that is unlinked or replaced is not deleted but moved into a
//! hidden stash directory in the backing root, because the last directory sync may still point
//! at it; a directory sync that leaves a stashed inode unreferenced deletes it.

use crate::durability::{DirsSince, FileSince};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Attributes and entries are not cached by the kernel: every lookup comes here.
const TTL: Duration = Duration::ZERO;

/// The stash's name in the backing root (hidden from the mount).
pub const STASH: &str = ".lazyfs-unsynced";

const ROOT: u64 = 1;

/// What a power cut rolled back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CutReport {
    /// Files whose content went back to their last fsync.
    pub files: usize,
    /// Directory entries that went back to their directory's last fsync.
    pub entries: usize,
}

#[derive(Debug)]
struct Node {
    parent: u64,
    name: OsString,
}

/// Everything the filesystem knows; one lock, one request at a time.
#[derive(Debug)]
pub struct State {
    backing: PathBuf,
    nodes: HashMap<u64, Node>,
    by_name: HashMap<(u64, OsString), u64>,
    next_ino: u64,
    stash: u64,
    handles: HashMap<u64, (u64, Arc<File>)>,
    next_fh: u64,
    files: HashMap<u64, FileSince>,
    dirs: DirsSince,
    /// Set by a power cut or an unmount: every later request fails with EIO.
    down: bool,
    names: Names,
}

/// When a file's name becomes durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Names {
    /// Only by an fsync of its directory (POSIX; what portable software must assume).
    #[default]
    DirectoryFsync,
    /// Also by an fsync of the file itself, which then makes durable the entries on its path
    /// (as ext4 and XFS do in practice for a newly created file). A rename or unlink still
    /// needs its directory's fsync.
    FileFsyncToo,
}

type Result<T> = std::result::Result<T, Errno>;

fn errno(e: io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_i32)
}

impl State {
    /// Takes over `backing` (which must be a directory): a stash left by an earlier run that
    /// ended without a power cut is deleted, as a clean shutdown would have.
    pub fn new(backing: &Path, names: Names) -> io::Result<Self> {
        let backing = fs::canonicalize(backing)?;
        let stash_path = backing.join(STASH);
        if stash_path.exists() {
            fs::remove_dir_all(&stash_path)?;
        }
        fs::create_dir(&stash_path)?;
        let mut state = Self {
            backing,
            nodes: HashMap::new(),
            by_name: HashMap::new(),
            next_ino: ROOT + 1,
            stash: 0,
            handles: HashMap::new(),
            next_fh: 1,
            files: HashMap::new(),
            dirs: DirsSince::new(),
            down: false,
            names,
        };
        state.stash = state.add_node(ROOT, OsStr::new(STASH));
        Ok(state)
    }

    fn add_node(&mut self, parent: u64, name: &OsStr) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(
            ino,
            Node {
                parent,
                name: name.to_owned(),
            },
        );
        self.by_name.insert((parent, name.to_owned()), ino);
        ino
    }

    fn path(&self, ino: u64) -> Result<PathBuf> {
        let mut names = Vec::new();
        let mut at = ino;
        while at != ROOT {
            let node = self.nodes.get(&at).ok_or(Errno::ENOENT)?;
            names.push(node.name.as_os_str());
            at = node.parent;
        }
        let mut path = self.backing.clone();
        path.extend(names.iter().rev());
        Ok(path)
    }

    /// The inode `name` in `parent` points to now, if any.
    fn resolve(&mut self, parent: u64, name: &OsStr) -> Result<Option<u64>> {
        if parent == ROOT && name == STASH {
            return Ok(None);
        }
        if let Some(&ino) = self.by_name.get(&(parent, name.to_owned())) {
            return Ok(Some(ino));
        }
        match fs::symlink_metadata(self.path(parent)?.join(name)) {
            Ok(_) => Ok(Some(self.add_node(parent, name))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(errno(e)),
        }
    }

    fn attr(&self, ino: u64) -> Result<FileAttr> {
        let meta = fs::symlink_metadata(self.path(ino)?).map_err(errno)?;
        Ok(attr(ino, &meta))
    }

    /// Moves `ino` to `parent`/`name` (both in the backing directory and here).
    fn relink(&mut self, ino: u64, parent: u64, name: &OsStr) -> Result<()> {
        fs::rename(self.path(ino)?, self.path(parent)?.join(name)).map_err(errno)?;
        let node = self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
        let old = (
            node.parent,
            std::mem::replace(&mut node.name, name.to_owned()),
        );
        node.parent = parent;
        self.by_name.remove(&old);
        self.by_name.insert((parent, name.to_owned()), ino);
        Ok(())
    }

    fn stash_away(&mut self, ino: u64) -> Result<()> {
        self.relink(ino, self.stash, OsStr::new(&ino.to_string()))
    }

    /// Before `name` in `dir` changes: remember what it points to, if this is its first
    /// change since the directory's last sync.
    fn entry_changes(&mut self, dir: u64, name: &OsStr) -> Result<Option<u64>> {
        let now = self.resolve(dir, name)?;
        self.dirs
            .entry(dir)
            .or_default()
            .entry(name.to_owned())
            .or_insert(now);
        Ok(now)
    }

    /// Where a new entry `name` in `dir` goes, remembering (as [`State::entry_changes`]) that
    /// it did not exist; `EEXIST` if it does.
    fn vacant_path(&mut self, dir: u64, name: &OsStr) -> Result<PathBuf> {
        if self.entry_changes(dir, name)?.is_some() {
            return Err(Errno::EEXIST);
        }
        Ok(self.path(dir)?.join(name))
    }

    /// A handle for `file`, opened on `ino`.
    fn add_handle(&mut self, ino: u64, file: File) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, (ino, Arc::new(file)));
        fh
    }

    /// Before `[start, end)` of `ino` changes (through `file`, opened for reading).
    fn content_changes(&mut self, ino: u64, file: &File, start: u64, end: u64) -> Result<()> {
        let since = match self.files.entry(ino) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(FileSince::new(file.metadata().map_err(errno)?.len()))
            }
        };
        since.save(file, start, end).map_err(errno)
    }

    fn truncate(&mut self, ino: u64, file: &File, len: u64) -> Result<()> {
        self.content_changes(ino, file, len, u64::MAX)?;
        file.set_len(len).map_err(errno)
    }

    /// The entries from the root down to `ino` become durable as they are now.
    fn path_is_durable(&mut self, ino: u64) {
        let mut at = ino;
        while let Some(node) = self.nodes.get(&at) {
            let parent = node.parent;
            if let Some(names) = self.dirs.get_mut(&parent) {
                names.remove(&node.name);
            }
            at = parent;
        }
        self.collect_stash();
    }

    /// Deletes stashed inodes that no directory's last sync points at any more.
    fn collect_stash(&mut self) {
        let stashed: HashSet<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.parent == self.stash)
            .map(|(&ino, _)| ino)
            .collect();
        let mut garbage = HashSet::new();
        loop {
            let referenced: HashSet<u64> = self
                .dirs
                .iter()
                .filter(|(dir, _)| !garbage.contains(*dir))
                .flat_map(|(_, names)| names.values().flatten().copied())
                .collect();
            let next: HashSet<u64> = stashed.difference(&referenced).copied().collect();
            if next == garbage {
                break;
            }
            garbage = next;
        }
        for ino in garbage {
            if let Ok(path) = self.path(ino) {
                let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
            }
            if let Some(node) = self.nodes.remove(&ino) {
                self.by_name.remove(&(node.parent, node.name));
            }
            self.files.remove(&ino);
            self.dirs.remove(&ino);
        }
    }

    /// The power cut: from now on every request fails, and the backing directory is put back
    /// to what the last syncs left — file contents first, then directory entries.
    pub fn cut(&mut self) -> io::Result<CutReport> {
        self.down = true;
        let mut report = CutReport::default();
        for (&ino, since) in &self.files {
            if let Ok(path) = self.path(ino) {
                since.restore(&OpenOptions::new().write(true).open(path)?)?;
                report.files += 1;
            }
        }
        let dirs = std::mem::take(&mut self.dirs);
        // Whatever lives at a changed name now goes to the stash; then each changed name
        // gets back what it pointed to (a second name for the same inode becomes a hard link).
        for (&dir, names) in &dirs {
            for name in names.keys() {
                if let Some(ino) = self.resolve(dir, name).map_err(io_error)? {
                    self.stash_away(ino).map_err(io_error)?;
                }
            }
        }
        for (&dir, names) in &dirs {
            report.entries += names.len();
            for (name, ino) in names {
                let Some(ino) = *ino else { continue };
                let placed = self.nodes.get(&ino).is_none_or(|n| n.parent != self.stash);
                if !placed {
                    self.relink(ino, dir, name).map_err(io_error)?;
                } else if let Ok(from) = self.path(ino)
                    && from.is_file()
                {
                    fs::hard_link(from, self.path(dir).map_err(io_error)?.join(name))?;
                }
            }
        }
        fs::remove_dir_all(self.backing.join(STASH))?;
        self.files.clear();
        Ok(report)
    }

    /// A clean shutdown: everything written stays, what was unlinked goes.
    pub fn shut_down(&mut self) -> io::Result<()> {
        if self.down {
            return Ok(());
        }
        self.down = true;
        fs::remove_dir_all(self.backing.join(STASH))
    }
}

fn io_error(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(i32::from(e))
}

fn attr(ino: u64, meta: &fs::Metadata) -> FileAttr {
    let time = |secs: i64, nanos: i64| {
        UNIX_EPOCH
            + Duration::new(
                secs.max(0).unsigned_abs(),
                nanos.clamp(0, 999_999_999) as u32,
            )
    };
    let kind = meta.file_type();
    FileAttr {
        ino: INodeNo(ino),
        size: meta.len(),
        blocks: meta.blocks(),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: time(meta.ctime(), meta.ctime_nsec()),
        kind: if kind.is_dir() {
            FileType::Directory
        } else if kind.is_symlink() {
            FileType::Symlink
        } else {
            FileType::RegularFile
        },
        perm: (meta.mode() & 0o7777) as u16,
        nlink: u32::try_from(meta.nlink()).unwrap_or(u32::MAX),
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: u32::try_from(meta.rdev()).unwrap_or(0),
        blksize: u32::try_from(meta.blksize()).unwrap_or(4096),
        flags: 0,
    }
}

/// Opens a backing file always readable (the original bytes are read back before a change).
fn open_backing(path: &Path, flags: i32, create_mode: Option<u32>) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    if flags & libc::O_ACCMODE != libc::O_RDONLY {
        options.write(true);
    }
    if let Some(mode) = create_mode {
        options.create_new(true).mode(mode);
    }
    let passed = libc::O_ACCMODE | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_APPEND;
    options.custom_flags(flags & !passed).open(path)
}

/// The mounted filesystem: requests lock the shared [`State`].
#[derive(Debug, Clone)]
pub struct LazyFs(pub Arc<Mutex<State>>);

impl LazyFs {
    fn state(&self) -> Result<MutexGuard<'_, State>> {
        let state = self.0.lock().map_err(|_| Errno::EIO)?;
        if state.down {
            return Err(Errno::EIO);
        }
        Ok(state)
    }

    fn handle(&self, fh: FileHandle) -> Result<(u64, Arc<File>)> {
        self.state()?
            .handles
            .get(&fh.0)
            .cloned()
            .ok_or(Errno::EBADF)
    }
}

macro_rules! reply {
    ($reply:ident, $result:expr, |$value:pat_param| $ok:expr) => {
        match $result {
            Ok($value) => $ok,
            Err(e) => $reply.error(e),
        }
    };
}

impl Filesystem for LazyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = self.state().and_then(|mut s| {
            let ino = s.resolve(parent.0, name)?.ok_or(Errno::ENOENT)?;
            s.attr(ino)
        });
        reply!(reply, found, |attr| reply.entry(&TTL, &attr, Generation(0)));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let found = match fh {
            Some(fh) => self
                .handle(fh)
                .and_then(|(_, f)| f.metadata().map_err(errno))
                .map(|meta| attr(ino.0, &meta)),
            None => self.state().and_then(|s| s.attr(ino.0)),
        };
        reply!(reply, found, |attr| reply.attr(&TTL, &attr));
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let done = self.state().and_then(|mut s| {
            let path = s.path(ino.0)?;
            if let Some(mode) = mode {
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(errno)?;
            }
            if let Some(len) = size {
                let file = open_backing(&path, libc::O_RDWR, None).map_err(errno)?;
                s.truncate(ino.0, &file, len)?;
            }
            if let Some(mtime) = mtime {
                let at = match mtime {
                    TimeOrNow::SpecificTime(at) => at,
                    TimeOrNow::Now => SystemTime::now(),
                };
                let file = File::open(&path).map_err(errno)?;
                let _ = file.set_modified(at);
            }
            s.attr(ino.0)
        });
        reply!(reply, done, |attr| reply.attr(&TTL, &attr));
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let made = self.state().and_then(|mut s| {
            let path = s.vacant_path(parent.0, name)?;
            fs::DirBuilder::new()
                .mode(mode & !umask)
                .create(path)
                .map_err(errno)?;
            let ino = s.add_node(parent.0, name);
            s.attr(ino)
        });
        reply!(reply, made, |attr| reply.entry(&TTL, &attr, Generation(0)));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let done = self.state().and_then(|mut s| {
            let ino = s.entry_changes(parent.0, name)?.ok_or(Errno::ENOENT)?;
            if s.path(ino)?.is_dir() {
                return Err(Errno::EISDIR);
            }
            s.stash_away(ino)
        });
        reply!(reply, done, |()| reply.ok());
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let done = self.state().and_then(|mut s| {
            let ino = s.entry_changes(parent.0, name)?.ok_or(Errno::ENOENT)?;
            let mut entries = fs::read_dir(s.path(ino)?).map_err(errno)?;
            if entries.next().is_some() {
                return Err(Errno::ENOTEMPTY);
            }
            s.stash_away(ino)
        });
        reply!(reply, done, |()| reply.ok());
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let done = self.state().and_then(|mut s| {
            if flags.contains(RenameFlags::RENAME_EXCHANGE) {
                return Err(Errno::EINVAL);
            }
            let ino = s.entry_changes(parent.0, name)?.ok_or(Errno::ENOENT)?;
            let replaced = s.entry_changes(newparent.0, newname)?;
            if let Some(old) = replaced {
                if old == ino {
                    return Ok(());
                }
                if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                    return Err(Errno::EEXIST);
                }
                let (from_dir, to) = (s.path(ino)?.is_dir(), s.path(old)?);
                match (from_dir, to.is_dir()) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if fs::read_dir(&to).map_err(errno)?.next().is_some() => {
                        return Err(Errno::ENOTEMPTY);
                    }
                    _ => {}
                }
                s.stash_away(old)?;
            }
            s.relink(ino, newparent.0, newname)
        });
        reply!(reply, done, |()| reply.ok());
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let opened = self.state().and_then(|mut s| {
            let file = open_backing(&s.path(ino.0)?, flags.0, None).map_err(errno)?;
            if flags.0 & libc::O_TRUNC != 0 {
                s.truncate(ino.0, &file, 0)?;
            }
            Ok(s.add_handle(ino.0, file))
        });
        reply!(reply, opened, |fh| reply
            .opened(FileHandle(fh), FopenFlags::empty()));
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let created = self.state().and_then(|mut s| {
            let path = s.vacant_path(parent.0, name)?;
            let file = open_backing(&path, flags, Some(mode & !umask)).map_err(errno)?;
            let ino = s.add_node(parent.0, name);
            s.files.insert(ino, FileSince::new(0));
            let fh = s.add_handle(ino, file);
            Ok((s.attr(ino)?, fh))
        });
        reply!(reply, created, |(attr, fh)| reply.created(
            &TTL,
            &attr,
            Generation(0),
            FileHandle(fh),
            FopenFlags::empty()
        ));
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let read = self.handle(fh).and_then(|(_, file)| {
            let mut buf = vec![0; size as usize];
            let mut filled = 0;
            while filled < buf.len() {
                match file.read_at(&mut buf[filled..], offset + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(errno(e)),
                }
            }
            buf.truncate(filled);
            Ok(buf)
        });
        reply!(reply, read, |data| reply.data(&data));
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let written = self.state().and_then(|mut s| {
            let (ino, file) = s.handles.get(&fh.0).cloned().ok_or(Errno::EBADF)?;
            s.content_changes(ino, &file, offset, offset + data.len() as u64)?;
            file.write_all_at(data, offset).map_err(errno)?;
            Ok(data.len() as u32)
        });
        reply!(reply, written, |n| reply.written(n));
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if let Ok(mut s) = self.0.lock() {
            s.handles.remove(&fh.0);
        }
        reply.ok();
    }

    /// What makes a file's content durable. The backing file itself is not fsynced: the
    /// backing directory's own durability is not what is simulated.
    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let done = self.state().map(|mut s| {
            s.files.remove(&ino.0);
            if s.names == Names::FileFsyncToo {
                s.path_is_durable(ino.0);
            }
        });
        reply!(reply, done, |()| reply.ok());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listed = self.state().and_then(|mut s| {
            let mut entries = vec![
                (ino.0, FileType::Directory, OsString::from(".")),
                (ino.0, FileType::Directory, OsString::from("..")),
            ];
            for entry in fs::read_dir(s.path(ino.0)?).map_err(errno)? {
                let entry = entry.map_err(errno)?;
                let name = entry.file_name();
                let Some(child) = s.resolve(ino.0, &name)? else {
                    continue;
                };
                let kind = match entry.file_type() {
                    Ok(t) if t.is_dir() => FileType::Directory,
                    Ok(t) if t.is_symlink() => FileType::Symlink,
                    _ => FileType::RegularFile,
                };
                entries.push((child, kind, name));
            }
            Ok(entries)
        });
        reply!(reply, listed, |entries| {
            for (index, (child, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
                if reply.add(INodeNo(*child), index as u64 + 1, *kind, name) {
                    break;
                }
            }
            reply.ok()
        });
    }

    /// What makes a directory's entries durable (a file's name is only as durable as its
    /// directory's last fsync).
    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let done = self.state().map(|mut s| {
            s.dirs.remove(&ino.0);
            s.collect_stash();
        });
        reply!(reply, done, |()| reply.ok());
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let stat = self.state().and_then(|s| {
            nix::sys::statvfs::statvfs(&s.backing).map_err(|e| Errno::from_i32(e as i32))
        });
        reply!(reply, stat, |st| reply.statfs(
            st.blocks(),
            st.blocks_free(),
            st.blocks_available(),
            st.files(),
            st.files_free(),
            u32::try_from(st.block_size()).unwrap_or(4096),
            u32::try_from(st.name_max()).unwrap_or(255),
            u32::try_from(st.fragment_size()).unwrap_or(4096),
        ));
    }
}
