//! The HTTP API and the WebSocket channel.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use sqlx::SqlitePool;
use tokio::sync::{broadcast, mpsc, watch};
use vigil::ws::WsMetrics;
use vigil::{Logger, Metrics, fields};

use crate::db;
use crate::hub::Hub;

/// The longest comment accepted, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;
/// Comments a listing returns at most (the newest).
pub const LIST_LIMIT: i64 = 100;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub pool: SqlitePool,
    pub hub: Hub,
    /// `None` with `VIGIL_DISABLED=true`: sockets are served unwrapped.
    pub ws_metrics: Option<WsMetrics>,
    /// Turns true when the server shuts down: WebSocket tasks close their sockets.
    pub shutdown: watch::Receiver<bool>,
    /// Held by every copy of the state, so by every WebSocket task: shutdown waits until the
    /// last one is dropped. Never sent on.
    #[allow(dead_code)]
    pub alive: mpsc::Sender<()>,
}

/// The most rows `/debug/slow_query/{rows}` counts to.
pub const MAX_SLOW_QUERY_ROWS: i64 = 50_000_000;

/// The application's routes, measured by `http_layer` (none with `VIGIL_DISABLED=true`);
/// `debug_routes` adds `/debug/slow_query/{rows}` and `/debug/fail` (see the crate docs).
pub fn router(state: AppState, http_layer: Option<vigil::http::HttpMetricsLayer>, debug_routes: bool) -> Router {
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/api/videos", get(list_videos))
        .route(
            "/api/videos/{video_id}/comments",
            get(list_comments).post(create_comment),
        )
        .route("/ws/videos/{video_id}", get(subscribe));
    if debug_routes {
        router = router
            .route("/debug/slow_query/{rows}", get(slow_query))
            .route("/debug/fail", get(fail));
    }
    let router = router.with_state(state);
    match http_layer {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// A deliberately slow query, for the slow-query telemetry, dashboards and alerts.
async fn slow_query(State(state): State<AppState>, Path(raw): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let rows = raw
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_SLOW_QUERY_ROWS).contains(n))
        .ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("rows must be an integer from 1 to {MAX_SLOW_QUERY_ROWS}"),
            )
        })?;
    let started = std::time::Instant::now();
    let counted = db::slow_count(&state.pool, rows).await?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(axum::Json(json!({ "rows": counted, "elapsed_ms": elapsed_ms })))
}

/// A deliberate server error, for the error-rate telemetry, dashboards and alerts.
async fn fail() -> ApiError {
    Logger::error("Deliberate failure", fields!(route = "/debug/fail"));
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "deliberate failure (DEBUG_ROUTES=true)".to_owned(),
    )
}

/// An error answered as `{"error": "..."}`.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Logger::error("Database error", fields!(error = error.to_string().as_str()));
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_owned())
    }
}

fn video_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "video_id must be a positive integer".to_owned(),
        )
    })
}

async fn existing_video(pool: &SqlitePool, raw: &str) -> Result<i64, ApiError> {
    let id = video_id(raw)?;
    if db::video_exists(pool, id).await? {
        Ok(id)
    } else {
        Err(ApiError(StatusCode::NOT_FOUND, format!("no video {id}")))
    }
}

async fn health() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

async fn list_videos(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(db::videos(&state.pool).await?))
}

async fn list_comments(State(state): State<AppState>, Path(raw): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let video_id = existing_video(&state.pool, &raw).await?;
    Ok(axum::Json(db::comments(&state.pool, video_id, LIST_LIMIT).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewComment {
    user_id: i64,
    body: String,
}

async fn create_comment(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let video_id = existing_video(&state.pool, &raw).await?;
    let new: NewComment = serde_json::from_slice(&body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"user_id\": <positive integer>, \"body\": <text>}}: {e}"),
        )
    })?;
    if new.user_id <= 0 {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "user_id must be a positive integer".to_owned(),
        ));
    }
    let text = new.body.trim();
    if text.is_empty() || text.chars().count() > MAX_COMMENT_CHARS {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("body must be 1 to {MAX_COMMENT_CHARS} characters"),
        ));
    }
    let comment = db::insert_comment(&state.pool, video_id, new.user_id, text).await?;
    Logger::info(
        "Comment created",
        fields!(
            user_id = comment.user_id,
            comment_id = comment.id,
            video_id = comment.video_id
        ),
    );
    Metrics::increment("comments.created", 1, &[]);
    let event: Arc<str> = json!({ "event": "comment_created", "payload": &comment })
        .to_string()
        .into();
    state.hub.publish(video_id, event);
    Ok((StatusCode::CREATED, axum::Json(comment)))
}

async fn subscribe(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let video_id = existing_video(&state.pool, &raw).await?;
    Ok(ws.on_upgrade(move |socket| serve_socket(socket, video_id, state)))
}

/// One subscriber, measured by the WebSocket wrapper unless `VIGIL_DISABLED=true`.
async fn serve_socket(socket: WebSocket, video_id: i64, state: AppState) {
    match state.ws_metrics.clone() {
        // websocket.connections{channel="comments"} stays up until the wrapped socket is
        // dropped, whatever ends it.
        Some(metrics) => run_socket(metrics.wrap(socket), video_id, state).await,
        None => run_socket(socket, video_id, state).await,
    }
}

/// Pushes the video's new comments, answers `{"event":"ping"}` with a pong, and closes when
/// the client leaves or the server shuts down.
async fn run_socket<S>(socket: S, video_id: i64, state: AppState)
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Send + 'static,
{
    let (mut outgoing, mut incoming) = socket.split();
    let mut updates = state.hub.subscribe(video_id);
    let mut shutdown = state.shutdown.clone();
    Logger::info("Subscriber joined", fields!(video_id = video_id));
    loop {
        tokio::select! {
            update = updates.recv() => {
                let text = match update {
                    Ok(text) => text.to_string(),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        json!({ "event": "lagged", "payload": { "missed": missed } }).to_string()
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if outgoing.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if is_ping(text.as_str()) {
                        let pong = json!({ "event": "pong" }).to_string();
                        if outgoing.send(Message::text(pong)).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) => {
                    // Send the close frame the protocol answers with, then end.
                    let _ = outgoing.close().await;
                    break;
                }
                Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = shutdown.changed() => {
                let _ = outgoing.send(Message::Close(None)).await;
                break;
            }
        }
    }
    drop((outgoing, incoming, updates));
    state.hub.release(video_id);
    Logger::info("Subscriber left", fields!(video_id = video_id));
}

fn is_ping(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Event<'a> {
        #[serde(borrow)]
        event: Option<&'a str>,
    }
    serde_json::from_str::<Event<'_>>(text).is_ok_and(|e| e.event == Some("ping"))
}
