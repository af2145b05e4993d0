//! The steps of the hot writes that both engines take alike (events queued, idempotency keys, attempts recorded), run inside the engine's own transaction.
