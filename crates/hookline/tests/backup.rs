//! `hookline store backup` on a running server under load, and a restore from its copy: every event accepted
//! before the backup began is in the restored store, and its pending deliveries go out from there.
//!
//! The embedded store only: PostgreSQL is backed up with its own tools (docs/operations.md).

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::{Hookline, Publisher, Receiver, Reply, TempDir, binary, event_id};
use tokio::task::JoinSet;

async fn backup_command(args: &[&std::ffi::OsStr]) -> std::process::Output {
    tokio::process::Command::new(binary())
        .args(["store", "backup"])
        .args(args)
        .env_remove("HOOKLINE_DATA_DIR")
        .env_remove("HOOKLINE_DATABASE_URL")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_backup_under_load_restores_every_event_accepted_before_it_and_its_deliveries_go_out() {
    let dir = TempDir::new("backup-source");
    let env = [("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "true"), ("HOOKLINE_DELIVERY_TIMEOUT", "120s")];
    let mut server = Hookline::start_node(dir.path(), None, &env).await;
    // The receiver holds every request unanswered: the deliveries stay pending (leased, or due) in the store.
    let receiver = Receiver::start().await;
    receiver.answer(Reply::status(200).after(Duration::from_secs(3600)));
    server.tenant("acme").await;
    server.endpoint("acme", json!({"url": format!("{}/hooks", receiver.url), "topics": ["pdf.processed"]})).await;
    let mut before = HashSet::new();
    for number in 0..150 {
        before.insert(server.publish("acme", "pdf.processed", &format!("{{\"n\":{number}}}")).await);
    }

    // Publishers keep going while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let during = Arc::new(Mutex::new(Vec::new()));
    let (counted, mut count) = tokio::sync::watch::channel(0_usize);
    let counted = Arc::new(counted);
    let mut publishers = JoinSet::new();
    for publisher_number in 0..4 {
        let (publisher, stop, during) = (Publisher::new(&server), Arc::clone(&stop), Arc::clone(&during));
        let counted = Arc::clone(&counted);
        publishers.spawn(async move {
            let mut number = 0;
            while !stop.load(Ordering::Relaxed) {
                let data = json!({"publisher": publisher_number, "n": number});
                let id = publisher.publish("acme", "pdf.processed", &data).await.expect("accepted during the backup");
                during.lock().unwrap().push(id);
                counted.send_modify(|accepted| *accepted += 1);
                number += 1;
            }
        });
    }
    // Some publishes land before the copy starts, so it runs beside a store being written.
    count.wait_for(|accepted| *accepted >= 20).await.unwrap();
    let copy_dir = TempDir::new("backup-copy");
    let copy = copy_dir.path().join("acme.backup");
    let made = backup_command(&["--data-dir".as_ref(), dir.path().as_os_str(), copy.as_os_str()]).await;
    assert!(made.status.success(), "backup failed: {}", String::from_utf8_lossy(&made.stderr));
    let said = String::from_utf8_lossy(&made.stdout);
    assert!(said.contains("acme.backup") && said.contains(" MB "), "{said}");
    stop.store(true, Ordering::Relaxed);
    while let Some(finished) = publishers.join_next().await {
        finished.unwrap();
    }
    let accepted_during = during.lock().unwrap().len();
    assert!(accepted_during >= 20, "publishing went on during the backup: {accepted_during}");

    // A second backup to the same path is refused and leaves the copy alone.
    let length = std::fs::metadata(&copy).unwrap().len();
    let again = backup_command(&["--data-dir".as_ref(), dir.path().as_os_str(), copy.as_os_str()]).await;
    assert!(!again.status.success());
    let refusal = String::from_utf8_lossy(&again.stderr);
    assert!(refusal.contains("already exists") && refusal.contains("never overwrites"), "{refusal}");
    assert_eq!(std::fs::metadata(&copy).unwrap().len(), length);

    // The machine is lost; the copy goes into a new, empty data directory.
    server.kill().await;
    let requests_before_restore = receiver.requests().len();
    receiver.answer(Reply::status(200));
    let restored_dir = TempDir::new("backup-restored");
    std::fs::copy(&copy, restored_dir.path().join("hookline.db")).unwrap();
    let restored = Hookline::start_node(restored_dir.path(), None, &env).await;
    for event in &before {
        let found = restored.admin("GET", &format!("/v1/tenants/acme/events/{event}"), None).await;
        assert_eq!(
            found.status, 200,
            "event {event}, accepted before the backup, is not in the copy: {:?}",
            found.body
        );
    }
    receiver
        .wait_until(
            Duration::from_secs(60),
            "every event accepted before the backup delivered from the copy",
            |requests| {
                let after: HashSet<String> = requests[requests_before_restore..].iter().map(event_id).collect();
                before.is_subset(&after)
            },
        )
        .await;
}

#[tokio::test]
async fn a_backup_names_what_is_wrong() {
    let empty = TempDir::new("backup-nothing");
    let target = empty.path().join("copy.db");
    let no_store = backup_command(&["--data-dir".as_ref(), empty.path().as_os_str(), target.as_os_str()]).await;
    assert!(!no_store.status.success());
    let said = String::from_utf8_lossy(&no_store.stderr);
    assert!(said.contains("there is no store in"), "{said}");
    assert!(!target.exists());

    let on_postgres = tokio::process::Command::new(binary())
        .args(["store", "backup", "copy.db"])
        .current_dir(empty.path())
        .env("HOOKLINE_DATABASE_URL", "postgres://hookline@127.0.0.1:1/hookline")
        .output()
        .await
        .unwrap();
    assert!(!on_postgres.status.success());
    let said = String::from_utf8_lossy(&on_postgres.stderr);
    assert!(said.contains("pg_dump") && said.contains("embedded store only"), "{said}");
    assert!(!empty.path().join("copy.db").exists());
}
