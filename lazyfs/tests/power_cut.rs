//! The lazy filesystem against the kernel's FUSE: what survives a power cut is what was
//! fsynced — file contents by the file's fsync, names by their directory's.

use lazyfs::Names;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

struct Disk {
    _root: tempfile::TempDir,
    backing: PathBuf,
    mnt: PathBuf,
}

/// A backing directory holding `files` (already durable), and an empty mount point.
fn disk(files: &[(&str, &[u8])]) -> Disk {
    let root = tempfile::tempdir().expect("temp dir");
    let (backing, mnt) = (root.path().join("backing"), root.path().join("mnt"));
    fs::create_dir(&backing).expect("backing");
    fs::create_dir(&mnt).expect("mount point");
    for (name, content) in files {
        fs::write(backing.join(name), content).expect("seed file");
    }
    Disk {
        _root: root,
        backing,
        mnt,
    }
}

fn sync_dir(dir: &Path) {
    File::open(dir)
        .expect("open dir")
        .sync_all()
        .expect("fsync dir");
}

/// The names in a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_write_without_fsync_is_lost_and_was_readable_before() {
    let d = disk(&[("f", b"old content")]);
    let fs = lazyfs::mount(&d.backing, &d.mnt, Names::DirectoryFsync).expect("mount");
    let mut f = OpenOptions::new()
        .write(true)
        .open(d.mnt.join("f"))
        .expect("open");
    f.write_all(b"NEW").expect("write");
    f.seek(SeekFrom::End(0)).expect("seek");
    f.write_all(b" and more").expect("append");
    drop(f);
    assert_eq!(
        fs::read(d.mnt.join("f")).expect("read"),
        b"NEW content and more"
    );
    let report = fs.power_cut().expect("power cut");
    assert_eq!(report.files, 1);
    assert_eq!(fs::read(d.backing.join("f")).expect("read"), b"old content");
    assert_eq!(names(&d.backing), ["f"], "no stash left behind");
}

#[test]
fn a_write_with_fsync_or_fdatasync_is_kept_and_later_writes_are_not() {
    let d = disk(&[("f", b"old content"), ("g", b"old")]);
    let fs = lazyfs::mount(&d.backing, &d.mnt, Names::DirectoryFsync).expect("mount");
    let f = OpenOptions::new()
        .write(true)
        .open(d.mnt.join("f"))
        .expect("open");
    f.write_all_at(b"NEW", 0).expect("write");
    f.sync_all().expect("fsync");
    f.write_all_at(b"lost", 4).expect("write after fsync");
    let g = OpenOptions::new()
        .write(true)
        .open(d.mnt.join("g"))
        .expect("open");
    g.write_all_at(b"data kept", 0).expect("write");
    g.sync_data().expect("fdatasync");
    fs.power_cut().expect("power cut");
    assert_eq!(fs::read(d.backing.join("f")).expect("read"), b"NEW content");
    assert_eq!(fs::read(d.backing.join("g")).expect("read"), b"data kept");
}

#[test]
fn a_created_file_needs_its_directory_fsynced_too() {
    let d = disk(&[]);
    let fs = lazyfs::mount(&d.backing, &d.mnt, Names::DirectoryFsync).expect("mount");
    for name in ["both-synced", "only-file-synced"] {
        let mut f = File::create(d.mnt.join(name)).expect("create");
        f.write_all(b"payload").expect("write");
        f.sync_all().expect("fsync file");
        if name == "both-synced" {
            sync_dir(&d.mnt);
        }
    }
    fs::create_dir(d.mnt.join("new-dir")).expect("mkdir");
    assert_eq!(
        names(&d.mnt),
        ["both-synced", "new-dir", "only-file-synced"]
    );
    fs.power_cut().expect("power cut");
    assert_eq!(names(&d.backing), ["both-synced"]);
    assert_eq!(
        fs::read(d.backing.join("both-synced")).expect("read"),
        b"payload"
    );
}

#[test]
fn a_directory_fsync_keeps_the_name_but_not_unsynced_content() {
    let d = disk(&[]);
    let fs = lazyfs::mount(&d.backing, &d.mnt, Names::DirectoryFsync).expect("mount");
    fs::write(d.mnt.join("f"), b"never fsynced").expect("write");
    sync_dir(&d.mnt);
    fs.power_cut().expect("power cut");
    assert_eq!(fs::read(d.backing.join("f")).expect("read"), b"");
}

/// The write-to-temporary-then-rename pattern: the new content replaces the old one only
/// once the directory is synced; before, the old file is back.
#[test]
fn a_rename_is_durable_once_its_directory_is_fsynced() {
    for sync_after_rename in [false, true] {
        let d = disk(&[("state", b"version 1"), ("other", b"untouched")]);
        let fs = lazyfs::mount(&d.backing, &d.mnt, Names::DirectoryFsync).expect("mount");
        let mut tmp = File::create(d.mnt.join("state.tmp")).expect("create");
        tmp.write_all(b"version 2").expect("write");
        tmp.sync_all().expect("fsync");
        drop(tmp);
        fs::rename(d.mnt.join("state.tmp"), d.mnt.join("state")).expect("rename");
        assert_eq!(fs::read(d.mnt.join("state")).expect("read"), b"version 2");
        assert_eq!(names(&d.mnt), ["other", "state"]);
        if sync_after_rename {
            sync_dir(&d.mnt);
        }
        fs.power_cut().expect("power cut");
        assert_eq!(names(&d.backing), ["other", "state"]);
        let expected: &[u8] = if sync_after_rename {
            b"version 2"
        } else {
            b"version 1"
        };
        assert_eq!(fs::read(d.backing.join("state")).expect("read"), expected);
        assert_eq!(
            fs::read(d.backing.join("other")).expect("read"),
            b"untouched"
        );
    }
}

