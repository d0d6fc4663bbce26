"""The catalogue's promises to every transport and every LLM that reads it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tool_server.redaction import redact
from tool_server.tools import CATALOGUE, ToolResult
from tool_server.tools.base import ToolSpec

SPECS = list(CATALOGUE)


def test_the_catalogue_holds_every_tool_in_a_stable_order() -> None:
    assert CATALOGUE.names() == [
        "check_availability",
        "book_appointment",
        "hold_slot",
        "release_hold",
        "reschedule_appointment",
        "cancel_appointment",
        "find_appointments",
        "find_contact",
        "create_contact",
        "add_note",
        "create_payment_link",
        "get_payment_status",
        "send_sms",
        "send_whatsapp",
        "send_email",
        "notify_team",
        "trigger_workflow",
        "find_customer_account",
        "create_invoice",
        "send_invoice",
        "get_invoice_status",
    ]


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_every_tool_has_a_verb_noun_name_a_description_and_examples(spec: ToolSpec[Any, Any]) -> None:
    verb, _, noun = spec.name.partition("_")
    assert verb
    assert noun
    assert len(spec.description) > 40
    assert spec.examples
    assert "Examples:" in spec.full_description


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_every_example_is_valid_input_for_its_tool(spec: ToolSpec[Any, Any]) -> None:
    for example in spec.examples:
        spec.input_model.model_validate(example, context={"phone_region": "US"})


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_input_schemas_are_flat_objects_an_llm_can_fill(spec: ToolSpec[Any, Any]) -> None:
    schema = spec.input_schema
    text = json.dumps(schema)

    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert "$ref" not in text
    assert "$defs" not in text
    assert '{"type": "null"}' not in text
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{spec.name}.{name} has no description"
    for prop in schema["properties"].values():
        assert prop.get("type") in {"string", "integer", "number", "boolean", "array", "object"}
        if prop["type"] == "object":
            # Name/value pairs only (template variables, workflow data): one level, scalar values, bounded.
            values = prop["additionalProperties"]
            assert "maxProperties" in prop
            for option in values.get("anyOf", [values]):
                assert option["type"] in {"string", "integer", "number", "boolean"}
                assert option["type"] != "string" or "maxLength" in option


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_every_result_carries_speech(spec: ToolSpec[Any, Any]) -> None:
    assert issubclass(spec.output_model, ToolResult)
    assert "speech" in spec.output_schema["required"]


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_hints_are_coherent(spec: ToolSpec[Any, Any]) -> None:
    if spec.read_only:
        assert not spec.destructive
    assert spec.destructive == (spec.name == "cancel_appointment")


def test_redaction_masks_phones_and_emails_wherever_they_are() -> None:
    redacted = redact(
        {
            "caller_phone": "+12125550142",
            "caller_email": "jane@example.com",
            "to": "+442079460958",
            "notes": "reach me on +1 (212) 555-0199, or jane.doe@mail.example",
            "duration_minutes": 30,
            "nested": [{"contact_phone": "2125550100"}],
        }
    )

    assert redacted == {
        "caller_phone": "***42",
        "caller_email": "***@example.com",
        "to": "***58",
        "notes": "reach me on ***99, or ***@mail.example",
        "duration_minutes": 30,
        "nested": [{"contact_phone": "***00"}],
    }
