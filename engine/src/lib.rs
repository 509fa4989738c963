//! stub
pub mod proto {
    #![allow(missing_docs, unreachable_pub, clippy::all, unused_qualifications)]
    tonic::include_proto!("temporal.api.workflowservice.v1");
}
