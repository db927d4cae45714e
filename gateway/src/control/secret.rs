//! The per-stream control secret: drawn from the OS RNG, sent once in
//! `hello`, kept only as a SHA-256 digest and compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::TryRngCore as _;

use crate::auth::{digest, digests_match, SecretDigest};

/// Random bytes of a secret (192 bits, 32 URL-safe base64 characters).
const SECRET_BYTES: usize = 24;

/// A fresh secret: the text for `hello` and the digest kept to check it.
pub fn generate() -> (String, SecretDigest) {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the OS random number generator failed");
    let text = URL_SAFE_NO_PAD.encode(bytes);
    let kept = digest(&text);
    (text, kept)
}

/// Whether `presented` is the secret whose digest is `kept`, in time that
/// depends on neither.
pub fn matches(kept: &SecretDigest, presented: &str) -> bool {
    digests_match(kept, &digest(presented))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_url_safe_and_distinct() {
        let (a, kept) = generate();
        let (b, _) = generate();
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a, b);
        assert!(matches(&kept, &a));
        assert!(!matches(&kept, &b));
        assert!(!matches(&kept, ""));
    }
}
