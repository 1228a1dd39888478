//! `lazyfs <backing> <mountpoint>`: mounts `backing` at `mountpoint`, prints `mounted`, then
//! reads commands on standard input: `power-cut` loses every write and directory change not
//! yet fsynced, unmounts and exits; `unmount` (or the end of input) unmounts cleanly, keeping
//! everything. Either way it prints one line saying what it did.
//!
//! `--file-fsync-persists-path`: a file's fsync also makes the names on its path durable (as
//! ext4 and XFS do for a new file); without it only a directory's fsync does (POSIX).

use std::io::BufRead;
use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let mut args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let names = match args.first() {
        Some(flag) if flag.as_os_str() == lazyfs::FILE_FSYNC_FLAG => {
            args.remove(0);
            lazyfs::Names::FileFsyncToo
        }
        _ => lazyfs::Names::DirectoryFsync,
    };
    let [backing, mountpoint] = args.as_slice() else {
        eprintln!(
            "usage: lazyfs [{}] <backing> <mountpoint>  (then `power-cut` or `unmount` on stdin)",
            lazyfs::FILE_FSYNC_FLAG
        );
        std::process::exit(2);
    };
    let mounted = lazyfs::mount(backing, mountpoint, names)?;
    println!("{}", lazyfs::READY_LINE);
    for line in std::io::stdin().lock().lines() {
        match line?.trim() {
            lazyfs::POWER_CUT_LINE => {
                let report = mounted.power_cut()?;
                println!(
                    "power cut: {} files back to their last fsync, {} directory entries back to \
                     their directory's last fsync",
                    report.files, report.entries
                );
                return Ok(());
            }
            lazyfs::UNMOUNT_LINE => break,
            other => eprintln!("lazyfs: unknown command {other:?} (power-cut, unmount)"),
        }
    }
    mounted.unmount()?;
    println!("unmounted");
    Ok(())
}
