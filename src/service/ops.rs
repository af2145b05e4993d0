//! What an operator's probes and scrapers ask: is the process ready to serve, and the metrics.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::api::ops::{Readiness, ReadinessChecks};
use crate::app::App;
use crate::metrics;
use crate::now_ms;

/// Longest a readiness probe or a scrape waits for the database.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// Ready: the database answers, its migrations are applied, the dispatcher loop runs and the
/// process is not shutting down.
pub async fn readiness(app: &App) -> Readiness {
    let (database, migrations) = match tokio::time::timeout(STORE_TIMEOUT, app.store.ping()).await {
        Ok(Ok(true)) => ("ok".to_string(), "ok".to_string()),
        Ok(Ok(false)) => ("ok".to_string(), "not applied".to_string()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            ("unreachable".to_string(), "unknown".to_string())
        }
        Err(_) => {
            tracing::warn!("readiness: the database did not answer in time");
            ("timed out".to_string(), "unknown".to_string())
        }
    };
    let dispatcher = if app.run_state.dispatcher_running() {
        "ok"
    } else {
        "not running"
    };
    Readiness::of(ReadinessChecks {
        database,
        migrations,
        dispatcher: dispatcher.to_string(),
        shutdown: app.run_state.stopping().then(|| "in progress".to_string()),
    })
}

/// The whole `/metrics` document: the in-process counters, then gauges read from the store
/// now (messages by status, queues, channel health). When the store does not answer, its
/// gauges are left out and `plantilla_database_up` is 0.
pub async fn render_metrics(app: &App) -> String {
    let mut out = String::new();
    app.metrics.render(&mut out);
    let snapshot = tokio::time::timeout(STORE_TIMEOUT, async {
        let counts = app.store.message_counts().await?;
        let queues = app.store.queues().await?;
        let channels = app.store.list_channels().await?;
        let pending = app.store.pending_status_count().await?;
        Ok::<_, crate::store::StoreError>((counts, queues, channels, pending))
    })
    .await;
    // A registry of this scrape's readings.
    let mut now = Registry::default();
    let up = match snapshot {
        Ok(Ok((counts, queues, channels, pending))) => {
            now.register(
                "plantilla_pending_statuses",
                "Statuses kept for messages not known (yet), each until its send's response or its TTL",
                gauge(pending),
            );
            let messages = Family::<[(&str, String); 1], Gauge>::default();
            for (status, n) in counts {
                messages.get_or_create(&[("status", status)]).set(n);
            }
            now.register("plantilla_messages", "Messages stored, by status", messages);
            let depth = Family::<[(&str, String); 1], Gauge>::default();
            let age = Family::<[(&str, String); 1], Gauge<f64, AtomicU64>>::default();
            let at = now_ms();
            for q in queues {
                let channel = [("channel", q.channel_id)];
                depth.get_or_create(&channel).set(q.depth);
                age.get_or_create(&channel)
                    .set((at - q.oldest_queued_at).max(0) as f64 / 1000.0);
            }
            now.register(
                "plantilla_queue_depth",
                "Messages not yet taken by the provider (queued, sending or awaiting a retry), by channel",
                depth,
            );
            now.register(
                "plantilla_queue_oldest_age_seconds",
                "Age of the oldest message not yet taken by the provider, by channel",
                age,
            );
            let halted = Family::<[(&str, String); 1], Gauge>::default();
            for c in channels {
                halted
                    .get_or_create(&[("channel", c.id)])
                    .set(i64::from(c.health != "ok"));
            }
            now.register(
                "plantilla_channel_halted",
                "1 when a channel is halted by an error no retry fixes (its messages wait), else 0",
                halted,
            );
            1
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: cannot read the store");
            0
        }
        Err(_) => {
            tracing::warn!("metrics: the store did not answer in time");
            0
        }
    };
    now.register(
        "plantilla_database_up",
        "1 when the last scrape could read the database",
        gauge(up),
    );
    now.register(
        "plantilla_dispatcher_running",
        "1 while the dispatcher loop runs",
        gauge(i64::from(app.run_state.dispatcher_running())),
    );
    metrics::encode(&mut out, &now);
    out
}

/// A gauge reading `value`.
fn gauge(value: i64) -> Gauge {
    let g = Gauge::default();
    g.set(value);
    g
}
