//! List queries give the same answers on the embedded engine and on the real dev server:
//! OR and AND with parentheses, IN, STARTS_WITH, start-time ranges and BETWEEN, IS NULL,
//! statuses. The workflows have no worker: two stay running, two are terminated.

use std::{collections::BTreeSet, time::Duration};

use capstan::{
    testing::{unique_task_queue, DevServer},
    Client,
};

/// The workflow ids (without the queue prefix) each query must list.
const EXPECTED: &[(&str, &[&str])] = &[
    ("WorkflowType = 'Open' OR WorkflowType = 'Closed'", &["a-closed", "a-open", "b-closed", "b-open"]),
    ("WorkflowId IN ('{q}-a-open', '{q}-b-closed')", &["a-open", "b-closed"]),
    ("WorkflowId NOT IN ('{q}-a-open', '{q}-b-closed')", &["a-closed", "b-open"]),
    ("StartTime < '{t}'", &["a-closed", "a-open"]),
    ("StartTime >= '{t}'", &["b-closed", "b-open"]),
    ("StartTime BETWEEN '{t0}' AND '{t}'", &["a-closed", "a-open"]),
    ("CloseTime IS NULL", &["a-open", "b-open"]),
    ("CloseTime IS NOT NULL AND StartTime > '{t}'", &["b-closed"]),
    ("ExecutionStatus = 'Running' AND (WorkflowId = '{q}-a-open' OR WorkflowId = '{q}-a-closed')", &["a-open"]),
    ("ExecutionStatus = 'Terminated' OR WorkflowType = 'Open' AND StartTime > '{t}'", &["a-closed", "b-closed", "b-open"]),
    ("WorkflowId STARTS_WITH '{q}-b'", &["b-closed", "b-open"]),
];

/// Starts the four workflows on `address` and returns, per query of [`EXPECTED`], the ids
/// listed once visibility has caught up (or the last listing after 10 s).
async fn listings(address: &str) -> Vec<(String, BTreeSet<String>)> {
    let client = Client::connect(address).await.unwrap();
    let q = unique_task_queue("visibility");
    let start = |group: &'static str| {
        let (client, q) = (client.clone(), q.clone());
        async move {
            for kind in ["Open", "Closed"] {
                let handle = client
                    .start_workflow_by_name(
                        kind,
                        format!("{q}-{group}-{}", kind.to_lowercase()),
                        (),
                    )
                    .task_queue(&q)
                    .await
                    .unwrap();
                if kind == "Closed" {
                    handle.terminate("closed for the test").await.unwrap();
                }
            }
        }
    };
    let rfc3339 =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(1);
    start("a").await;
    // Start times on either side of `t`, whatever the server's time resolution.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    start("b").await;
    let mut out = Vec::new();
    for (query, expected) in EXPECTED {
        let query = format!(
            "TaskQueue = '{q}' AND ({})",
            query
                .replace("{q}", &q)
                .replace("{t0}", &rfc3339(t0))
                .replace("{t}", &rfc3339(t))
        );
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        let mut listed = BTreeSet::new();
        for _ in 0..100 {
            listed = client
                .list_workflows(&query)
                .await
                .unwrap_or_else(|e| panic!("{query}: {e}"))
                .into_iter()
                .map(|w| {
                    w.workflow_id
                        .trim_start_matches(&format!("{q}-"))
                        .to_owned()
                })
                .collect();
            if listed == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        out.push((query, listed));
    }
    for group in ["a", "b"] {
        let _ = client
            .workflow_handle(format!("{q}-{group}-open"))
            .terminate("test over")
            .await;
    }
    out
}

fn assert_expected(backend: &str, listings: &[(String, BTreeSet<String>)]) {
    for ((query, listed), (_, expected)) in listings.iter().zip(EXPECTED) {
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(listed, &expected, "{backend}: {query}");
    }
}

#[tokio::test]
async fn list_queries_answer_alike_on_the_engine_and_the_dev_server() {
    let dev_server = DevServer::shared().await;
    assert_expected("dev server", &listings(&dev_server.address()).await);
    let engine = capstan_engine::Engine::start(Default::default())
        .await
        .expect("the engine starts");
    assert_expected("engine", &listings(&engine.address()).await);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_malformed_query_is_refused_with_the_reason() {
    let engine = capstan_engine::Engine::start(Default::default())
        .await
        .expect("the engine starts");
    let client = Client::connect(engine.address()).await.unwrap();
    let error = client
        .list_workflows("StartTime > 'yesterday'")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`yesterday` is not an RFC 3339 time"),
        "{error}"
    );
}
