//! Runs the deployed arm64 `bootstrap` (what `sam build` puts in .aws-sam/build) under qemu
//! user-mode emulation against the test kit's Runtime API, the Cloud BOT emulator and the
//! counting Secrets Manager endpoint, and checks every answer: cold start, one execute, one
//! refer_job, one list_bots, one invalid request, the secret read once. A functional check of the
//! artifact AWS runs, not a benchmark: timings under emulation say nothing about Lambda.
//! `scripts/arm64-smoke.sh` drives it.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use cloudbot_emulator::DEMO_PUBLIC_ID;
use cloudbot_testkit::Error;
use cloudbot_testkit::emulator::{ECHO_BOT, EmulatorProcess};
use cloudbot_testkit::function::demo_secret;
use cloudbot_testkit::runtime_api::{Outcome, RuntimeApi};
use cloudbot_testkit::secrets::SecretsEndpoint;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const SECRET_ID: &str = "cloudbot-trigger/arm64-smoke";
/// Generous: an emulated process on a shared 2-core machine; a healthy start takes far less.
const INIT_TIMEOUT: Duration = Duration::from_secs(120);
/// Per invocation; the function's own deadline (30 s, from the Runtime API) comes first.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the arm64 bootstrap under qemu against the test kit's servers and checks every answer.
#[derive(Debug, Parser)]
#[command(name = "arm64-smoke")]
struct Args {
    /// The arm64 bootstrap (what `sam build` produced).
    #[arg(long)]
    bootstrap: PathBuf,
    /// The `cloudbot-emulator` binary (host architecture).
    #[arg(long)]
    emulator: PathBuf,
    /// `qemu-aarch64-static`.
    #[arg(long)]
    qemu: PathBuf,
    /// The arm64 sysroot for qemu's `-L` (e.g. /usr/aarch64-linux-gnu).
    #[arg(long)]
    sysroot: PathBuf,
    /// Folder for logs.
    #[arg(long, default_value = "target/arm64-smoke")]
    work: PathBuf,
    /// Also write the markdown report here.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// The environment Lambda gives a function, with local endpoints and dummy credentials.
fn lambda_env(api_base: &str, secrets_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_FUNCTION_NAME", "cloudbot-trigger".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "1".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/cloudbot-trigger".to_owned(),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "arm64-smoke".to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "arm64-smoke".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "arm64-smoke".to_owned()),
        ("AWS_SESSION_TOKEN", "arm64-smoke".to_owned()),
        // No instance metadata here: never probe for it.
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_url.to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "C.UTF-8".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("CLOUDBOT_SECRET_ID", SECRET_ID.to_owned()),
        ("CLOUDBOT_API_BASE", api_base.to_owned()),
        (
            "CLOUDBOT_DEFAULT_BOT_ENDPOINT",
            format!("{api_base}/{DEMO_PUBLIC_ID}/bots/{ECHO_BOT}/jobs"),
        ),
        ("CLOUDBOT_LANGUAGE", "en".to_owned()),
    ]
}

/// The bootstrap under `qemu-aarch64-static -L SYSROOT`, with its own Runtime API server.
struct Emulated {
    api: RuntimeApi,
    child: Child,
    spawned: Instant,
    log: PathBuf,
}

impl Emulated {
    async fn spawn(args: &Args, env: &[(&'static str, String)], log: &Path) -> Result<Self, Error> {
        let api = RuntimeApi::start().await?;
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(&args.qemu);
        cmd.arg("-L")
            .arg(&args.sysroot)
            .arg(&args.bootstrap)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", api.endpoint())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        let spawned = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| Error::msg(format!("cannot start {}: {e}", args.qemu.display())))?;
        Ok(Self {
            api,
            child,
            spawned,
            log: log.to_owned(),
        })
    }

    /// Waits for the first `GET /next`: the runtime initialised and polls for work.
    async fn cold_start(&mut self) -> Result<Duration, Error> {
        let spawned = self.spawned;
        tokio::select! {
            r = self.api.first_poll() => match r {
                Ok(at) => Ok(at.saturating_duration_since(spawned)),
                Err(report) => Err(Error::msg(format!(
                    "init error {}: {}\n{}", report.error_type, report.body, self.log_tail()
                ))),
            },
            status = self.child.wait() => Err(Error::msg(format!(
                "the bootstrap exited before polling: {status:?}\n{}", self.log_tail()
            ))),
            _ = tokio::time::sleep(INIT_TIMEOUT) => Err(Error::msg(format!(
                "no GET /next within {INIT_TIMEOUT:?}\n{}", self.log_tail()
            ))),
        }
    }

    async fn invoke(&self, event: &Value) -> Result<Outcome, Error> {
        let outcome = self
            .api
            .invoke(Bytes::from(event.to_string()), INVOKE_TIMEOUT)
            .await
            .map_err(|e| Error::msg(format!("{e}\n{}", self.log_tail())))?;
        Ok(outcome)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "last lines of {}:\n{}",
            self.log.display(),
            lines[lines.len().saturating_sub(10)..].join("\n")
        )
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// The successful result of an invocation, as JSON, or why it is not one.
fn ok_json(what: &str, outcome: &Outcome) -> Result<Value, Error> {
    match &outcome.result {
        Ok(body) => serde_json::from_slice(body).map_err(|e| {
            Error::msg(format!(
                "{what}: result is not JSON ({e}): {}",
                String::from_utf8_lossy(body)
            ))
        }),
        Err(report) => Err(Error::msg(format!(
            "{what}: function error {}: {}",
            report.error_type, report.body
        ))),
    }
}

fn field<'a>(what: &str, v: &'a Value, key: &str) -> Result<&'a str, Error> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::msg(format!("{what}: no string `{key}` in {v}")))
}

fn expect(what: &str, ok: bool, detail: impl FnOnce() -> String) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error::msg(format!("{what}: {}", detail())))
    }
}

