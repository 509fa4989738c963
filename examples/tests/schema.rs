//! The JSON Schema manifest of the examples' worker: the exported file is the registry's
//! manifest, every payload the examples really send validates against it, and a wrong one
//! is refused at the JSON pointer of the bad field.

use std::collections::HashMap;

use capstan::{
    client::history::Attributes,
    converter,
    prelude::*,
    schema::{HandlerSchema, Manifest},
    ClientError,
};
use capstan_engine::{Engine, EngineOptions};
use capstan_examples::{
    patterns::{activity_choice::*, long_running_entity::*},
    tour, worker, TASK_QUEUE,
};
use serde_json::{json, Value};

/// The examples' worker on a fresh task queue of an embedded engine, and its manifest.
struct Setup {
    _engine: Engine,
    client: Client,
    queue: String,
    worker: Worker,
    manifest: Manifest,
}

async fn setup(queue_prefix: &str) -> Setup {
    let engine = Engine::start(EngineOptions::default()).await.unwrap();
    let client = Client::connect(engine.address()).await.unwrap();
    let queue = capstan::testing::unique_task_queue(queue_prefix);
    let worker = worker(&client, &queue);
    let manifest = worker.manifest();
    Setup {
        _engine: engine,
        client,
        queue,
        worker,
        manifest,
    }
}

/// Validates `instance` against `schema` (one of the manifest's), returning each error's
/// JSON pointer and message.
fn errors(manifest: &Manifest, schema: &Value, instance: &Value) -> Vec<(String, String)> {
    let validator = jsonschema::draft202012::new(&manifest.standalone(schema))
        .expect("the manifest's schemas compile");
    validator
        .iter_errors(instance)
        .map(|e| (e.instance_path().to_string(), e.to_string()))
        .collect()
}

#[test]
fn the_schema_command_exports_the_registry_manifest() {
    let out = std::env::temp_dir().join(format!("capstan-manifest-{}.json", std::process::id()));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_capstan-examples"))
        .args(["schema", "--out"])
        .arg(&out)
        .status()
        .expect("the examples binary runs");
    assert!(status.success());
    let exported: Manifest =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).expect("a manifest");
    std::fs::remove_file(&out).ok();
    assert_eq!(exported.version, 1);
    assert_eq!(exported.task_queue, TASK_QUEUE);
    assert_eq!(
        exported.dialect,
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(exported.workflows.len(), 16);
    assert_eq!(exported.activities.len(), 14);

    let account = exported.workflow("CustomerRewardAccount").unwrap();
    assert_eq!(
        account.description.as_deref(),
        Some("Long-running entity workflow for managing customer reward accounts.")
    );
    let names = |handlers: &[HandlerSchema]| -> Vec<String> {
        handlers.iter().map(|h| h.name.clone()).collect()
    };
    assert_eq!(names(&account.signals), ["award_bonus"]);
    assert_eq!(names(&account.queries), ["query_reward_status"]);
    // `name = "cancel"` is the manifest's name, not the method's (`cancel_account`).
    assert_eq!(names(&account.updates), ["add_points", "cancel"]);
    let validators: Vec<_> = account.updates.iter().map(|u| u.validator).collect();
    assert_eq!(validators, [Some(true), Some(false)]);
    assert_eq!(
        account.updates[0].args[0].schema,
        json!({ "$ref": "#/$defs/AddPointInput" })
    );
    // Shared definitions appear once, in `$defs`, with their doc comments.
    assert_eq!(
        exported.defs["AddPointInput"]["properties"]["points"]["description"],
        "Points to add; negative to take some away."
    );
    let apples = exported.activity("order_apples").unwrap();
    assert_eq!(
        apples.args[0].schema,
        json!({ "type": "integer", "format": "uint32", "minimum": 0 })
    );
    assert_eq!(apples.output, Some(json!({ "type": "string" })));
}

