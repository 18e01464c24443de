//! What every platform adapter needs the same way: a token that never shows in logs, and the
//! retry schedule of a failed delivery.

use std::fmt;

/// A secret string (a bot token, a webhook secret) whose `Debug` and `Display` never show it.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself: only to hand it to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (the platform is then disabled).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every occurrence of the secret replaced by `***` (error texts may quote a
    /// request URL or header).
    pub fn hide_in(&self, text: &str) -> String {
        if self.is_empty() {
            text.to_owned()
        } else {
            text.replace(self.expose(), "***")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_and_is_hidden_in_texts() {
        let s = Secret::new("123:ABC");
        assert_eq!(format!("{s:?}"), "\"***\"");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.hide_in("GET /bot123:ABC/x"), "GET /bot***/x");
        assert_eq!(Secret::default().hide_in("as is"), "as is");
    }
}
