//! The emulator's seed: contracts, BOTs (with input/output definitions, run duration and
//! outcome) and access tokens. Loaded from a JSON file (`Seed::from_file`) or built in
//! (`Seed::demo`), validated once so the server never meets an inconsistent definition.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data::{DataType, Transform, check_derivation, check_input_value};

/// Contract of the demo seed ([`Seed::demo`]).
pub const DEMO_PUBLIC_ID: &str = "demo";
/// The demo seed's access token with Refer, Execute and Suspend (not a real secret).
pub const DEMO_ACCESS_TOKEN: &str = "demo-access-token";
/// Secret key paired with [`DEMO_ACCESS_TOKEN`].
pub const DEMO_SECRET_KEY: &str = "demo-secret-key";
/// The demo seed's Refer-only access token.
pub const DEMO_REFER_TOKEN: &str = "demo-refer-token";
/// Secret key paired with [`DEMO_REFER_TOKEN`].
pub const DEMO_REFER_SECRET: &str = "demo-refer-secret";

/// Everything the emulator knows before the first request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Interval between callback attempts in milliseconds (the real service waits at least
    /// 30 s; tests use ~100 ms). `None` = 30 000. The CLI flag and `EmulatorOptions` override it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_interval_ms: Option<u64>,
    /// Contracts (each with its BOTs).
    pub contracts: Vec<ContractSeed>,
    /// Access tokens with their permissions and the contracts they may use.
    pub tokens: Vec<TokenSeed>,
}

/// A contract (`public_id`) with the profile fields `GET /services/contracts` can return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractSeed {
    /// Public ID (path segment of every contract-scoped URL).
    pub public_id: String,
    /// Optional profile properties, returned only when asked for with `properties=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// `owner` property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `timezone` property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `location` property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `name` property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `organization` property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// `postcode` property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// `address` property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `phone` property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// `department` property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// `username` property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The contract's BOTs.
    #[serde(default)]
    pub bots: Vec<BotSeed>,
}

/// How a BOT's jobs end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The job ends with status 0 and the derived output.
    Succeed,
    /// The job ends with status 1 and `error_message`.
    Error,
}

/// One BOT of a contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotSeed {
    /// BOT ID (path segment).
    pub id: String,
    /// Display name (`bot_name` in jobs).
    pub name: String,
    /// Description shown in the BOT list.
    #[serde(default)]
    pub description: String,
    /// Published as API. Unpublished BOTs answer 404 like unknown ones.
    #[serde(default = "default_true")]
    pub published: bool,
    /// How long a job runs before it ends, in milliseconds.
    pub duration_ms: u64,
    /// Whether jobs succeed or end in error.
    #[serde(default = "default_outcome")]
    pub outcome: Outcome,
    /// Job message when `outcome` is `error` (a default is used when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Optional list properties (`properties=icon,created,last_modified,creator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// `created` property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `last_modified` property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// `creator` property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// Input data definitions (keys accepted in the execute request's `input`).
    #[serde(default)]
    pub input: Vec<InputDef>,
    /// Output data definitions (how `output` is derived from the effective input).
    #[serde(default)]
    pub output: Vec<OutputDef>,
}

/// An input data item with its default value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputDef {
    /// Data name (key in `input`).
    pub name: String,
    /// `value`, `multi` or `group` (`file` inputs are not emulated).
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Used when the request's `input` omits this key. Defaults to `""` / `[]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

/// An output data item and how it is derived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputDef {
    /// Data name (key in `output`).
    pub name: String,
    /// Shape of the produced value.
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Name of the input item the value comes from; without it, `default` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Transformation of the source value.
    #[serde(default)]
    pub transform: Transform,
    /// Value used when there is no `from` (value: string, multi: array of strings, group: rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// File name of a `file` output (default `<name>.txt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

/// Permission of an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read contracts, BOTs and jobs.
    Refer,
    /// Start jobs.
    Execute,
    /// Stop jobs.
    Suspend,
}

/// An access token / secret key pair.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSeed {
    /// Value of the `access-token` header.
    pub access_token: String,
    /// Value of the `secret-key` header.
    pub secret_key: String,
    /// What the token may do.
    pub permissions: Vec<Permission>,
    /// Public IDs the token may use (others answer 404).
    pub contracts: Vec<String>,
}

impl std::fmt::Debug for TokenSeed {
    // Tokens are credentials: never print them, even from a test's `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSeed")
            .field("access_token", &"***")
            .field("secret_key", &"***")
            .field("permissions", &self.permissions)
            .field("contracts", &self.contracts)
            .finish()
    }
}

