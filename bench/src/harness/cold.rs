//! Scenario 1, cold init: spawn → first `GET /runtime/invocation/next` of the function and the
//! floor, interleaved so background noise hits both; `--only-cold` prints it alone as a table.

use std::path::Path;
use std::time::Duration;

use super::{Harness, SECRET_ID, Settings, demo_secret, function_env, require_binaries};
use crate::BenchError;
use crate::report::ColdInit;
use crate::stats::{Summary, ms};
use cloudbot_testkit::sandbox::Sandbox;
use cloudbot_testkit::secrets::SecretsEndpoint;

/// One start: which binary, its cold init, its peak RSS right after init (KiB).
struct Start {
    is_floor: bool,
    init: Duration,
    rss_kib: u64,
}

/// Starts each binary `starts` times, alternating which goes first in a round.
async fn alternate_starts(
    starts: usize,
    bootstrap: &Path,
    floor: &Path,
    mut spawn: impl AsyncFnMut(&Path, &'static str) -> Result<Sandbox, BenchError>,
) -> Result<Vec<Start>, BenchError> {
    let mut all = Vec::with_capacity(starts * 2);
    for round in 0..starts {
        for is_floor in [round % 2 == 0, round % 2 != 0] {
            let (bin, what) = if is_floor {
                (floor, "floor-cold")
            } else {
                (bootstrap, "function-cold")
            };
            let mut sb = spawn(bin, what).await?;
            let init = sb.cold_init().await?;
            let rss_kib = sb.peak_rss_kib()?;
            sb.stop().await?;
            all.push(Start {
                is_floor,
                init,
                rss_kib,
            });
        }
    }
    Ok(all)
}

/// The summary and highest RSS of one binary's starts.
fn summarize(starts: &[Start], is_floor: bool) -> Result<(Summary, u64), BenchError> {
    let mine = || starts.iter().filter(move |s| s.is_floor == is_floor);
    let samples: Vec<Duration> = mine().map(|s| s.init).collect();
    let rss = mine().map(|s| s.rss_kib).max().unwrap_or_default();
    let summary = Summary::of(&samples).ok_or_else(|| BenchError::msg("no starts"))?;
    Ok((summary, rss))
}

impl Harness {
    /// Scenario 1 for the report.
    pub(super) async fn cold_init(&mut self) -> Result<ColdInit, BenchError> {
        let (bootstrap, floor) = (self.settings.bootstrap.clone(), self.settings.floor.clone());
        let starts = alternate_starts(
            self.settings.starts,
            &bootstrap,
            &floor,
            async |bin, what| self.spawn(bin, what).await,
        )
        .await?;
        let (function, function_rss_kib) = summarize(&starts, false)?;
        let (floor, floor_rss_kib) = summarize(&starts, true)?;
        Ok(ColdInit {
            function,
            floor,
            function_rss_kib,
            floor_rss_kib,
        })
    }
}

/// `--only-cold`: scenario 1 alone (no emulator needed: the function must not call anything
/// before its first poll), printed as a table. Used to try release-profile levers quickly.
pub async fn only_cold(settings: Settings) -> Result<(), BenchError> {
    std::fs::create_dir_all(&settings.work)?;
    require_binaries(&[&settings.bootstrap, &settings.floor])?;
    // Nothing listens on port 9 (discard): a function that called Cloud BOT at init would fail.
    // Secrets Manager answers, as the function fetches its secret during init.
    let api_base = "http://127.0.0.1:9";
    let secrets = SecretsEndpoint::start(SECRET_ID, &demo_secret()).await?;
    let mut env = function_env(
        api_base,
        &format!("{api_base}/demo/bots/echo_bot/jobs"),
        &secrets.url(),
    );
    env.extend(settings.extra_env.iter().cloned());
    let work = settings.work.clone();
    let mut logs = 0;
    let starts = alternate_starts(
        settings.starts,
        &settings.bootstrap,
        &settings.floor,
        async |bin, _| {
            logs += 1;
            Sandbox::spawn(bin, &env, &work.join(format!("{logs:04}-cold.log"))).await
        },
    )
    .await?;
    println!(
        "| binary | starts | min ms | median ms | p90 ms | max ms | RSS after init KiB | secret fetches |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut medians = Vec::new();
    for (is_floor, path) in [(false, &settings.bootstrap), (true, &settings.floor)] {
        let (x, rss) = summarize(&starts, is_floor)?;
        medians.push(x.p50);
        let fetches = if is_floor {
            "–".to_owned()
        } else {
            secrets.get_secret_value_calls().to_string()
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {rss} | {fetches} |",
            path.display(),
            x.n,
            ms(x.min),
            ms(x.p50),
            ms(x.p90),
            ms(x.max),
        );
    }
    println!(
        "\nratio of medians: {:.2}x",
        medians[0].as_secs_f64() / medians[1].as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(work);
    Ok(())
}
