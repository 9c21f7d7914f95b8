//! GraphiQL, served from the binary: the page at `GET /graphql` (for a
//! browser) and its assets under `/graphiql/<version>/`, embedded at build
//! time from the pinned npm packages vendored in `api/assets/graphiql`
//! (see its README). No CDN: the page works with no internet access.
//!
//! The page runs under a strict Content-Security-Policy: scripts and styles
//! only from this origin (no inline script, no eval), requests only to this
//! origin, no frames, no forms. Assets carry the version in their path and
//! are cached for a year; the page itself is not cached (in `--demo` it
//! carries the demo's token).
use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// The vendored GraphiQL's version (`.ci/vendor_graphiql.sh` pins the same).
pub const GRAPHIQL_VERSION: &str = "4.0.3";

/// Where the assets are served.
pub const ASSET_PREFIX: &str = "/graphiql/4.0.3";

/// The page's policy. `style-src 'unsafe-inline'` is absent on purpose:
/// GraphiQL sets styles through the CSSOM, which the policy allows.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "graphiql.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/graphiql/graphiql.min.js"),
    },
    Asset {
        name: "graphiql.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/graphiql/graphiql.min.css"),
    },
    Asset {
        name: "react.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/graphiql/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    },
    Asset {
        name: "init.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/graphiql/init.js"),
    },
    Asset {
        name: "salesops.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/graphiql/salesops.css"),
    },
    Asset {
        name: "LICENSE-graphiql",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../assets/graphiql/LICENSE-graphiql"),
    },
    Asset {
        name: "LICENSE-react",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../assets/graphiql/LICENSE-react"),
    },
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/graphiql/{version}/{file}", web::get().to(asset));
}

async fn asset(path: web::Path<(String, String)>) -> HttpResponse {
    let (version, file) = path.into_inner();
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) if version == GRAPHIQL_VERSION => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, a.content_type))
            // The version is in the path: a new one is a new URL.
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(a.body),
        _ => HttpResponse::NotFound()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
    }
}

/// Escapes text for an HTML attribute value in double quotes.
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page; `token` (the demo's) fills in the Authorization header.
pub fn page(endpoint: &str, token: Option<&str>) -> String {
    let headers = token
        .map(|t| {
            serde_json::to_string_pretty(&serde_json::json!({
                "Authorization": format!("Bearer {t}")
            }))
            .unwrap_or_default()
        })
        .unwrap_or_default();
    let p = ASSET_PREFIX;
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>salesops GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{p}/graphiql.min.css">
<link rel="stylesheet" href="{p}/salesops.css">
</head>
<body>
<div id="graphiql" data-endpoint="{endpoint}" data-headers="{headers}">Loading GraphiQL...</div>
<script src="{p}/react.production.min.js"></script>
<script src="{p}/react-dom.production.min.js"></script>
<script src="{p}/graphiql.min.js"></script>
<script src="{p}/init.js"></script>
</body>
</html>
"#,
        endpoint = attr(endpoint),
        headers = attr(&headers),
    )
}

/// The page as an HTTP response, with its security headers.
pub fn respond(token: Option<&str>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .body(page("/graphql", token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_escaped_into_an_attribute() {
        let html = page("/graphql", Some("a\"b<c"));
        assert!(html.contains(
            "data-headers=\"{\n  &quot;Authorization&quot;: &quot;Bearer a\\&quot;b&lt;c&quot;\n}\""
        ));
        assert!(!html.contains("<script>"), "no inline script");
        let plain = page("/graphql", None);
        assert!(plain.contains("data-headers=\"\""));
    }

    #[test]
    fn the_asset_prefix_names_the_version() {
        assert_eq!(ASSET_PREFIX, format!("/graphiql/{GRAPHIQL_VERSION}"));
    }
}
