"""Every message is translated into 简体中文 and 日本語, and no translation breaks its placeholders."""

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings

LOCALES = ["zh_Hans", "ja"]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def catalog(locale: str):
    path = Path(settings.BASE_DIR) / "esimdash" / "locale" / locale / "LC_MESSAGES" / "django.po"
    with path.open("rb") as po:
        return read_po(po)


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated(locale):
    missing = [
        message.id
        for message in catalog(locale)
        if message.id
        and (
            message.fuzzy
            or not all(message.string if isinstance(message.string, tuple) else [message.string])
        )
    ]
    assert missing == []


def _formats(text: str, names: set[str]) -> bool:
    try:
        text % dict.fromkeys(names, 1)
    except (KeyError, ValueError, TypeError):
        return False
    return True


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_their_placeholders(locale):
    problems = []
    for message in catalog(locale):
        if not message.id or "python-format" not in message.flags:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        names = set(PLACEHOLDER.findall(ids[0]))
        for text in strings:
            if set(PLACEHOLDER.findall(text)) - names or not _formats(text, names):
                problems.append((ids[0], text))
    assert problems == []
