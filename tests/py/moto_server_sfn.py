"""`moto_server` with the names of Step Functions' own service integration mapped, so a nested
workflow (`arn:aws:states:::states:startExecution.sync:2`) runs in moto's interpreter.

Why: ASL names the integration's parameters as the Step Functions docs do (`StateMachineArn`,
`Name`, `Input`) and reads its result the same way (`$.Output`, `ExecutionArn`), while the API
(and boto3) spells them `stateMachineArn`, `executionArn`, ... moto 5.2.5's interpreter is
LocalStack's, whose `StateTaskService._normalise_parameters` / `_normalise_response` translate
between the two with botocore's shapes; moto ships both as no-ops
(moto/stepfunctions/parser/asl/component/state/exec/state_task/service/state_task_service.py, the
same in moto's main branch), so every `states:startExecution` task fails with
`States.Runtime` / `'StateMachineArn'` before any request is sent. This launcher fills in that
translation for the `states` integration only (its parameters and results are flat: the first
letter's case is the whole difference) and starts `moto_server` as its console script does. The
Lambda integration and everything else are moto's own. Used by tests/py/test_state_machines.py.

    python tests/py/moto_server_sfn.py -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import sys

from moto.server import main
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)

_moto_normalise_parameters = StateTaskServiceSfn._normalise_parameters


def _normalise_parameters(self, parameters: dict, boto_service_name=None, service_action_name=None) -> None:
    # moto's own step first: `Input` given as JSON becomes the string the API takes.
    _moto_normalise_parameters(self, parameters, boto_service_name, service_action_name)
    for key in list(parameters):
        parameters[key[:1].lower() + key[1:]] = parameters.pop(key)


def _normalise_response(self, response, boto_service_name=None, service_action_name=None) -> None:
    if isinstance(response, dict):
        for key in list(response):
            response[key[:1].upper() + key[1:]] = response.pop(key)


StateTaskServiceSfn._normalise_parameters = _normalise_parameters
StateTaskServiceSfn._normalise_response = _normalise_response

if __name__ == "__main__":
    sys.exit(main())
