//! What keeps the pages safe: random tokens, cookies, the response headers, the CSRF
//! check of every form and the sign-in rate limit.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};

/// The session cookie.
pub const SESSION_COOKIE: &str = "pdm_session";
/// The console's session cookie (operators of the privacy team; never a person's).
pub const CONSOLE_COOKIE: &str = "pdm_console";
/// The cookie that carries the CSRF token of a visitor who is not signed in (the sign-in
/// form's); compared with the form field it must equal (double submit).
pub const CSRF_COOKIE: &str = "pdm_csrf";
/// The form field every form carries.
pub const CSRF_FIELD: &str = "csrf";

/// The Content-Security-Policy of every page: our own stylesheet, no script at all (no
/// inline script, no eval), no framing, forms only to ourselves.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// Strict-Transport-Security: a year, subdomains too.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("randomness: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of `text`, lower-case hex.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Equality that takes as long whatever the first difference.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path /, Secure when asked;
/// `max_age` None makes a browser-session cookie, Some(0) deletes it.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    cookie
}

/// Adds the security headers every response carries.
pub fn add_headers(headers: &mut HeaderMap) {
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::STRICT_TRANSPORT_SECURITY, HSTS),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        // Pages show personal data: no copy in shared or browser caches.
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
}

/// Whether the browser sends a Global Privacy Control signal (`Sec-GPC: 1`).
pub fn gpc(headers: &HeaderMap) -> bool {
    headers
        .get("sec-gpc")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "1")
}

/// The `csrf` field of a URL-encoded form body.
pub fn form_csrf(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned())
}

// === impl SignInLimiter ===

/// At most `attempts` sign-ins per client address in each `window` (fixed windows).
/// In memory: a limit per process, which is what a brute-force guard needs; identity
/// throttles wrong passwords per account on top, across every replica.
#[derive(Debug)]
pub struct SignInLimiter {
    attempts: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// Most addresses remembered before the oldest windows are dropped.
const MAX_ADDRESSES: usize = 100_000;

impl SignInLimiter {
    /// A limiter of `attempts` per `window`.
    pub fn new(attempts: u32, window: Duration) -> Self {
        Self {
            attempts,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt from `addr`; `Err(wait)` when over the limit.
    pub fn attempt(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let Ok(mut seen) = self.seen.lock() else {
            return Ok(());
        };
        if seen.len() >= MAX_ADDRESSES {
            let window = self.window;
            seen.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = seen.entry(addr).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.attempts {
            return Err(self.window.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_refuses_past_the_limit_until_the_window_ends() {
        let limiter = SignInLimiter::new(2, Duration::from_secs(60));
        let addr: IpAddr = [192, 0, 2, 1].into();
        let other: IpAddr = [192, 0, 2, 2].into();
        let t0 = Instant::now();
        assert!(limiter.attempt(addr, t0).is_ok());
        assert!(limiter.attempt(addr, t0).is_ok());
        assert!(limiter.attempt(addr, t0 + Duration::from_secs(1)).is_err());
        assert!(limiter.attempt(other, t0).is_ok(), "per address");
        assert!(limiter.attempt(addr, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn cookies_are_read_and_written_with_their_flags() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pdm_session=xyz"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), None);
        let set = set_cookie(SESSION_COOKIE, "v", true, None);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure")
        );
        assert!(!set_cookie(SESSION_COOKIE, "v", false, Some(0)).contains("Secure"));
    }

    #[test]
    fn tokens_compare_and_hash() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd") && !same("abc", "ab"));
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(random_token().ok(), random_token().ok());
    }

    #[test]
    fn the_csrf_field_is_found_in_a_form() {
        assert_eq!(form_csrf(b"a=1&csrf=t%2Bk"), Some("t+k".to_owned()));
        assert_eq!(form_csrf(b"a=1"), None);
    }
}
