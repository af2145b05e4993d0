//! Webhook endpoints and the callback outbox, suppressions, inbound messages, template and number health.
