//! URLs keep their scheme, host and path only ("URLs of websites you visited before and
//! after"): query strings and fragments often carry identifiers and tokens.

/// Longest URL accepted.
pub const MAX_LEN: usize = 2048;

/// Checks an http(s) URL and strips user information, query and fragment.
pub fn strip(raw: &str) -> Result<String, &'static str> {
    let raw = raw.trim();
    if raw.len() > MAX_LEN {
        return Err("at most 2048 characters");
    }
    let scheme = ["https://", "http://"]
        .into_iter()
        .find(|scheme| {
            raw.get(..scheme.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
        })
        .ok_or("must be an http:// or https:// URL")?;
    let rest = &raw[scheme.len()..];
    let cut = rest.find(['?', '#']).unwrap_or(rest.len());
    let rest = &rest[..cut];
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !host_ok || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("not a valid URL");
    }
    // One allocation: this runs on every URL of every event ingested.
    let mut out = String::with_capacity(scheme.len() + host.len() + path.len());
    out.push_str(scheme);
    out.push_str(host);
    out[scheme.len()..].make_ascii_lowercase();
    out.push_str(path);
    Ok(out)
}

/// `text` with its `%XX` escapes decoded, again until none is left (escapes that are not
/// two hex digits stay as they are): what a URL spells, for looking into it.
/// `4111%201111%201111%201111` is a card number as much as `4111 1111 1111 1111`.
pub fn percent_decoded(text: &str) -> String {
    let mut out = text.to_owned();
    // Each pass that decodes something makes the text shorter, so this ends.
    loop {
        let bytes = out.as_bytes();
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let escape = (bytes[i] == b'%')
                .then(|| bytes.get(i + 1..i + 3))
                .flatten()
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match escape {
                Some(byte) => {
                    decoded.push(byte);
                    i += 3;
                }
                None => {
                    decoded.push(bytes[i]);
                    i += 1;
                }
            }
        }
        if decoded.len() == bytes.len() {
            return out;
        }
        out = String::from_utf8_lossy(&decoded).into_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_fragments_and_credentials_go() {
        assert_eq!(
            strip("https://Example.com/a/b?email=ada@example.org&t=abc#section").as_deref(),
            Ok("https://example.com/a/b")
        );
        assert_eq!(
            strip("http://user:pw@host.test:8080/x").as_deref(),
            Ok("http://host.test:8080/x")
        );
        assert_eq!(
            strip("https://example.com").as_deref(),
            Ok("https://example.com")
        );
        // Scheme and host are case-blind, the path is not.
        assert_eq!(
            strip(" HTTP://Docs.Example.COM/Guide/Intro ").as_deref(),
            Ok("http://docs.example.com/Guide/Intro")
        );
    }

    #[test]
    fn escapes_are_decoded_until_none_is_left() {
        assert_eq!(
            percent_decoded("/pay/4111%201111%2D1111%201111"),
            "/pay/4111 1111-1111 1111"
        );
        assert_eq!(percent_decoded("/a%25201"), "/a 1");
        assert_eq!(percent_decoded("/100%/%zz/%4"), "/100%/%zz/%4");
        assert_eq!(percent_decoded("/caf%C3%A9"), "/café");
        assert_eq!(percent_decoded("/bad%FF"), "/bad\u{fffd}");
    }

    #[test]
    fn non_http_urls_are_refused() {
        for bad in [
            "",
            "ftp://x",
            "javascript:alert(1)",
            "https://",
            "https://exa mple.com/",
            "example.com",
        ] {
            assert!(strip(bad).is_err(), "{bad:?}");
        }
        assert!(strip(&format!("https://example.com/{}", "a".repeat(2048))).is_err());
    }
}
