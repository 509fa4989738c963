//! Optional API-key authentication: every `WorkflowService` call must carry
//! `authorization: Bearer <key>`, the header Temporal's SDKs and Capstan's client send
//! with their API-key option. The key is compared in constant time, and never echoed.

use std::sync::Arc;

use subtle::ConstantTimeEq as _;
use tonic::{service::Interceptor, Request, Status};

use crate::errors;

/// The key calls must carry (`None`: calls need none).
#[derive(Clone)]
pub(crate) struct ApiKey(Option<Arc<[u8]>>);

impl ApiKey {
    pub(crate) fn new(key: Option<&str>) -> Self {
        Self(key.map(|k| Arc::from(k.as_bytes())))
    }
}

impl Interceptor for ApiKey {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.0 else {
            return Ok(request);
        };
        let sent = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes())
            .and_then(bearer);
        match sent {
            Some(sent) if bool::from(sent.ct_eq(expected)) => Ok(request),
            Some(_) => Err(errors::wrong_api_key()),
            None => Err(errors::missing_api_key()),
        }
    }
}

/// The credentials of an `authorization` value of the `Bearer` scheme (any case); `None`
/// for another scheme or none at all.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    let credentials = rest.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer ") && !credentials.is_empty()).then_some(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(key: &str, header: Option<&str>) -> Result<(), Status> {
        let mut request = Request::new(());
        if let Some(h) = header {
            request
                .metadata_mut()
                .insert("authorization", h.parse().unwrap());
        }
        ApiKey::new(Some(key)).call(request).map(drop)
    }

    #[test]
    fn only_the_bearer_key_passes_and_no_answer_echoes_what_was_sent() {
        assert!(call("s3cret", Some("Bearer s3cret")).is_ok());
        assert!(call("s3cret", Some("bearer s3cret")).is_ok());
        for header in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("Basic s3cret"),
            Some("s3cret"),
            Some("Bearer s3cre"),
            Some("Bearer s3cret2"),
            Some("Bearer S3CRET"),
        ] {
            let status = call("s3cret", header).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{header:?}");
            assert!(!status.message().contains("s3cre"), "{status:?}");
            assert!(!status.message().contains("S3CRET"), "{status:?}");
        }
        assert!(ApiKey::new(None).call(Request::new(())).is_ok());
    }
}
