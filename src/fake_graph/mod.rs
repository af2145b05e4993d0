//! A fake WhatsApp Cloud API (Graph API) server for tests and benchmarks.
