//! Callback ids and task tokens: the two secrets of a callback-driven run.
//!
//! A callback id is the last path segment of the `callback_endpoint` the function gives Cloud
//! BOT: 256 bits from the operating system's CSPRNG (`getrandom`; `fastrand` is predictable and
//! never used for secrets), base64url without padding. Only its SHA-256 hash is stored, so a
//! reader of the table cannot forge a callback. A Step Functions task token is kept in the
//! callback record only. Neither type has `Display` or `Serialize`; `Debug` prints `***`.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Random bytes in an id (256 bits; the issue asks for at least 128).
const ID_BYTES: usize = 32;

/// Length of an id's text form (base64url of [`ID_BYTES`], no padding).
pub const ID_LEN: usize = 43;

/// Longest task token Step Functions issues (API reference: 1..=2048 characters).
pub const MAX_TASK_TOKEN_LEN: usize = 2048;

/// The secret id in a callback URL.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackId(String);

impl CallbackId {
    /// A fresh id from the OS CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; ID_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        ))
    }

    /// The id of a callback path segment, if it has exactly the shape [`Self::generate`] makes.
    /// Anything else is refused before any lookup (a flood of junk ids costs no table read).
    pub fn parse(segment: &str) -> Option<Self> {
        let well_formed = segment.len() == ID_LEN
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self(segment.to_owned()))
    }

    /// Hex SHA-256 of the id: the stored form.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The id as it goes into the callback URL (the only place it is exposed).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CallbackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackId(***)")
    }
}

/// A Step Functions task token (`$$.Task.Token`).
#[derive(Clone, PartialEq, Eq)]
pub struct TaskToken(String);

/// Why a task token was refused (the caller names the field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    /// Empty.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`MAX_TASK_TOKEN_LEN`] (the length is not a secret).
    #[error("is {0} characters long; Step Functions tokens have at most {MAX_TASK_TOKEN_LEN}")]
    TooLong(usize),
    /// Not visible ASCII.
    #[error("may only contain visible ASCII characters")]
    Charset,
}

impl TaskToken {
    /// A token from a task input.
    pub fn parse(raw: &str) -> Result<Self, TokenProblem> {
        if raw.is_empty() {
            return Err(TokenProblem::Empty);
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenProblem::Charset);
        }
        if raw.len() > MAX_TASK_TOKEN_LEN {
            return Err(TokenProblem::TooLong(raw.len()));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The raw token, for the Step Functions call and the table write only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TaskToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TaskToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_well_formed_and_hashed() {
        let a = CallbackId::generate().unwrap();
        let b = CallbackId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), ID_LEN);
        assert_eq!(CallbackId::parse(a.expose()), Some(a.clone()));
        assert_eq!(a.hash().len(), 64);
        assert_ne!(a.hash(), a.expose());
        assert_eq!(format!("{a:?}"), "CallbackId(***)");
    }

    #[test]
    fn junk_ids_are_refused_without_a_lookup() {
        for junk in [
            "",
            "short",
            &"a".repeat(ID_LEN + 1),
            &format!("{}/", "a".repeat(ID_LEN - 1)),
            &format!("{}=", "a".repeat(ID_LEN - 1)),
        ] {
            assert!(CallbackId::parse(junk).is_none(), "{junk}");
        }
    }

    #[test]
    fn tokens_are_checked_and_never_printed() {
        let token = TaskToken::parse("AAAA+/=token").unwrap();
        assert_eq!(format!("{token:?}"), "TaskToken(***)");
        assert_eq!(TaskToken::parse(""), Err(TokenProblem::Empty));
        assert_eq!(TaskToken::parse("a b"), Err(TokenProblem::Charset));
        assert_eq!(
            TaskToken::parse(&"a".repeat(MAX_TASK_TOKEN_LEN + 1)),
            Err(TokenProblem::TooLong(MAX_TASK_TOKEN_LEN + 1))
        );
    }
}