fn default_true() -> bool {
    true
}

fn default_outcome() -> Outcome {
    Outcome::Succeed
}

/// Why a seed could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The file could not be read.
    #[error("cannot read seed file {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The JSON does not match the seed format.
    #[error("seed is not valid JSON of the seed format")]
    Parse(#[source] serde_json::Error),
    /// The seed is well-formed but inconsistent.
    #[error("invalid seed: {0}")]
    Invalid(String),
}

impl Seed {
    /// Reads and validates a seed file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Seed, SeedError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Seed::from_json(&text)
    }

    /// Parses and validates a seed from JSON text.
    pub fn from_json(text: &str) -> Result<Seed, SeedError> {
        let seed: Seed = serde_json::from_str(text).map_err(SeedError::Parse)?;
        seed.validate()?;
        Ok(seed)
    }

    /// Checks cross references and value shapes.
    pub fn validate(&self) -> Result<(), SeedError> {
        let bad = |m: String| Err(SeedError::Invalid(m));
        let mut public_ids = HashSet::new();
        for c in &self.contracts {
            if !is_path_segment(&c.public_id) {
                return bad(format!(
                    "contract public_id {:?} is not a plain path segment",
                    c.public_id
                ));
            }
            if c.public_id == "services" || c.public_id == "__emulator" {
                return bad(format!("contract public_id {:?} is reserved", c.public_id));
            }
            if !public_ids.insert(c.public_id.as_str()) {
                return bad(format!("duplicate contract public_id {:?}", c.public_id));
            }
            let mut bot_ids = HashSet::new();
            for b in &c.bots {
                if !is_path_segment(&b.id) {
                    return bad(format!("BOT id {:?} is not a plain path segment", b.id));
                }
                if !bot_ids.insert(b.id.as_str()) {
                    return bad(format!(
                        "duplicate BOT id {:?} in contract {:?}",
                        b.id, c.public_id
                    ));
                }
                validate_bot(b).or_else(|m| bad(format!("BOT {:?}: {m}", b.id)))?;
            }
        }
        let mut tokens = HashSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            if t.access_token.is_empty() || t.secret_key.is_empty() {
                return bad(format!(
                    "token #{i}: access_token and secret_key must not be empty"
                ));
            }
            if !tokens.insert(t.access_token.as_str()) {
                return bad(format!("token #{i}: duplicate access_token"));
            }
            for c in &t.contracts {
                if !public_ids.contains(c.as_str()) {
                    return bad(format!("token #{i}: unknown contract {c:?}"));
                }
            }
        }
        Ok(())
    }

    /// The built-in demo seed: contract `demo` with `echo_bot` (succeeds after 2 s with an
    /// output derived from the input, including a file), `error_bot` (ends in error after
    /// 2 s), `slow_bot` (succeeds after 30 s) and the unpublished `draft_bot`; tokens
    /// `demo-access-token`/`demo-secret-key` (Refer, Execute, Suspend) and
    /// `demo-refer-token`/`demo-refer-secret` (Refer only).
    pub fn demo() -> Seed {
        Seed::demo_with_durations(2_000, 2_000, 30_000)
    }

    /// The demo seed with other run durations (ms) for echo_bot, error_bot and slow_bot.
    pub fn demo_with_durations(echo_ms: u64, error_ms: u64, slow_ms: u64) -> Seed {
        let s = |v: &str| Some(v.to_string());
        let message_input = || InputDef {
            name: "message".into(),
            data_type: DataType::Value,
            default: Some(Value::String("Hello from Cloud BOT".into())),
        };
        let bot = |id: &str, name: &str, description: &str, duration_ms: u64| BotSeed {
            id: id.into(),
            name: name.into(),
            description: description.into(),
            published: true,
            duration_ms,
            outcome: Outcome::Succeed,
            error_message: None,
            icon: None,
            created: s("2024-01-15T09:00:00Z"),
            last_modified: s("2024-02-01T09:00:00Z"),
            creator: s("demo@example.com"),
            input: vec![message_input()],
            output: vec![OutputDef {
                name: "echo".into(),
                data_type: DataType::Value,
                from: s("message"),
                transform: Transform::Copy,
                default: None,
                file_name: None,
            }],
        };
        let out = |name: &str, data_type, from: Option<&str>, transform| OutputDef {
            name: name.into(),
            data_type,
            from: from.map(str::to_string),
            transform,
            default: None,
            file_name: None,
        };
        let mut echo = bot(
            "echo_bot",
            "Echo BOT",
            "Echoes its input: value, multi-value, group and file outputs",
            echo_ms,
        );
        echo.input = vec![
            message_input(),
            InputDef {
                name: "tags".into(),
                data_type: DataType::Multi,
                default: Some(serde_json::json!(["demo"])),
            },
            InputDef {
                name: "items".into(),
                data_type: DataType::Group,
                default: Some(serde_json::json!([{"name": "Cheese Cake", "price": "500"}])),
            },
        ];
        echo.output = vec![
            out("echo", DataType::Value, Some("message"), Transform::Copy),
            out("shout", DataType::Value, Some("message"), Transform::Upper),
            out(
                "length",
                DataType::Value,
                Some("message"),
                Transform::Length,
            ),
            out("tags", DataType::Multi, Some("tags"), Transform::Copy),
            out("items", DataType::Group, Some("items"), Transform::Copy),
            OutputDef {
                default: Some(Value::String("done".into())),
                ..out("result", DataType::Value, None, Transform::Copy)
            },
            OutputDef {
                file_name: s("report.txt"),
                ..out("report", DataType::File, Some("message"), Transform::Copy)
            },
        ];
        let mut error = bot("error_bot", "Error BOT", "Always ends in error", error_ms);
        error.outcome = Outcome::Error;
        error.error_message = s("Step 3 failed: element not found (emulated error)");
        error.output = Vec::new();
        let slow = bot(
            "slow_bot",
            "Slow BOT",
            "Takes a while, then echoes its input",
            slow_ms,
        );
        let mut draft = bot(
            "draft_bot",
            "Draft BOT",
            "Not published as API (404)",
            echo_ms,
        );
        draft.published = false;
        draft.input = Vec::new();
        draft.output = Vec::new();
        Seed {
            callback_interval_ms: None,
            contracts: vec![ContractSeed {
                public_id: DEMO_PUBLIC_ID.into(),
                plan: s("free"),
                owner: s("demo@example.com"),
                timezone: s("Asia/Tokyo"),
                location: s("Japan"),
                name: s("Demo Contract"),
                organization: None,
                postcode: None,
                address: None,
                phone: None,
                department: None,
                username: s("demo"),
                bots: vec![echo, error, slow, draft],
            }],
            tokens: vec![
                TokenSeed {
                    access_token: DEMO_ACCESS_TOKEN.into(),
                    secret_key: DEMO_SECRET_KEY.into(),
                    permissions: vec![Permission::Refer, Permission::Execute, Permission::Suspend],
                    contracts: vec![DEMO_PUBLIC_ID.into()],
                },
                TokenSeed {
                    access_token: DEMO_REFER_TOKEN.into(),
                    secret_key: DEMO_REFER_SECRET.into(),
                    permissions: vec![Permission::Refer],
                    contracts: vec![DEMO_PUBLIC_ID.into()],
                },
            ],
        }
    }
}

