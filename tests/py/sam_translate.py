"""Prints template.yaml as CloudFormation after the AWS::Serverless transform, offline.

Run with the SAM CLI's own interpreter (`.tools/venv-sam/bin/python tests/py/sam_translate.py
template.yaml`): it is the translation `sam validate` performs (SAM CLI's SamTemplateValidator,
which also stands in placeholder S3 URIs for local CodeUri/DefinitionUri), with no IAM call for
managed policy ARNs (the template names none). Used by test_template.py to check what the
generated resources invoke; not a test module itself.
"""

import json
import sys

from samcli.lib.translate.sam_template_validator import SamTemplateValidator
from samcli.yamlhelper import yaml_parse


class NoManagedPolicies:
    """Managed policy name -> ARN map; the template uses none, so nothing is looked up."""

    def load(self):
        return {}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        template = yaml_parse(f.read())
    translated = SamTemplateValidator(template, NoManagedPolicies(), region="us-east-1").get_translated_template_if_valid()
    if isinstance(translated, str):
        translated = yaml_parse(translated)
    json.dump(translated, sys.stdout, default=str)


if __name__ == "__main__":
    main()
