//! Crash reports are scrubbed before storage: stack traces and messages carry emails,
//! tokens, card numbers and file paths naming the user.
//!
//! The rules are compiled once, when the service starts ([`Scrubber::new`]): a rule that
//! does not compile in the binary as built stops `pdm serve` with a message, instead of
//! failing every crash report.

use pdm_runtime::text::scrub_card_numbers;
use regex::Regex;

/// The scrub rules: a pattern and what replaces each match.
const RULES: &[(&str, &str)] = &[
    (
        r"(?i)\b(bearer|token|api[_-]?key|secret|password|passwd|pwd|authorization|session)(\s*[:=]\s*|\s+)[^\s,;]+",
        "$1=<redacted>",
    ),
    (
        r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+",
        "<token>",
    ),
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "<email>"),
    (r"(/home/|/Users/)[^/\s:]+", "$1<user>"),
    (
        r"(?i)([A-Z]:\\(?:Users|Documents and Settings)\\)[^\\\s:]+",
        "$1<user>",
    ),
    (r"\b[A-Fa-f0-9]{32,}\b", "<token>"),
    (r"\b[A-Za-z0-9+/_-]{40,}={0,2}", "<token>"),
];

/// The compiled scrub rules.
#[derive(Debug, Clone)]
pub struct Scrubber {
    rules: Vec<(Regex, &'static str)>,
}

impl Scrubber {
    /// Compiles every rule; the error names the rule that does not compile.
    pub fn new() -> anyhow::Result<Self> {
        let rules = RULES
            .iter()
            .map(|(pattern, replacement)| {
                Regex::new(pattern)
                    .map(|regex| (regex, *replacement))
                    .map_err(|e| {
                        anyhow::anyhow!("crash scrub rule {pattern:?} does not compile: {e}")
                    })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { rules })
    }

    /// Scrubs `text`: card numbers become `<card>`, then each rule applies; returns the
    /// result and how many things were replaced.
    pub fn scrub(&self, text: &str) -> (String, u32) {
        let (mut out, mut replaced) = scrub_card_numbers(text);
        for (pattern, replacement) in &self.rules {
            let found = u32::try_from(pattern.find_iter(&out).count()).unwrap_or(u32::MAX);
            if found > 0 {
                replaced = replaced.saturating_add(found);
                out = pattern.replace_all(&out, *replacement).into_owned();
            }
        }
        (out, replaced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrub(text: &str) -> (String, u32) {
        Scrubber::new().map(|s| s.scrub(text)).unwrap_or_default()
    }

    #[test]
    fn every_rule_compiles() {
        assert!(Scrubber::new().is_ok());
    }

    #[test]
    fn emails_tokens_and_user_paths_are_scrubbed() {
        let trace = "Error for ada.lovelace@example.org at /home/ada/app/src/main.rs:10\n\
                     at C:\\Users\\Ada\\AppData\\app.js:3\n\
                     Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghij\n\
                     api_key=sk_live_51Habcdefghijklmnop token 0123456789abcdef0123456789abcdef";
        let (clean, n) = scrub(trace);
        for secret in [
            "ada.lovelace",
            "/home/ada",
            "Users\\Ada",
            "eyJhbGci",
            "sk_live",
            "0123456789abcdef0123",
        ] {
            assert!(!clean.contains(secret), "{secret} left in {clean}");
        }
        assert!(clean.contains("/home/<user>/app/src/main.rs:10"), "{clean}");
        assert!(n >= 6, "{n}");
    }

    #[test]
    fn card_numbers_become_card() {
        let (clean, n) = scrub("charge failed for qty 2 4111 1111 1111 1111 at step 3");
        assert_eq!(clean, "charge failed for qty 2 <card> at step 3");
        assert_eq!(n, 1);
    }

    #[test]
    fn ordinary_traces_are_untouched() {
        let trace = "thread 'main' panicked at src/lib.rs:42:5: index out of bounds";
        assert_eq!(scrub(trace), (trace.to_owned(), 0));
    }
}
