//! What the engine does not serve, and what it offers instead. Every `WorkflowService` and
//! `OperatorService` method without a handler in [`super`]'s tables answers
//! `UNIMPLEMENTED` with
//! [`unimplemented`]: its name, and the sentence of its area from [`instead`]. The
//! README's list of these methods is checked against the methods the engine serves.

use tonic::Status;

/// The answer of a method the engine does not serve (`service` and `method` as Temporal
/// names them: `WorkflowService`, `StartBatchOperation`). Called by the generated stubs
/// (see `build.rs`).
pub(crate) fn unimplemented(service: &str, method: &str) -> Status {
    Status::unimplemented(format!(
        "{service}/{method} is not implemented by the Capstan engine: {}",
        instead(method)
    ))
}

/// What a client can do instead of `method`, in one sentence.
pub(crate) fn instead(method: &str) -> &'static str {
    const VERSIONING: [&str; 4] = ["Deployment", "BuildId", "Versioning", "Reachability"];
    match method {
        "PauseWorkflowExecution" | "UnpauseWorkflowExecution" => {
            "workflows cannot be paused; hold work in the workflow with a signal and a \
             wait_condition"
        }
        "UpdateWorkflowExecutionOptions" => {
            "a run's options (its versioning override) cannot be changed: worker versioning \
             is not offered"
        }
        "ListOpenWorkflowExecutions"
        | "ListClosedWorkflowExecutions"
        | "ScanWorkflowExecutions"
        | "ListArchivedWorkflowExecutions" => {
            "use ListWorkflowExecutions with a query, e.g. `ExecutionStatus = 'Running'` \
             (nothing is archived: deleted runs are gone)"
        }
        "UpdateNamespace" | "DeprecateNamespace" => {
            "namespaces have no settings to change; register them with RegisterNamespace \
             or capstan-engine --namespace"
        }
        "DeleteNamespace" => {
            "namespaces cannot be deleted; delete their workflows with \
             DeleteWorkflowExecution, or give the engine a new database"
        }
        "AddOrUpdateRemoteCluster" | "RemoveRemoteCluster" | "ListClusters" => {
            "the engine is one cluster, which GetClusterInfo describes; replication \
             across clusters is not offered"
        }
        "PollWorkflowExecutionTimeSkipping" => {
            "time skipping is the engine's virtual clock (capstan-engine --virtual-clock, \
             EngineOptions::virtual_clock): it skips ahead whenever nothing else can happen"
        }
        m if m.contains("Nexus") => {
            "Nexus is not offered; call across workflows with child workflows, signals and \
             updates"
        }
        m if m.contains("ActivityExecution") => {
            "standalone activities are not offered; run the activity from a workflow"
        }
        m if m.contains("BatchOperation") => {
            "batch operations are not offered; list the workflows (ListWorkflowExecutions \
             with a query) and signal, cancel or terminate each"
        }
        m if m.contains("WorkflowRule") => "workflow rules are not offered",
        m if VERSIONING.iter().any(|word| m.contains(word)) => {
            "worker versioning (build ids, deployments) is not offered: every worker polling \
             a task queue takes its tasks; change workflow code safely with patches \
             (`ctx.patched`)"
        }
        m if m.contains("Worker") || m.contains("TaskQueue") => {
            "workers are not listed or configured; DescribeTaskQueue shows who polls a task \
             queue and its backlog"
        }
        _ => "run the workflow on a Temporal cluster for it",
    }
}

/// Every method the engine answers `UNIMPLEMENTED`, as Temporal names them, in order.
#[cfg(test)]
fn unimplemented_methods() -> Vec<&'static str> {
    let served: Vec<String> = super::SERVED
        .iter()
        .chain(super::SERVED_OPERATOR)
        .map(|m| pascal(m))
        .collect();
    crate::proto::METHODS
        .iter()
        .map(|(_, method)| *method)
        .filter(|m| !served.iter().any(|s| s == m))
        .collect()
}

/// `start_workflow_execution` as `StartWorkflowExecution`.
#[cfg(test)]
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's section on what the engine does not serve.
    fn readme_section() -> &'static str {
        const HEADING: &str = "## What the engine does not serve";
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
        let start = readme
            .find(HEADING)
            .map_or(readme.len(), |i| i + HEADING.len());
        let rest = &readme[start..];
        &rest[..rest.find("\n## ").unwrap_or(rest.len())]
    }

    /// The section as it should read: the refused methods grouped by what the engine
    /// offers instead.
    fn expected_section(methods: &[&str]) -> String {
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for method in methods {
            let sentence = instead(method);
            match groups.iter_mut().find(|(s, _)| *s == sentence) {
                Some((_, names)) => names.push(method),
                None => groups.push((sentence, vec![method])),
            }
        }
        groups
            .iter()
            .map(|(sentence, names)| {
                let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                format!("- {}: {sentence}.\n", names.join(", "))
            })
            .collect()
    }

    #[test]
    fn the_readme_lists_every_refused_method_with_what_to_do_instead() {
        let methods = unimplemented_methods();
        assert!(methods.contains(&"StartBatchOperation"), "{methods:?}");
        assert!(!methods.contains(&"StartWorkflowExecution"), "{methods:?}");
        let section = readme_section();
        let expected = expected_section(&methods);
        assert!(
            section.contains(&expected),
            "README.md's section \"## What the engine does not serve\" should list, after \
             its introduction:\n\n{expected}"
        );
    }

    #[test]
    fn a_refusal_names_the_method_and_what_to_do_instead() {
        let status = unimplemented("WorkflowService", "PauseWorkflowExecution");
        assert_eq!(status.code(), tonic::Code::Unimplemented);
        assert_eq!(
            status.message(),
            "WorkflowService/PauseWorkflowExecution is not implemented by the Capstan engine: \
             workflows cannot be paused; hold work in the workflow with a signal and a \
             wait_condition"
        );
    }
}
