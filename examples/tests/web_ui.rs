//! The official Temporal Web UI, served by the embedded engine, in a real browser
//! (headless Chromium) against the tour's runs: the list, a run's events with its input
//! and result, the workers polling, and schedules; and a signal, a terminate and a reset
//! sent from the UI's own controls (driven over the DevTools protocol). Screenshots go to
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

/// How long one step of the DevTools protocol (opening a page, running a script, closing
/// the browser) may take.
const BROWSER_STEP: Duration = Duration::from_secs(30);

/// Held by each test for as long as it runs: one Chromium at a time. Several at once on a
/// small machine, each with its engine and worker, made pages miss their load event.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let _one_at_a_time = ONE_BROWSER_AT_A_TIME.lock().await;
    let chromium = Chromium::find().expect("Chromium is installed");
    let (engine, ui) = engine_with_ui(None).await;
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

/// A headless Chromium driven over the DevTools protocol.
struct Browser {
    browser: chromiumoxide::Browser,
    events: tokio::task::JoinHandle<()>,
    profile: std::path::PathBuf,
}

impl Browser {
    async fn launch(chromium: &Chromium) -> Browser {
        use futures::StreamExt as _;
        let profile = target_dir()
            .expect("a target dir")
            .join(unique_task_queue("web-ui-browser"));
        let config = chromiumoxide::BrowserConfig::builder()
            .chrome_executable(chromium.binary())
            .no_sandbox()
            .new_headless_mode()
            .window_size(1400, 900)
            .user_data_dir(&profile)
            .args(["--disable-gpu", "--disable-dev-shm-usage"])
            .build()
            .expect("a browser configuration");
        let (browser, mut handler) = chromiumoxide::Browser::launch(config)
            .await
            .expect("Chromium starts");
        let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Browser {
            browser,
            events,
            profile,
        }
    }

    /// Opens `url` in a new page, without waiting for it to load: callers wait for what
    /// they need to see. (Waiting for the load event, as opening a page at `url` does,
    /// hung now and then on a loaded machine, on pages that long-poll the engine.)
    async fn open(&self, url: &str) -> chromiumoxide::Page {
        let page = tokio::time::timeout(BROWSER_STEP, self.browser.new_page("about:blank"))
            .await
            .unwrap_or_else(|_| panic!("a blank page did not open within {BROWSER_STEP:?}"))
            .expect("a blank page opens");
        eval(&page, &format!("window.location.assign({url:?}); true")).await;
        page
    }

