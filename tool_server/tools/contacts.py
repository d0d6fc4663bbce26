"""find_contact, create_contact and add_note."""

from __future__ import annotations

from pydantic import BaseModel, Field

from integrations.capabilities import Contact, ContactDraft
from tool_server.errors import ErrorCode, ToolError
from tool_server.tools.base import ToolContext, ToolInput, ToolResult, ToolSpec
from tool_server.tools.fields import Email, Phone

__all__ = ["ADD_NOTE", "CREATE_CONTACT", "FIND_CONTACT"]


class ContactView(BaseModel):
    contact_id: str
    name: str | None = None
    phone: str | None = Field(default=None, description="E.164.")
    email: str | None = None


def _view(contact: Contact) -> ContactView:
    return ContactView(contact_id=contact.id, name=contact.name, phone=contact.phone, email=contact.email)


def _first_name(contact: Contact) -> str:
    return f", {contact.name.split()[0]}" if contact.name else ""


class FindContactInput(ToolInput):
    contact_phone: Phone | None = None
    contact_email: Email | None = None


class FindContactResult(ToolResult):
    found: bool
    contacts: list[ContactView] = Field(description="Matches; a phone match comes first.")


class CreateContactInput(ToolInput):
    contact_name: str | None = Field(default=None, min_length=1, max_length=200, description="Full name.")
    contact_phone: Phone | None = None
    contact_email: Email | None = None


class CreateContactResult(ToolResult):
    created: bool = Field(description="False when a contact with this phone or email already existed.")
    contact: ContactView


class AddNoteInput(ToolInput):
    free_text_fields = frozenset({"note"})

    contact_id: str | None = Field(default=None, max_length=64, description="Id from find_contact or create_contact.")
    contact_phone: Phone | None = Field(default=None, description="Find the contact by phone instead of id.")
    contact_email: Email | None = Field(default=None, description="Find the contact by email instead of id.")
    note: str = Field(min_length=1, max_length=5000, description="The note, in plain sentences.")


class NoteView(BaseModel):
    note_id: str
    contact_id: str
    body: str
    created_at: str = Field(description="ISO 8601 with offset.")


class AddNoteResult(ToolResult):
    note: NoteView


def _need_phone_or_email(phone: str | None, email: str | None) -> None:
    if not phone and not email:
        raise ToolError.invalid("contact_phone", "give contact_phone or contact_email")


async def find_contact(ctx: ToolContext, args: FindContactInput) -> FindContactResult:
    _need_phone_or_email(args.contact_phone, args.contact_email)
    contacts = await ctx.providers.crm().find_contacts(phone=args.contact_phone, email=args.contact_email)
    if contacts:
        name = contacts[0].name
        speech = f"I found your record{f', {name}' if name else ''}."
    else:
        speech = "I couldn't find a record with those details."
    return FindContactResult(found=bool(contacts), contacts=[_view(c) for c in contacts], speech=speech)


async def create_contact(ctx: ToolContext, args: CreateContactInput) -> CreateContactResult:
    _need_phone_or_email(args.contact_phone, args.contact_email)
    saved = await ctx.providers.contacts().save(
        ContactDraft(name=args.contact_name, phone=args.contact_phone, email=args.contact_email)
    )
    contact = saved.contact
    speech = (
        f"I've saved your details{_first_name(contact)}."
        if saved.created
        else f"I already have you on file{_first_name(contact)}."
    )
    return CreateContactResult(created=saved.created, contact=_view(contact), speech=speech)


async def add_note(ctx: ToolContext, args: AddNoteInput) -> AddNoteResult:
    crm = ctx.providers.crm()
    if args.contact_id:
        contact_id = args.contact_id
    else:
        if not args.contact_phone and not args.contact_email:
            raise ToolError.invalid("contact_id", "give contact_id, contact_phone or contact_email")
        matches = await crm.find_contacts(phone=args.contact_phone, email=args.contact_email)
        if not matches:
            raise ToolError(
                ErrorCode.NOT_FOUND,
                "no contact has that phone or email; call create_contact first",
                speech="I couldn't find your record to add that to.",
            )
        contact_id = matches[0].id
    note = await crm.add_note(
        contact_id, args.note, idempotency_key=ctx.idempotency_key, earlier_attempt_at=ctx.earlier_attempt_at
    )
    return AddNoteResult(
        note=NoteView(
            note_id=note.id,
            contact_id=note.contact_id,
            body=note.body,
            created_at=note.created_at.astimezone(ctx.zone).isoformat(),
        ),
        speech="I've added that to your file.",
    )


FIND_CONTACT = ToolSpec(
    name="find_contact",
    title="Find a contact",
    description=(
        "Look a caller up in the CRM by phone or email. Use it at the start of a call to greet returning callers."
    ),
    input_model=FindContactInput,
    output_model=FindContactResult,
    run=find_contact,
    capability="crm",
    read_only=True,
    idempotent=True,
    caller_phone_field="contact_phone",
    examples=[{"contact_phone": "+12125550142"}],
)

CREATE_CONTACT = ToolSpec(
    name="create_contact",
    title="Create a contact",
    description=(
        "Save the caller as a contact. It looks first: a contact with the same phone or the same email is "
        "returned (created=false), never duplicated, and blanks on it are filled in."
    ),
    input_model=CreateContactInput,
    output_model=CreateContactResult,
    run=create_contact,
    capability="crm",
    read_only=False,
    destructive=False,
    idempotent=True,
    caller_phone_field="contact_phone",
    examples=[{"contact_name": "Jane Doe", "contact_phone": "(212) 555-0142", "contact_email": "jane@example.com"}],
)

ADD_NOTE = ToolSpec(
    name="add_note",
    title="Add a note to a contact",
    description=(
        "Attach a note to a contact, found by contact_id or by phone or email. "
        "Returns NOT_FOUND when no contact matches; create it with create_contact first."
    ),
    input_model=AddNoteInput,
    output_model=AddNoteResult,
    run=add_note,
    capability="crm",
    read_only=False,
    destructive=False,
    idempotent=False,
    caller_phone_field="contact_phone",
    examples=[{"contact_phone": "+12125550142", "note": "Asked about teeth whitening prices."}],
)