/// Ids appear as single URL path segments: keep them to characters that never need encoding,
/// RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`). [I] Cloud BOT's rules for public ids
/// and BOT ids are not published; this is the widest set it could issue in a URL path
/// without percent-encoding, so clients are tested against all of it.
fn is_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        && s != "."
        && s != ".."
}

fn validate_bot(b: &BotSeed) -> Result<(), String> {
    let mut inputs = std::collections::HashMap::new();
    for i in &b.input {
        if i.data_type == DataType::File {
            return Err(format!("input {:?}: file inputs are not emulated", i.name));
        }
        if inputs.insert(i.name.as_str(), i.data_type).is_some() {
            return Err(format!("duplicate input {:?}", i.name));
        }
        if let Some(d) = &i.default {
            check_input_value(i.data_type, d)
                .map_err(|m| format!("input {:?} default: {m}", i.name))?;
        }
    }
    let mut outputs = HashSet::new();
    for o in &b.output {
        if !outputs.insert(o.name.as_str()) {
            return Err(format!("duplicate output {:?}", o.name));
        }
        if let Some(from) = &o.from {
            let Some(source) = inputs.get(from.as_str()) else {
                return Err(format!(
                    "output {:?}: `from` names unknown input {from:?}",
                    o.name
                ));
            };
            check_derivation(o.data_type, o.transform, *source)
                .map_err(|m| format!("output {:?}: {m}", o.name))?;
        } else if let (false, Some(d)) = (o.data_type == DataType::File, &o.default) {
            check_input_value(o.data_type, d)
                .map_err(|m| format!("output {:?} default: {m}", o.name))?;
        }
        if o.file_name.is_some() && o.data_type != DataType::File {
            return Err(format!(
                "output {:?}: file_name only applies to file outputs",
                o.name
            ));
        }
    }
    Ok(())
}
