//! Made-up people whose values are unique per test run, so a test can look for them in
//! logs and raw database bytes without false matches.

use pdm_proto::{common::v1::Region, identity::v1::CreateAccountRequest};

fn random_letters(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).unwrap_or_default();
    bytes.iter().map(|b| char::from(b'a' + b % 26)).collect()
}

fn random_digits(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).unwrap_or_default();
    bytes.iter().map(|b| char::from(b'0' + b % 10)).collect()
}

/// A made-up person.
#[derive(Debug, Clone)]
pub struct Person {
    /// First name, e.g. `Adaqwxyz`.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email at example.org.
    pub email: String,
    /// E.164 phone.
    pub phone: String,
    /// Password.
    pub password: String,
    /// Birth date (an adult).
    pub birth_date: String,
    /// Region.
    pub region: Region,
}

impl Person {
    /// A fresh adult in the UK.
    pub fn new() -> Self {
        let tag = random_letters(8);
        let first_name = format!("Ada{tag}");
        let last_name = format!("Lovelace{}", random_letters(6));
        Self {
            email: format!(
                "{}.{}@example.org",
                first_name.to_lowercase(),
                last_name.to_lowercase()
            ),
            first_name,
            last_name,
            phone: format!("+447700{}", random_digits(6)),
            password: format!("correct horse {}", random_letters(10)),
            birth_date: "1990-04-12".to_owned(),
            region: Region::Uk,
        }
    }

    /// The sign-up request for this person.
    pub fn sign_up(&self) -> CreateAccountRequest {
        CreateAccountRequest {
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
            region: self.region as i32,
            birth_date: self.birth_date.clone(),
            password: self.password.clone(),
        }
    }

    /// The values that must never appear in logs or unencrypted in a database, with
    /// their kind.
    pub fn secrets(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("first name", self.first_name.as_str()),
            ("last name", self.last_name.as_str()),
            ("email", self.email.as_str()),
            ("phone", self.phone.as_str()),
            ("password", self.password.as_str()),
        ]
    }
}

impl Default for Person {
    fn default() -> Self {
        Self::new()
    }
}

/// A 1x1 PNG.
pub fn png() -> Vec<u8> {
    let mut png =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    png.extend_from_slice(
        b"\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82",
    );
    png
}

/// A minimal JPEG header followed by filler up to `size` bytes.
pub fn jpeg(size: usize) -> Vec<u8> {
    let mut jpeg = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0,
    ];
    jpeg.resize(size.max(jpeg.len()), 0x42);
    jpeg
}

/// A 1x1 lossless WebP.
pub fn webp() -> Vec<u8> {
    let mut webp = b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f\0\0\0".to_vec();
    webp.extend_from_slice(b"\x10\x07\x10\x11\x11\x88\x88\xfe\x07\0");
    webp
}

/// A minimal one-page PDF.
pub fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
      2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
        .to_vec()
}

/// `prefix` followed by random letters: free text (a ticket summary, a billing name)
/// unique per test run, so a test can look for it in logs and raw database bytes.
/// Letters only, so it can never look like a card number.
pub fn phrase(prefix: &str) -> String {
    format!("{prefix} {}", random_letters(10))
}
