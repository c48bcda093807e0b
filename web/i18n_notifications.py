"""Chinese translations of the notifications page (merged into ``web.i18n.ZH``)."""

from __future__ import annotations

NOTIFICATIONS_ZH: dict[str, str] = {
    "Notifications": "通知",
    "What happened to your requests, licences, products and queues. Each notice is also sent by webhook and "
    "e-mail when the instance is configured for them.":
        "您的需求、许可、数据产品和待办队列的动态。实例配置了 Webhook 或电子邮件时，每条通知也会通过它们发送。",
    "Time": "时间",
    "Notice": "通知内容",
    "Delivery": "投递",
    "No notifications yet.": "暂无通知。",
    "Newer": "较新",
    "Older": "较早",
    "E-mail address": "电子邮件地址",
    "Send my notices to": "将我的通知发送至",
    "Save": "保存",
    "Leave it empty to stop e-mail.": "留空则不再发送电子邮件。",
    "E-mail address saved.": "电子邮件地址已保存。",
    "Notices are no longer e-mailed.": "通知将不再通过电子邮件发送。",
}
