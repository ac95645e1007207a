//! Where requests go and with which credentials.
//!
//! Two steps, so a bad argument never costs a request: [`Settings::from_global`] decides the API
//! base and the credentials *source* without any I/O (commands then validate their endpoint
//! arguments against the base), and [`Settings::connect`] reads the credentials (Secrets Manager
//! is the first thing contacted) and builds the client.
//!
//! The AWS configuration (Secrets Manager here, Lambda for `resolve`) is checked for a region
//! and credentials before the first AWS call, so a missing one reads like the AWS CLI's message.
//!
//! The API base rule (also in `--help` and docs/operations.md): `--api-base`, else
//! `CLOUDBOT_API_BASE` (the variable the function reads), else the local emulator at
//! [`LOCAL_API_BASE`]. The real service must be chosen explicitly, so that trying the CLI
//! against the emulator can never start a paid BOT run by accident.

use std::time::Duration;

use cloudbot_trigger::cloudbot::{
    ApiBase, Call, ClientSettings, CloudBotClient, Credentials, DEFAULT_POOL_IDLE_TIMEOUT,
    Language, PublicId, check_value,
};
use cloudbot_trigger::config::contract_secrets;
use cloudbot_trigger::credentials::CredentialsProvider;
use cloudbot_trigger::sdk;
use tokio::time::Instant;

use crate::args::Global;
use crate::error::{CliError, NO_CREDENTIALS, NO_REGION};
use crate::target::{LOCAL_API_BASE, Origin};

/// Environment variable holding the access token (when no secret id is given).
pub const ACCESS_TOKEN_VAR: &str = "CLOUDBOT_ACCESS_TOKEN";
/// Environment variable holding the secret key (when no secret id is given).
pub const SECRET_KEY_VAR: &str = "CLOUDBOT_SECRET_KEY";
/// Environment variable listing one secret ARN per contract (the function's variable: docs/
/// deploy.md, "Several contracts"); each command reads the secret of the contract it names.
pub const CONTRACT_SECRETS_VAR: &str = "CLOUDBOT_CONTRACT_SECRETS";

/// Time one command's call may take, retries included (the client's per-attempt timeout is
/// shorter; this bounds the retry loop).
const CALL_BUDGET: Duration = Duration::from_secs(60);

/// Where the credentials come from.
enum Source {
    /// A Secrets Manager secret, read exactly as the function reads it.
    Secret(String),
    /// Taken from the environment.
    Env(Credentials),
    /// One Secrets Manager secret per contract: the command's contract picks one.
    PerContract(Vec<(PublicId, String)>),
}

/// The API base and the credentials source, decided without any I/O.
pub struct Settings {
    base: ApiBase,
    base_is_default: bool,
    source: Source,
    language: Language,
}

impl Settings {
    /// Reads the global options and the credential variables; fails with a message naming the
    /// option or variable at fault (never its value).
    pub fn from_global(global: &Global) -> Result<Settings, CliError> {
        Settings::from_lookup(global, |name| std::env::var(name).ok())
    }

