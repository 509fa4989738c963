//! The official Temporal Web UI, served by the embedded engine, in a real browser
//! (headless Chromium) against the tour's runs: the list, a run's events with its input
//! and result, the workers polling, and schedules. Screenshots go to
//! `target/web-ui-screenshots/`.

use std::time::Duration;

use capstan::{
    testing::{target_dir, unique_task_queue, web_ui, Chromium},
    Client,
};
use capstan_engine::{Engine, EngineOptions, WebUiOptions};
use capstan_examples::{patterns::schedule, tour, worker};

/// How long the browser lets a page load and render before it is read.
const RENDER: Duration = Duration::from_secs(6);

/// The page at `path`, as rendered; saves its screenshot as `name`.png.
async fn look(chromium: &Chromium, ui: &str, path: &str, name: &str) -> String {
    let url = format!("{ui}{path}");
    let shots = target_dir()
        .expect("a target dir")
        .join("web-ui-screenshots");
    std::fs::create_dir_all(&shots).expect("a screenshot folder");
    chromium
        .screenshot(&url, RENDER, &shots.join(format!("{name}.png")))
        .await
        .expect("the browser takes a screenshot");
    chromium
        .dom(&url, RENDER)
        .await
        .expect("the browser renders the page")
}

#[track_caller]
fn shows(page: &str, what: &str, texts: &[&str]) {
    for text in texts {
        assert!(
            page.contains(text),
            "{what} does not show {text:?}:\n{page}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_shows_the_tours_runs_in_a_real_browser() {
    let dir = web_ui().await.expect("the Web UI builds");
    let chromium = Chromium::find().expect("Chromium is installed");
    let engine = Engine::start(EngineOptions {
        web_ui: Some(WebUiOptions {
            dir: Some(dir),
            ..WebUiOptions::default()
        }),
        ..EngineOptions::default()
    })
    .await
    .expect("the engine starts");
    let ui = format!(
        "http://{}",
        engine.web_ui_address().expect("the UI is served")
    );
    let client = Client::connect(engine.address()).await.expect("a client");
    let queue = unique_task_queue("web-ui");

    let outcome = worker(&client, &queue)
        .run_until(async {
            for pattern in ["activity-choice", "exceptions", "child-workflow"] {
                let report = tour::run(&client, &queue, pattern, &queue).await;
                assert!(report.ok, "{report:?}");
            }
            schedule::create_cron_schedule(&client, "web-ui-reports", "web-ui-report", &queue)
                .await
                .expect("a schedule");
            let runs = client
                .list_workflows(&format!("TaskQueue = '{queue}'"))
                .await
                .expect("the runs");
            assert!(runs.len() >= 4, "{runs:?}");

            let list = look(&chromium, &ui, "/namespaces/default/workflows", "workflows").await;
            shows(&list, "the workflow list", &["Completed", "Failed"]);
            for run in &runs {
                shows(&list, "the workflow list", &[&run.workflow_id]);
            }

            let completed = runs
                .iter()
                .find(|r| {
                    r.workflow_id.contains("activity-choice")
                        || r.workflow_type.contains("Purchase")
                })
                .unwrap_or(&runs[0]);
            let run_path = format!(
                "/namespaces/default/workflows/{}/{}",
                completed.workflow_id, completed.run_id
            );
            let history = look(
                &chromium,
                &ui,
                &format!("{run_path}/history"),
                "run-history",
            )
            .await;
            shows(
                &history,
                "a run's history",
                &[&completed.workflow_type, "Completed", "Input", "Result"],
            );

            let workers = look(
                &chromium,
                &ui,
                &format!("{run_path}/workers"),
                "run-workers",
            )
            .await;
            shows(&workers, "a run's workers", &[&queue]);

            let schedules =
                look(&chromium, &ui, "/namespaces/default/schedules", "schedules").await;
            shows(&schedules, "the schedules", &["web-ui-reports"]);
        })
        .await;
    outcome.expect("the worker ran");
    engine.shutdown().await;
}
