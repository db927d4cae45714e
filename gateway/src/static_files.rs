//! `--static-dir`: a built web app served beside the API, confined to its
//! folder. A request whose file resolves (after symlinks) outside the
//! folder is answered `404 not_found`, as if the file did not exist;
//! unknown paths get the folder's `index.html` so client-side routes load.
//!
//! The check resolves the path when the request arrives; a symlink swapped
//! between the check and the read is not caught, so the folder must not be
//! writable by anyone the gateway does not trust.

use std::path::{Component, Path, PathBuf};

use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::MethodRouter;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::fallback::not_found;

/// The folder's real path, checked to exist and to hold no `index.html`
/// that resolves outside it.
pub fn root(dir: &Path) -> Result<PathBuf, String> {
    let root = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !root.is_dir() {
        return Err(format!("{} is not a folder", dir.display()));
    }
    match std::fs::canonicalize(root.join("index.html")) {
        Ok(index) if !index.starts_with(&root) => Err(format!(
            "{}/index.html resolves outside the folder",
            dir.display()
        )),
        _ => Ok(root),
    }
}

/// The fallback route serving the files of `root` (see [`root`]).
pub fn service(root: PathBuf) -> MethodRouter {
    let serve = ServeDir::new(&root).fallback(ServeFile::new(root.join("index.html")));
    axum::routing::any(move |request: Request| {
        let (root, serve) = (root.clone(), serve.clone());
        async move {
            if escapes(&root, request.uri().path()).await {
                return not_found(request).await.into_response();
            }
            match serve.oneshot(request).await {
                Ok(response) => response.map(axum::body::Body::new),
                Err(never) => match never {},
            }
        }
    })
}

/// Whether the file for `path` (or a directory's `index.html`) resolves
/// outside `root`. Missing files do not escape: they get the index.
async fn escapes(root: &Path, path: &str) -> bool {
    let Some(relative) = relative_path(path) else {
        return true;
    };
    let Ok(real) = tokio::fs::canonicalize(root.join(relative)).await else {
        return false;
    };
    if !real.starts_with(root) {
        return true;
    }
    // A folder is answered with its index.html, which may be a link too.
    match tokio::fs::canonicalize(real.join("index.html")).await {
        Ok(index) => !index.starts_with(root),
        Err(_) => false,
    }
}

/// The decoded request path as a relative path, or `None` if it climbs
/// (`..`) or is not valid UTF-8 once decoded.
fn relative_path(path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    let mut out = PathBuf::new();
    for part in decoded.split('/') {
        let part_path = Path::new(part);
        for component in part_path.components() {
            match component {
                Component::Normal(name) => out.push(name),
                Component::CurDir => {}
                _ => return None,
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_never_climb() {
        assert_eq!(relative_path("/a/b.js"), Some(PathBuf::from("a/b.js")));
        assert_eq!(relative_path("/a/%2e%2e/b"), None);
        assert_eq!(relative_path("/../etc/passwd"), None);
        assert_eq!(relative_path("/a/./b"), Some(PathBuf::from("a/b")));
        assert_eq!(relative_path("/"), Some(PathBuf::new()));
    }
}