    fn from_lookup(
        global: &Global,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, CliError> {
        let (base, base_is_default) = api_base(global)?;
        let language = global
            .language
            .parse::<Language>()
            .map_err(|e| CliError::Usage(format!("--language: {e}")))?;
        let var = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let secret_id = global
            .secret_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if let Some(list) = var(CONTRACT_SECRETS_VAR) {
            if secret_id.is_some() || var(ACCESS_TOKEN_VAR).is_some() {
                return Err(CliError::Usage(format!(
                    "credentials given twice: {CONTRACT_SECRETS_VAR} and --secret-id (or \
                     CLOUDBOT_SECRET_ID) or {ACCESS_TOKEN_VAR}; use one"
                )));
            }
            let secrets = contract_secrets(&list)
                .map_err(|reason| CliError::Usage(format!("{CONTRACT_SECRETS_VAR}: {reason}")))?;
            return Ok(Settings {
                base,
                base_is_default,
                source: Source::PerContract(secrets),
                language,
            });
        }
        let source = match (secret_id, var(ACCESS_TOKEN_VAR), var(SECRET_KEY_VAR)) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(CliError::Usage(format!(
                    "credentials given twice: --secret-id (or CLOUDBOT_SECRET_ID) and \
                     {ACCESS_TOKEN_VAR}/{SECRET_KEY_VAR}; use one"
                )));
            }
            (Some(id), None, None) => Source::Secret(id.to_owned()),
            (None, Some(token), Some(key)) => {
                // The rule the secret decoder applies, naming the variable, never its value.
                for (var, value) in [(ACCESS_TOKEN_VAR, &token), (SECRET_KEY_VAR, &key)] {
                    check_value(value).map_err(|p| CliError::Usage(format!("{var} {p}")))?;
                }
                Source::Env(Credentials::new(token, key))
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(CliError::Usage(format!(
                    "set both {ACCESS_TOKEN_VAR} and {SECRET_KEY_VAR} (or use --secret-id)"
                )));
            }
            (None, None, None) => {
                return Err(CliError::Usage(format!(
                    "no Cloud BOT credentials: pass --secret-id (or set CLOUDBOT_SECRET_ID), or \
                     set {ACCESS_TOKEN_VAR} and {SECRET_KEY_VAR}"
                )));
            }
        };
        Ok(Settings {
            base,
            base_is_default,
            source,
            language,
        })
    }

    /// The base endpoint arguments are checked against.
    pub fn origin(&self) -> Origin<'_> {
        Origin {
            base: &self.base,
            is_default: self.base_is_default,
        }
    }

    /// A note for stderr when the base was not configured, so nobody mistakes the emulator for
    /// the real service (or wonders why a real endpoint is refused).
    pub fn default_base_notice(&self) -> Option<String> {
        self.base_is_default.then(|| {
            format!(
                "using the local emulator at {LOCAL_API_BASE}; set CLOUDBOT_API_BASE=https://api.c-bot.pro \
                 (or --api-base) for the real service"
            )
        })
    }

    /// Reads the credentials for `contract` (the one the command names; `None`: it names none)
    /// and builds the client.
    pub async fn connect(self, contract: Option<&PublicId>) -> Result<Session, CliError> {
        let credentials = match self.source {
            Source::Env(credentials) => credentials,
            Source::Secret(secret_id) => read_secret(secret_id).await?,
            Source::PerContract(secrets) => read_secret(secret_of(&secrets, contract)?).await?,
        };
        let client = CloudBotClient::new(ClientSettings {
            base: self.base,
            user_agent: format!("cloudbot-cli/{}", env!("CARGO_PKG_VERSION")),
            ..ClientSettings::default()
        })
        .map_err(CliError::cloud_bot("building the HTTP client"))?;
        Ok(Session {
            client,
            credentials,
            language: self.language,
        })
    }
}

/// The credentials in the secret `secret_id`, read as the function reads them.
async fn read_secret(secret_id: String) -> Result<Credentials, CliError> {
    let aws = aws_config().await?;
    let secrets = sdk::secrets_manager_client(&aws);
    // The function's provider: same decoding, same errors. The TTL does not matter for one
    // command.
    let provider = CredentialsProvider::new(secrets, secret_id, Duration::ZERO);
    let lease = provider.get(Instant::now() + CALL_BUDGET).await?;
    Ok((*lease.credentials).clone())
}

/// The secret of `contract` among one per contract, or why none may be read (nothing is).
fn secret_of(
    secrets: &[(PublicId, String)],
    contract: Option<&PublicId>,
) -> Result<String, CliError> {
    let Some(contract) = contract else {
        return Err(CliError::Usage(format!(
            "{CONTRACT_SECRETS_VAR} has one secret per contract: name the contract (PUBLIC_ID)"
        )));
    };
    secrets
        .iter()
        .find(|(id, _)| id == contract)
        .map(|(_, secret)| secret.clone())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "{CONTRACT_SECRETS_VAR} has no secret for contract `{contract}`"
            ))
        })
}

/// The API base of `global` (`--api-base`, `CLOUDBOT_API_BASE`, else the local emulator) and
/// whether it is that default.
pub fn api_base(global: &Global) -> Result<(ApiBase, bool), CliError> {
    let (raw_base, is_default) = match global.api_base.as_deref().map(str::trim) {
        Some(raw) if !raw.is_empty() => (raw, false),
        _ => (LOCAL_API_BASE, true),
    };
    let base = ApiBase::parse(raw_base)
        .map_err(|e| CliError::Usage(format!("--api-base / CLOUDBOT_API_BASE {}", e.reason)))?;
    Ok((base, is_default))
}

/// The standard AWS configuration (the function's HTTPS client), refused with the AWS CLI's
/// own message when it has no region or no credentials, before any AWS call.
pub async fn aws_config() -> Result<aws_types::SdkConfig, CliError> {
    use aws_credential_types::provider::ProvideCredentials;
    use aws_credential_types::provider::error::CredentialsError as AwsCredentialsError;
    let aws = sdk::aws_config(DEFAULT_POOL_IDLE_TIMEOUT, None)
        .await
        .map_err(|_| CliError::Usage("the AWS HTTPS client could not be built".into()))?;
    if aws.region().is_none() {
        return Err(CliError::AwsSetup(NO_REGION));
    }
    let Some(provider) = aws.credentials_provider() else {
        return Err(CliError::AwsSetup(NO_CREDENTIALS));
    };
    // Only "no source had credentials" is decided here; any other failure (an expired SSO
    // session, a refused role) surfaces with its own message on the call itself.
    if let Err(AwsCredentialsError::CredentialsNotLoaded(_)) = provider.provide_credentials().await
    {
        return Err(CliError::AwsSetup(NO_CREDENTIALS));
    }
    Ok(aws)
}

