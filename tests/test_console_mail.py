"""`make run` prints mails readable: headers decoded, the text as text, links whole (the stock console
backend printed Chinese and Japanese mails as base64)."""

import io

from django.core.mail import EmailMessage

from esimdash.console_mail import EmailBackend


def test_a_chinese_mail_prints_as_text():
    stream = io.StringIO()
    link = "http://127.0.0.1:8123/accounts/email/confirm/abc123/"
    mail = EmailMessage(
        subject="确认你的 esimdash 账户",
        body=f"请打开以下链接确认你的电子邮件地址：\n{link}\n",
        from_email="esimdash <noreply@example.com>",
        to=["王明 <wangming@example.com>"],
    )
    mail.attach("usage.csv", "a,b\n", "text/csv")

    assert EmailBackend(stream=stream).send_messages([mail]) == 1

    printed = stream.getvalue()
    assert printed.splitlines()[:4] == [
        "From: esimdash <noreply@example.com>",
        "To: 王明 <wangming@example.com>",
        "Subject: 确认你的 esimdash 账户",
        printed.splitlines()[3],
    ]
    assert printed.splitlines()[3].startswith("Date: ")
    assert f"\n请打开以下链接确认你的电子邮件地址：\n{link}\n" in printed
    assert "[attachment: usage.csv]" in printed
    assert "base64" not in printed
