//! The production patterns on a real Temporal dev server: custom metrics and encryption.

use capstan::{
    testing::{unique_task_queue as queue, DevServer},
    Client,
};
use capstan_examples::patterns::{custom_metrics::*, encryption};

#[tokio::test]
async fn metrics_are_scraped_with_their_labels_and_replays_count_once() {
    let server = DevServer::shared().await;
    let client = Client::connect(server.address()).await.unwrap();
    let tq = queue("metrics");
    // No cache: every workflow task replays the run from its first event.
    let (result, scraped) = run_and_scrape(&client, &tq, &format!("metrics-{tq}"), true)
        .await
        .unwrap();
    assert_eq!(result, "processed order-1");
    let value = |name, labels: &[(&str, &str)]| series_value(&scraped, name, labels);
    // The interceptor's series, with the seed's labels.
    assert_eq!(
        value(
            "activity_schedule_to_start_latency_count",
            &[
                ("workflow_type", "MyWorkflow"),
                ("activity_type", "my_activity"),
                ("task_queue", &tq)
            ]
        ),
        Some(1.0),
        "{scraped}"
    );
    assert_eq!(
        value("activity_executions_total", &[("status", "started")]),
        Some(1.0),
        "{scraped}"
    );
    assert_eq!(
        value("activity_executions_total", &[("status", "completed")]),
        Some(1.0),
        "{scraped}"
    );
    assert_eq!(
        value("activity_executions_total", &[("status", "failed")]),
        None,
        "{scraped}"
    );
    // Workflow-side metrics: once, though the run was replayed at every task.
    assert_eq!(
        value(
            "my_workflow_completions",
            &[("workflow_type", "MyWorkflow"), ("namespace", "default")]
        ),
        Some(1.0),
        "{scraped}"
    );
    assert_eq!(
        value("my_workflow_duration_count", &[]),
        Some(1.0),
        "{scraped}"
    );
    assert_eq!(
        value("my_workflow_starts", &[]),
        Some(1.0),
        "the run's first lines ran at every replay; they must be counted once:\n{scraped}"
    );
    // Core's own metrics are served too.
    assert!(
        scraped
            .lines()
            .any(|l| l.starts_with("temporal_workflow_completed")),
        "core's metrics are missing:\n{scraped}"
    );
}

/// A key file with one AES-256 key, `k1`, in `dir`.
fn key_file(dir: &std::path::Path) -> std::path::PathBuf {
    use base64::Engine;
    std::fs::create_dir_all(dir).unwrap();
    let key_file = dir.join("keys");
    let key: [u8; 32] = std::array::from_fn(|i| i as u8 ^ 0xa5);
    std::fs::write(
        &key_file,
        format!(
            "k1={}\n",
            base64::engine::general_purpose::STANDARD.encode(key)
        ),
    )
    .unwrap();
    key_file
}

#[tokio::test]
async fn encrypted_payloads_never_reach_the_server_in_plaintext() {
    let server = DevServer::shared().await;
    let dir = std::env::temp_dir().join(format!("capstan-production-{}", std::process::id()));
    let codec = encryption::codec(Some(&key_file(&dir))).unwrap();
    let tq = queue("encrypted");
    let (result, history) =
        encryption::run_encrypted(&server.address(), codec, &tq, &format!("encrypted-{tq}"))
            .await
            .unwrap();
    assert_eq!(result, "processed card 4111-1111");
    assert!(
        !format!("{history:?}").contains("4111"),
        "plaintext in the history"
    );
    let err = encryption::codec(None).err().map(|e| e.to_string());
    if std::env::var(encryption::KEYS_VARIABLE).is_err() {
        assert!(err.unwrap().contains(encryption::KEYS_VARIABLE));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every byte the engine keeps for the database `db`: the file and its WAL.
fn stored_bytes(db: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        if let Ok(b) = std::fs::read(&path) {
            bytes.extend(b);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The embedded engine's SQLite file holds only ciphertext; the same run without the codec
/// leaves the card number in the file, so the scan does see plaintext when it is there.
#[tokio::test]
async fn encrypted_payloads_never_reach_the_engines_database_in_plaintext() {
    let dir = std::env::temp_dir().join(format!("capstan-production-db-{}", std::process::id()));
    let codec = encryption::codec(Some(&key_file(&dir))).unwrap();
    let plaintext = b"card 4111-1111";
    for encrypted in [true, false] {
        let db = dir.join(format!("engine-{encrypted}.db"));
        let engine = capstan_engine::Engine::start(capstan_engine::EngineOptions {
            db: Some(db.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
        let tq = queue("encrypted-db");
        let id = format!("encrypted-{tq}");
        let result = if encrypted {
            encryption::run_encrypted(&engine.address(), codec.clone(), &tq, &id)
                .await
                .unwrap()
                .0
        } else {
            let client = Client::connect(engine.address()).await.unwrap();
            capstan::Worker::new(&client, &tq)
                .register_workflow::<MyWorkflow>()
                .register_activity(my_activity)
                .run_until(
                    MyWorkflow::execute(&client, &id, "card 4111-1111".to_owned()).task_queue(&tq),
                )
                .await
                .unwrap()
                .unwrap()
        };
        assert_eq!(result, "processed card 4111-1111");
        engine.shutdown().await;
        let stored = stored_bytes(&db);
        assert!(stored.len() > 4096, "the database holds the run");
        assert_eq!(
            contains(&stored, plaintext),
            !encrypted,
            "plaintext in the database: {}",
            !encrypted
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}