/// One line of the report per check.
struct Line {
    check: &'static str,
    took: Duration,
    seen: String,
}

/// The input of the execute check, which the refer_job check expects back as `output.echo`.
const MESSAGE: &str = "hello from the arm64 bootstrap";

/// The job the execute check started, for the refer_job check.
struct Job {
    id: String,
    reference: String,
}

/// Every path argument names an existing file, or the run fails before it starts anything.
fn check_inputs(args: &Args) -> Result<(), Error> {
    for (path, what) in [
        (&args.bootstrap, "--bootstrap"),
        (&args.emulator, "--emulator"),
        (&args.qemu, "--qemu"),
    ] {
        if !path.is_file() {
            return Err(Error::msg(format!(
                "{what} {} does not exist",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Starts the emulator, the Secrets Manager stand-in and the emulated bootstrap, runs every
/// check in order and stops the processes, whatever the checks found.
async fn run(args: &Args) -> Result<Vec<Line>, Error> {
    check_inputs(args)?;
    std::fs::create_dir_all(&args.work)?;
    let emulator = EmulatorProcess::spawn(&args.emulator, &args.work.join("emulator.log")).await?;
    let secrets = SecretsEndpoint::start(SECRET_ID, &demo_secret()).await?;
    let env = lambda_env(emulator.base_url(), &secrets.url());
    let mut function = Emulated::spawn(args, &env, &args.work.join("bootstrap.log")).await?;
    let result = async {
        let cold = function.cold_start().await?;
        let checks = Checks {
            function: &function,
            emulator: &emulator,
            secrets: &secrets,
        };
        checks.all(cold).await
    }
    .await;
    function.stop().await;
    emulator.stop().await;
    result
}

/// The checks after the cold start, against one running bootstrap and its upstreams.
struct Checks<'a> {
    function: &'a Emulated,
    emulator: &'a EmulatorProcess,
    secrets: &'a SecretsEndpoint,
}

impl Checks<'_> {
    /// Every check in order (later ones rely on the job the execute check started).
    async fn all(&self, cold: Duration) -> Result<Vec<Line>, Error> {
        let cold = Line {
            check: "cold start (spawn -> first GET /next)",
            took: cold,
            seen: "runtime polling".to_owned(),
        };
        let (execute, job) = self.execute().await?;
        let refer = self.refer_job(&job).await?;
        let list = self.list_bots().await?;
        let invalid = self.invalid_request().await?;
        let secrets = self.secret_read_once()?;
        Ok(vec![cold, execute, refer, list, invalid, secrets])
    }

    /// execute: a job is started, and it is the one the emulator now holds.
    async fn execute(&self) -> Result<(Line, Job), Error> {
        let event = json!({
            "operation": "execute",
            "bot_endpoint": self.emulator.bot_endpoint(),
            "input": { "message": MESSAGE },
        });
        let outcome = self.function.invoke(&event).await?;
        let v = ok_json("execute", &outcome)?;
        let job_id = field("execute", &v, "job_id")?.to_owned();
        let reference = field("execute", &v, "job_reference_endpoint")?.to_owned();
        let expected_reference = format!(
            "{}/{DEMO_PUBLIC_ID}/jobs/{job_id}",
            self.emulator.base_url()
        );
        expect(
            "execute",
            field("execute", &v, "operation")? == "execute",
            || format!("operation in {v}"),
        )?;
        expect("execute", reference == expected_reference, || {
            format!("job_reference_endpoint {reference}, expected {expected_reference}")
        })?;
        expect(
            "execute",
            field("execute", &v, "bot_id")? == ECHO_BOT,
            || format!("bot_id in {v}"),
        )?;
        let jobs = self.emulator.job_ids().await?;
        expect("execute", jobs == [job_id.clone()], || {
            format!("the emulator holds jobs {jobs:?}, expected exactly [{job_id}]")
        })?;
        let line = Line {
            check: "execute",
            took: outcome.elapsed(),
            seen: format!("job {job_id} started (the emulator's only job)"),
        };
        Ok((
            line,
            Job {
                id: job_id,
                reference,
            },
        ))
    }

    /// refer_job: the same job, in a documented state.
    async fn refer_job(&self, job: &Job) -> Result<Line, Error> {
        let event = json!({ "operation": "refer_job", "job_reference_endpoint": job.reference });
        let outcome = self.function.invoke(&event).await?;
        let v = ok_json("refer_job", &outcome)?;
        expect(
            "refer_job",
            field("refer_job", &v, "operation")? == "refer_job",
            || format!("operation in {v}"),
        )?;
        expect(
            "refer_job",
            field("refer_job", &v, "job_id")? == job.id,
            || format!("job_id in {v}, expected {}", job.id),
        )?;
        let status = field("refer_job", &v, "status")?.to_owned();
        expect(
            "refer_job",
            matches!(status.as_str(), "executing" | "succeeded"),
            || format!("status {status} in {v}"),
        )?;
        if status == "succeeded" {
            let echo = v.pointer("/output/echo").and_then(Value::as_str);
            expect("refer_job", echo == Some(MESSAGE), || {
                format!("output.echo {echo:?}, expected {MESSAGE:?}")
            })?;
        }
        Ok(Line {
            check: "refer_job",
            took: outcome.elapsed(),
            seen: format!("job {}: {status}", job.id),
        })
    }

    /// list_bots: the demo contract's BOT, with its execution endpoint.
    async fn list_bots(&self) -> Result<Line, Error> {
        let event = json!({ "operation": "list_bots", "public_id": DEMO_PUBLIC_ID });
        let outcome = self.function.invoke(&event).await?;
        let v = ok_json("list_bots", &outcome)?;
        let bots = v
            .get("bots")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::msg(format!("list_bots: no `bots` list in {v}")))?;
        let echo = bots
            .iter()
            .find(|b| b.get("bot_id").and_then(Value::as_str) == Some(ECHO_BOT));
        let endpoint = echo
            .and_then(|b| b.get("bot_endpoint"))
            .and_then(Value::as_str);
        let expected = self.emulator.bot_endpoint();
        expect("list_bots", endpoint == Some(expected.as_str()), || {
            format!("{ECHO_BOT} with bot_endpoint {expected} in {v}")
        })?;
        Ok(Line {
            check: "list_bots",
            took: outcome.elapsed(),
            seen: format!("{} BOT(s), {ECHO_BOT} among them", bots.len()),
        })
    }

    /// An invalid request: the documented error type naming the field, and no job started.
    async fn invalid_request(&self) -> Result<Line, Error> {
        let event = json!({
            "operation": "execute",
            "public_id": DEMO_PUBLIC_ID,
            "bot_id": ECHO_BOT,
            "inptu": { "message": "a typo must never fall back to the default input" },
        });
        let outcome = self.function.invoke(&event).await?;
        let report = match &outcome.result {
            Err(report) => report,
            Ok(body) => {
                return Err(Error::msg(format!(
                    "invalid request: answered with a result: {}",
                    String::from_utf8_lossy(body)
                )));
            }
        };
        expect(
            "invalid request",
            report.error_type == "InvalidRequest",
            || {
                format!(
                    "errorType {}, expected InvalidRequest: {}",
                    report.error_type, report.body
                )
            },
        )?;
        expect("invalid request", report.body.contains("inptu"), || {
            format!(
                "the message does not name the field `inptu`: {}",
                report.body
            )
        })?;
        let jobs = self.emulator.job_ids().await?;
        expect("invalid request", jobs.len() == 1, || {
            format!("a job was started anyway: the emulator holds {jobs:?}")
        })?;
        Ok(Line {
            check: "invalid request (unknown field `inptu`)",
            took: outcome.elapsed(),
            seen: "InvalidRequest naming `inptu`, no job started".to_owned(),
        })
    }

    /// The credentials were read once, at the first invocation, and kept.
    fn secret_read_once(&self) -> Result<Line, Error> {
        let reads = self.secrets.get_secret_value_calls();
        let others = self.secrets.other_calls();
        expect("secrets", reads == 1 && others == 0, || {
            format!("GetSecretValue {reads} time(s), other calls {others}")
        })?;
        Ok(Line {
            check: "Secrets Manager",
            took: Duration::ZERO,
            seen: "GetSecretValue once for four invocations".to_owned(),
        })
    }
}

fn render(args: &Args, lines: &[Line]) -> String {
    let size = std::fs::metadata(&args.bootstrap)
        .map(|m| m.len())
        .unwrap_or_default();
    let mut out = format!(
        "arm64 bootstrap {} ({size} bytes) ran under {} -L {}\n\n\
         | check | time under emulation | seen |\n|---|---|---|\n",
        args.bootstrap.display(),
        args.qemu.display(),
        args.sysroot.display()
    );
    for l in lines {
        let took = if l.took.is_zero() {
            "-".to_owned()
        } else {
            format!("{:.1} ms", l.took.as_secs_f64() * 1e3)
        };
        out.push_str(&format!("| {} | {took} | {} |\n", l.check, l.seen));
    }
    out.push_str(
        "\nTimes are under user-mode emulation on this machine: a functional check, not a \
         performance figure (docs/benchmarks.md has those).\n",
    );
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(lines) => {
            let report = render(&args, &lines);
            print!("{report}");
            if let Some(path) = &args.report
                && let Err(e) = std::fs::write(path, &report)
            {
                eprintln!("arm64-smoke: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("arm64-smoke: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
