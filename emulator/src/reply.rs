//! The answer to an emulated API request before faults are applied, and the error answers
//! (`{"code": status, "message": ...}`) every endpoint module builds.

use http::StatusCode;
use serde_json::{Value, json};

/// The answer to an API request before faults are applied.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub job_id: Option<String>,
    /// `Location` header of the answer.
    pub location: Option<String>,
}

impl Reply {
    pub(crate) fn ok(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            body,
            job_id: None,
            location: None,
        }
    }
}

/// An error answer `{"code": status, "message": ...}`.
pub(crate) fn error(status: StatusCode, message: String) -> Reply {
    Reply::ok(status, json!({"code": status.as_u16(), "message": message}))
}

/// A 422 answer: the body was read and one of its fields is refused.
pub(crate) fn unprocessable(message: String) -> Reply {
    error(StatusCode::UNPROCESSABLE_ENTITY, message)
}