#[test]
fn a_rename_between_directories_and_an_unlink_come_undone() {
    let d = disk(&[("a", b"file a"), ("b", b"file b")]);
    fs::create_dir(d.backing.join("sub")).expect("mkdir");
    let fs = lazyfs::mount(&d.backing, &d.mnt, Names::DirectoryFsync).expect("mount");
    fs::rename(d.mnt.join("a"), d.mnt.join("sub/a")).expect("rename");
    fs::remove_file(d.mnt.join("b")).expect("unlink");
    fs::rename(d.mnt.join("sub"), d.mnt.join("moved")).expect("rename dir");
    assert_eq!(names(&d.mnt), ["moved"]);
    assert_eq!(fs::read(d.mnt.join("moved/a")).expect("read"), b"file a");
    fs.power_cut().expect("power cut");
    assert_eq!(names(&d.backing), ["a", "b", "sub"]);
    assert_eq!(fs::read(d.backing.join("b")).expect("read"), b"file b");
    assert!(names(&d.backing.join("sub")).is_empty());
}

#[test]
fn truncation_and_scattered_writes_go_back_to_the_synced_bytes() {
    let original: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let d = disk(&[("blk", &original)]);
    let fs = lazyfs::mount(&d.backing, &d.mnt, Names::DirectoryFsync).expect("mount");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(d.mnt.join("blk"))
        .expect("open");
    f.write_all_at(&[0xff; 5000], 3000)
        .expect("write across pages");
    f.set_len(20_000).expect("truncate");
    f.write_all_at(&[0xee; 100], 40_000)
        .expect("write past the new end");
    assert_eq!(f.metadata().expect("stat").len(), 40_100);
    drop(f);
    fs.power_cut().expect("power cut");
    assert_eq!(fs::read(d.backing.join("blk")).expect("read"), original);
}

#[test]
fn a_clean_unmount_keeps_everything() {
    let d = disk(&[("gone", b"x")]);
    let fs = lazyfs::mount(&d.backing, &d.mnt, Names::DirectoryFsync).expect("mount");
    fs::write(d.mnt.join("f"), b"kept without fsync").expect("write");
    fs::remove_file(d.mnt.join("gone")).expect("unlink");
    fs.unmount().expect("unmount");
    assert_eq!(names(&d.backing), ["f"]);
}

#[test]
fn the_binary_cuts_power_when_told_on_its_input() {
    let d = disk(&[("f", b"synced")]);
    let bin = Path::new(env!("CARGO_BIN_EXE_lazyfs"));
    let process = lazyfs::Process::spawn(bin, &d.backing, &d.mnt, Names::DirectoryFsync)
        .expect("spawn lazyfs");
    fs::write(d.mnt.join("f"), b"not synced").expect("write");
    fs::write(d.mnt.join("new"), b"not synced").expect("write");
    let said = process.power_cut().expect("power cut");
    assert!(said.starts_with("power cut: 2 files"), "{said}");
    assert_eq!(names(&d.backing), ["f"]);
    assert_eq!(fs::read(d.backing.join("f")).expect("read"), b"synced");
    // Mounted again, the filesystem starts from what survived.
    let process = lazyfs::Process::spawn(bin, &d.backing, &d.mnt, Names::DirectoryFsync)
        .expect("spawn lazyfs");
    assert_eq!(fs::read(d.mnt.join("f")).expect("read"), b"synced");
    process.unmount().expect("unmount");
}

/// With `Names::FileFsyncToo`, a new file's fsync also keeps its name and its new
/// directories' names; a rename still needs the directory's fsync.
#[test]
fn a_file_fsync_can_persist_its_path() {
    let d = disk(&[("state", b"version 1")]);
    let fs = lazyfs::mount(&d.backing, &d.mnt, Names::FileFsyncToo).expect("mount");
    fs::create_dir_all(d.mnt.join("a/b")).expect("mkdir");
    let mut f = File::create(d.mnt.join("a/b/f")).expect("create");
    f.write_all(b"payload").expect("write");
    f.sync_all().expect("fsync");
    File::create(d.mnt.join("unsynced")).expect("create");
    let mut tmp = File::create(d.mnt.join("state.tmp")).expect("create");
    tmp.write_all(b"version 2").expect("write");
    tmp.sync_all().expect("fsync");
    fs::rename(d.mnt.join("state.tmp"), d.mnt.join("state")).expect("rename");
    fs.power_cut().expect("power cut");
    assert_eq!(names(&d.backing), ["a", "state", "state.tmp"]);
    assert_eq!(fs::read(d.backing.join("a/b/f")).expect("read"), b"payload");
    assert_eq!(
        fs::read(d.backing.join("state")).expect("read"),
        b"version 1"
    );
}
