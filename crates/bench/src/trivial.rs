//! The baseline's server: a trivial axum handler answering a small JSON to any request, run
//! as a child process (`plantilla-bench --trivial-server`) on the same kind of runtime as
//! plantilla (tokio multi-thread, one worker per core).

use std::io::Write;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const ANSWER: &str =
    r#"{"success":true,"message":"Sent","data":{"conversation_id":"conv_0","message_id":"msg_0"}}"#;

async fn answer(_body: Bytes) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        ANSWER,
    )
        .into_response()
}

pub fn serve() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on {}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let app = Router::new().fallback(answer);
        axum::serve(listener, app).await?;
        Ok(())
    })
}
