//! The harness's own plumbing against the real floor binary: the test kit's Runtime API server
//! hands out events with the documented headers, the runtime polls, answers, and the sandbox
//! reports cold init and peak RSS; a CPU cgroup throttles the floor; the CPU model's quota and
//! the template's memory size. (The stand-ins that need no bootstrap: testkit/tests.)

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use cloudbot_testkit::sandbox::Sandbox;

fn floor_env() -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_FUNCTION_NAME", "floor"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[tokio::test]
async fn floor_polls_and_echoes_events_through_the_runtime_api() {
    let dir = std::env::temp_dir().join(format!("cloudbot-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_lambda-floor"));
    let mut sb = Sandbox::spawn(bin, &floor_env(), &dir.join("floor.log"))
        .await
        .unwrap();
    let init = sb.cold_init().await.unwrap();
    assert!(init > Duration::ZERO);
    for n in 0..3 {
        let payload = format!("{{\"n\":{n}}}");
        let out = sb
            .api
            .invoke(Bytes::from(payload.clone()), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(out.result.unwrap(), Bytes::from(payload));
        assert!(out.received >= out.handed_out);
    }
    // One poll per invocation plus the one the runtime sends right after its last answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sb.api.polls() < 4 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(sb.api.polls(), 4);
    assert!(sb.peak_rss_kib().unwrap() > 0);
    sb.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn runtime_that_cannot_start_is_reported_not_waited_for() {
    let dir = std::env::temp_dir().join(format!("cloudbot-bench-test2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Without AWS_LAMBDA_FUNCTION_NAME lambda_runtime refuses to start and the process exits.
    let bin = Path::new(env!("CARGO_BIN_EXE_lambda-floor"));
    let mut sb = Sandbox::spawn(bin, &[], &dir.join("floor.log"))
        .await
        .unwrap();
    let err = sb.cold_init().await.unwrap_err();
    assert!(err.to_string().contains("exited before polling"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cpu_quota_is_memory_over_1769_of_the_period() {
    use cloudbot_bench::harness::CpuConfig;
    let at = |memory_mb, period_ms| {
        CpuConfig {
            memory_mb,
            period: Duration::from_millis(period_ms),
        }
        .quota()
    };
    assert_eq!(at(1769, 20), Duration::from_millis(20));
    assert_eq!(at(128, 100), Duration::from_nanos(7_235_726));
    assert_eq!(at(128, 20), Duration::from_nanos(1_447_145));
}

#[test]
fn template_default_memory_is_read_from_the_template() {
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let mb = cloudbot_bench::harness::template_memory(&template).unwrap();
    assert!(mb >= 128, "{mb}");
}

#[tokio::test]
async fn a_cpu_group_holds_the_process_takes_the_quota_and_is_removed() {
    use cloudbot_testkit::cgroup::{self, Cgroup, Controller};
    if let Err(why) = cgroup::available(Controller::Cpu) {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must run the CPU model: {why}"
        );
        eprintln!("SKIPPED: {why}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("cloudbot-bench-test3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_lambda-floor"));
    let mut sb = Sandbox::spawn(bin, &floor_env(), &dir.join("floor.log"))
        .await
        .unwrap();
    let group = Cgroup::create(Controller::Cpu).unwrap();
    let path = group.path().to_owned();
    group.add(sb.pid().unwrap()).unwrap();
    sb.cold_init().await.unwrap();
    group
        .set_cpu_quota(Duration::from_micros(1447), Duration::from_millis(20))
        .unwrap();
    let read = |f: &str| std::fs::read_to_string(path.join(f)).unwrap();
    assert_eq!(read("cpu.cfs_quota_us").trim(), "1447");
    assert_eq!(read("cpu.cfs_period_us").trim(), "20000");
    assert_eq!(read("cgroup.procs").trim(), sb.pid().unwrap().to_string());
    let out = sb
        .api
        .invoke(Bytes::from_static(b"{}"), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(out.result.is_ok());
    sb.stop().await.unwrap();
    drop(group);
    assert!(!path.exists(), "the group is removed");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_post_floor_forwards_an_execute_over_https_and_returns_the_job() {
    use cloudbot_emulator::{
        DEMO_ACCESS_TOKEN, DEMO_PUBLIC_ID, DEMO_SECRET_KEY, Emulator, EmulatorOptions, Seed, TestCa,
    };
    let dir = std::env::temp_dir().join(format!("cloudbot-bench-test-post-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = TestCa::generate().unwrap();
    let emulator = Emulator::start_with(EmulatorOptions::new(Seed::demo()).tls(ca.clone()))
        .await
        .unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();
    let mut env = floor_env();
    env.extend(
        [
            (
                "CLOUDBOT_TEST_ONLY_EXTRA_CA_FILE",
                ca_file.to_string_lossy().into_owned(),
            ),
            ("FLOOR_POST_ACCESS_TOKEN", DEMO_ACCESS_TOKEN.to_owned()),
            ("FLOOR_POST_SECRET_KEY", DEMO_SECRET_KEY.to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let bin = Path::new(env!("CARGO_BIN_EXE_floor-post"));
    let mut sb = Sandbox::spawn(bin, &env, &dir.join("floor-post.log"))
        .await
        .unwrap();
    sb.cold_init().await.unwrap();
    let endpoint = format!(
        "{}/{DEMO_PUBLIC_ID}/bots/{}/jobs",
        emulator.base_url(),
        cloudbot_testkit::emulator::ECHO_BOT
    );
    let mut returned = Vec::new();
    for n in 0..2 {
        let event = cloudbot_testkit::function::execute_event(&endpoint, n);
        let out = sb.api.invoke(event, Duration::from_secs(10)).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&out.result.unwrap()).unwrap();
        returned.push(body["job_id"].as_str().unwrap().to_owned());
    }
    sb.stop().await.unwrap();
    // One job per event, each the one the emulator created, over one kept connection.
    let known: Vec<String> = emulator.jobs().into_iter().map(|j| j.job_id).collect();
    assert_eq!(known.len(), 2);
    assert!(returned.iter().all(|id| known.contains(id)));
    assert_ne!(returned[0], returned[1]);
    assert_eq!(emulator.stats().connections_accepted, 1);
}
