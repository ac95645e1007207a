//! The POST floor: a hello-world `lambda_runtime` bootstrap that does what an execute cannot
//! avoid and nothing else. Each event's `input` goes to its `bot_endpoint` as one HTTPS POST on
//! a kept connection, on the function's stack (reqwest, rustls on aws-lc, HTTP/1.1), and the
//! upstream's JSON answer is returned. The CPU model's warm-CPU budget compares the function's
//! plain execute with this binary, like with like ([docs/benchmarks.md](../../../docs/benchmarks.md),
//! "Budget"); `lambda-floor` (an echo) stays the floor of cold init and memory.
//!
//! Its settings come from the environment the harness gives it: the bench's test CA (the same
//! variable the function reads it from; no compiled-in roots, which no loopback upstream needs)
//! and the demo token pair the function reads from Secrets Manager.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

/// The CA file the harness writes for the run (the function's test-only variable).
const CA_VAR: &str = "CLOUDBOT_TEST_ONLY_EXTRA_CA_FILE";
/// The Cloud BOT token pair, as the function sends it.
const ACCESS_TOKEN_VAR: &str = "FLOOR_POST_ACCESS_TOKEN";
const SECRET_KEY_VAR: &str = "FLOOR_POST_SECRET_KEY";

struct Upstream {
    client: reqwest::Client,
    access_token: String,
    secret_key: String,
}

fn var(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

impl Upstream {
    fn from_env() -> Result<Self, Error> {
        let ca = std::fs::read(var(CA_VAR)?)?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca)?])
            .build()?;
        Ok(Upstream {
            client,
            access_token: var(ACCESS_TOKEN_VAR)?,
            secret_key: var(SECRET_KEY_VAR)?,
        })
    }

    async fn forward(&self, event: LambdaEvent<Value>) -> Result<Value, Error> {
        let endpoint = event
            .payload
            .get("bot_endpoint")
            .and_then(Value::as_str)
            .ok_or("the event has no bot_endpoint")?;
        let body = serde_json::to_vec(&serde_json::json!({ "input": event.payload.get("input") }))?;
        let response = self
            .client
            .post(endpoint)
            .header("content-type", "application/json")
            .header("content-language", "en")
            .header("access-token", &self.access_token)
            .header("secret-key", &self.secret_key)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            return Err(format!("upstream answered HTTP {status}").into());
        }
        Ok(serde_json::from_slice(&body)?)
    }
}

// The function's runtime flavour, as in `lambda-floor`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let upstream = Upstream::from_env()?;
    let upstream = &upstream;
    lambda_runtime::run(service_fn(move |event| upstream.forward(event))).await
}