/// The payload's JSON: `json/plain` as is, `binary/null` as `null`; other encodings
/// (encrypted, binary) say nothing a JSON Schema could check.
fn payload_json(payload: &capstan::client::history::Payload) -> Option<Value> {
    match payload.metadata.get("encoding").map(Vec::as_slice) {
        Some(b"json/plain") => Some(serde_json::from_slice(&payload.data).expect("valid JSON")),
        Some(b"binary/null") => Some(Value::Null),
        _ => None,
    }
}

/// Checks each argument payload against the handler's argument schemas.
fn check_args(
    manifest: &Manifest,
    what: &str,
    handler: &HandlerSchema,
    payloads: &[capstan::client::history::Payload],
    checked: &mut usize,
) {
    assert_eq!(handler.args.len(), payloads.len(), "{what}: argument count");
    for (arg, payload) in handler.args.iter().zip(payloads) {
        if let Some(value) = payload_json(payload) {
            let errors = errors(manifest, &arg.schema, &value);
            assert!(
                errors.is_empty(),
                "{what} `{}` = {value}: {errors:?}",
                arg.name
            );
            *checked += 1;
        }
    }
}

fn check_output(
    manifest: &Manifest,
    what: &str,
    handler: &HandlerSchema,
    payloads: &[capstan::client::history::Payload],
    checked: &mut usize,
) {
    let schema = handler.output.as_ref().expect("an output schema");
    if let Some(value) = payloads.first().and_then(payload_json) {
        let errors = errors(manifest, schema, &value);
        assert!(errors.is_empty(), "{what} result {value}: {errors:?}");
        *checked += 1;
    }
}

#[tokio::test]
async fn every_payload_the_examples_send_matches_the_manifest() {
    let setup = setup("schema").await;
    let (client, queue, manifest) = (&setup.client, setup.queue.as_str(), &setup.manifest);
    let reports = setup
        .worker
        .run_until(async {
            let mut reports = Vec::new();
            for pattern in tour::PATTERNS {
                reports.push(tour::run(client, queue, pattern.name, queue).await);
            }
            reports
        })
        .await
        .expect("the worker runs");
    for report in &reports {
        assert!(report.ok, "{report:?}");
    }

    let mut checked = 0;
    let executions = client.list_workflows("").await.unwrap();
    assert!(executions.len() >= 15, "{executions:?}");
    for execution in executions {
        let Some(workflow) = manifest.workflow(&execution.workflow_type) else {
            continue; // a pattern's own worker (mTLS, metrics) on another engine
        };
        let run = workflow.run.as_ref().unwrap();
        let history = client
            .workflow_handle(&execution.workflow_id)
            .for_run(&execution.run_id)
            .history()
            .await
            .unwrap();
        let mut scheduled: HashMap<i64, &HandlerSchema> = HashMap::new();
        let what = format!("{} ({})", workflow.name, execution.workflow_id);
        for event in &history {
            let payloads = |p: &Option<capstan::client::history::Payloads>| {
                p.as_ref().map(|p| p.payloads.clone()).unwrap_or_default()
            };
            match &event.attributes {
                Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => {
                    check_args(manifest, &what, run, &payloads(&a.input), &mut checked)
                }
                Some(Attributes::WorkflowExecutionContinuedAsNewEventAttributes(a)) => {
                    check_args(manifest, &what, run, &payloads(&a.input), &mut checked)
                }
                Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => {
                    check_output(manifest, &what, run, &payloads(&a.result), &mut checked)
                }
                Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => {
                    let name = &a.activity_type.as_ref().unwrap().name;
                    let activity = manifest.activity(name).expect("a registered activity");
                    scheduled.insert(event.event_id, activity);
                    check_args(manifest, name, activity, &payloads(&a.input), &mut checked);
                }
                Some(Attributes::ActivityTaskCompletedEventAttributes(a)) => {
                    let activity = scheduled[&a.scheduled_event_id];
                    let what = &activity.name;
                    check_output(manifest, what, activity, &payloads(&a.result), &mut checked);
                }
                Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) => {
                    let signal = workflow.signals.iter().find(|s| s.name == a.signal_name);
                    let signal = signal.expect("a declared signal");
                    check_args(manifest, &what, signal, &payloads(&a.input), &mut checked);
                }
                Some(Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a)) => {
                    let request = a.accepted_request.as_ref().unwrap();
                    let input = request.input.as_ref().unwrap();
                    let update = workflow.updates.iter().find(|u| u.name == input.name);
                    let update = update.expect("a declared update");
                    check_args(
                        manifest,
                        &what,
                        update,
                        &payloads(&input.args),
                        &mut checked,
                    );
                }
                _ => {}
            }
        }
    }
    // Every pattern's start, activities and results, and the entity's updates.
    assert!(checked >= 60, "only {checked} payloads checked");
}

