//! The `cloudbot` binary against the project's Cloud BOT emulator (in-process, loopback): exit
//! codes, refusal of bad endpoints before anything is sent, the terminal / non-terminal output
//! switch (a real pseudo-terminal from util-linux `script`), credentials never printed, and the
//! Secrets Manager credentials path against moto.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cloudbot_emulator::{Emulator, EmulatorOptions, FaultKind, FaultRule, Seed};
use serde_json::Value;

const ACCESS_TOKEN: &str = "demo-access-token";
const SECRET_KEY: &str = "demo-secret-key";

/// An emulator whose BOTs end within a few hundred milliseconds.
fn emulator() -> Emulator {
    Emulator::start_blocking(EmulatorOptions::new(Seed::demo_with_durations(
        300, 300, 3_000,
    )))
    .expect("start emulator")
}

/// The CLI with a clean environment: the emulator as API base and the demo credentials.
fn cloudbot(base: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudbot"));
    for var in [
        "CLOUDBOT_SECRET_ID",
        "CLOUDBOT_LANGUAGE",
        "CLOUDBOT_LOG",
        "NO_COLOR",
        "CLICOLOR_FORCE",
        "CLICOLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CLOUDBOT_API_BASE", base)
        .env("CLOUDBOT_ACCESS_TOKEN", ACCESS_TOKEN)
        .env("CLOUDBOT_SECRET_KEY", SECRET_KEY)
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null());
    cmd
}

/// `cloudbot run BOT --follow --interval 100ms` against the emulator's demo BOT `bot`; tests add
/// their own flags.
fn follow_run(base: &str, bot: &str) -> Command {
    let mut cmd = cloudbot(base);
    cmd.args([
        "run",
        &format!("{base}/demo/bots/{bot}/jobs"),
        "--follow",
        "--interval",
        "100ms",
    ]);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run cloudbot")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            text(&output.stdout),
            text(&output.stderr)
        )
    })
}

fn assert_no_credentials(output: &Output) {
    for stream in [&output.stdout, &output.stderr] {
        let shown = text(stream);
        assert!(
            !shown.contains(ACCESS_TOKEN) && !shown.contains(SECRET_KEY),
            "a credential was printed: {shown}"
        );
    }
}

