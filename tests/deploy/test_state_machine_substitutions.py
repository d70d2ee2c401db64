"""Every ``${Placeholder}`` of the state machine resolves, from the template, to one of its resources."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.helpers.documents import walk
from tests.helpers.paths import ROOT

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
PSEUDO = {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::URLSuffix"}


def machine(sam: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = sam["Resources"]["TrainingPipeline"]["Properties"]
    return props


def referenced(value: Any) -> set[str]:
    """Logical ids (and pseudo parameters) a Ref / Fn::GetAtt / Fn::Sub value points at."""
    names: set[str] = set()
    for node in walk(value):
        if isinstance(node, dict):
            if "Ref" in node:
                names.add(node["Ref"])
            if "Fn::GetAtt" in node:
                names.add(node["Fn::GetAtt"][0])
            if "Fn::Sub" in node:
                text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
                names |= {m.split(".")[0] for m in re.findall(r"\$\{([A-Za-z0-9_:.]+)\}", text)}
    return names


def test_the_template_embeds_the_current_definition(sam: dict[str, Any]) -> None:
    on_disk = json.loads((ROOT / "statemachines" / "training_pipeline.asl.json").read_text())
    assert machine(sam)["Definition"] == on_disk


def test_every_placeholder_resolves_to_a_resource_of_the_template(sam: dict[str, Any]) -> None:
    text = json.dumps(machine(sam)["Definition"])
    placeholders = set(PLACEHOLDER.findall(text))
    substitutions = machine(sam)["DefinitionSubstitutions"]
    assert placeholders, "the definition has placeholders"
    assert placeholders == set(substitutions), "every placeholder has a substitution, and no extra one"
    for name, value in substitutions.items():
        targets = referenced(value)
        assert targets, f"${{{name}}} is a literal, not a resource of the stack"
        resources = targets - PSEUDO
        assert resources, name
        assert resources <= set(sam["Resources"]), (
            f"${{{name}}} points at {resources - set(sam['Resources'])}"
        )
    # Substituting a stand-in for every value leaves valid JSON with no placeholder left.
    resolved = PLACEHOLDER.sub(lambda m: f"arn:stand-in:{m.group(1)}", text)
    assert "${" not in resolved
    json.loads(resolved)


def test_function_placeholders_resolve_to_the_matching_function(sam: dict[str, Any]) -> None:
    for name, value in machine(sam)["DefinitionSubstitutions"].items():
        if name.endswith("FunctionArn"):
            target = value["Fn::GetAtt"][0]
            assert sam["Resources"][target]["Type"] == "AWS::Serverless::Function"
            assert f"{target}FunctionArn" == name