#[tokio::test]
async fn signal_query_and_update_payloads_match_the_manifest() {
    let setup = setup("schema-entity").await;
    let (client, queue, manifest) = (&setup.client, setup.queue.as_str(), &setup.manifest);
    let account = manifest.workflow("CustomerRewardAccount").unwrap();
    let (status, queried, signal_arg) = setup
        .worker
        .run_until(async {
            let input = CustomerRewardAccountInput {
                user_id: "ada".into(),
                ..Default::default()
            };
            let handle = CustomerRewardAccount::start(client, "schema-entity", input)
                .task_queue(queue)
                .await?;
            let bonus = AddPointInput { points: 50 };
            handle.award_bonus(bonus).await?;
            let status = handle.add_points(AddPointInput { points: 700 }).await?;
            let queried = handle.query_reward_status().await?;
            handle.cancel_account().await?;
            Ok::<_, ClientError>((status, queried, bonus))
        })
        .await
        .expect("the worker runs")
        .expect("the client calls succeed");
    assert_eq!(status.points, 750);
    let update = &account.updates[0];
    let query = &account.queries[0];
    for (schema, value) in [
        (update.output.as_ref().unwrap(), wire_json(&status)),
        (query.output.as_ref().unwrap(), wire_json(&queried)),
        (&account.signals[0].args[0].schema, wire_json(&signal_arg)),
    ] {
        assert_eq!(errors(manifest, schema, &value), []);
    }
}

/// The JSON a value travels as, through Capstan's converter.
fn wire_json<T: Serialize + 'static>(value: &T) -> Value {
    let payload = converter::to_payload(value).expect("a payload");
    serde_json::from_slice(&payload.data).expect("JSON")
}

#[tokio::test]
async fn a_wrong_payload_fails_at_the_pointer_of_the_bad_field() {
    let manifest = setup("schema-wrong").await.manifest;
    let purchase = manifest.workflow("PurchaseFruitsWorkflow").unwrap();
    let list = &purchase.run.as_ref().unwrap().args[0].schema;
    let good = wire_json(&ShoppingList {
        items: vec![ShoppingItem {
            fruit: Fruit::Cherry,
            amount: 2,
        }],
    });
    assert_eq!(errors(&manifest, list, &good), []);

    // Fruit 7 does not exist; the second item's amount is negative.
    let wrong = json!({ "items": [
        { "fruit": 1, "amount": 3 },
        { "fruit": 7, "amount": 5 },
        { "fruit": 2, "amount": -1 },
    ]});
    let pointers: Vec<String> = errors(&manifest, list, &wrong)
        .into_iter()
        .map(|(pointer, _)| pointer)
        .collect();
    assert_eq!(pointers, ["/items/1/fruit", "/items/2/amount"]);

    let account = manifest.workflow("CustomerRewardAccount").unwrap();
    let add_points = &account.updates[0].args[0].schema;
    let errors = errors(&manifest, add_points, &json!({ "points": 1.5 }));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "/points");
    assert!(errors[0].1.contains("integer"), "{errors:?}");
}
