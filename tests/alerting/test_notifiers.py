"""Each channel against real local HTTP and SMTP servers; retries; no secret in errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

import pytest

from alerting.notifiers.base import Message, NotifyError, Recipient, send_with_retry
from alerting.notifiers.broadcast import BroadcastConfig, BroadcastNotifier
from alerting.notifiers.dingtalk import DingtalkNotifier
from alerting.notifiers.email import EmailConfig, EmailNotifier
from alerting.notifiers.feishu import FeishuNotifier
from alerting.notifiers.robots import RobotConfig
from alerting.notifiers.sms import SmsConfig, SmsNotifier
from alerting.notifiers.webhook import WebhookConfig, WebhookNotifier
from alerting.notifiers.wecom import WecomNotifier
from ground.local import free_port

from .receivers import http_receiver, smtp_receiver

MESSAGE = Message("【重要·告警】浊度超过 1 NTU", "设备：wq-1\n数值：turbidity_ntu = 2.4", "firing",
                  "major", "zh", ({"id": 7, "value": 2.4},), {"township": "T1", "village": "V1"})
PERSON = Recipient("cadre-v1", "王村干部", "+8613800000001", "cadre@v1.example", {"wecom": "wangwei"})
SECRET = "SEC-d0n0tl3ak-9f8e7d"
TOKEN = "access-token-TOPSECRET-123"


def test_webhook_posts_the_alerts_as_json():
    with http_receiver() as (url, got):
        WebhookNotifier(WebhookConfig(url=url + "/hook"), 5).send(MESSAGE, PERSON)
    body = got.json()
    assert body["alerts"] == [{"id": 7, "value": 2.4}] and body["recipient"]["person_id"] == "cadre-v1"
    assert body["title"] == MESSAGE.title and body["place"]["village"] == "V1"


@pytest.mark.parametrize(("provider", "template", "expect"), [
    ("json", None, lambda r: r.json()["to"] == "+8613800000001"),
    ("form", None, lambda r: parse_qs(r.requests[0][2].decode())["mobile"] == ["+8613800000001"]),
    ("template", '{"PhoneNumbers": "{phone}", "Msg": "{text}", "Sign": "{sign}"}',
     lambda r: r.json()["PhoneNumbers"] == "+8613800000001" and "2.4" in r.json()["Msg"]),
])
def test_sms_gateway_templated_per_provider(provider, template, expect):
    with http_receiver() as (url, got):
        config = SmsConfig(url=url + "/sms", provider=provider, template=template, sign_name="村务",
                           api_key=SECRET)
        SmsNotifier(config, 5).send(MESSAGE, PERSON)
    assert expect(got)
    assert got.requests[0][1]["Authorization"] == f"Bearer {SECRET}"


def test_wecom_robot_mentions_the_recipient():
    with http_receiver() as (url, got):
        WecomNotifier(RobotConfig(url=f"{url}/cgi-bin/webhook/send?key={TOKEN}"), 5, lambda: 0).send(
            MESSAGE, PERSON)
    body = got.json()
    assert body["msgtype"] == "text" and body["text"]["mentioned_list"] == ["wangwei"]


def test_dingtalk_robot_is_signed():
    with http_receiver() as (url, got):
        config = RobotConfig(url=f"{url}/robot/send?access_token={TOKEN}", secret=SECRET)
        DingtalkNotifier(config, 5, lambda: 1_700_000_000.123).send(MESSAGE, PERSON)
    query = parse_qs(urlsplit(got.requests[0][0]).query)
    assert query["timestamp"] == ["1700000000123"]
    expected = base64.b64encode(hmac.new(SECRET.encode(), f"1700000000123\n{SECRET}".encode(),
                                         hashlib.sha256).digest()).decode()
    # the sign travels url-encoded; parse_qs decodes it once
    assert query["sign"][0] == expected
    assert got.json()["at"]["atMobiles"] == ["+8613800000001"]


def test_feishu_robot_is_signed():
    with http_receiver() as (url, got):
        config = RobotConfig(url=f"{url}/open-apis/bot/v2/hook/{TOKEN}", secret=SECRET)
        FeishuNotifier(config, 5, lambda: 1_700_000_000).send(MESSAGE, PERSON)
    body = got.json()
    expected = base64.b64encode(hmac.new(f"1700000000\n{SECRET}".encode(), b"",
                                         hashlib.sha256).digest()).decode()
    assert body["timestamp"] == "1700000000" and body["sign"] == expected


def test_robot_error_codes_are_failures_with_a_retry_verdict():
    with http_receiver() as (url, got):
        got.reply = {"errcode": 45009, "errmsg": "api freq out of limit"}
        notifier = WecomNotifier(RobotConfig(url=f"{url}/send?key={TOKEN}"), 5, lambda: 0)
        with pytest.raises(NotifyError) as busy:
            notifier.send(MESSAGE, None)
        assert busy.value.retryable
        got.reply = {"errcode": 93000, "errmsg": "invalid webhook url"}
        with pytest.raises(NotifyError) as wrong:
            notifier.send(MESSAGE, None)
        assert not wrong.value.retryable


def test_email_over_smtp():
    with smtp_receiver() as (port, mailbox):
        EmailNotifier(EmailConfig(host="127.0.0.1", port=port, sender="alerts@county.example"),
                      5).send(MESSAGE, PERSON)
        assert mailbox.wait_for(1)
    mail = mailbox.mails[0]
    assert mail["To"] == "cadre@v1.example" and mail["Subject"] == MESSAGE.title
    assert "turbidity_ntu = 2.4" in mail.get_content()


def test_retry_with_backoff_then_success_and_permanent_failures_stop_at_once():
    with http_receiver() as (url, got):
        got.status = [503, 502]
        sleeps: list[float] = []
        notifier = WebhookNotifier(WebhookConfig(url=url), 5)
        delivery = send_with_retry(notifier, MESSAGE, None, 4, 0.5, sleeps.append)
        assert (delivery.ok, delivery.attempts, sleeps) == (True, 3, [0.5, 1.0])
        got.status = [404]
        refused = send_with_retry(notifier, MESSAGE, None, 4, 0.5, sleeps.append)
        assert (refused.ok, refused.attempts) == (False, 1) and "HTTP 404" in str(refused.error)
        got.status = [500] * 5
        gave_up = send_with_retry(notifier, MESSAGE, None, 3, 0, lambda _: None)
        assert (gave_up.ok, gave_up.attempts) == (False, 3)


@pytest.mark.parametrize("build", [
    lambda url: WebhookNotifier(WebhookConfig(url=f"{url}/{TOKEN}?token={TOKEN}"), 1),
    lambda url: WecomNotifier(RobotConfig(url=f"{url}/send?key={TOKEN}"), 1, lambda: 0),
    lambda url: DingtalkNotifier(RobotConfig(url=f"{url}/send?access_token={TOKEN}", secret=SECRET),
                                 1, lambda: 0),
    lambda url: FeishuNotifier(RobotConfig(url=f"{url}/hook/{TOKEN}", secret=SECRET), 1, lambda: 0),
    lambda url: SmsNotifier(SmsConfig(url=f"{url}/sms?key={TOKEN}", api_key=SECRET), 1),
])
@pytest.mark.parametrize("answer", ["refused", "unreachable"])
def test_no_secret_in_any_error(build, answer):
    with http_receiver() as (url, got):
        got.status = [401]
        target = url if answer == "refused" else f"http://127.0.0.1:{free_port()}"
        with pytest.raises(NotifyError) as failure:
            build(target).send(MESSAGE, PERSON)
    text = f"{failure.value} {failure.value!r} {failure.value.__cause__!r} {failure.value.__context__!r}"
    assert TOKEN not in text and SECRET not in text, text
    delivery = send_with_retry(build(f"http://127.0.0.1:{free_port()}"), MESSAGE, PERSON, 1, 0)
    assert TOKEN not in str(delivery.error) and SECRET not in str(delivery.error)


def test_secrets_do_not_show_in_config_reprs():
    config = RobotConfig(url=f"http://h/send?key={TOKEN}", secret=SECRET)
    assert TOKEN not in repr(config) and SECRET not in repr(config)


def test_broadcast_action_calls_the_broadcast_service():
    calls = []

    def starter(township, village, text, priority, requested_by):
        calls.append((township, village, text, priority, requested_by))
        return "b-1"

    notifier = BroadcastNotifier(BroadcastConfig(priority="emergency", text="自来水暂停饮用"), starter)
    notifier.send(MESSAGE, None)
    notifier.send(Message(**{**MESSAGE.__dict__, "action": "resolved"}), None)  # resolutions stay quiet
    assert calls == [("T1", "V1", "自来水暂停饮用", "emergency", "alerting")]
    with pytest.raises(NotifyError) as unwired:
        BroadcastNotifier(BroadcastConfig(), None).send(MESSAGE, None)
    assert not unwired.value.retryable


def test_an_unexpected_fault_is_recorded_not_raised():
    class Broken:
        channel = "broken"

        def send(self, message, recipient):
            raise KeyError(SECRET)

    delivery = send_with_retry(Broken(), MESSAGE, None, 3, 0, lambda _: None)
    assert (delivery.ok, delivery.attempts) == (False, 1)
    assert delivery.error == "permanent: broken: KeyError"
