//! Clerk-shaped identifiers: a prefix and 27 base62 characters (`user_2abc…`).

use rand::Rng;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random base62 string of `len` characters.
#[must_use]
pub fn base62(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len).map(|_| char::from(BASE62[rng.gen_range(0..BASE62.len())])).collect()
}

/// A new id with Clerk's shape: `prefix_` followed by 27 base62 characters.
///
/// ```
/// let id = mock_clerk::new_id("user");
/// assert!(id.starts_with("user_") && id.len() == 5 + 27);
/// ```
#[must_use]
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", base62(27))
}
