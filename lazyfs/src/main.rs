//! `lazyfs <backing> <mountpoint>`: mounts `backing` at `mountpoint`, prints `mounted`, then
//! reads commands on standard input: `power-cut` loses every write and directory change not
//! yet fsynced, unmounts and exits; `unmount` (or the end of input) unmounts cleanly, keeping
//! everything. Either way it prints one line saying what it did.

use std::io::BufRead;
use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [backing, mountpoint] = args.as_slice() else {
        eprintln!("usage: lazyfs <backing> <mountpoint>  (then `power-cut` or `unmount` on stdin)");
        std::process::exit(2);
    };
    let mounted = lazyfs::mount(backing, mountpoint)?;
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
