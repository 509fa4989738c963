//! Task tokens: what a handed-out task stands for, opaque to workers, and bound to the
//! namespace it was handed out in.

use serde::{Deserialize, Serialize};

/// What a task token stands for. A stale or forged one is answered `NotFound`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "k")]
pub(crate) enum Token {
    #[serde(rename = "w")]
    Workflow {
        ns: String,
        run: String,
        scheduled: i64,
        attempt: i32,
    },
    #[serde(rename = "q")]
    Query { ns: String, id: String },
    #[serde(rename = "a")]
    Activity {
        ns: String,
        run: String,
        scheduled: i64,
        attempt: i32,
    },
}

impl Token {
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The token a request naming `namespace` carries; a token handed out in another
    /// namespace is refused, as Temporal does.
    pub(crate) fn decode(bytes: &[u8], namespace: &str) -> Result<Self, tonic::Status> {
        let token: Self =
            serde_json::from_slice(bytes).map_err(|_| crate::errors::malformed_token())?;
        let (Self::Workflow { ns, .. } | Self::Query { ns, .. } | Self::Activity { ns, .. }) =
            &token;
        if ns != namespace {
            return Err(crate::errors::token_namespace_mismatch(ns, namespace));
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let token = Token::Activity {
            ns: "a".into(),
            run: "r".into(),
            scheduled: 5,
            attempt: 2,
        };
        assert_eq!(Token::decode(&token.encode(), "a").unwrap(), token);
        let status = Token::decode(b"forged", "a").unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
        let status = Token::decode(&token.encode(), "b").unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("namespace `a`"), "{status:?}");
    }
}
