//! A lazy filesystem for power-cut tests, after Jepsen's LazyFS: a FUSE filesystem over a
//! backing directory that keeps what a power loss would lose and, on command, loses it.
//!
//! - [`filesystem`]: the FUSE operations, passed through to the backing directory, so reads
//!   see every write as on any filesystem;
//! - [`durability`]: before each change, what the last sync had left — a file's length and
//!   original pages since its last `fsync`/`fdatasync`, a directory's entries since its last
//!   `fsync` (create, unlink, rename, mkdir, rmdir) — kept in memory;
//! - [`Mounted::power_cut`] (in this process) or [`Process::power_cut`] (the `lazyfs`
//!   binary, told on its standard input): every later request fails, the records are applied
//!   to the backing directory, which is then exactly what the syncs made durable, and the
//!   filesystem is unmounted.
//!
//! Mounts without libfuse, through `fusermount3` (Debian package `fuse3`); needs `/dev/fuse`.

pub mod durability;
pub mod filesystem;

pub use filesystem::{CutReport, Names};
use filesystem::{LazyFs, State};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

/// What the binary prints once mounted, and reads on its standard input.
pub const READY_LINE: &str = "mounted";
pub const POWER_CUT_LINE: &str = "power-cut";
pub const UNMOUNT_LINE: &str = "unmount";
/// The binary's flag for [`Names::FileFsyncToo`].
pub const FILE_FSYNC_FLAG: &str = "--file-fsync-persists-path";

/// `backing` mounted lazily at `mountpoint` by this process.
#[derive(Debug)]
pub struct Mounted {
    state: Arc<Mutex<State>>,
    session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
}

/// Mounts `backing` (a directory) at `mountpoint` (an empty directory).
pub fn mount(backing: &Path, mountpoint: &Path, names: Names) -> io::Result<Mounted> {
    let state = Arc::new(Mutex::new(State::new(backing, names)?));
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("lazyfs".to_owned()),
        fuser::MountOption::Subtype("lazyfs".to_owned()),
    ];
    let session = fuser::spawn_mount(LazyFs(state.clone()), mountpoint, &config)?;
    Ok(Mounted {
        state,
        session: Some(session),
        mountpoint: mountpoint.to_owned(),
    })
}

impl Mounted {
    /// Loses everything not synced, then unmounts at once: files still open there answer
    /// EIO until closed (the kernel lets go of the filesystem after the last one).
    pub fn power_cut(mut self) -> io::Result<CutReport> {
        let report = self.lock()?.cut()?;
        nix::mount::umount2(&self.mountpoint, nix::mount::MntFlags::MNT_DETACH)
            .map_err(io::Error::from)?;
        // Not joined: its thread ends when the kernel lets go.
        drop(self.session.take());
        Ok(report)
    }

    /// A clean unmount: everything written stays in the backing directory.
    pub fn unmount(mut self) -> io::Result<()> {
        self.lock()?.shut_down()?;
        self.unmount_session()
    }

    fn lock(&self) -> io::Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| io::Error::other("lazyfs state poisoned"))
    }

    fn unmount_session(&mut self) -> io::Result<()> {
        match self.session.take() {
            Some(session) => session.umount_and_join(),
            None => Ok(()),
        }
    }
}

impl Drop for Mounted {
    /// As a clean unmount, but detached: a panicking test with files still open there must
    /// not leave a dead mount behind.
    fn drop(&mut self) {
        if self.session.is_some() {
            if let Ok(mut state) = self.state.lock() {
                let _ = state.shut_down();
            }
            let _ = nix::mount::umount2(&self.mountpoint, nix::mount::MntFlags::MNT_DETACH);
            drop(self.session.take());
        }
    }
}

/// The `lazyfs` binary as a child process (a filesystem outside the process under test).
#[derive(Debug)]
pub struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub mountpoint: PathBuf,
}

impl Process {
    /// Starts `bin backing mountpoint` and waits until it is mounted.
    pub fn spawn(bin: &Path, backing: &Path, mountpoint: &Path, names: Names) -> io::Result<Self> {
        let mut command = Command::new(bin);
        if names == Names::FileFsyncToo {
            command.arg(FILE_FSYNC_FLAG);
        }
        let mut child = command
            .arg(backing)
            .arg(mountpoint)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        let mut process = Self {
            child,
            stdin,
            stdout: BufReader::new(stdout.ok_or_else(|| io::Error::other("no stdout"))?),
            mountpoint: mountpoint.to_owned(),
        };
        let line = process.read_line()?;
        if line != READY_LINE {
            let _ = process.child.kill();
            let _ = process.child.wait();
            return Err(io::Error::other(format!(
                "lazyfs did not mount {}: {line:?}",
                mountpoint.display()
            )));
        }
        Ok(process)
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        Ok(line.trim_end().to_owned())
    }

    fn tell(&mut self, command: &str) -> io::Result<String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("lazyfs already stopped"))?;
        writeln!(stdin, "{command}")?;
        stdin.flush()?;
        self.stdin = None;
        let answer = self.read_line()?;
        let status = self.child.wait()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "lazyfs exited {status}: {answer}"
            )));
        }
        Ok(answer)
    }

    /// Loses everything not synced, unmounts, and returns the binary's account of it.
    pub fn power_cut(mut self) -> io::Result<String> {
        self.tell(POWER_CUT_LINE)
    }

    /// A clean unmount: everything written stays.
    pub fn unmount(mut self) -> io::Result<()> {
        self.tell(UNMOUNT_LINE).map(drop)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.tell(UNMOUNT_LINE);
        }
    }
}
