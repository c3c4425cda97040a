//! SMTP replies (RFC 5321 §4.2) and what an EHLO reply offers. Pure parsing.

/// A complete reply: its code and the text of its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text after the code, one entry per line.
    pub lines: Vec<String>,
}

impl Reply {
    /// 2yz: done.
    pub fn positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3yz: go on (354 after DATA, 334 during AUTH).
    pub fn intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 4yz: refused for now.
    pub fn transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// The code and, when the first line starts with one, the enhanced status code
    /// (RFC 3463, "5.1.1"): what may be logged and stored. The rest of the text is the
    /// server's and may quote the address.
    pub fn status(&self) -> String {
        let enhanced = self
            .lines
            .first()
            .and_then(|l| l.split_whitespace().next())
            .filter(|w| is_enhanced_code(w));
        match enhanced {
            Some(e) => format!("{} {e}", self.code),
            None => self.code.to_string(),
        }
    }
}

fn is_enhanced_code(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// One line of a reply: its code, whether more lines follow, and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// Code.
    pub code: u16,
    /// Another line follows ("250-…").
    pub more: bool,
    /// The text after the separator.
    pub text: &'a str,
}

/// Parses one reply line (without its CRLF): three digits, then a space, a hyphen (more
/// lines follow) or nothing.
pub fn parse_line(line: &str) -> Option<Line<'_>> {
    let bytes = line.as_bytes();
    if bytes.len() < 3
        || !bytes[..3].iter().all(u8::is_ascii_digit)
        || !(b'2'..=b'5').contains(&bytes[0])
    {
        return None;
    }
    let code: u16 = line[..3].parse().ok()?;
    match bytes.get(3) {
        None => Some(Line {
            code,
            more: false,
            text: "",
        }),
        Some(b' ') => Some(Line {
            code,
            more: false,
            text: &line[4..],
        }),
        Some(b'-') => Some(Line {
            code,
            more: true,
            text: &line[4..],
        }),
        Some(_) => None,
    }
}

/// Gathers reply lines into a reply.
#[derive(Debug, Default)]
pub struct Gather {
    code: Option<u16>,
    lines: Vec<String>,
}

/// The most lines one reply may have (an EHLO reply has one per extension).
pub const MAX_LINES: usize = 100;

impl Gather {
    /// Adds a line; `Ok(Some(reply))` once the last line came, `Err` when the line is not
    /// a reply line or its code differs from the first line's.
    pub fn push(&mut self, raw: &str) -> Result<Option<Reply>, ()> {
        let line = parse_line(raw.trim_end_matches(['\r', '\n'])).ok_or(())?;
        if *self.code.get_or_insert(line.code) != line.code || self.lines.len() >= MAX_LINES {
            return Err(());
        }
        self.lines.push(line.text.to_owned());
        if line.more {
            return Ok(None);
        }
        Ok(Some(Reply {
            code: line.code,
            lines: std::mem::take(&mut self.lines),
        }))
    }
}

/// What the server offers, from its EHLO reply (RFC 5321 §4.1.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// AUTH mechanisms, upper case (RFC 4954).
    pub auth: Vec<String>,
    /// SMTPUTF8 (RFC 6531): addresses beyond ASCII.
    pub smtputf8: bool,
}

