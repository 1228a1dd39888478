//! nats-server 2.15.1 on the lazy filesystem with `sync_interval: always`: the smallest
//! reproduction of what a power cut does to its store. It fsyncs every file it writes but not the
//! directories its stream's tree hangs from, so under POSIX's rule for names (durable by the
//! directory's fsync) a power cut takes the whole stream; under ext4's (a new file's fsync carries its name) every
//! acknowledged message survives.

use lazyfs::Names;
use std::path::Path;

/// Publishes `count` acknowledged messages, kills the server, cuts power, mounts and starts
/// again: the stream's (messages, last sequence) afterwards, `None` if it is gone.
async fn after_power_cut(names: Names, count: u64) -> Option<(u64, u64)> {
    let root = tempfile::tempdir().expect("temp dir");
    let (backing, mnt) = (root.path().join("backing"), root.path().join("mnt"));
    std::fs::create_dir(&backing).expect("backing");
    std::fs::create_dir(&mnt).expect("mount point");
    let bin = Path::new(env!("CARGO_BIN_EXE_lazyfs"));
    let disk = lazyfs::Process::spawn(bin, &backing, &mnt, names).expect("mount");
    let mut server = harness::NatsServer::start_on(&mnt, true);
    let js = async_nats::jetstream::new(server.client().await);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "T".to_owned(),
        subjects: vec!["t.>".to_owned()],
        ..Default::default()
    })
    .await
    .expect("create stream");
    for i in 0..count {
        js.publish(format!("t.{}", i % 7), "payload".into())
            .await
            .expect("publish")
            .await
            .expect("acknowledged");
    }
    server.kill().expect("the server was running");
    disk.power_cut().expect("power cut");
    let disk = lazyfs::Process::spawn(bin, &backing, &mnt, names).expect("mount again");
    server.restart();
    let js = async_nats::jetstream::new(server.client().await);
    let state = match js.get_stream("T").await {
        Ok(mut stream) => {
            let info = stream.info().await.expect("stream info");
            Some((info.state.messages, info.state.last_sequence))
        }
        Err(e) => {
            assert!(e.to_string().contains("not found"), "{e}");
            None
        }
    };
    server.kill().expect("the server was running");
    disk.unmount().expect("unmount");
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_posix_names_one_acknowledged_message_takes_the_whole_stream_with_it() {
    assert_eq!(after_power_cut(Names::DirectoryFsync, 1).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ext4_names_every_acknowledged_message_survives() {
    assert_eq!(
        after_power_cut(Names::FileFsyncToo, 300).await,
        Some((300, 300))
    );
}
