"""Reading a dashboard form: a bounded urlencoded body, each field once."""

from __future__ import annotations

from urllib.parse import parse_qsl

from aiohttp import web

from registry.api.common import read_bounded
from registry.core.errors import RegistryError, TooLarge

MAX_FORM = 64 << 10
MAX_FIELDS = 64


class FormInvalid(RegistryError):
    """A form the dashboard cannot read: not urlencoded UTF-8, or a field repeated."""

    code, status, message = "FORM_INVALID", 400, "invalid form"


async def read_form(request: web.BaseRequest, limit: int = MAX_FORM) -> dict[str, str]:
    """The fields of a POSTed `application/x-www-form-urlencoded` form; a body over
    `limit`, another content type, a repeated field or bytes that are not UTF-8 give
    400 before anything is done with them."""
    kind = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise FormInvalid("expected a form (application/x-www-form-urlencoded)")
    body = await read_bounded(request, limit, TooLarge("the form is too large"))
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                          strict_parsing=False, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise FormInvalid("the form is not UTF-8 or has too many fields") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise FormInvalid(f"field {key[:40]!r} given more than once")
        if "\x00" in key or "\x00" in value:
            raise FormInvalid("NUL in a form field")
        form[key] = value
    return form
