//! `sessionStorage` access that never throws: private modes, sandboxed
//! frames and full quotas become values, not exceptions.

use wasm_bindgen::JsCast;
use web_sys::{DomException, Storage};

/// Why a write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// `QuotaExceededError`: retry with less.
    Quota,
    /// Storage is unusable (security error, disabled).
    Unavailable,
}

/// The page's `sessionStorage`, when usable.
pub fn session_storage() -> Option<Storage> {
    super::window()?.session_storage().ok().flatten()
}

/// `Err(Unavailable)` when reading throws (storage disabled).
pub fn read(storage: &Storage, key: &str) -> Result<Option<String>, WriteError> {
    storage.get_item(key).map_err(|_| WriteError::Unavailable)
}

pub fn write(storage: &Storage, key: &str, value: &str) -> Result<(), WriteError> {
    storage.set_item(key, value).map_err(|e| {
        let quota = e.dyn_ref::<DomException>().is_some_and(|d| {
            let name = d.name();
            // Firefox used its own name; legacy code 22 is QUOTA_EXCEEDED_ERR.
            name == "QuotaExceededError" || name == "NS_ERROR_DOM_QUOTA_REACHED" || d.code() == 22
        });
        if quota {
            WriteError::Quota
        } else {
            WriteError::Unavailable
        }
    })
}

pub fn remove(storage: &Storage, key: &str) {
    let _ = storage.remove_item(key);
}
