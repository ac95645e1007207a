//! The `cloudbot` binary against the project's Cloud BOT emulator (in-process, loopback): exit
//! codes, refusal of bad endpoints before anything is sent, the terminal / non-terminal output
//! switch (a real pseudo-terminal from util-linux `script`), credentials never printed, and the
//! Secrets Manager credentials path against moto.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::lambda::{LambdaStandIn, invoke_handler};
use support::ledger::create_ledger_table;
use support::moto::Moto;

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
                || stderr.contains("JOB")
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
    // The exact command, not a placeholder.
    assert!(
        stderr.contains(&format!("next: cloudbot jobs {bot} --since 5m")),
        "{stderr}"
    );
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

#[tokio::test]
async fn credentials_from_a_secret_id_are_read_like_the_function_reads_them() {
    let moto = Moto::start();
    let secrets = aws_sdk_secretsmanager::Client::new(&moto.sdk_config());
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
        moto.point(&mut cmd)
            .env_remove("CLOUDBOT_ACCESS_TOKEN")
            .env_remove("CLOUDBOT_SECRET_KEY")
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
    // The base given as an option (not from the environment): the next command repeats it.
    let out = run(follow_run(&base, "slow_bot")
        .env_remove("CLOUDBOT_API_BASE")
        .args(["--timeout", "500ms", "--api-base", &base]));
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--timeout ran out"), "{stderr}");
    // Following never touches the job: it is still running.
    let job = emulator.jobs().pop().unwrap();
    assert_eq!(job.status, 2, "{job:?}");
    let url = format!("{base}/demo/jobs/{}", job.job_id);
    assert!(
        stderr.contains(&format!(
            "next: cloudbot --api-base {base} job {url} --follow"
        )),
        "{stderr}"
    );
}

/// Waits (polling, at most 15 s) until `ready` holds.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGINT (what Ctrl-C sends) to the child and collects its output.
fn interrupt(child: std::process::Child) -> Output {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait_with_output().unwrap()
}

fn spawn(cmd: &mut Command) -> std::process::Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The command after `next: ` on stderr, split into words (none of ours needs quoting).
fn next_command(stderr: &str) -> Vec<String> {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("next: "))
        .unwrap_or_else(|| panic!("no next command: {stderr}"));
    line.split_whitespace().map(str::to_owned).collect()
}

/// Runs a printed `cloudbot ...` command with the test environment.
fn run_printed(base: &str, words: &[String]) -> Output {
    assert_eq!(words[0], "cloudbot");
    run(cloudbot(base).args(&words[1..]))
}

#[test]
fn ctrl_c_before_the_post_exits_130_and_says_nothing_was_started() {
    let emulator = emulator();
    let base = emulator.base_url();
    // A Secrets Manager that accepts the connection and never answers: the CLI is reading its
    // credentials, before anything can reach Cloud BOT.
    let secrets = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", secrets.local_addr().unwrap());
    let child = spawn(
        cloudbot(&base)
            .env_remove("CLOUDBOT_ACCESS_TOKEN")
            .env_remove("CLOUDBOT_SECRET_KEY")
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .args([
                "--secret-id",
                "cloudbot/demo",
                "run",
                &format!("{base}/demo/bots/echo_bot/jobs"),
            ]),
    );
    let (_held, _) = secrets
        .accept()
        .expect("the CLI connects to Secrets Manager");
    let out = interrupt(child);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("nothing that could start or change a job was sent"),
        "{stderr}"
    );
    assert!(emulator.requests().is_empty());
}

#[test]
fn ctrl_c_while_the_post_is_out_exits_4_with_the_command_that_finds_the_job() {
    let emulator = emulator();
    let base = emulator.base_url();
    let bot = format!("{base}/demo/bots/echo_bot/jobs");
    // The issue's case: the emulator creates the job at once and answers 6 s later.
    emulator.set_latency(Duration::from_secs(6));
    let child = spawn(cloudbot(&base).args(["run", &bot, "--json"]));
    wait_for("the job to be created", || emulator.jobs().len() == 1);
    let out = interrupt(child);
    emulator.set_latency(Duration::ZERO);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("a job may have started"), "{stderr}");
    let error = &json(&out)["error"];
    assert_eq!(error["type"], "Cli.Interrupted");
    assert_eq!(error["exit_code"], 4);
    assert_eq!(
        error["next_command"],
        format!("cloudbot jobs {bot} --since 5m")
    );
    // The printed command finds the job that did start.
    let listed = run_printed(&base, &next_command(&stderr));
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    assert!(text(&listed.stdout).contains(&emulator.jobs()[0].job_id));
    assert_eq!(emulator.stats().jobs_created, 1);
}