    async fn close(mut self) {
        let closed = async {
            let _ = self.browser.close().await;
            let _ = self.browser.wait().await;
        };
        if tokio::time::timeout(BROWSER_STEP, closed).await.is_err() {
            let _ = self.browser.kill().await;
        }
        self.events.abort();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Runs `script` (an expression) in the page and answers its JSON value: `null` if the
/// page could not run it (it is between two documents while it navigates).
async fn eval(page: &chromiumoxide::Page, script: &str) -> serde_json::Value {
    tokio::time::timeout(BROWSER_STEP, page.evaluate(script))
        .await
        .unwrap_or_else(|_| panic!("the page did not run {script:?} within {BROWSER_STEP:?}"))
        .ok()
        .and_then(|value| value.into_value().ok())
        .unwrap_or(serde_json::Value::Null)
}

/// Waits until the page's text shows `text`; fails with what it shows.
async fn until_shown(page: &chromiumoxide::Page, text: &str) {
    for _ in 0..100 {
        let shown = eval(page, "document.body ? document.body.innerText : ''").await;
        if shown.as_str().is_some_and(|s| s.contains(text)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shown = eval(page, "document.body ? document.body.innerText : ''").await;
    panic!(
        "the page never showed {text:?}; it shows:\n{}",
        shown.as_str().unwrap_or("")
    );
}

/// Clicks the first visible element `selector` matches (hidden copies of the UI's controls
/// are skipped); fails if none is visible.
async fn click(page: &chromiumoxide::Page, selector: &str) {
    let script = format!(
        "(() => {{ const e = [...document.querySelectorAll({selector:?})].find(e => e.offsetParent !== null); \
         if (!e) return false; e.click(); return true; }})()"
    );
    for _ in 0..50 {
        if eval(page, &script).await == serde_json::Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no visible {selector} to click");
}

/// Clicks the first visible `selector` element whose text has `text`.
async fn click_showing(page: &chromiumoxide::Page, selector: &str, text: &str) {
    let script = format!(
        "(() => {{ const e = [...document.querySelectorAll({selector:?})] \
         .find(e => e.offsetParent !== null && e.innerText.includes({text:?})); \
         if (!e) return false; e.click(); return true; }})()"
    );
    for _ in 0..50 {
        if eval(page, &script).await == serde_json::Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no visible {selector} showing {text:?} to click");
}

/// Types `text` into the first visible input `selector` matches, as a user would (the UI
/// reads it on `input` events).
async fn type_into(page: &chromiumoxide::Page, selector: &str, text: &str) {
    let script = format!(
        "(() => {{ const e = [...document.querySelectorAll({selector:?})].find(e => e.offsetParent !== null); \
         if (!e) return false; \
         Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(e, {text:?}); \
         e.dispatchEvent(new Event('input', {{ bubbles: true }})); return true; }})()"
    );
    assert_eq!(
        eval(page, &script).await,
        serde_json::Value::Bool(true),
        "no visible {selector} to type into"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_and_a_terminate_sent_from_the_web_ui_reach_the_run() {
    let _one_at_a_time = ONE_BROWSER_AT_A_TIME.lock().await;
    let chromium = Chromium::find().expect("Chromium is installed");
    let (engine, ui) = engine_with_ui(None).await;
    let client = Client::connect(engine.address()).await.expect("a client");
    let id = unique_task_queue("ui-actions");
    // No worker: the run waits, and what the UI sends lands in its history.
    client
        .start_workflow_by_name("UiProbe", &id, ("hello".to_owned(),))
        .task_queue(unique_task_queue("no-worker"))
        .await
        .expect("a start");
    let run = run_of(&client, &id).await;
    let browser = Browser::launch(&chromium).await;
    let page = browser
        .open(&format!(
            "{ui}/namespaces/default/workflows/{id}/{run}/history"
        ))
        .await;
    until_shown(&page, "Running").await;
    until_shown(&page, "hello").await;

    click(&page, "#workflow-actions-menu-button").await;
    click(&page, "[data-testid=signal-button]").await;
    type_into(&page, "[data-testid=signal-name]", "from-the-ui").await;
    click(&page, "[data-testid=confirm-modal-button]").await;
    let handle = client.workflow_handle(&id);
    let mut signalled = false;
    for _ in 0..100 {
        let history = handle.history().await.expect("the history");
        signalled = history.iter().any(|e| {
            matches!(
                &e.attributes,
                Some(temporalio_common::protos::temporal::api::history::v1::history_event::Attributes::WorkflowExecutionSignaledEventAttributes(a))
                    if a.signal_name == "from-the-ui"
            )
        });
        if signalled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(signalled, "the UI's signal never reached the run");

    click(&page, "#workflow-actions-menu-button").await;
    click(&page, "[data-testid=terminate-button]").await;
    type_into(&page, "#workflow-termination-reason", "stopped from the UI").await;
    click(&page, "[data-testid=confirm-modal-button]").await;
    until_shown(&page, "Terminated").await;
    screenshot(&page, "terminated-from-the-ui").await;
    let history = handle.history().await.expect("the history");
    let reason = history.iter().find_map(|e| match &e.attributes {
        Some(temporalio_common::protos::temporal::api::history::v1::history_event::Attributes::WorkflowExecutionTerminatedEventAttributes(a)) => {
            Some(a.reason.clone())
        }
        _ => None,
    });
    // The UI adds where the reason came from.
    let reason = reason.expect("a terminated event");
    assert!(reason.starts_with("stopped from the UI"), "{reason}");
    browser.close().await;
    engine.shutdown().await;
}

/// An engine serving the built Web UI (decoding payloads through `codec_endpoint`), and
/// the UI's address.
async fn engine_with_ui(codec_endpoint: Option<String>) -> (Engine, String) {
    let dir = web_ui().await.expect("the Web UI builds");
    let engine = Engine::start(EngineOptions {
        web_ui: Some(WebUiOptions {
            dir: Some(dir),
            codec_endpoint,
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
    (engine, ui)
}

/// The run id of the workflow `id`'s run.
async fn run_of(client: &Client, id: &str) -> String {
    client
        .list_workflows(&format!("WorkflowId = '{id}'"))
        .await
        .expect("the runs")
        .first()
        .expect("a run")
        .run_id
        .clone()
}

/// Saves the page's screenshot as `name`.png.
async fn screenshot(page: &chromiumoxide::Page, name: &str) {
    let shots = target_dir()
        .expect("a target dir")
        .join("web-ui-screenshots");
    std::fs::create_dir_all(&shots).expect("a screenshot folder");
    page.save_screenshot(
        chromiumoxide::page::ScreenshotParams::builder().build(),
        shots.join(format!("{name}.png")),
    )
    .await
    .expect("a screenshot");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retrying_activity_shows_its_attempt_and_last_failure() {
    use capstan_examples::patterns::polling_infrequent::InfrequentPollingWorkflow;
    let _one_at_a_time = ONE_BROWSER_AT_A_TIME.lock().await;
    let chromium = Chromium::find().expect("Chromium is installed");
    let (engine, ui) = engine_with_ui(None).await;
    let client = Client::connect(engine.address()).await.expect("a client");
    let queue = unique_task_queue("ui-retrying");
    let id = unique_task_queue("ui-retrying-workflow");
    worker(&client, &queue)
        .run_until(async {
            // Ready at the fifth poll, an hour apart: the second waits, its first failed.
            InfrequentPollingWorkflow::start(
                &client,
                &id,
                "fake://ready-at/5".to_owned(),
                Some(Duration::from_secs(3600)),
            )
            .task_queue(&queue)
            .await
            .expect("a start");
            let run = run_of(&client, &id).await;
            let browser = Browser::launch(&chromium).await;
            let page = browser
                .open(&format!(
                    "{ui}/namespaces/default/workflows/{id}/{run}/pending-activities"
                ))
                .await;
            until_shown(&page, "poll_service_status").await;
            // The last failure is folded away until asked for.
            click_showing(&page, "button", "Last Failure").await;
            until_shown(&page, "Service not ready").await;
            let text = eval(&page, "document.body.innerText").await;
            let text = text.as_str().unwrap_or_default();
            assert!(text.contains("Attempt") && text.contains('2'), "{text}");
            screenshot(&page, "pending-activity-retrying").await;
            browser.close().await;
            // The built-in query the UI lists a workflow's handlers from.
            let metadata: serde_json::Value = client
                .workflow_handle(&id)
                .query_with("__temporal_workflow_metadata", ())
                .await
                .expect("the workflow's metadata");
            assert_eq!(
                metadata["definition"]["type"], "InfrequentPollingWorkflow",
                "{metadata}"
            );
        })
        .await
        .expect("the worker ran");
    client
        .workflow_handle(&id)
        .terminate("the test is done")
        .await
        .expect("a terminate");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_runs_payloads_show_decoded_through_the_codec_server() {
    use capstan_examples::patterns::encryption::{codec, run_encrypted, PLAINTEXT_CARD};
    let _one_at_a_time = ONE_BROWSER_AT_A_TIME.lock().await;
    let chromium = Chromium::find().expect("Chromium is installed");
    let keys = target_dir()
        .expect("a target dir")
        .join(format!("web-ui-keys-{}", std::process::id()));
    std::fs::write(
        &keys,
        "ui-key=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
    )
    .expect("a key file");
    let codec = codec(Some(&keys)).expect("the key");
    let _ = std::fs::remove_file(&keys);
    let server = capstan::codec::CodecServer::start(codec.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the codec server starts");
    let (engine, ui) = engine_with_ui(Some(format!("http://{}", server.address()))).await;
    let id = unique_task_queue("ui-encrypted");
    let (_, history) = run_encrypted(&engine.address(), codec, &unique_task_queue("ui-enc"), &id)
        .await
        .expect("the encrypted run completes");
    assert!(!capstan_examples::patterns::encryption::stored_in_clear(
        &history,
        PLAINTEXT_CARD
    ));
    let client = Client::connect(engine.address()).await.expect("a client");
    let run = run_of(&client, &id).await;
    let browser = Browser::launch(&chromium).await;
    let page = browser
        .open(&format!(
            "{ui}/namespaces/default/workflows/{id}/{run}/history"
        ))
        .await;
    // The input, stored encrypted, shows as the workflow was given it.
    until_shown(&page, PLAINTEXT_CARD).await;
    screenshot(&page, "encrypted-run-decoded").await;
    browser.close().await;
    engine.shutdown().await;
}

/// The UI's Reset (its menu, its event list, its reason, its confirm button) resets a
/// run on the engine: the run is replaced by one whose worker replays the kept prefix and
/// gets the later update reapplied.
#[tokio::test(flavor = "multi_thread")]
async fn a_reset_from_the_web_ui_replaces_the_run_and_keeps_its_update() {
    use capstan_examples::patterns::long_running_entity::{
        AddPointInput, CustomerRewardAccount, CustomerRewardAccountInput,
    };
    let _one_at_a_time = ONE_BROWSER_AT_A_TIME.lock().await;
    let chromium = Chromium::find().expect("Chromium is installed");
    let (engine, ui) = engine_with_ui(None).await;
    let client = Client::connect(engine.address()).await.expect("a client");
    let queue = unique_task_queue("ui-reset");
    let id = unique_task_queue("ui-reset-account");
    worker(&client, &queue)
        .run_until(async {
            let account = CustomerRewardAccount::start(
                &client,
                &id,
                CustomerRewardAccountInput {
                    user_id: "u1".to_owned(),
                    ..Default::default()
                },
            )
            .task_queue(&queue)
            .await
            .expect("a start");
            let status = account
                .add_points(AddPointInput { points: 10 })
                .await
                .expect("an update");
            assert_eq!(status.points, 10);
            let base = run_of(&client, &id).await;
            let browser = Browser::launch(&chromium).await;
            let page = browser
                .open(&format!(
                    "{ui}/namespaces/default/workflows/{id}/{base}/history"
                ))
                .await;
            until_shown(&page, "Running").await;
            click(&page, "#workflow-actions-menu-button").await;
            click(&page, "[data-testid=reset-button]").await;
            click(&page, "[data-testid=workflow-reset-event-id-select-button]").await;
            click_showing(&page, "li[role=option]", "WorkflowTaskCompleted").await;
            type_into(&page, "#reset-reason", "reset from the UI").await;
            click(&page, "[data-testid=confirm-modal-button]").await;
            let mut current = base.clone();
            for _ in 0..100 {
                current = run_of(&client, &id).await;
                if current != base {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_ne!(current, base, "the UI's reset never replaced the run");
            // The new run, replayed by the worker, got the update reapplied.
            let mut points = 0;
            for _ in 0..100 {
                points = CustomerRewardAccount::handle(&client, &id)
                    .query_reward_status()
                    .await
                    .map(|s| s.points)
                    .unwrap_or_default();
                if points == 10 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(points, 10, "the reapplied update's points");
            // The run it replaced was terminated by the reset.
            let replaced = client
                .workflow_handle(&id)
                .for_run(&base)
                .history()
                .await
                .expect("the replaced run's history");
            let closed = replaced.last().map(|e| e.event_type());
            assert_eq!(
                closed,
                Some(temporalio_common::protos::temporal::api::enums::v1::EventType::WorkflowExecutionTerminated)
            );
            page.goto(format!(
                "{ui}/namespaces/default/workflows/{id}/{current}/history"
            ))
            .await
            .ok();
            until_shown(&page, &current).await;
            screenshot(&page, "reset-from-the-ui").await;
            browser.close().await;
            CustomerRewardAccount::handle(&client, &id)
                .cancel_account()
                .await
                .expect("the account closes");
        })
        .await
        .expect("the worker ran");
    engine.shutdown().await;
}
