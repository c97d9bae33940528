"""The natalizumab TOUCH Pre-infusion Patient Checklist as FHIR R4 (pure): the Questionnaire
(its canonical form) and one QuestionnaireResponse per completed checklist (domain.md §9).

The response holds the checklist as recorded (authorization, the three questions) and the
outcome taken from the finished session: infused or not (with the reason), so it can be
submitted whether or not the patient was infused. Wording is paraphrased from the 2013 form:
check the current form with the manufacturer before relying on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from fhir_mappings.datatypes import fhir_date_time
from services.infusion_bridge.domain.session_events import TouchChecklist

__all__ = [
    "TOUCH_QUESTIONNAIRE_URL",
    "TOUCH_QUESTIONNAIRE_VERSION",
    "touch_questionnaire",
    "touch_response",
]

TOUCH_QUESTIONNAIRE_URL: Final = "urn:infusion-bridge:questionnaire:touch-pre-infusion-checklist"
TOUCH_QUESTIONNAIRE_VERSION: Final = "1"

_QUESTIONS: Final = (
    (
        "authorized",
        "boolean",
        "Is the patient currently authorized to receive natalizumab "
        "(TOUCH On-Line, or a current Notice of Patient Authorization)?",
        True,
    ),
    ("authorization-date", "date", "Date of the current authorization", False),
    (
        "new-or-worsening-symptoms",
        "boolean",
        "Over the past month, has the patient had any new "
        "or worsening medical problems (such as a new or sudden change in thinking, eyesight, "
        "balance or strength) that lasted several days?",
        True,
    ),
    (
        "immunocompromising-condition",
        "boolean",
        "Does the patient have a condition that weakens "
        "the immune system (such as HIV/AIDS, leukaemia or lymphoma, or an organ transplant)?",
        True,
    ),
    (
        "immunosuppressant-medicines",
        "boolean",
        "In the past month, has the patient taken "
        "medicines that weaken the immune system (including cancer treatments or other MS "
        "therapies)?",
        True,
    ),
    ("infused", "boolean", "Outcome: was the patient infused?", True),
    ("not-infused-reason", "string", "Outcome: why the patient was not infused", False),
)


def touch_questionnaire() -> dict[str, Any]:
    """The checklist's Questionnaire (the same for every response)."""
    return {
        "resourceType": "Questionnaire",
        "url": TOUCH_QUESTIONNAIRE_URL,
        "version": TOUCH_QUESTIONNAIRE_VERSION,
        "name": "TouchPreInfusionPatientChecklist",
        "title": "TYSABRI (natalizumab) TOUCH Pre-infusion Patient Checklist",
        "status": "active",
        "subjectType": ["Patient"],
        "description": "Completed before every natalizumab infusion and submitted whether or "
        "not the patient was infused (TOUCH Prescribing Program; paraphrased).",
        "item": [
            {"linkId": link, "text": text, "type": kind, "required": required}
            for link, kind, text, required in _QUESTIONS
        ],
    }


def touch_response(
    checklist: TouchChecklist,
    *,
    subject: str,
    encounter: str,
    infused: bool,
    not_infused_reason: str | None,
    authored: datetime,
) -> dict[str, Any]:
    """The QuestionnaireResponse of one checklist and the session's outcome."""
    answers: dict[str, dict[str, Any] | None] = {
        "authorized": {"valueBoolean": checklist.authorized},
        "authorization-date": (
            {"valueDate": checklist.authorization_date.isoformat()}
            if checklist.authorization_date is not None
            else None
        ),
        "new-or-worsening-symptoms": {"valueBoolean": checklist.new_or_worsening_symptoms},
        "immunocompromising-condition": {"valueBoolean": checklist.immunocompromising_condition},
        "immunosuppressant-medicines": {"valueBoolean": checklist.immunosuppressant_medicines},
        "infused": {"valueBoolean": infused},
        "not-infused-reason": (
            {"valueString": not_infused_reason} if not infused and not_infused_reason else None
        ),
    }
    items = [
        {"linkId": link, "text": text, "answer": [answers[link]]}
        for link, _kind, text, _required in _QUESTIONS
        if answers[link] is not None
    ]
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{TOUCH_QUESTIONNAIRE_URL}|{TOUCH_QUESTIONNAIRE_VERSION}",
        "status": "completed",
        "subject": {"reference": subject},
        "encounter": {"reference": encounter},
        "authored": fhir_date_time(authored),
    }
    if checklist.by:
        resource["author"] = {"display": checklist.by}
    resource["item"] = items
    return resource
