//! Search attributes: the types of those every execution has (`GetSearchAttributes`), and
//! each namespace's custom ones, listed, added and removed (`OperatorService`).

use tonic::{Request, Status};

use super::Service;
use crate::{
    errors,
    proto::{operator::*, service::*},
    search_attributes,
};

impl Service {
    pub(super) async fn search_attributes(
        &self,
        _request: Request<GetSearchAttributesRequest>,
    ) -> Result<GetSearchAttributesResponse, Status> {
        // The request names no namespace: every namespace's custom attributes are listed.
        let mut keys = search_attributes::system();
        let custom = self
            .store
            .transaction(|state| {
                state
                    .namespaces
                    .values()
                    .flat_map(|ns| ns.search_attributes.types())
                    .collect::<Vec<_>>()
            })
            .await;
        keys.extend(custom);
        Ok(GetSearchAttributesResponse { keys })
    }

    pub(super) async fn list_search_attributes(
        &self,
        request: Request<ListSearchAttributesRequest>,
    ) -> Result<ListSearchAttributesResponse, Status> {
        let r = request.into_inner();
        required_namespace(&r.namespace)?;
        let custom = self
            .store
            .transaction(|state| {
                state
                    .namespaces
                    .get(&r.namespace)
                    .map(|ns| ns.search_attributes.types())
                    .ok_or_else(|| errors::namespace_not_found(&r.namespace))
            })
            .await?;
        Ok(ListSearchAttributesResponse {
            custom_attributes: custom,
            system_attributes: search_attributes::system(),
            storage_schema: Default::default(),
        })
    }

    pub(super) async fn add_search_attributes(
        &self,
        request: Request<AddSearchAttributesRequest>,
    ) -> Result<AddSearchAttributesResponse, Status> {
        let r = request.into_inner();
        required_namespace(&r.namespace)?;
        let limit = self.store.limits().custom_search_attributes;
        self.store
            .transaction(|state| {
                state.change_search_attributes(&r.namespace, |custom| {
                    custom.add(&r.search_attributes, limit)
                })
            })
            .await?;
        Ok(AddSearchAttributesResponse {})
    }

    pub(super) async fn remove_search_attributes(
        &self,
        request: Request<RemoveSearchAttributesRequest>,
    ) -> Result<RemoveSearchAttributesResponse, Status> {
        let r = request.into_inner();
        required_namespace(&r.namespace)?;
        self.store
            .transaction(|state| {
                state.change_search_attributes(&r.namespace, |custom| {
                    custom.remove(&r.search_attributes)
                })
            })
            .await?;
        Ok(RemoveSearchAttributesResponse {})
    }
}

/// OperatorService requests must name their namespace (Temporal's words).
fn required_namespace(namespace: &str) -> Result<(), Status> {
    if namespace.is_empty() {
        return Err(Status::invalid_argument("Namespace is not set on request."));
    }
    Ok(())
}
