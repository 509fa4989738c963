//! A workflow task completion's commands, once checked (`checks`): each applied by the
//! function for its type (in the module of its concept).

use std::collections::{HashMap, HashSet};

use super::{CrossRun, Ctx, Run};
use crate::proto::{
    command::{
        command::Attributes as Cmd, Command, ModifyWorkflowPropertiesCommandAttributes,
        RecordMarkerCommandAttributes, UpsertWorkflowSearchAttributesCommandAttributes,
    },
    common::Payload,
    history::{
        history_event::Attributes, MarkerRecordedEventAttributes,
        UpsertWorkflowSearchAttributesEventAttributes, WorkflowPropertiesModifiedEventAttributes,
    },
    protocol::Message,
};

/// Whether the command closes the run.
pub(crate) fn closes_run(command: &Command) -> bool {
    matches!(
        command.attributes,
        Some(
            Cmd::CompleteWorkflowExecutionCommandAttributes(_)
                | Cmd::FailWorkflowExecutionCommandAttributes(_)
                | Cmd::CancelWorkflowExecutionCommandAttributes(_)
                | Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(_)
        )
    )
}

/// Merges upserted memo fields or search attributes into a run's: a key upserted as
/// nothing (no data, JSON `null` or `[]`, as SDKs encode "unset") is removed, as on
/// Temporal.
pub(super) fn upsert(fields: &mut HashMap<String, Payload>, upserted: &HashMap<String, Payload>) {
    for (key, value) in upserted {
        if unsets(value) {
            fields.remove(key);
        } else {
            fields.insert(key.clone(), value.clone());
        }
    }
}

/// Whether an upserted value means "remove the key".
fn unsets(value: &Payload) -> bool {
    matches!(value.data.trim_ascii(), b"" | b"null" | b"[]")
}

impl Run {
    /// Applies checked commands in order (none after one that closes the run), then the
    /// messages no command referenced (update rejections). Returns what other runs must
    /// do.
    pub(super) fn apply_commands(
        &mut self,
        ctx: &mut Ctx<'_>,
        commands: Vec<Command>,
        messages: &[Message],
        completed_id: i64,
    ) -> Vec<CrossRun> {
        let mut used: HashSet<&str> = HashSet::new();
        let mut cross_run = Vec::new();
        for command in commands {
            if !self.is_open() {
                break;
            }
            let Some(attributes) = command.attributes else {
                continue;
            };
            let described = command.user_metadata;
            let effect = match attributes {
                Cmd::ScheduleActivityTaskCommandAttributes(a) => {
                    self.schedule_activity_task(ctx, completed_id, a, described);
                    None
                }
                Cmd::RequestCancelActivityTaskCommandAttributes(a) => {
                    self.request_cancel_activity_task(ctx, completed_id, a);
                    None
                }
                Cmd::StartTimerCommandAttributes(a) => {
                    self.start_timer(ctx, completed_id, a, described);
                    None
                }
                Cmd::CancelTimerCommandAttributes(a) => {
                    self.cancel_timer(ctx, completed_id, a);
                    None
                }
                Cmd::CompleteWorkflowExecutionCommandAttributes(a) => {
                    self.complete_workflow_execution(ctx, completed_id, a)
                }
                Cmd::FailWorkflowExecutionCommandAttributes(a) => {
                    self.fail_workflow_execution(ctx, completed_id, a)
                }
                Cmd::CancelWorkflowExecutionCommandAttributes(a) => {
                    self.cancel_workflow_execution(ctx, completed_id, a);
                    None
                }
                Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(a) => {
                    Some(self.continue_as_new(ctx, completed_id, a))
                }
                Cmd::RecordMarkerCommandAttributes(a) => {
                    self.record_marker(ctx, completed_id, a);
                    None
                }
                Cmd::StartChildWorkflowExecutionCommandAttributes(a) => {
                    Some(self.start_child_workflow_execution(ctx, completed_id, a, described))
                }
                Cmd::SignalExternalWorkflowExecutionCommandAttributes(a) => {
                    Some(self.signal_external_workflow_execution(ctx, completed_id, a))
                }
                Cmd::RequestCancelExternalWorkflowExecutionCommandAttributes(a) => {
                    Some(self.request_cancel_external_workflow_execution(ctx, completed_id, a))
                }
                Cmd::UpsertWorkflowSearchAttributesCommandAttributes(a) => {
                    self.upsert_search_attributes(ctx, completed_id, a);
                    None
                }
                Cmd::ModifyWorkflowPropertiesCommandAttributes(a) => {
                    self.modify_workflow_properties(ctx, completed_id, a);
                    None
                }
                Cmd::ProtocolMessageCommandAttributes(a) => {
                    if let Some(message) = messages.iter().find(|m| m.id == a.message_id) {
                        used.insert(&message.id);
                        self.apply_message(ctx, message);
                    }
                    None
                }
                // Refused by `check`.
                Cmd::ScheduleNexusOperationCommandAttributes(_)
                | Cmd::RequestCancelNexusOperationCommandAttributes(_) => None,
            };
            cross_run.extend(effect);
        }
        for message in messages {
            if !used.contains(message.id.as_str()) {
                self.apply_message(ctx, message);
            }
        }
        cross_run
    }

    /// `RecordMarker`: a marker event (local activity results, version markers, …).
    fn record_marker(
        &mut self,
        ctx: &mut Ctx<'_>,
        completed_id: i64,
        a: RecordMarkerCommandAttributes,
    ) {
        self.append(
            ctx,
            Attributes::MarkerRecordedEventAttributes(MarkerRecordedEventAttributes {
                marker_name: a.marker_name,
                details: a.details,
                workflow_task_completed_event_id: completed_id,
                header: a.header,
                failure: a.failure,
            }),
        );
    }

    /// `UpsertWorkflowSearchAttributes`: merged into the run's search attributes.
    fn upsert_search_attributes(
        &mut self,
        ctx: &mut Ctx<'_>,
        completed_id: i64,
        a: UpsertWorkflowSearchAttributesCommandAttributes,
    ) {
        let merged = self.search_attributes.get_or_insert_with(Default::default);
        if let Some(upserted) = &a.search_attributes {
            upsert(&mut merged.indexed_fields, &upserted.indexed_fields);
        }
        self.append(
            ctx,
            Attributes::UpsertWorkflowSearchAttributesEventAttributes(
                UpsertWorkflowSearchAttributesEventAttributes {
                    workflow_task_completed_event_id: completed_id,
                    search_attributes: a.search_attributes,
                },
            ),
        );
    }

    /// `ModifyWorkflowProperties`: the upserted memo fields merged into the run's memo.
    fn modify_workflow_properties(
        &mut self,
        ctx: &mut Ctx<'_>,
        completed_id: i64,
        a: ModifyWorkflowPropertiesCommandAttributes,
    ) {
        let merged = self.memo.get_or_insert_with(Default::default);
        if let Some(memo) = &a.upserted_memo {
            upsert(&mut merged.fields, &memo.fields);
        }
        self.append(
            ctx,
            Attributes::WorkflowPropertiesModifiedEventAttributes(
                WorkflowPropertiesModifiedEventAttributes {
                    workflow_task_completed_event_id: completed_id,
                    upserted_memo: a.upserted_memo,
                },
            ),
        );
    }
}