#[test]
fn ctrl_c_after_the_post_while_following_exits_6_and_names_the_job() {
    use std::io::{BufRead, BufReader};
    let emulator = emulator();
    let base = emulator.base_url();
    let mut child = spawn(&mut follow_run(&base, "slow_bot"));
    // The endpoint line is printed once the job started.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("job reference endpoint:") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "no endpoint line");
    }
    let url = line["job reference endpoint:".len()..].trim().to_owned();
    let out = interrupt(child);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        stderr.contains(&format!("job reference endpoint: {url}")),
        "{stderr}"
    );
    assert_eq!(next_command(&stderr), ["cloudbot", "job", &url, "--follow"]);
    // The job goes on.
    assert_eq!(emulator.jobs().pop().unwrap().status, 2);
}

#[test]
fn transient_read_errors_while_following_are_retried_and_the_run_ends_normally() {
    let emulator = emulator();
    let base = emulator.base_url();
    // Two whole reads fail (each is the client's 4 quick attempts), the third works.
    emulator
        .add_faults(vec![
            FaultRule::new(FaultKind::Status)
                .status(500)
                .method("GET")
                .path_prefix("/demo/jobs/")
                .times(8),
        ])
        .unwrap();
    let out = run(follow_run(&base, "echo_bot").args(["--retry-interval", "100ms", "--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(json(&out)["status"], "succeeded");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("retry 2 of 6"), "{stderr}");
    assert_eq!(emulator.stats().jobs_created, 1);
}

#[test]
fn reads_that_keep_failing_exit_6_with_the_job_after_refer_jobs_retries() {
    let emulator = emulator();
    let base = emulator.base_url();
    emulator
        .add_faults(vec![
            FaultRule::new(FaultKind::Status)
                .status(500)
                .method("GET")
                .path_prefix("/demo/jobs/"),
        ])
        .unwrap();
    let out = run(follow_run(&base, "slow_bot").args(["--retry-interval", "100ms", "--json"]));
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let job = emulator.jobs().pop().unwrap();
    let url = format!("{base}/demo/jobs/{}", job.job_id);
    let error = &json(&out)["error"];
    assert_eq!(error["type"], "CloudBot.Unavailable");
    assert_eq!(error["exit_code"], 6);
    assert_eq!(error["job_reference_endpoint"], url);
    assert_eq!(
        error["next_command"],
        format!("cloudbot job {url} --follow")
    );
    assert!(
        error["message"].as_str().unwrap().contains("after 7 tries"),
        "{error}"
    );
    // ReferJob's budget: the first read and 6 retries, each the client's 4 attempts.
    let reads = emulator
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/demo/jobs/"))
        .count();
    assert_eq!(reads, 7 * 4);
    assert_eq!(emulator.stats().jobs_created, 1);
}

#[test]
fn an_execute_cloud_bot_refused_exits_3_and_starts_nothing() {
    let emulator = emulator();
    let base = emulator.base_url();
    let out = run(cloudbot(&base)
        .env("CLOUDBOT_ACCESS_TOKEN", "demo-refer-token")
        .env("CLOUDBOT_SECRET_KEY", "demo-refer-secret")
        .args(["run", &format!("{base}/demo/bots/echo_bot/jobs"), "--json"]));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let error = &json(&out)["error"];
    assert_eq!(error["type"], "CloudBot.Forbidden");
    assert!(
        error["hint"].as_str().unwrap().contains("Execute"),
        "{error}"
    );
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("running the BOT again is safe"),
        "{error}"
    );
    assert_eq!(error["job_reference_endpoint"], Value::Null);
    assert_eq!(emulator.stats().jobs_created, 0);
}

#[test]
fn cancel_suspends_a_job_named_by_public_id_and_job_id_and_needs_suspend() {
    let emulator = emulator();
    let base = emulator.base_url();
    let bot = format!("{base}/demo/bots/slow_bot/jobs");
    let started = run(cloudbot(&base).args(["run", &bot, "--json"]));
    assert_eq!(started.status.code(), Some(0), "{}", text(&started.stderr));
    let job_id = json(&started)["job"]["job_id"].as_str().unwrap().to_owned();
    let short = format!("demo/{job_id}");

    // A token without Suspend: a clear error, nothing changed.
    let refused = run(cloudbot(&base)
        .env("CLOUDBOT_ACCESS_TOKEN", "demo-refer-token")
        .env("CLOUDBOT_SECRET_KEY", "demo-refer-secret")
        .args(["cancel", &short]));
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused.stderr));
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("CloudBot.Forbidden"), "{stderr}");
    assert!(stderr.contains("Suspend permission"), "{stderr}");
    assert_eq!(emulator.job(&job_id).unwrap().status, 2);

    // The answer lost (500s through the client's retries): the job's state is unknown, and the
    // next command cancels again (DELETE is idempotent).
    emulator
        .add_faults(vec![
            FaultRule::new(FaultKind::Status)
                .status(500)
                .method("DELETE")
                .times(4),
        ])
        .unwrap();
    let lost = run(cloudbot(&base).args(["cancel", &short]));
    assert_eq!(lost.status.code(), Some(6), "{}", text(&lost.stderr));
    let url = format!("{base}/demo/jobs/{job_id}");
    assert_eq!(
        next_command(&text(&lost.stderr)),
        ["cloudbot", "cancel", &url]
    );

    let cancelled = run(cloudbot(&base).args(["--language", "en", "cancel", &short, "--json"]));
    assert_eq!(
        cancelled.status.code(),
        Some(0),
        "{}",
        text(&cancelled.stderr)
    );
    let shown = json(&cancelled);
    assert_eq!(shown["status"], "error");
    assert_eq!(
        shown["job_reference_endpoint"],
        format!("{base}/demo/jobs/{job_id}")
    );
    let record = emulator.job(&job_id).unwrap();
    assert_eq!((record.status, record.suspended), (1, true), "{record:?}");
    let deletes = emulator
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 1 + 4 + 1);

    // `job` takes the short form too.
    let read = run(cloudbot(&base).args(["job", &short, "--json"]));
    assert_eq!(read.status.code(), Some(1), "{}", text(&read.stderr));
    assert_eq!(json(&read)["job"]["job_id"], job_id);
}

