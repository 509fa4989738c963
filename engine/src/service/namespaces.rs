//! System and cluster info, and namespaces.

use std::time::Duration;

use tonic::{Request, Status};

use super::Service;
use crate::{
    errors,
    proto::{self, service::*},
    state::Namespace,
};

/// The Temporal server release whose API the engine follows, and against whose dev server
/// its behaviour is tested: clients pick features by the version a server reports (the
/// Web UI offers reset's newer reapply options from 1.24 on). The engine names itself in
/// the cluster's name.
const VERSION: &str = "1.32.0";

impl Service {
    pub(super) async fn system_info(
        &self,
        _request: Request<GetSystemInfoRequest>,
    ) -> Result<GetSystemInfoResponse, Status> {
        Ok(GetSystemInfoResponse {
            server_version: VERSION.to_owned(),
            capabilities: Some(get_system_info_response::Capabilities {
                signal_and_query_header: true,
                internal_error_differentiation: true,
                activity_failure_include_heartbeat: true,
                encoded_failure_attributes: true,
                upsert_memo: true,
                sdk_metadata: true,
                ..Default::default()
            }),
        })
    }

    pub(super) async fn cluster_info(
        &self,
        _request: Request<GetClusterInfoRequest>,
    ) -> Result<GetClusterInfoResponse, Status> {
        Ok(GetClusterInfoResponse {
            cluster_name: "capstan-engine".to_owned(),
            server_version: VERSION.to_owned(),
            persistence_store: "sqlite".to_owned(),
            visibility_store: "sqlite".to_owned(),
            history_shard_count: 1,
            ..Default::default()
        })
    }

    pub(super) async fn describe_namespace(
        &self,
        request: Request<DescribeNamespaceRequest>,
    ) -> Result<DescribeNamespaceResponse, Status> {
        let r = request.into_inner();
        let namespace = self
            .store
            .transaction(|state| {
                state
                    .namespaces
                    .values()
                    .find(|n| n.name == r.namespace || (!r.id.is_empty() && n.id == r.id))
                    .cloned()
            })
            .await
            .ok_or_else(|| errors::namespace_not_found(&r.namespace))?;
        Ok(describe(namespace))
    }

    pub(super) async fn list_namespaces(
        &self,
        _request: Request<ListNamespacesRequest>,
    ) -> Result<ListNamespacesResponse, Status> {
        let namespaces = self
            .store
            .transaction(|state| state.namespaces.values().cloned().collect::<Vec<_>>())
            .await;
        Ok(ListNamespacesResponse {
            namespaces: namespaces.into_iter().map(describe).collect(),
            next_page_token: Vec::new(),
        })
    }

    pub(super) async fn register_namespace(
        &self,
        request: Request<RegisterNamespaceRequest>,
    ) -> Result<RegisterNamespaceResponse, Status> {
        let r = request.into_inner();
        if r.namespace.is_empty() {
            return Err(errors::missing("namespace name"));
        }
        let added = self
            .store
            .transaction(|state| state.register_namespace(&r.namespace))
            .await;
        if !added {
            return Err(Status::already_exists(format!(
                "namespace `{}` already exists",
                r.namespace
            )));
        }
        Ok(RegisterNamespaceResponse {})
    }
}

/// What DescribeNamespace and ListNamespaces say of a namespace.
fn describe(namespace: Namespace) -> DescribeNamespaceResponse {
    use temporalio_protos::temporal::api::replication::v1::{
        ClusterReplicationConfig, NamespaceReplicationConfig,
    };
    DescribeNamespaceResponse {
        namespace_info: Some(proto::namespace::NamespaceInfo {
            name: namespace.name,
            id: namespace.id,
            state: proto::enums::NamespaceState::Registered as i32,
            capabilities: Some(Default::default()),
            ..Default::default()
        }),
        config: Some(proto::namespace::NamespaceConfig {
            workflow_execution_retention_ttl: Some(proto::proto_duration(Duration::from_secs(
                86400,
            ))),
            ..Default::default()
        }),
        // One cluster: this engine (tools such as the `temporal` CLI print it).
        replication_config: Some(NamespaceReplicationConfig {
            active_cluster_name: "capstan-engine".to_owned(),
            clusters: vec![ClusterReplicationConfig {
                cluster_name: "capstan-engine".to_owned(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}
