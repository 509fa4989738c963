//! The standard gRPC health service (`grpc.health.v1.Health`), which Temporal's SDKs and
//! load balancers ask, for the server (`""`) and for the `WorkflowService`: `SERVING`
//! while the engine can keep what it is told, `NOT_SERVING` while its database cannot be
//! written (a full disk) and once it stops.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tonic::server::NamedService as _;
use tonic_health::{
    pb::health_server::{Health, HealthServer},
    server::HealthReporter,
    ServingStatus,
};

use crate::{proto::WorkflowServiceServer, service::Service, store::Store};

/// The names a client may ask about: the server's, and the `WorkflowService`'s.
const NAMES: [&str; 2] = ["", WorkflowServiceServer::<Service>::NAME];

/// The health service, and what keeps it up to date.
pub(crate) struct Reporter {
    reporter: HealthReporter,
    follower: JoinHandle<()>,
}

impl Reporter {
    /// The health service of the engine over `store`, following its database writer.
    pub(crate) fn start(store: Arc<Store>) -> (Self, HealthServer<impl Health>) {
        let (reporter, server) = tonic_health::server::health_reporter();
        let follower = tokio::spawn(follow(store, reporter.clone()));
        (Self { reporter, follower }, server)
    }

    /// The engine is stopping: `NOT_SERVING` from now on.
    pub(crate) async fn stopping(&self) {
        self.follower.abort();
        set(&self.reporter, ServingStatus::NotServing).await;
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

async fn set(reporter: &HealthReporter, status: ServingStatus) {
    for name in NAMES {
        reporter.set_service_status(name, status).await;
    }
}

/// Answers `NOT_SERVING` while the store's writer fails, `SERVING` otherwise.
async fn follow(store: Arc<Store>, reporter: HealthReporter) {
    set(&reporter, ServingStatus::Serving).await;
    let Some(mut writer) = store.writer_reports() else {
        // In memory: nothing to fail.
        return;
    };
    let mut failing = false;
    loop {
        match writer.wait_for(|w| w.failing.is_some() != failing).await {
            Ok(now) => failing = now.failing.is_some(),
            Err(_) => return,
        }
        let status = if failing {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        };
        set(&reporter, status).await;
    }
}
