//! Task tokens: what a handed-out task stands for, opaque to workers.

use serde::{Deserialize, Serialize};

/// What a task token stands for. A stale or forged one is answered `NotFound`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "k")]
pub(crate) enum Token {
    #[serde(rename = "w")]
    Workflow {
        run: String,
        scheduled: i64,
        attempt: i32,
    },
    #[serde(rename = "q")]
    Query { id: String },
    #[serde(rename = "a")]
    Activity {
        run: String,
        scheduled: i64,
        attempt: i32,
    },
}

impl Token {
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, tonic::Status> {
        serde_json::from_slice(bytes).map_err(|_| crate::errors::malformed_token())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let token = Token::Activity {
            run: "r".into(),
            scheduled: 5,
            attempt: 2,
        };
        assert_eq!(Token::decode(&token.encode()).unwrap(), token);
        let status = Token::decode(b"forged").unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
    }
}
