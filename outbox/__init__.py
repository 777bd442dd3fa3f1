"""Messages that must not be lost: e-mail to people, labels to training stores, webhooks.

A message is a row written in the transaction of the change that causes it
(`outbox.services.message_enqueue`), handed to Celery after commit, and sent again by a
periodic sweep until it is delivered or, after OUTBOX_MAX_ATTEMPTS, dead (an alert). Each
kind of message has a handler, registered by the app that knows how to deliver it
(`outbox.handlers.register`), so that this app, low in the layers, knows no business model.
"""