impl Capabilities {
    /// The extensions of an EHLO reply (its first line is the server's name).
    pub fn of(reply: &Reply) -> Self {
        let mut caps = Self::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            let keyword = keyword.to_ascii_uppercase();
            match keyword.as_str() {
                "STARTTLS" => caps.starttls = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                // "AUTH PLAIN LOGIN", or the old "AUTH=PLAIN LOGIN".
                _ if keyword == "AUTH" || keyword.starts_with("AUTH=") => {
                    let first = keyword.strip_prefix("AUTH=").filter(|m| !m.is_empty());
                    for m in first
                        .map(str::to_owned)
                        .into_iter()
                        .chain(words.map(str::to_ascii_uppercase))
                    {
                        if !caps.auth.contains(&m) {
                            caps.auth.push(m);
                        }
                    }
                }
                _ => {}
            }
        }
        caps
    }

    /// The mechanism to authenticate with: PLAIN, else LOGIN.
    pub fn auth_mechanism(&self) -> Option<Mechanism> {
        if self.auth.iter().any(|m| m == "PLAIN") {
            Some(Mechanism::Plain)
        } else if self.auth.iter().any(|m| m == "LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }
}

/// SASL mechanisms this client speaks (over TLS only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// The common LOGIN exchange.
    Login,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gather(lines: &[&str]) -> Result<Option<Reply>, ()> {
        let mut g = Gather::default();
        let mut last = Ok(None);
        for l in lines {
            last = g.push(l);
            if !matches!(last, Ok(None)) {
                break;
            }
        }
        last
    }

    #[test]
    fn reply_lines_are_parsed() {
        assert_eq!(
            parse_line("250-smtp.example.com"),
            Some(Line {
                code: 250,
                more: true,
                text: "smtp.example.com"
            })
        );
        assert_eq!(
            parse_line("354 go ahead"),
            Some(Line {
                code: 354,
                more: false,
                text: "go ahead"
            })
        );
        assert_eq!(
            parse_line("250"),
            Some(Line {
                code: 250,
                more: false,
                text: ""
            })
        );
        for bad in ["", "25", "abc def", "2500 x", "250x", "650 no", "099 no"] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_multiline_reply_ends_at_its_last_line_and_keeps_one_code() {
        let reply = gather(&[
            "250-relay.test\r\n",
            "250-STARTTLS\r\n",
            "250 SIZE 1000\r\n",
        ])
        .expect("valid")
        .expect("complete");
        assert_eq!(reply.code, 250);
        assert_eq!(reply.lines, ["relay.test", "STARTTLS", "SIZE 1000"]);
        assert_eq!(gather(&["250-a", "251 b"]), Err(()));
        assert_eq!(gather(&["250-a", "garbage"]), Err(()));
        assert_eq!(gather(&["250-a", "250-b"]), Ok(None));
    }

    #[test]
    fn a_reply_too_long_is_refused() {
        let mut g = Gather::default();
        for _ in 0..MAX_LINES {
            assert_eq!(g.push("250-x"), Ok(None));
        }
        assert_eq!(g.push("250 x"), Err(()));
    }

    #[test]
    fn status_keeps_the_codes_and_never_the_servers_words() {
        let reply = Reply {
            code: 550,
            lines: vec!["5.1.1 <ada@example.com>: Recipient address rejected".into()],
        };
        assert_eq!(reply.status(), "550 5.1.1");
        let plain = Reply {
            code: 451,
            lines: vec!["try ada@example.com later".into()],
        };
        assert_eq!(plain.status(), "451");
        assert!(plain.transient() && !plain.positive());
    }

    #[test]
    fn ehlo_capabilities_are_read_after_the_greeting_line() {
        let reply = Reply {
            code: 250,
            lines: vec![
                "mail.example.com Hello STARTTLS".into(),
                "PIPELINING".into(),
                "starttls".into(),
                "AUTH LOGIN plain".into(),
                "AUTH=CRAM-MD5".into(),
                "SMTPUTF8".into(),
            ],
        };
        let caps = Capabilities::of(&reply);
        assert!(caps.starttls && caps.smtputf8);
        assert_eq!(caps.auth, ["LOGIN", "PLAIN", "CRAM-MD5"]);
        assert_eq!(caps.auth_mechanism(), Some(Mechanism::Plain));

        // The server's name is not an extension, even when it looks like one.
        let bare = Capabilities::of(&Reply {
            code: 250,
            lines: vec!["STARTTLS".into(), "8BITMIME".into()],
        });
        assert_eq!(bare, Capabilities::default());
        let login_only = Capabilities::of(&Reply {
            code: 250,
            lines: vec!["x".into(), "AUTH LOGIN".into()],
        });
        assert_eq!(login_only.auth_mechanism(), Some(Mechanism::Login));
        let none = Capabilities::of(&Reply {
            code: 250,
            lines: vec!["x".into(), "AUTH CRAM-MD5 XOAUTH2".into()],
        });
        assert_eq!(none.auth_mechanism(), None);
    }
}
