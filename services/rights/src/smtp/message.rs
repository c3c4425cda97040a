//! The message itself (RFC 5322 headers, a MIME text body) and its DATA section
//! (RFC 5321 §4.5.2 dot-stuffing). Pure.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};

/// The longest line SMTP allows, without its CRLF (RFC 5321 §4.5.3.1.6).
const MAX_LINE: usize = 998;
/// Quoted-printable lines stay within 76 characters (RFC 2045 §6.7).
const QP_LINE: usize = 76;
/// The longest address accepted (RFC 5321 §4.5.3.1.3 path limit, less the brackets).
const MAX_ADDRESS: usize = 254;

/// A message to one recipient.
#[derive(Debug, Clone)]
pub struct Mail<'a> {
    /// Sender address.
    pub from: &'a str,
    /// Recipient address.
    pub to: &'a str,
    /// Subject line.
    pub subject: &'a str,
    /// Plain text body.
    pub body: &'a str,
    /// Unique id, for the Message-ID header (the outbox message's id).
    pub id: &'a str,
    /// When it was written.
    pub date: DateTime<Utc>,
}

/// Whether `address` can go into an SMTP path and a header as it is: one `@` between
/// a local part and a domain, no spaces, brackets, quotes or control characters.
pub fn valid_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && address.len() <= MAX_ADDRESS
        && !local.contains('@')
        && address.chars().all(|c| {
            !c.is_control()
                && !c.is_whitespace()
                && !matches!(c, '<' | '>' | '"' | '(' | ')' | ',' | ';' | '\\')
        })
}

/// The domain of an address (for EHLO and the Message-ID).
pub fn domain(address: &str) -> &str {
    address.rsplit_once('@').map_or("localhost", |(_, d)| d)
}

/// The message as it is sent (CRLF line ends, before dot-stuffing): headers, then the
/// body, 7bit when it is ASCII in short lines, quoted-printable UTF-8 otherwise.
pub fn render(mail: &Mail<'_>) -> Vec<u8> {
    let lines = body_lines(mail.body);
    let plain = lines.iter().all(|l| l.is_ascii() && l.len() <= MAX_LINE);
    let mut out = String::new();
    let mut header = |name: &str, value: &str| {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    };
    header("Date", &mail.date.to_rfc2822());
    header("From", &format!("<{}>", mail.from));
    header("To", &format!("<{}>", mail.to));
    header("Subject", &encode_header(mail.subject));
    header(
        "Message-ID",
        &format!("<{}@{}>", mail.id, domain(mail.from)),
    );
    // RFC 3834: an automatic message; auto-responders should not answer it.
    header("Auto-Submitted", "auto-generated");
    header("MIME-Version", "1.0");
    header("Content-Type", "text/plain; charset=utf-8");
    header(
        "Content-Transfer-Encoding",
        if plain { "7bit" } else { "quoted-printable" },
    );
    out.push_str("\r\n");
    for line in &lines {
        if plain {
            out.push_str(line);
            out.push_str("\r\n");
        } else {
            out.push_str(&quoted_printable(line));
        }
    }
    out.into_bytes()
}

