"""The Lambda Invoke API in front of `cargo lambda watch`, for moto's Step Functions interpreter.

moto runs state machines for real when `execute_state_machine` is on, and sends every
`arn:aws:states:::lambda:invoke` task to `http://localhost:$MOTO_PORT` as a Lambda `Invoke` REST
call (`POST /2015-03-31/functions/{FunctionName}/invocations`). `cargo lambda watch` serves the
same path but differs from Lambda in three ways this proxy smooths over:

* the state machine names the function by its full ARN; watch only knows the binary name;
* a function error comes back as HTTP 500, where Lambda answers 200 with
  `X-Amz-Function-Error: Unhandled` and the `{"errorType", "errorMessage"}` body (moto needs the
  latter to turn it into a task failure that Retry/Catch match on the errorType);
* Lambda always sends `x-amzn-RequestId` and `X-Amz-Executed-Version`, which moto reads.

The proxy also records every invocation (for assertions such as "ExecuteBot ran exactly once")
and can answer the next N invocations with a Lambda throttling error
(`TooManyRequestsException`, i.e. `Lambda.TooManyRequestsException` in Step Functions) without
calling the function, to test the Lambda-level Retry. It can also fail the next N execute
invocations *after* the function ran (`service_exception_after_next`): the function's answer is
dropped and Step Functions gets `Lambda.ServiceException`, the case where it cannot tell whether
a job was started.

Start it BEFORE moto (moto needs its port in `MOTO_PORT`), and point it at watch once watch runs
(`set_target`). Binds 127.0.0.1 on an ephemeral port; `close()` stops it.

moto sends *every* service integration of a state machine to `localhost:$MOTO_PORT`, not only
Lambda's (moto/stepfunctions/parser/asl/utils/boto_client.py): a nested workflow's
`states:startExecution.sync:2` task calls StartExecution and then DescribeExecution there. With
`set_aws_endpoint(moto.endpoint)` the proxy forwards every request that is not a Lambda Invoke to
moto as it came (method, path, headers, body), so moto's interpreter starts and follows the nested
execution in moto itself, as Step Functions would.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_INVOKE_PREFIX = "/2015-03-31/functions/"
_INVOKE_SUFFIX = "/invocations"


@dataclass
class Invocation:
    """One Invoke call the proxy answered."""

    function: str
    payload: object
    started: float
    ended: float = 0.0
    status: int = 0
    function_error: str | None = None
    response: object = None
    throttled: bool = False
    failed_after_run: bool = False


@dataclass
class _State:
    target: str | None = None
    aws_endpoint: str | None = None
    throttle_next: int = 0
    fail_after_run_next: int = 0
    invocations: list[Invocation] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def function_name_of(name_or_arn: str) -> str:
    """The bare function name of `name`, `name:qualifier` or a full/partial function ARN."""
    parts = name_or_arn.split(":")
    if len(parts) >= 7 and parts[0] == "arn":
        # arn:aws:lambda:region:account:function:name[:qualifier]
        return parts[6]
    if len(parts) >= 3 and parts[1] == "function":
        # account:function:name[:qualifier]
        return parts[2]
    return parts[0]


class LambdaProxy:
    """A threaded HTTP server speaking Lambda's Invoke API to one `cargo lambda watch` function."""

    def __init__(self, function_name: str = "cloudbot-trigger", timeout_s: float = 130.0):
        self.function_name = function_name
        self._timeout_s = timeout_s
        self._state = _State()
        handler = self._handler_class()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="lambda-proxy", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_target(self, watch_url: str) -> None:
        """Sends invocations to `cargo lambda watch` at `watch_url` (e.g. http://127.0.0.1:9000)."""
        with self._state.lock:
            self._state.target = watch_url.rstrip("/")

    def set_aws_endpoint(self, url: str) -> None:
        """Forwards every request that is not a Lambda Invoke to `url` (moto)."""
        with self._state.lock:
            self._state.aws_endpoint = url.rstrip("/")

    def throttle_next(self, count: int) -> None:
        """Answers the next `count` invocations with TooManyRequestsException (HTTP 429)."""
        with self._state.lock:
            self._state.throttle_next = count

    def service_exception_after_next(self, count: int) -> None:
        """Runs the next `count` execute invocations, then answers Lambda's ServiceException
        (HTTP 500) instead of the function's result."""
        with self._state.lock:
            self._state.fail_after_run_next = count

    def invocations(self) -> list[Invocation]:
        """Every invocation so far, in arrival order."""
        with self._state.lock:
            return list(self._state.invocations)

    def clear(self) -> None:
        """Forgets recorded invocations and pending throttles."""
        with self._state.lock:
            self._state.invocations.clear()
            self._state.throttle_next = 0
            self._state.fail_after_run_next = 0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "LambdaProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 - quiet: pytest shows failures
                pass

            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urllib.parse.urlsplit(self.path).path
                if not (path.startswith(_INVOKE_PREFIX) and path.endswith(_INVOKE_SUFFIX)):
                    with proxy._state.lock:
                        aws_endpoint = proxy._state.aws_endpoint
                    if aws_endpoint is None:
                        self._error(404, "UnknownOperationException", f"the Lambda proxy only serves Invoke, not {path}")
                    else:
                        self._forward(aws_endpoint, body)
                    return
                raw_name = urllib.parse.unquote(path[len(_INVOKE_PREFIX) : -len(_INVOKE_SUFFIX)])
                name = function_name_of(raw_name)
                if name != proxy.function_name:
                    self._error(404, "ResourceNotFoundException", f"Function not found: {raw_name}")
                    return
                invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
                if invocation_type != "RequestResponse":
                    self._error(400, "InvalidParameterValueException", f"the proxy only does RequestResponse, not {invocation_type}")
                    return
                proxy._invoke(self, name, body)

            def _forward(self, endpoint: str, body: bytes) -> None:
                """The request as it came, to `endpoint`; its answer as it came back."""
                skip = {"host", "content-length", "connection"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                request = urllib.request.Request(f"{endpoint}{self.path}", data=body, method=self.command, headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=proxy._timeout_s) as resp:
                        status, resp_headers, data = resp.status, resp.headers, resp.read()
                except urllib.error.HTTPError as err:
                    status, resp_headers, data = err.code, err.headers, err.read()
                self.send_response(status)
                for key, value in resp_headers.items():
                    if key.lower() not in skip | {"server", "date", "transfer-encoding"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, error_type: str, message: str) -> None:
                self.send_json(status, {"Type": "User", "message": message}, {"x-amzn-ErrorType": error_type})

            def send_json(self, status: int, value: object, headers: dict[str, str], raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                for key, val in headers.items():
                    self.send_header(key, val)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _invoke(self, handler, name: str, body: bytes) -> None:
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = body.decode("utf-8", "replace")
        record = Invocation(function=name, payload=payload, started=time.time())
        with self._state.lock:
            self._state.invocations.append(record)
            target = self._state.target
            throttled = self._state.throttle_next > 0
            if throttled:
                self._state.throttle_next -= 1
            is_execute = isinstance(payload, dict) and (
                "idempotency_key" in payload or payload.get("operation", "execute") == "execute"
            )
            fail_after_run = not throttled and is_execute and self._state.fail_after_run_next > 0
            if fail_after_run:
                self._state.fail_after_run_next -= 1

        if throttled:
            record.throttled = True
            self._finish(record, 429, None, None)
            handler.send_json(
                429,
                {"Type": "User", "message": "Rate Exceeded.", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"},
                {"x-amzn-ErrorType": "TooManyRequestsException"},
            )
            return
        if target is None:
            self._finish(record, 502, None, None)
            handler.send_json(502, {"message": "the Lambda proxy has no target yet"}, {"x-amzn-ErrorType": "ServiceException"})
            return

        request = urllib.request.Request(
            f"{target}{_INVOKE_PREFIX}{name}{_INVOKE_SUFFIX}",
            data=body or b"{}",
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as resp:
                status, data, function_error = resp.status, resp.read(), resp.headers.get("X-Amz-Function-Error")
        except urllib.error.HTTPError as err:
            status, data, function_error = err.code, err.read(), err.headers.get("X-Amz-Function-Error")
        except (urllib.error.URLError, OSError) as err:
            # watch is not reachable: Lambda itself failed, not the function.
            self._finish(record, 502, None, None)
            handler.send_json(502, {"message": f"cargo lambda watch unreachable: {err}"}, {"x-amzn-ErrorType": "ServiceException"})
            return

        if status == 500 or (status == 200 and function_error):
            # A function error: Lambda reports it as a successful Invoke with the error as payload.
            self._finish(record, 200, function_error or "Unhandled", _parse(data))
            handler.send_json(
                200,
                None,
                {"X-Amz-Function-Error": function_error or "Unhandled", "X-Amz-Executed-Version": "$LATEST"},
                raw=data,
            )
            return
        if status != 200:
            self._finish(record, 502, None, _parse(data))
            handler.send_json(
                502,
                {"message": f"cargo lambda watch answered HTTP {status}"},
                {"x-amzn-ErrorType": "ServiceException"},
            )
            return
        if fail_after_run:
            # The function ran (and may have started a job); Lambda itself then fails.
            record.failed_after_run = True
            self._finish(record, 500, None, _parse(data))
            handler.send_json(
                500,
                {"Type": "Service", "message": "Lambda failed after the function ran (injected by the test proxy)"},
                {"x-amzn-ErrorType": "ServiceException"},
            )
            return
        self._finish(record, 200, None, _parse(data))
        handler.send_json(200, None, {"X-Amz-Executed-Version": "$LATEST"}, raw=data)

    def _finish(self, record: Invocation, status: int, function_error: str | None, response: object) -> None:
        with self._state.lock:
            record.ended = time.time()
            record.status = status
            record.function_error = function_error
            record.response = response


def _parse(data: bytes) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")
