//! `serve`: the HTTP API and the background workers (`workers/`) in one process, stopped by a
//! cancellation token.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::provider::sandbox::Sandbox;
use crate::workers::callbacks::CallbackWorker;
use crate::workers::dispatch::Dispatcher;

pub struct Server {
    pub app: App,
    pub addr: SocketAddr,
    pub dispatcher: Arc<Dispatcher>,
    pub callbacks: Arc<CallbackWorker>,
    pub cancel: CancellationToken,
    http: JoinHandle<std::io::Result<()>>,
    worker: Option<JoinHandle<()>>,
    callback_worker: Option<JoinHandle<()>>,
}

/// Starts the server on `listener`. With `background_dispatch` false the dispatcher and the
/// callback worker only run when driven (`server.dispatcher.drain()`,
/// `server.callbacks.drain()`), which is what tests want.
pub async fn start(
    app: App,
    listener: TcpListener,
    background_dispatch: bool,
) -> anyhow::Result<Server> {
    let addr = listener.local_addr()?;
    let sandbox = Arc::new(Sandbox::new(app.clone(), app.config.sandbox_status_delay()));
    // Simulated statuses are timers: pick up those a previous process did not finish.
    sandbox.resume();
    let dispatcher = Arc::new(Dispatcher::new(app.clone(), sandbox, app.graph.clone()));
    let callbacks = Arc::new(CallbackWorker::new(app.clone())?);
    let cancel = CancellationToken::new();
    let service = crate::http::service(app.clone());
    let shutdown = cancel.clone();
    let limits = crate::connections::Limits::of(&app.config);
    let http = tokio::spawn(crate::connections::serve(
        listener, service, limits, shutdown,
    ));
    if background_dispatch {
        // Work queued by another instance (PostgreSQL's notifications): a wake for a pass.
        let work = Arc::new(tokio::sync::Notify::new());
        app.store.listen_for_work(work.clone(), cancel.clone());
        let (app, cancel) = (app.clone(), cancel.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = work.notified() => app.wake_dispatcher(),
                }
            }
        });
    }
    let worker = background_dispatch.then(|| tokio::spawn(dispatcher.clone().run(cancel.clone())));
    // A task of its own: a slow receiver never holds up the dispatcher.
    let callback_worker =
        background_dispatch.then(|| tokio::spawn(callbacks.clone().run(cancel.clone())));
    if background_dispatch {
        tokio::spawn(crate::workers::housekeeping::forget_expired(
            app.clone(),
            cancel.clone(),
        ));
    }
    // Sandbox templates still PENDING from before a restart get their approval.
    tokio::spawn(crate::service::authoring::resume_sandbox_approvals(
        app.clone(),
    ));
    let sync_every = app.config.template_sync_interval_secs;
    if background_dispatch && sync_every > 0 {
        tokio::spawn(crate::workers::template_sync::run(
            app.clone(),
            std::time::Duration::from_secs(sync_every),
            cancel.clone(),
        ));
    }
    Ok(Server {
        app,
        addr,
        dispatcher,
        callbacks,
        cancel,
        http,
        worker,
        callback_worker,
    })
}

impl Server {
    /// Stops accepting, lets in-flight requests and provider calls finish and record their
    /// outcome, then returns; after `shutdown_timeout_ms` it returns anyway (what was not
    /// recorded is reconciled after a restart: the lease and webhook window).
    pub async fn stop(self) -> anyhow::Result<()> {
        let timeout = self.app.config.shutdown_timeout();
        self.app.run_state.set_stopping();
        self.cancel.cancel();
        let http = self.http;
        let worker = self.worker;
        let finish = async move {
            let (served, dispatched) = tokio::join!(http, async move {
                match worker {
                    Some(worker) => worker.await,
                    None => Ok(()),
                }
            });
            served??;
            dispatched?;
            Ok::<(), anyhow::Error>(())
        };
        let finished = match tokio::time::timeout(timeout, finish).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    timeout_ms = self.app.config.shutdown_timeout_ms,
                    "shutdown deadline passed with requests or sends still in flight; \
                     exiting anyway (unrecorded sends are reconciled after a restart)"
                );
                Ok(())
            }
        };
        // Either way this instance stops sending: another takes its channels at once.
        self.dispatcher.release().await;
        if let Some(worker) = self.callback_worker {
            // Bounded by the callback timeout: deliveries in flight finish or are retried.
            let _ = tokio::time::timeout(timeout, worker).await;
        }
        finished
    }

    /// Runs until SIGINT or SIGTERM, then stops gracefully.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!(
            timeout_ms = self.app.config.shutdown_timeout_ms,
            "shutting down: finishing in-flight requests and sends"
        );
        self.stop().await?;
        tracing::info!("stopped");
        Ok(())
    }
}
