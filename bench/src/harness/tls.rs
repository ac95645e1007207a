//! TLS provider start-up: `tls-start PROVIDER` in fresh processes, the first-use cost of each
//! crypto provider rustls can run on (see the `tls-start` binary for what it times).

use std::time::Duration;

use super::Settings;
use crate::BenchError;
use crate::report::{TlsProvider, TlsStart};
use crate::stats::Summary;

/// Runs `tls-start` `settings.starts` times per provider.
pub(super) async fn tls_start(settings: &Settings) -> Result<TlsStart, BenchError> {
    let mut providers = Vec::new();
    for provider in ["aws-lc", "ring"] {
        let mut first = Vec::new();
        let mut second = Vec::new();
        for _ in 0..settings.starts {
            let (a, b) = one_start(&settings.tls_start, provider).await?;
            first.push(a);
            second.push(b);
        }
        providers.push(TlsProvider {
            name: provider.to_owned(),
            first: Summary::of(&first).ok_or_else(|| BenchError::msg("no samples"))?,
            second: Summary::of(&second).ok_or_else(|| BenchError::msg("no samples"))?,
        });
    }
    Ok(TlsStart {
        aws_lc_build: settings.aws_lc_build.clone(),
        providers,
    })
}

/// One fresh process: the first and the second key generation.
async fn one_start(
    bin: &std::path::Path,
    provider: &str,
) -> Result<(Duration, Duration), BenchError> {
    let out = tokio::process::Command::new(bin)
        .arg(provider)
        .env_clear()
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_micros)
    };
    match (
        out.status.success(),
        field("first_us="),
        field("second_us="),
    ) {
        (true, Some(a), Some(b)) => Ok((a, b)),
        _ => Err(BenchError::msg(format!(
            "tls-start {provider} failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ))),
    }
}
