//! Where the Cloud BOT secret comes from: the [`SecretSource`] seam and its Secrets Manager
//! adapter, [`SecretsManager`] (one `GetSecretValue` call; the only code here that sees SDK
//! types). A failure says whether trying again later may succeed (`transient`): the provider
//! serves stale credentials only then.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;

/// A boxed read of the secret (the source is used as `dyn SecretSource`).
pub type SecretFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SecretValue, SourceError>> + Send + 'a>>;

/// One read of the secret's current value.
pub trait SecretSource: fmt::Debug + Send + Sync {
    /// Reads the secret once.
    fn read(&self) -> SecretFuture<'_>;
}

/// The secret as read. `Debug` never prints the value.
pub struct SecretValue {
    /// The SecretString (`None`: a binary secret).
    pub secret_string: Option<String>,
    /// The version id of the value, when known (a refresh that finds the same version knows
    /// the secret has not rotated).
    pub version_id: Option<String>,
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValue")
            .field("secret_string", &self.secret_string.as_ref().map(|_| "***"))
            .field("version_id", &self.version_id)
            .finish()
    }
}

/// A read that failed: why (an error code and the service's message, never the value), and
/// whether trying again later may succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// What failed, in words.
    pub reason: String,
    /// No answer, throttling or a server-side error (not a definite answer).
    pub transient: bool,
}

/// The secret `secret_id` in AWS Secrets Manager.
#[derive(Debug)]
pub struct SecretsManager {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManager {
    /// The secret `secret_id` (name or ARN), read with `client` (built once, see `sdk.rs`).
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: String) -> Self {
        Self { client, secret_id }
    }
}

impl SecretSource for SecretsManager {
    fn read(&self) -> SecretFuture<'_> {
        Box::pin(async move {
            let output = self
                .client
                .get_secret_value()
                .secret_id(&self.secret_id)
                .send()
                .await
                .map_err(|err| SourceError {
                    transient: is_transient(&err),
                    reason: reason(&err),
                })?;
            Ok(SecretValue {
                secret_string: output.secret_string().map(str::to_owned),
                version_id: output.version_id().map(str::to_owned),
            })
        })
    }
}

/// Only the error code and the service's message: neither contains the secret value.
fn reason<E: ProvideErrorMetadata, R>(
    err: &aws_sdk_secretsmanager::error::SdkError<E, R>,
) -> String {
    use aws_sdk_secretsmanager::error::SdkError;
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => match err {
            SdkError::TimeoutError(_) => "timed out".to_owned(),
            SdkError::DispatchFailure(_) => "could not connect".to_owned(),
            _ => "unexpected response".to_owned(),
        },
    }
}

/// Whether a failed `GetSecretValue` may succeed when simply tried again: no answer (timeout,
/// connection failure, a broken response), throttling, or a server-side error. A definite answer
/// (access denied, secret missing, cannot decrypt, invalid request) is not.
fn is_transient<E: ProvideErrorMetadata, R>(
    err: &aws_sdk_secretsmanager::error::SdkError<E, R>,
) -> bool {
    use aws_sdk_secretsmanager::error::SdkError;
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => matches!(
            err.code(),
            Some(
                "ThrottlingException"
                    | "Throttling"
                    | "TooManyRequestsException"
                    | "RequestLimitExceeded"
                    | "InternalServiceError"
                    | "InternalFailure"
                    | "ServiceUnavailable"
                    | "RequestTimeout"
                    | "RequestTimeoutException"
            )
        ),
        _ => false,
    }
}

/// A secret in memory for unit tests: its value can change, a failure can be set, reads are
/// counted.
#[cfg(test)]
#[derive(Debug, Clone, Default)]
pub(crate) struct StandIn(std::sync::Arc<std::sync::Mutex<StandInState>>);

#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct StandInState {
    value: Option<(String, String)>,
    failure: Option<SourceError>,
    reads: u32,
}

#[cfg(test)]
impl StandIn {
    /// A source holding `secret` at `version`.
    pub(crate) fn holding(secret: &str, version: &str) -> Self {
        let source = Self::default();
        source.set(secret, version);
        source
    }

    /// The secret now holds `secret` at `version` (and reads succeed).
    pub(crate) fn set(&self, secret: &str, version: &str) {
        let mut state = self.0.lock().unwrap();
        state.value = Some((secret.to_owned(), version.to_owned()));
        state.failure = None;
    }

    /// Reads fail with `failure` from now on.
    pub(crate) fn fail(&self, reason: &str, transient: bool) {
        self.0.lock().unwrap().failure = Some(SourceError {
            reason: reason.to_owned(),
            transient,
        });
    }

    /// Reads so far.
    pub(crate) fn reads(&self) -> u32 {
        self.0.lock().unwrap().reads
    }
}

#[cfg(test)]
impl SecretSource for StandIn {
    fn read(&self) -> SecretFuture<'_> {
        let mut state = self.0.lock().unwrap();
        state.reads += 1;
        let result = match (&state.failure, &state.value) {
            (Some(failure), _) => Err(failure.clone()),
            (None, value) => Ok(SecretValue {
                secret_string: value.as_ref().map(|(secret, _)| secret.clone()),
                version_id: value.as_ref().map(|(_, version)| version.clone()),
            }),
        };
        Box::pin(async move { result })
    }
}