/// The body's lines, whatever its line ends were.
fn body_lines(body: &str) -> Vec<&str> {
    let trimmed = body.strip_suffix('\n').unwrap_or(body);
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// A header value: as it is when printable ASCII, else an RFC 2047 encoded word. Line
/// breaks never survive (no header can be injected).
pub fn encode_header(value: &str) -> String {
    let one_line: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.is_ascii() {
        one_line
    } else {
        format!("=?utf-8?B?{}?=", STANDARD.encode(one_line.as_bytes()))
    }
}

/// One line of text, quoted-printable (RFC 2045 §6.7) with soft breaks, ending in CRLF.
pub fn quoted_printable(line: &str) -> String {
    let mut out = String::new();
    let mut width = 0;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let last = i + 1 == bytes.len();
        // Trailing whitespace is encoded: transports may strip it.
        let literal = (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
        let piece = if literal {
            char::from(b).to_string()
        } else {
            format!("={b:02X}")
        };
        // Room for the soft break's "=" on every line but the last.
        if width + piece.len() > QP_LINE - 1 {
            out.push_str("=\r\n");
            width = 0;
        }
        width += piece.len();
        out.push_str(&piece);
    }
    out.push_str("\r\n");
    out
}

/// The DATA section (RFC 5321 §4.5.2): a line starting with "." gets another, and the
/// content ends with CRLF "." CRLF. `content` has CRLF line ends (see [`render`]).
pub fn data_section(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 16);
    let mut line_start = true;
    for &b in content {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    if !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(body: &str) -> Mail<'_> {
        Mail {
            from: "privacy@example.com",
            to: "ada@example.org",
            subject: "Your privacy request (completed)",
            body,
            id: "0191-abc",
            date: DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
        }
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[test]
    fn headers_name_sender_recipient_subject_and_the_message() {
        let out = text(&render(&mail("Done.\n")));
        let (head, body) = out.split_once("\r\n\r\n").expect("blank line");
        let headers: Vec<&str> = head.split("\r\n").collect();
        assert_eq!(
            headers,
            [
                "Date: Fri, 15 Jan 2027 08:00:00 +0000",
                "From: <privacy@example.com>",
                "To: <ada@example.org>",
                "Subject: Your privacy request (completed)",
                "Message-ID: <0191-abc@example.com>",
                "Auto-Submitted: auto-generated",
                "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=utf-8",
                "Content-Transfer-Encoding: 7bit",
            ]
        );
        assert_eq!(body, "Done.\r\n");
    }

    #[test]
    fn line_ends_become_crlf() {
        let out = text(&render(&mail("one\ntwo\r\nthree")));
        assert!(out.ends_with("\r\n\r\none\r\ntwo\r\nthree\r\n"), "{out:?}");
        assert!(!out.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn non_ascii_or_long_lines_go_quoted_printable() {
        let out = text(&render(&mail("Zürich: done = ok \n")));
        assert!(out.contains("Content-Transfer-Encoding: quoted-printable"));
        assert!(out.ends_with("Z=C3=BCrich: done =3D ok=20\r\n"), "{out:?}");
        let long = "x".repeat(1200);
        let out = text(&render(&mail(&long)));
        assert!(out.contains("quoted-printable"));
        assert!(out.split("\r\n").all(|l| l.len() <= QP_LINE), "{out}");
        let joined: String = out
            .split_once("\r\n\r\n")
            .expect("body")
            .1
            .replace("=\r\n", "")
            .trim_end()
            .to_owned();
        assert_eq!(joined, long);
    }

    #[test]
    fn a_header_cannot_be_injected_and_non_ascii_is_encoded() {
        assert_eq!(
            encode_header("Hi\r\nBcc: eve@example.com"),
            "Hi  Bcc: eve@example.com"
        );
        assert_eq!(
            encode_header("Anfrage für Sie"),
            "=?utf-8?B?QW5mcmFnZSBmw7xyIFNpZQ==?="
        );
    }

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_ends_the_data() {
        assert_eq!(
            text(&data_section(b".hidden\r\nok\r\n..two\r\n.\r\n")),
            "..hidden\r\nok\r\n...two\r\n..\r\n.\r\n"
        );
        assert_eq!(text(&data_section(b"no end")), "no end\r\n.\r\n");
        assert_eq!(text(&data_section(b"")), ".\r\n");
        // A dot inside a line is left alone.
        assert_eq!(text(&data_section(b"a.b\r\n")), "a.b\r\n.\r\n");
    }

    #[test]
    fn a_body_line_of_a_single_dot_does_not_end_the_message() {
        let out = data_section(&render(&mail("before\n.\nafter\n")));
        let s = text(&out);
        assert!(s.contains("\r\nbefore\r\n..\r\nafter\r\n.\r\n"), "{s:?}");
        assert_eq!(s.matches("\r\n.\r\n").count(), 1);
    }

    #[test]
    fn addresses_that_could_break_a_command_or_header_are_refused() {
        for ok in [
            "ada@example.org",
            "a.b+tag@sub.example.co.uk",
            "jürgen@example.de",
        ] {
            assert!(valid_address(ok), "{ok}");
        }
        for bad in [
            "",
            "ada",
            "@example.org",
            "ada@",
            "ada@example.org>\r\nRCPT TO:<eve@example.org",
            "ada smith@example.org",
            "<ada@example.org>",
            "a@b@example.org",
            "ada\u{0}@example.org",
        ] {
            assert!(!valid_address(bad), "{bad:?}");
        }
        assert!(!valid_address(&format!("{}@example.org", "a".repeat(250))));
        assert_eq!(domain("privacy@example.com"), "example.com");
    }
}