/// A client with its credentials, ready for calls.
pub struct Session {
    /// The Cloud BOT client (bound to the API base).
    pub client: CloudBotClient,
    credentials: Credentials,
    language: Language,
}

impl Session {
    /// The BOT-done webhook URL of `bot` under `callback_base` with its path token, which these
    /// credentials' secret key gives (the function computes the same from its secret:
    /// `cloudbot_trigger::bot_done`). Holds a secret: show it redacted.
    pub fn bot_done_url(
        &self,
        callback_base: &str,
        bot: &cloudbot_trigger::cloudbot::BotEndpoint,
    ) -> String {
        cloudbot_trigger::bot_done::webhook_url(callback_base, bot, &self.credentials)
    }

    /// The context of one call, with a fresh deadline.
    pub fn call(&self) -> Call<'_> {
        Call {
            credentials: &self.credentials,
            language: self.language,
            deadline: Instant::now() + CALL_BUDGET,
            // An operator waits at the terminal: only the call's deadline bounds the waits.
            retry_budget: std::time::Duration::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(api_base: Option<&str>, secret_id: Option<&str>) -> Global {
        Global {
            api_base: api_base.map(str::to_owned),
            secret_id: secret_id.map(str::to_owned),
            language: "en".into(),
            json: false,
        }
    }

    fn settings(g: &Global, vars: &[(&str, &str)]) -> Result<Settings, CliError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Settings::from_lookup(g, |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    const TOKENS: &[(&str, &str)] = &[(ACCESS_TOKEN_VAR, "tok-1"), (SECRET_KEY_VAR, "sec-1")];

    #[test]
    fn the_base_defaults_to_the_local_emulator_with_a_notice() {
        let s = settings(&global(None, None), TOKENS).unwrap();
        assert_eq!(s.origin().base.as_str(), LOCAL_API_BASE);
        assert!(
            s.default_base_notice()
                .unwrap()
                .contains("https://api.c-bot.pro")
        );
        let s = settings(&global(Some("https://api.c-bot.pro"), None), TOKENS).unwrap();
        assert_eq!(s.origin().base.as_str(), "https://api.c-bot.pro");
        assert!(s.default_base_notice().is_none());
    }

    #[test]
    fn a_plain_http_base_off_loopback_is_refused() {
        let err = settings(&global(Some("http://api.c-bot.pro"), None), TOKENS)
            .err()
            .unwrap();
        assert!(err.to_string().contains("CLOUDBOT_API_BASE"), "{err}");
    }

    #[test]
    fn credentials_come_from_exactly_one_source_and_are_never_shown() {
        let both = settings(&global(None, Some("my-secret")), TOKENS)
            .err()
            .unwrap();
        assert!(both.to_string().contains("given twice"));
        let none = settings(&global(None, None), &[]).err().unwrap();
        assert!(none.to_string().contains("--secret-id"));
        let half = settings(&global(None, None), &TOKENS[..1]).err().unwrap();
        assert!(half.to_string().contains(SECRET_KEY_VAR));
        let bad = settings(
            &global(None, None),
            &[(ACCESS_TOKEN_VAR, "tok 1"), (SECRET_KEY_VAR, "sec-1")],
        )
        .err()
        .unwrap();
        for err in [both, none, half, bad] {
            let text = err.to_string();
            assert!(
                !["tok-1", "tok 1", "sec-1"].iter().any(|v| text.contains(v)),
                "{text}"
            );
            assert_eq!(err.exit(), crate::exit::Exit::Usage);
        }
        assert!(settings(&global(None, Some("my-secret")), &[]).is_ok());
    }

    const SALES: &str =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cloudbot/contract/sales-AbC123";

    #[test]
    fn with_one_secret_per_contract_a_command_reads_its_contracts_secret_only() {
        let s = settings(&global(None, None), &[(CONTRACT_SECRETS_VAR, SALES)]).unwrap();
        let Source::PerContract(secrets) = &s.source else {
            panic!("one secret per contract");
        };
        let sales = PublicId::parse("sales", "p").unwrap();
        assert_eq!(secret_of(secrets, Some(&sales)).unwrap(), SALES);
        let other = PublicId::parse("other", "p").unwrap();
        let refused = secret_of(secrets, Some(&other)).unwrap_err().to_string();
        assert!(refused.contains("contract `other`"), "{refused}");
        let unnamed = secret_of(secrets, None).unwrap_err().to_string();
        assert!(unnamed.contains("PUBLIC_ID"), "{unnamed}");
        let twice = settings(&global(None, Some("s")), &[(CONTRACT_SECRETS_VAR, SALES)])
            .err()
            .unwrap();
        assert!(twice.to_string().contains("given twice"), "{twice}");
        let bad = settings(&global(None, None), &[(CONTRACT_SECRETS_VAR, "sales")])
            .err()
            .unwrap();
        assert!(bad.to_string().contains("entry 1"), "{bad}");
    }
}