#[test]
fn run_of_a_job_that_ends_in_error_exits_1_with_the_job() {
    let emulator = emulator();
    let base = emulator.base_url();
    let out = run(follow_run(&base, "error_bot").args(["--language", "en"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("error"), "{stdout}");
    assert!(stdout.contains("element not found"), "{stdout}");
    assert_no_credentials(&out);
}

#[test]
fn run_with_follow_exits_0_and_prints_the_output_of_a_job_that_succeeds() {
    let emulator = emulator();
    let base = emulator.base_url();
    let out = run(follow_run(&base, "echo_bot").args([
        "--input",
        "message=hello from the cli",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let result = json(&out);
    assert_eq!(result["status"], "succeeded");
    assert_eq!(result["job"]["output"]["echo"], "hello from the cli");
    let job_id = result["job"]["job_id"].as_str().unwrap();
    assert_eq!(
        result["job_reference_endpoint"],
        format!("{base}/demo/jobs/{job_id}")
    );
    // One execute, then refer calls only.
    let posts = emulator
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1);
}

#[test]
fn run_without_follow_prints_the_job_reference_endpoint_and_job_reads_it() {
    let emulator = emulator();
    let base = emulator.base_url();
    let out = run(cloudbot(&base).args(["run", &format!("{base}/demo/bots/echo_bot/jobs")]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let endpoint = stdout
        .lines()
        .find_map(|l| l.strip_prefix("job reference endpoint: "))
        .unwrap_or_else(|| panic!("no endpoint line: {stdout}"))
        .to_owned();
    assert!(endpoint.starts_with(&format!("{base}/demo/jobs/")));
    let out = run(cloudbot(&base).args([
        "job",
        &endpoint,
        "--follow",
        "--interval",
        "100ms",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(json(&out)["status"], "succeeded");
}

#[test]
fn a_bad_endpoint_is_refused_by_name_and_nothing_is_sent() {
    let emulator = emulator();
    let base = emulator.base_url();
    let cases = [
        vec![
            "run".to_owned(),
            "https://api.c-bot.pro/demo/bots/echo_bot/jobs".to_owned(),
        ],
        vec![
            "run".to_owned(),
            format!("{base}/demo/bots/echo_bot/jobs?x=1"),
        ],
        vec!["run".to_owned(), format!("{base}/demo/bots/../jobs")],
        vec!["job".to_owned(), format!("{base}/demo/bots/echo_bot/jobs")],
        vec![
            "jobs".to_owned(),
            "http://127.0.0.2:1/demo/bots/echo_bot/jobs".to_owned(),
        ],
        vec!["bots".to_owned(), "de/mo".to_owned()],
    ];
    for args in cases {
        let out = run(cloudbot(&base).args(&args));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("BOT_ENDPOINT")
                || stderr.contains("JOB_ENDPOINT")
                || stderr.contains("PUBLIC_ID"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }
    // Also with Secrets Manager credentials: the endpoint is refused before the secret is read
    // (an unreachable Secrets Manager would otherwise make this exit 3).
    let out = run(cloudbot(&base)
        .env_remove("CLOUDBOT_ACCESS_TOKEN")
        .env_remove("CLOUDBOT_SECRET_KEY")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .args([
            "--secret-id",
            "cloudbot/demo",
            "run",
            "https://evil.example/demo/bots/echo_bot/jobs",
        ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        emulator.requests().is_empty(),
        "requests were sent: {:?}",
        emulator.requests()
    );
}

#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    let emulator = emulator();
    let base = emulator.base_url();
    let bot = format!("{base}/demo/bots/echo_bot/jobs");
    let list = std::env::temp_dir().join(format!("cloudbot-cli-input-{}.json", std::process::id()));
    std::fs::write(&list, "[1, 2]").unwrap();
    for args in [
        vec!["run", &bot, "--input", "no-equals-sign"],
        vec!["run", &bot, "--input-file", list.to_str().unwrap()],
        vec!["run", &bot, "--input-file", "/nonexistent/input.json"],
    ] {
        let out = run(cloudbot(&base).args(&args));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("--input"),
            "{}",
            text(&out.stderr)
        );
    }
    std::fs::remove_file(&list).ok();
    assert!(emulator.requests().is_empty());
}

#[test]
fn an_execute_without_an_answer_exits_4_and_says_to_check_the_job_list() {
    let emulator = emulator();
    let base = emulator.base_url();
    emulator
        .add_faults(vec![
            FaultRule::new(FaultKind::ResetAfter)
                .method("POST")
                .times(1),
        ])
        .unwrap();
    let bot = format!("{base}/demo/bots/echo_bot/jobs");
    let out = run(cloudbot(&base).args(["run", &bot]));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("CloudBot.OutcomeUnknown"), "{stderr}");
    assert!(stderr.contains("cloudbot jobs"), "{stderr}");
    // Never retried, and the job list shows the run that did start.
    assert_eq!(emulator.stats().jobs_created, 1);
    let out = run(cloudbot(&base).args(["jobs", &bot, "--since", "10m", "--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let jobs = json(&out)["jobs"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["job"]["job_id"], emulator.jobs()[0].job_id);
}

#[test]
fn bots_lists_every_visible_contract_with_bot_execution_endpoints() {
    let emulator = emulator();
    let base = emulator.base_url();
    let out = run(cloudbot(&base).args(["bots", "--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let result = json(&out);
    let demo = result["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["public_id"] == "demo")
        .expect("demo contract");
    let echo = demo["bots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bot_id"] == "echo_bot")
        .expect("echo_bot");
    assert_eq!(
        echo["bot_endpoint"],
        format!("{base}/demo/bots/echo_bot/jobs")
    );
    // Unpublished BOTs are not listed.
    assert!(
        !demo["bots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["bot_id"] == "draft_bot")
    );
    let out = run(cloudbot(&base).args(["bots", "demo"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains(&format!("{base}/demo/bots/echo_bot/jobs")));
}

#[test]
fn jobs_lists_the_runs_of_a_bot_newest_first() {
    let emulator = emulator();
    let base = emulator.base_url();
    let bot = format!("{base}/demo/bots/echo_bot/jobs");
    for _ in 0..3 {
        assert_eq!(
            run(cloudbot(&base).args(["run", &bot])).status.code(),
            Some(0)
        );
    }
    let out = run(cloudbot(&base).args(["jobs", &bot, "--since", "1h", "--limit", "2", "--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed: Vec<String> = json(&out)["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job"]["job_id"].as_str().unwrap().to_owned())
        .collect();
    let created: Vec<String> = emulator.jobs().into_iter().map(|j| j.job_id).collect();
    assert_eq!(listed, vec![created[2].clone(), created[1].clone()]);
    let out = run(cloudbot(&base).args(["jobs", &bot]));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("JOB REFERENCE ENDPOINT"), "{stdout}");
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
}

/// Runs `args` under a pseudo-terminal (util-linux `script`): stdout is a terminal there.
fn run_in_pty(cmd: &Command) -> Output {
    let mut line = String::new();
    for part in std::iter::once(cmd.get_program()).chain(cmd.get_args()) {
        let part = part.to_str().unwrap();
        assert!(!part.contains('\''), "cannot quote {part}");
        line.push_str(&format!("'{part}' "));
    }
    let mut script = Command::new("script");
    script.args(["-q", "-e", "-c", &line, "/dev/null"]);
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => script.env(key, v),
            None => script.env_remove(key),
        };
    }
    script.stdin(Stdio::null()).output().expect("run script(1)")
}

#[test]
fn colour_and_the_live_status_line_appear_only_on_a_terminal() {
    let emulator = emulator();
    let base = emulator.base_url();
    let mut cmd = follow_run(&base, "echo_bot");

    let on_terminal = run_in_pty(&cmd);
    assert_eq!(
        on_terminal.status.code(),
        Some(0),
        "{}",
        text(&on_terminal.stdout)
    );
    let shown = text(&on_terminal.stdout);
    assert!(
        shown.contains("\u{1b}["),
        "no escape sequences on a terminal: {shown:?}"
    );
    // The live line: a braille spinner frame and an elapsed time, later erased.
    assert!(
        shown
            .chars()
            .any(|c| ('\u{2800}'..='\u{28ff}').contains(&c)),
        "no spinner: {shown:?}"
    );
    assert!(
        shown.contains("\u{1b}[2K"),
        "the live line was not cleared: {shown:?}"
    );
    assert!(shown.contains("succeeded"));

    let piped = run(&mut cmd);
    assert_eq!(piped.status.code(), Some(0));
    let plain = text(&piped.stdout);
    assert!(
        !plain.contains('\u{1b}'),
        "escape sequences in a pipe: {plain:?}"
    );
    assert!(plain.contains("succeeded"), "{plain}");

    // --json on a terminal: still exactly one JSON document, no colour, no live line.
    cmd.arg("--json");
    let json_on_terminal = run_in_pty(&cmd);
    let shown = text(&json_on_terminal.stdout).replace("\r\n", "\n");
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    let value: Value = serde_json::from_str(&shown).expect("one JSON document");
    assert_eq!(value["status"], "succeeded");
}

#[test]
fn no_credential_is_printed_even_with_debug_logs() {
    let emulator = emulator();
    let base = emulator.base_url();
    let bot = format!("{base}/demo/bots/echo_bot/jobs");
    for args in [
        vec!["bots"],
        vec!["run", &bot, "--follow", "--interval", "100ms"],
        vec!["jobs", &bot],
        vec!["run", "https://api.c-bot.pro/demo/bots/echo_bot/jobs"],
    ] {
        let out = run(cloudbot(&base).env("CLOUDBOT_LOG", "trace").args(&args));
        assert_no_credentials(&out);
    }
    // Wrong credentials: a clear 401 error, exit 3, and still nothing printed.
    let out = run(cloudbot(&base)
        .env("CLOUDBOT_SECRET_KEY", "wrong-secret-key")
        .args(["bots", "demo"]));
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("CloudBot.Unauthorized"));
    assert!(!text(&out.stderr).contains("wrong-secret-key"));
}

/// A moto server (pinned, from the repository's .tools) on a free port, stopped on drop.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let bin =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv-aws/bin/moto_server");
        assert!(
            bin.exists(),
            "{} is missing: run scripts/install-tools.sh aws",
            bin.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn credentials_from_a_secret_id_are_read_like_the_function_reads_them() {
    let moto = Moto::start();
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .build();
    let secrets = aws_sdk_secretsmanager::Client::from_conf(config);
    let good = format!(r#"{{"access_token":"{ACCESS_TOKEN}","secret_key":"{SECRET_KEY}"}}"#);
    for (name, value) in [
        ("cloudbot/good", good.as_str()),
        ("cloudbot/bad", r#"{"access_token":"x"}"#),
    ] {
        secrets
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }
    let emulator = emulator();
    let base = emulator.base_url();
    let with_secret = |secret_id: &str| {
        let mut cmd = cloudbot(&base);
        cmd.env_remove("CLOUDBOT_ACCESS_TOKEN")
            .env_remove("CLOUDBOT_SECRET_KEY")
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .args(["--secret-id", secret_id, "bots", "demo", "--json"]);
        cmd
    };
    let out = run(&mut with_secret("cloudbot/good"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(json(&out)["contracts"][0]["public_id"], "demo");
    assert_no_credentials(&out);

    // The function's decoding and its message, naming the missing key.
    let out = run(&mut with_secret("cloudbot/bad"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("secret_key"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&mut with_secret("cloudbot/missing"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("ResourceNotFound"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn following_stops_at_the_timeout_with_exit_5_and_the_job_goes_on() {
    let emulator = emulator();
    let base = emulator.base_url();
    let out = run(follow_run(&base, "slow_bot").args(["--timeout", "500ms"]));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--timeout ran out"), "{stderr}");
    assert!(
        stderr.contains("cloudbot job JOB_ENDPOINT --follow"),
        "{stderr}"
    );
    // Following never touches the job: it is still running.
    let job = emulator.jobs().pop().unwrap();
    assert_eq!(job.status, 2, "{job:?}");
}

#[test]
fn ctrl_c_while_following_exits_130_and_leaves_the_job_running() {
    use std::io::{BufRead, BufReader};
    let emulator = emulator();
    let base = emulator.base_url();
    let mut child = follow_run(&base, "slow_bot")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The endpoint line is printed once the job started; the follow loop (and its Ctrl-C
    // handler) runs from then on.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("job reference endpoint:") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "no endpoint line");
    }
    // A poll of the job means the loop has passed its first select, which installed the handler.
    let started = Instant::now();
    while !emulator
        .requests()
        .iter()
        .any(|r| r.method == "GET" && r.path.starts_with("/demo/jobs/"))
    {
        assert!(started.elapsed() < Duration::from_secs(10), "no job poll");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("interrupted"));
    assert_eq!(emulator.jobs().pop().unwrap().status, 2);
}
