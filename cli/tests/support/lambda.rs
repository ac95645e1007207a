//! A local stand-in of the Lambda Invoke API running the function's handler in-process: the
//! function target of `resolve` (tests/cli.rs) and of `schedules backfill` (tests/schedules.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;

/// A local stand-in of the Lambda Invoke REST API (`POST /2015-03-31/functions/{name}/invocations`)
/// that runs the library's handler in-process, wired as `src/main.rs` wires it (moto for the
/// secret and the idempotency table, the emulator as Cloud BOT). Function errors are answered
/// the way Lambda answers them: 200 with `X-Amz-Function-Error: Unhandled` and the error JSON.
pub struct LambdaStandIn {
    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_LAMBDA`.
    pub endpoint: String,
    /// (function name from the path, payload) of every invoke.
    pub invocations: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
}

impl LambdaStandIn {
    /// Serves invokes of `service` until the test ends.
    pub async fn start(
        service: std::sync::Arc<cloudbot_trigger::service::Service>,
    ) -> LambdaStandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let invocations = std::sync::Arc::default();
        let seen = std::sync::Arc::clone(&invocations);
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let service = std::sync::Arc::clone(&service);
                let seen = std::sync::Arc::clone(&seen);
                tokio::spawn(serve_invokes(socket, service, seen));
            }
        });
        LambdaStandIn {
            endpoint,
            invocations,
        }
    }
}

/// HTTP/1.1 keep-alive loop: one invoke per request (Content-Length bodies, as the SDK sends).
async fn serve_invokes(
    socket: tokio::net::TcpStream,
    service: std::sync::Arc<cloudbot_trigger::service::Service>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut socket = BufReader::new(socket);
    loop {
        let mut request_line = String::new();
        if socket.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let mut length = 0;
        loop {
            let mut header = String::new();
            socket.read_line(&mut header).await.unwrap();
            if header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        socket.read_exact(&mut body).await.unwrap();
        let name = path
            .strip_prefix("/2015-03-31/functions/")
            .and_then(|rest| rest.strip_suffix("/invocations"))
            .unwrap_or_else(|| panic!("not an Invoke path: {path}"))
            .to_owned();
        let payload: Value = serde_json::from_slice(&body).unwrap();
        seen.lock().unwrap().push((name, payload.clone()));
        // Boxed: the handler's future is deep, and its layout inside this loop's would exceed
        // the compiler's query depth limit.
        let answer = Box::pin(invoke_handler(&service, payload)).await;
        let (extra, answer) = match answer {
            Ok(value) => ("", value),
            Err(diagnostic) => (
                "x-amz-function-error: Unhandled\r\n",
                serde_json::json!({"errorType": diagnostic.error_type,
                                   "errorMessage": diagnostic.error_message}),
            ),
        };
        let answer = answer.to_string();
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-amzn-requestid: test\r\n\
             x-amz-executed-version: $LATEST\r\n{extra}content-length: {}\r\n\r\n",
            answer.len()
        );
        let stream = socket.get_mut();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(answer.as_bytes()).await.unwrap();
    }
}

/// The handler with a 30 s deadline, as the Lambda runtime would call it.
pub async fn invoke_handler(
    service: &cloudbot_trigger::service::Service,
    payload: Value,
) -> Result<Value, lambda_runtime::Diagnostic> {
    // Deserialized as the runtime does it (a payload always deserializes).
    let payload: cloudbot_trigger::payload::Payload = serde_json::from_value(payload).unwrap();
    let mut context = lambda_runtime::Context::default();
    context.request_id = "cli-test".into();
    context.deadline = (std::time::SystemTime::now() + Duration::from_secs(30))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    service
        .handle(lambda_runtime::LambdaEvent::new(payload, context))
        .await
        .map(|raw| serde_json::from_str(raw.get()).unwrap())
}
