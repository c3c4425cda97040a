//! Crash reports are scrubbed before storage: stack traces and messages carry emails,
//! tokens and file paths naming the user.

use std::sync::LazyLock;

use regex::Regex;

struct Rule {
    pattern: Regex,
    replacement: &'static str,
}

fn rule(pattern: &str, replacement: &'static str) -> Rule {
    Rule {
        pattern: Regex::new(pattern).unwrap_or_else(|e| panic!("scrub pattern {pattern}: {e}")),
        replacement,
    }
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        rule(
            r"(?i)\b(bearer|token|api[_-]?key|secret|password|passwd|pwd|authorization|session)(\s*[:=]\s*|\s+)[^\s,;]+",
            "$1=<redacted>",
        ),
        rule(
            r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+",
            "<token>",
        ),
        rule(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "<email>"),
        rule(r"(/home/|/Users/)[^/\s:]+", "$1<user>"),
        rule(
            r"(?i)([A-Z]:\\(?:Users|Documents and Settings)\\)[^\\\s:]+",
            "$1<user>",
        ),
        rule(r"\b[A-Fa-f0-9]{32,}\b", "<token>"),
        rule(r"\b[A-Za-z0-9+/_-]{40,}={0,2}", "<token>"),
    ]
});

/// Scrubs `text`; returns the result and how many things were replaced.
pub fn scrub(text: &str) -> (String, u32) {
    let mut out = text.to_owned();
    let mut replaced = 0u32;
    for r in RULES.iter() {
        let found = u32::try_from(r.pattern.find_iter(&out).count()).unwrap_or(u32::MAX);
        if found > 0 {
            replaced = replaced.saturating_add(found);
            out = r.pattern.replace_all(&out, r.replacement).into_owned();
        }
    }
    (out, replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn ordinary_traces_are_untouched() {
        let trace = "thread 'main' panicked at src/lib.rs:42:5: index out of bounds";
        assert_eq!(scrub(trace), (trace.to_owned(), 0));
    }
}
