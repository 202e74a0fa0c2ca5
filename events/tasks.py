"""Webhook delivery: a thin caller of `events.services`, retrying with exponential backoff."""
from __future__ import annotations

from celery import shared_task
from django.conf import settings

from events.models import WebhookMessage
from events.services import webhook_message_deliver, webhook_message_give_up, webhook_retry_delay


@shared_task(name="events.tasks.deliver_webhook")
def deliver_webhook(message_id: str, attempt: int = 1) -> dict:
    """Attempt `attempt` of a series; a failed one schedules the next after WEBHOOK_RETRY_BASE,
    doubling, until WEBHOOK_MAX_ATTEMPTS, after which the message is `failed` (the admin may
    redeliver it: a new series). Each retry is a new task, so no worker waits out the backoff."""
    message = WebhookMessage.objects.select_related("endpoint").filter(pk=message_id).first()
    if message is None or message.status != WebhookMessage.Status.PENDING:
        return {"message": message_id, "skipped": True}  # deleted meanwhile, or already delivered
    delivery = webhook_message_deliver(message=message)
    if delivery.succeeded:
        return {"message": message_id, "delivered": True, "attempt": attempt}
    if attempt >= settings.WEBHOOK_MAX_ATTEMPTS:
        webhook_message_give_up(message=message)
        return {"message": message_id, "delivered": False, "attempt": attempt}
    deliver_webhook.apply_async((message_id,), {"attempt": attempt + 1},
                                countdown=webhook_retry_delay(attempts=attempt))
    return {"message": message_id, "delivered": False, "attempt": attempt, "retrying": True}
