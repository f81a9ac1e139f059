//! The demo network API: saved Everflow-shaped responses served on 127.0.0.1.
//!
//! This module owns the demo's data (the saved responses and the demo
//! Integration, compiled into the binary so that `offersync demo` runs from
//! any directory and from the Debian package) and the server `offersync demo`
//! syncs from, so that the demo is a real run over real HTTP with no network
//! beyond loopback. It must never listen on another address, and nothing but
//! the demo command may use it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The API key the demo API accepts (the demo manifest reads it from
/// `OFFERSYNC_DEMO_API_KEY`, which `offersync demo` provides).
pub const API_KEY: &str = "demo-api-key";

/// The demo Integration as shipped in `demo/integrations.d/`.
pub const INTEGRATION_FILE: &str = "demo-everflow.yaml";
pub const INTEGRATION_YAML: &str = include_str!("../demo/integrations.d/demo-everflow.yaml");

/// The saved responses as shipped in `demo/api/everflow/`, in page order.
const PAGES: &[(&str, &str)] = &[
    (
        "page1.json",
        include_str!("../demo/api/everflow/page1.json"),
    ),
    (
        "page2.json",
        include_str!("../demo/api/everflow/page2.json"),
    ),
];

/// The port `offersync demo --serve` listens on when not told
/// (`--listen`): fixed, so that the Quick start's `base_url` is one line to copy.
pub const DEFAULT_SERVE_PORT: u16 = 9180;

/// Where the responses come from: the copy in the binary, or a directory of
/// `page*.json` files (`offersync demo --dir`, for editing the demo).
#[derive(Debug, Clone, Copy)]
pub enum Responses<'a> {
    Embedded,
    Dir(&'a Path),
}

/// A running demo API.
pub struct DemoApi {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    pub pages: usize,
    /// Every offer the API serves.
    pub offers: Arc<Vec<serde_json::Value>>,
}

/// Why the demo API could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot read the demo responses in {dir}: {message}")]
    Responses { dir: String, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "the demo API listens on loopback only, not on {0}\n  hint: --listen PORT or --listen 127.0.0.1:PORT"
    )]
    NotLoopback(SocketAddr),
}

/// Every offer of the saved pages, served again in the pages a client asks for.
struct Offers(Arc<Vec<serde_json::Value>>);

#[derive(serde::Deserialize)]
struct PageQuery {
    page: Option<usize>,
    page_size: Option<usize>,
}

/// The saved pages' offers, in order, and how many pages held them.
pub fn offers_of(responses: Responses<'_>) -> Result<(Vec<serde_json::Value>, usize), DemoError> {
    let label = match responses {
        Responses::Embedded => "the binary (demo/api/everflow)".to_string(),
        Responses::Dir(dir) => dir.display().to_string(),
    };
    let unreadable = |message: String| DemoError::Responses {
        dir: label.clone(),
        message,
    };
    let pages: Vec<(String, String)> = match responses {
        Responses::Embedded => PAGES
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect(),
        Responses::Dir(dir) => {
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
            let mut pages = Vec::new();
            for file in files {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| unreadable(format!("{}: {e}", file.display())))?;
                pages.push((file.display().to_string(), text));
            }
            pages
        }
    };
    if pages.is_empty() {
        return Err(unreadable("no page*.json files".into()));
    }
    let mut all = Vec::new();
    for (name, text) in &pages {
        let page: serde_json::Value =
            serde_json::from_str(text).map_err(|e| unreadable(format!("{name}: {e}")))?;
        match page.get("offers").and_then(|o| o.as_array()) {
            Some(offers) => all.extend(offers.iter().cloned()),
            None => return Err(unreadable(format!("{name}: no `offers` list"))),
        }
    }
    Ok((all, pages.len()))
}

/// Serves the saved offers as Everflow's `/v1/affiliates/offersrunnable` on
/// `addr` (loopback only), paged by the request's `page` and `page_size`,
/// until the runtime stops.
pub async fn serve(responses: Responses<'_>, addr: SocketAddr) -> Result<DemoApi, DemoError> {
    if !addr.ip().is_loopback() {
        return Err(DemoError::NotLoopback(addr));
    }
    let (all, pages) = offers_of(responses)?;
    let all = Arc::new(all);
    let app = Router::new()
        .route("/v1/affiliates/offersrunnable", axum::routing::get(offers))
        .with_state(Arc::new(Offers(all.clone())));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DemoError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| DemoError::Listen { addr, source })?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(DemoApi {
        base_url: format!("http://{bound}"),
        pages,
        offers: all,
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