#[test]
fn errors_in_json_mode_are_one_json_document_on_stdout_too() {
    let emulator = emulator();
    let base = emulator.base_url();
    let out =
        run(cloudbot(&base).args(["--json", "run", "https://api.c-bot.pro/demo/bots/b/jobs"]));
    assert_eq!(out.status.code(), Some(2));
    let error = &json(&out)["error"];
    assert_eq!(error["type"], "Cli.Usage");
    assert_eq!(error["exit_code"], 2);
    assert!(error["message"].as_str().unwrap().contains("BOT_ENDPOINT"));
    assert!(
        text(&out.stderr).contains("error: "),
        "stderr keeps the text too"
    );
}

#[test]
fn a_real_endpoint_while_on_the_default_emulator_says_so() {
    let out = run(cloudbot("unused")
        .env_remove("CLOUDBOT_API_BASE")
        .args(["run", "https://api.c-bot.pro/demo/bots/echo_bot/jobs"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "BOT_ENDPOINT is on https://api.c-bot.pro, but the CLI is pointed at the local emulator"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("CLOUDBOT_API_BASE=https://api.c-bot.pro"),
        "{stderr}"
    );
    assert!(!stderr.contains("scheme other than"), "{stderr}");
}

#[test]
fn completions_man_page_and_help_come_from_the_command_line_definition() {
    // No credentials needed for any of them.
    let bare = || {
        let mut cmd = cloudbot("unused");
        cmd.env_remove("CLOUDBOT_ACCESS_TOKEN")
            .env_remove("CLOUDBOT_SECRET_KEY");
        cmd
    };
    let bash = run(bare().args(["completions", "bash"]));
    assert_eq!(bash.status.code(), Some(0), "{}", text(&bash.stderr));
    let script =
        std::env::temp_dir().join(format!("cloudbot-completion-{}.bash", std::process::id()));
    std::fs::write(&script, &bash.stdout).unwrap();
    // bash itself loads the script and registers the completion.
    let registered = Command::new("bash")
        .args([
            "-c",
            &format!("source '{}' && complete -p cloudbot", script.display()),
        ])
        .output()
        .unwrap();
    std::fs::remove_file(&script).ok();
    assert!(
        text(&registered.stdout).contains("cloudbot"),
        "{}{}",
        text(&registered.stdout),
        text(&registered.stderr)
    );
    assert!(text(&bash.stdout).contains("cancel"));
    let zsh = run(bare().args(["completions", "zsh"]));
    assert!(text(&zsh.stdout).starts_with("#compdef cloudbot"));
    let fish = run(bare().args(["completions", "fish"]));
    assert!(text(&fish.stdout).contains("complete -c cloudbot"));

    let man = run(bare().arg("man"));
    assert_eq!(man.status.code(), Some(0), "{}", text(&man.stderr));
    let page = text(&man.stdout);
    assert!(page.contains(".TH cloudbot"), "{page}");
    assert!(
        page.contains("a job may exist"),
        "the exit codes are in the man page"
    );
    assert!(page.contains(".SH \"EXIT STATUS\""), "{page}");
    assert!(!page.contains(".SH EXTRA"), "{page}");

    let help = run(bare().arg("--help"));
    assert!(text(&help.stdout).contains("  4  a job may exist"));
}

#[test]
fn times_are_shown_in_the_operators_time_zone() {
    let emulator = emulator();
    let base = emulator.base_url();
    let bot = format!("{base}/demo/bots/echo_bot/jobs");
    assert_eq!(
        run(cloudbot(&base).args(["run", &bot])).status.code(),
        Some(0)
    );
    let raw = emulator.jobs()[0].start_time.clone();
    let at: jiff::Timestamp = raw.parse().unwrap();
    for (zone, abbreviation) in [("Asia/Tokyo", "JST"), ("UTC", "UTC")] {
        let expected = at
            .to_zoned_datetime(jiff::tz::TimeZone::get(zone).unwrap())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string();
        let out = run(cloudbot(&base).env("TZ", zone).args(["jobs", &bot]));
        let shown = text(&out.stdout);
        assert!(
            shown.contains(&format!("{expected} {abbreviation}")),
            "{zone}: {shown}"
        );
    }
}

#[test]
fn missing_aws_region_or_credentials_read_like_the_aws_cli() {
    let home = std::env::temp_dir().join(format!("cloudbot-cli-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let with_secret = || {
        let mut cmd = cloudbot("http://127.0.0.1:8787");
        for var in [
            "CLOUDBOT_ACCESS_TOKEN",
            "CLOUDBOT_SECRET_KEY",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_PROFILE",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_ENDPOINT_URL",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HOME", &home)
            .env("AWS_CONFIG_FILE", home.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
            // Not on EC2: the metadata service would only add a wait.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["--secret-id", "cloudbot/demo", "bots"]);
        cmd
    };
    let no_region = run(&mut with_secret());
    let no_credentials = run(with_secret().env("AWS_REGION", "us-east-1"));
    std::fs::remove_dir_all(&home).ok();
    for (out, message) in [
        (
            &no_region,
            "You must specify a region. You can also configure your region by running \"aws configure\".",
        ),
        (
            &no_credentials,
            "Unable to locate credentials. You can configure credentials by running \"aws configure\".",
        ),
    ] {
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(stderr.contains(message), "{stderr}");
        // The message, not pages of SDK warnings.
        assert!(stderr.lines().count() <= 2, "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_settles_an_unknown_record_through_a_direct_invoke() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    use cloudbot_trigger::idempotency::Idempotency;
    use cloudbot_trigger::table::{DynamoDbStore, KEY_ATTRIBUTE};
    let moto = Moto::start();
    let dynamodb = aws_sdk_dynamodb::Client::new(&moto.sdk_config());
    dynamodb
        .create_table()
        .table_name("idempotency")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(KEY_ATTRIBUTE)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(KEY_ATTRIBUTE)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let secrets = aws_sdk_secretsmanager::Client::new(&moto.sdk_config());
    secrets
        .create_secret()
        .name("cloudbot/demo")
        .secret_string(format!(
            r#"{{"access_token":"{ACCESS_TOKEN}","secret_key":"{SECRET_KEY}"}}"#
        ))
        .send()
        .await
        .unwrap();
    let emulator = Emulator::start_with(EmulatorOptions::new(Seed::demo_with_durations(
        300, 300, 3_000,
    )))
    .await
    .unwrap();
    let base = emulator.base_url();
    let vars = std::collections::HashMap::from([
        ("CLOUDBOT_SECRET_ID", "cloudbot/demo".to_owned()),
        ("CLOUDBOT_API_BASE", base.clone()),
        (
            "CLOUDBOT_DEFAULT_BOT_ENDPOINT",
            format!("{base}/demo/bots/echo_bot/jobs"),
        ),
        ("CLOUDBOT_IDEMPOTENCY_TABLE", "idempotency".to_owned()),
    ]);
    let config = cloudbot_trigger::config::Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let expiry = config.idempotency.as_ref().unwrap().expiry;
    let service = cloudbot_trigger::service::Service::new(config, secrets)
        .unwrap()
        .with_idempotency(Some(Idempotency::new(
            DynamoDbStore::new(dynamodb, "idempotency".into()),
            expiry,
        )));
    let service = std::sync::Arc::new(service);

    // An execute whose answer is lost: the job exists, the record is unknown, and a retry
    // answers CloudBot.OutcomeUnknown with the key in its message.
    emulator
        .add_faults(vec![
            FaultRule::new(FaultKind::ResetAfter)
                .method("POST")
                .times(1),
        ])
        .unwrap();
    let execute = serde_json::json!({"operation": "execute", "idempotency_key": "cli-order-7"});
    let lost = invoke_handler(&service, execute.clone()).await.unwrap_err();
    assert_eq!(lost.error_type, "CloudBot.OutcomeUnknown", "{lost:?}");
    let blocked = invoke_handler(&service, execute.clone()).await.unwrap_err();
    assert_eq!(blocked.error_type, "CloudBot.OutcomeUnknown", "{blocked:?}");
    let job_id = emulator.jobs()[0].job_id.clone();

    let lambda = LambdaStandIn::start(std::sync::Arc::clone(&service)).await;
    let resolve = |args: Vec<String>| {
        let mut cmd = cloudbot(&base);
        cmd.env_remove("CLOUDBOT_ACCESS_TOKEN")
            .env_remove("CLOUDBOT_SECRET_KEY")
            .env("AWS_ENDPOINT_URL_LAMBDA", &lambda.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("CLOUDBOT_FUNCTION", "cloudbot-trigger-live")
            .arg("resolve")
            .args(args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };

    // A key that is not one is refused before anything is invoked.
    let out = resolve(vec!["order-7".into(), "--not-started".into()])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(lambda.invocations.lock().unwrap().is_empty());

    // The whole OutcomeUnknown message, pasted, and the job found in the list as PUBLIC_ID/JOB_ID.
    let out = resolve(vec![
        blocked.error_message.clone(),
        "--started".into(),
        format!("demo/{job_id}"),
        "--json".into(),
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let answer = json(&out);
    assert_eq!(answer["state"], "completed", "{answer}");
    assert_eq!(answer["record_key"], "request:cli-order-7");
    let invocations = lambda.invocations.lock().unwrap().clone();
    assert_eq!(invocations.len(), 1);
    assert_eq!(invocations[0].0, "cloudbot-trigger-live");
    assert_eq!(
        invocations[0].1,
        serde_json::json!({"operation": "resolve_idempotency", "record_key": "request:cli-order-7",
            "resolution": "started", "job_reference_endpoint": format!("{base}/demo/jobs/{job_id}")})
    );
    // Duplicates now get the job as a replay; still one job.
    let replay = invoke_handler(&service, execute).await.unwrap();
    assert_eq!(
        (&replay["job_id"], &replay["replay"]),
        (&Value::from(job_id), &Value::Bool(true))
    );
    assert_eq!(emulator.stats().jobs_created, 1);

    // Resolving it again: the function's own error, with its type.
    let out = resolve(vec![
        "request:cli-order-7".into(),
        "--not-started".into(),
        "--json".into(),
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let error = &json(&out)["error"];
    assert_eq!(error["type"], "InvalidRequest");
    assert!(
        error["message"].as_str().unwrap().contains("completed"),
        "{error}"
    );
}

/// The run ledger table `runs` in `moto` ([`create_ledger_table`]), and the library's
/// own ledger writing to it.
fn ledger_table(moto: &Moto) -> cloudbot_trigger::ledger::Ledger {
    create_ledger_table(moto, "runs");
    let dynamodb = aws_sdk_dynamodb::Client::new(&moto.sdk_config());
    cloudbot_trigger::ledger::Ledger::new(
        cloudbot_trigger::ledger::LedgerTable::new(dynamodb, "runs".into()),
        Duration::from_secs(86_400),
    )
}

/// The CLI (no Cloud BOT behind it) reading the ledger table of [`ledger_table`].
fn reading_ledger(moto: &Moto) -> Command {
    let mut cmd = cloudbot("http://127.0.0.1:9");
    moto.point(&mut cmd)
        .env("CLOUDBOT_RUN_LEDGER_TABLE", "runs");
    cmd
}

/// `cloudbot runs` / `runs show` against a run ledger in moto ([`ledger_table`]), filled
/// through the library's own ledger.
#[tokio::test]
async fn runs_lists_by_bot_status_and_schedule_and_shows_one_with_its_history() {
    use cloudbot_trigger::cloudbot::{ApiBase, JobEndpoint, JobStatus};
    use cloudbot_trigger::idempotency::RecordKey;
    use cloudbot_trigger::ledger::{Observed, Origin};
    use cloudbot_trigger::trigger::Trigger;

    let moto = Moto::start();
    let ledger = ledger_table(&moto);
    let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
    let job = |id: &str| {
        JobEndpoint::parse(&base, &format!("https://api.c-bot.pro/demo/jobs/{id}"), "j").unwrap()
    };
    let arn = "arn:aws:scheduler:ap-northeast-1:123456789012:schedule/default/nightly";
    let key = RecordKey::schedule(arn, "2026-12-07T00:00:00Z").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let observed = |status, bot_id| Observed {
        status,
        bot_id,
        start_time: None,
        elapsed_s: Some(4),
        message: Some("done"),
        output_omitted: false,
    };
    for (id, bot, origin) in [
        (
            "j-1",
            "echo_bot",
            Origin::of(Trigger::Scheduler, Some(&key), false, None, "r1"),
        ),
        (
            "j-2",
            "error_bot",
            Origin {
                caller: Some("arn:aws:iam::123456789012:user/alice".into()),
                ..Origin::of(Trigger::ApiGatewayHttp, None, false, None, "r2")
            },
        ),
    ] {
        ledger
            .learned(
                &job(id),
                &observed(JobStatus::Executing, bot),
                Some(origin),
                deadline,
            )
            .await
            .unwrap();
    }
    ledger
        .learned(&job("j-2"), &observed(JobStatus::Error, ""), None, deadline)
        .await
        .unwrap();
    // j-3 ran past its maximum of 1 s: suspended by a look, recorded overrun (docs/overrun.md).
    let mut with_max = Origin::of(Trigger::Direct, None, false, None, "r3");
    with_max.max_run_s = Some(1);
    ledger
        .learned(
            &job("j-3"),
            &observed(JobStatus::Executing, "slow_bot"),
            Some(with_max),
            deadline,
        )
        .await
        .unwrap();
    ledger
        .suspended_end(
            &job("j-3"),
            &observed(JobStatus::Error, ""),
            cloudbot_trigger::ledger::OVERRUN,
            deadline,
        )
        .await
        .unwrap();

    let runs = |args: &[&str]| {
        let mut cmd = reading_ledger(&moto);
        cmd.arg("runs").args(args);
        run(&mut cmd)
    };
    let names = |out: &Output| -> Vec<String> {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        json(out)["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut all = names(&runs(&["--json"]));
    all.sort();
    assert_eq!(all, ["demo/j-1", "demo/j-2", "demo/j-3"], "by month");
    assert_eq!(
        names(&runs(&["--bot", "demo/echo_bot", "--json"])),
        ["demo/j-1"]
    );
    assert_eq!(names(&runs(&["--status", "error", "--json"])), ["demo/j-2"]);
    assert_eq!(
        names(&runs(&[
            "--status",
            "overrun",
            "--bot",
            "demo/slow_bot",
            "--json"
        ])),
        ["demo/j-3"]
    );
    assert_eq!(
        names(&runs(&[
            "--schedule",
            "nightly",
            "--since",
            "2026-12-01T00:00:00Z",
            "--json"
        ])),
        ["demo/j-1"]
    );
    assert!(names(&runs(&["--since", "2099-01-01", "--json"])).is_empty());

    let out = runs(&["show", "https://api.c-bot.pro/demo/jobs/j-2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("run demo/j-2"), "{shown}");
    assert!(shown.contains("end_status: error"), "{shown}");
    assert!(shown.contains("trigger: api"), "{shown}");
    assert!(
        shown.contains("caller: arn:aws:iam::123456789012:user/alice"),
        "{shown}"
    );
    let history = shown.split("history:").nth(1).unwrap();
    assert!(
        history.find("executing").unwrap() < history.find("error").unwrap(),
        "{shown}"
    );

    let out = runs(&["show", "demo/j-3"]);
    let shown = text(&out.stdout);
    assert!(shown.contains("max_run_s: 1"), "{shown}");
    let history = shown.split("history:").nth(1).unwrap();
    assert!(
        history
            .contains("ended overrun: suspended by the function past its maximum run time of 1 s"),
        "{shown}"
    );

    let out = runs(&["show", "demo/nope"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no run demo/nope"));
    let out = runs(&["--since", "someday"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// `cloudbot usage` against a run ledger in moto (as `runs` above), filled through the library's
/// own ledger: the month's BOT-seconds per BOT (ended runs only), the totals, the share of the
/// allowance, and the reminder of what the ledger cannot see; never a scan.
#[tokio::test]
async fn usage_sums_a_months_runs_per_bot_with_the_share_of_the_allowance() {
    use cloudbot_trigger::cloudbot::{ApiBase, JobEndpoint, JobStatus};
    use cloudbot_trigger::ledger::{Observed, Origin};
    use cloudbot_trigger::trigger::Trigger;

    let moto = Moto::start();
    let ledger = ledger_table(&moto);
    let base = ApiBase::parse("https://api.c-bot.pro").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // Started now (this month in Japan time): two echo runs of 40 s and 20 s, an error run of
    // 7 s, and a slow run still executing.
    for (id, bot, status, elapsed) in [
        ("u-1", "echo_bot", JobStatus::Succeeded, 40),
        ("u-2", "echo_bot", JobStatus::Succeeded, 20),
        ("u-3", "error_bot", JobStatus::Error, 7),
        ("u-4", "slow_bot", JobStatus::Executing, 0),
    ] {
        let job = JobEndpoint::parse(&base, &format!("https://api.c-bot.pro/demo/jobs/{id}"), "j")
            .unwrap();
        let observed = |status| Observed {
            status,
            bot_id: bot,
            start_time: None,
            elapsed_s: Some(elapsed),
            message: None,
            output_omitted: false,
        };
        let origin = Origin::of(Trigger::Direct, None, false, None, "r");
        ledger
            .learned(
                &job,
                &observed(JobStatus::Executing),
                Some(origin),
                deadline,
            )
            .await
            .unwrap();
        if status != JobStatus::Executing {
            ledger
                .learned(&job, &observed(status), None, deadline)
                .await
                .unwrap();
        }
    }

    let usage = |args: &[&str]| {
        let mut cmd = reading_ledger(&moto);
        cmd.env_remove("CLOUDBOT_BUDGET_MONTHLY_SECONDS")
            .arg("usage")
            .args(args);
        run(&mut cmd)
    };
    let out = usage(&["--allowance", "1000", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = json(&out);
    assert_eq!(
        (
            v["seconds"].as_u64(),
            v["runs"].as_u64(),
            v["open"].as_u64()
        ),
        (Some(67), Some(4), Some(1))
    );
    assert_eq!(v["bots"][0]["bot"], "demo/echo_bot");
    assert_eq!(
        (
            v["bots"][0]["seconds"].as_u64(),
            v["bots"][0]["runs"].as_u64()
        ),
        (Some(60), Some(2))
    );
    let slow = v["bots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bot"] == "demo/slow_bot")
        .unwrap();
    assert_eq!(
        (slow["seconds"].as_u64(), slow["open"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(v["allowance_s"], 1000);
    assert!(
        (v["share_percent"].as_f64().unwrap() - 6.7).abs() < 1e-9,
        "{v}"
    );
    assert!(v["not_seen"].as_str().unwrap().contains("BOT editor"));

    // The text: per BOT, the total, the share, and the reminder.
    let out = usage(&["--allowance", "1000"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    for part in [
        "demo/echo_bot",
        "60 s",
        "67 s",
        "6.7% used",
        "BOT editor",
        "1 open",
    ] {
        assert!(shown.contains(part), "{part} in {shown}");
    }
    // Another month has nothing; a malformed month is a usage error.
    let out = usage(&["--month", "2001-01", "--json"]);
    assert_eq!(json(&out)["runs"], 0);
    assert!(json(&out)["forecast"].is_null());
    let out = usage(&["--month", "2026-13"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

// ------------------------------------------------------------------------------------------------
// `subscribe`, `unsubscribe`, `subscriptions` (docs/events.md, "Runs started outside AWS").

/// `cloudbot ARGS... --json` for BOT-done subscriptions with the stack's callback URL.
fn subscription_command(base: &str, command: &str, callback: Option<&str>) -> Output {
    let mut cmd = cloudbot(base);
    cmd.args([command, "demo/echo_bot", "--json"]);
    cmd.env_remove("CLOUDBOT_CALLBACK_BASE_URL");
    if let Some(url) = callback {
        cmd.args(["--callback-url", url]);
    }
    run(&mut cmd)
}

#[test]
fn subscribe_is_idempotent_unsubscribe_removes_this_stacks_and_no_token_is_printed() {
    let emulator = emulator();
    let base = emulator.base_url();
    let callback = "http://127.0.0.1:9/callbacks";
    // The token the function would expect (the demo secret key).
    let url = cloudbot_trigger::bot_done::webhook_url(
        callback,
        &cloudbot_trigger::cloudbot::BotEndpoint::parse(
            &cloudbot_trigger::cloudbot::ApiBase::parse(&base).unwrap(),
            &format!("{base}/demo/bots/echo_bot/jobs"),
            "b",
        )
        .unwrap(),
        &cloudbot_trigger::cloudbot::Credentials::new(ACCESS_TOKEN.into(), SECRET_KEY.into()),
    );
    let token = url.rsplit('/').next().unwrap().to_owned();

    let first = subscription_command(&base, "subscribe", Some(callback));
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let made = json(&first);
    assert_eq!(made["state"], "subscribed", "{made}");
    let subs = emulator.subscriptions();
    assert_eq!(subs.len(), 1);
    assert_eq!(
        subs[0].callback_endpoint, url,
        "the URL the function checks"
    );

    let again = subscription_command(&base, "subscribe", Some(callback));
    assert_eq!(again.status.code(), Some(0));
    let again = json(&again);
    assert_eq!(
        (&again["state"], &again["subscribe_id"]),
        (&serde_json::json!("exists"), &made["subscribe_id"])
    );
    assert_eq!(emulator.subscriptions().len(), 1, "never subscribed twice");

    let listed = subscription_command(&base, "subscriptions", Some(callback));
    assert_eq!(listed.status.code(), Some(0));
    let listed_json = json(&listed);
    assert_eq!(listed_json["subscriptions"][0]["this_stack"], true);
    assert_eq!(
        listed_json["subscriptions"][0]["callback_endpoint"],
        format!("{callback}/bot-done/demo/echo_bot/***")
    );

    let gone = subscription_command(&base, "unsubscribe", Some(callback));
    assert_eq!(gone.status.code(), Some(0));
    assert_eq!(json(&gone)["state"], "unsubscribed");
    assert!(emulator.subscriptions().is_empty());
    let none = subscription_command(&base, "unsubscribe", Some(callback));
    assert_eq!(none.status.code(), Some(0));
    assert_eq!(json(&none)["state"], "not_subscribed");

    for output in [&first, &listed, &gone, &none] {
        let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert!(!all.contains(&token), "the token was printed: {all}");
        assert_no_credentials(output);
    }
}

#[test]
fn subscribe_without_a_valid_callback_url_exits_2_and_sends_nothing() {
    let emulator = emulator();
    let base = emulator.base_url();
    for callback in [
        None,
        Some("http://cb.example/callbacks"),
        Some("https://cb.example/other"),
    ] {
        let output = subscription_command(&base, "subscribe", callback);
        assert_eq!(output.status.code(), Some(2), "{callback:?}");
        assert!(text(&output.stdout).contains("callback"), "{callback:?}");
    }
    assert!(emulator.requests().is_empty());
}
