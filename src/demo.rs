//! The demo network API: saved Everflow-shaped responses served on 127.0.0.1.
//!
//! This module owns only the server `offersync demo` syncs from, so that the
//! demo is a real run over real HTTP with no network beyond loopback. It
//! must never listen on another address, and nothing else may use it.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The API key the demo API accepts (the demo manifest reads it from
/// `OFFERSYNC_DEMO_API_KEY`, which `offersync demo` provides).
pub const API_KEY: &str = "demo-api-key";

/// A running demo API.
pub struct DemoApi {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    pub pages: usize,
}

/// Why the demo API could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot read the demo responses in {dir}: {message}")]
    Responses { dir: String, message: String },
    #[error("cannot listen on 127.0.0.1: {0}")]
    Listen(std::io::Error),
}

/// Every offer of the saved pages, served again in the pages a client asks for.
struct Offers(Vec<serde_json::Value>);

#[derive(serde::Deserialize)]
struct PageQuery {
    page: Option<usize>,
    page_size: Option<usize>,
}

/// Serves the offers of `dir/page*.json` (in name order) as Everflow's
/// `/v1/affiliates/offersrunnable`, paged by the request's `page` and
/// `page_size`, until the runtime stops.
pub async fn serve(dir: &Path) -> Result<DemoApi, DemoError> {
    let unreadable = |message: String| DemoError::Responses {
        dir: dir.display().to_string(),
        message,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| unreadable(e.to_string()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("page") && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    let mut all = Vec::new();
    for file in &files {
        let page: serde_json::Value = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
            .map_err(|e| unreadable(format!("{}: {e}", file.display())))?;
        match page.get("offers").and_then(|o| o.as_array()) {
            Some(offers) => all.extend(offers.iter().cloned()),
            None => return Err(unreadable(format!("{}: no `offers` list", file.display()))),
        }
    }
    if files.is_empty() {
        return Err(unreadable("no page*.json files".into()));
    }
    let count = files.len();
    let app = Router::new()
        .route("/v1/affiliates/offersrunnable", axum::routing::get(offers))
        .with_state(Arc::new(Offers(all)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(DemoError::Listen)?;
    let addr = listener.local_addr().map_err(DemoError::Listen)?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(DemoApi {
        base_url: format!("http://{addr}"),
        pages: count,
    })
}

async fn offers(
    State(all): State<Arc<Offers>>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    if headers.get("x-eflow-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":"invalid API key"}"#,
        )
            .into_response();
    }
    let page = q.page.unwrap_or(1).max(1);
    let size = q.page_size.unwrap_or(50).clamp(1, 500);
    let offers: Vec<&serde_json::Value> = all.0.iter().skip((page - 1) * size).take(size).collect();
    let body = serde_json::json!({
        "offers": offers,
        "paging": {"page": page, "page_size": size, "total_count": all.0.len()},
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
