//! File types recognised by their content, never by a name or a claimed type.

/// Largest profile photo accepted.
pub const MAX_PHOTO_BYTES: usize = 2 * 1024 * 1024;
/// Largest support-ticket attachment accepted.
pub const MAX_ATTACHMENT_BYTES: usize = 1024 * 1024;
/// Most attachments on one ticket.
pub const MAX_ATTACHMENTS: usize = 3;

/// An image type accepted for profile photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageType {
    /// image/jpeg
    Jpeg,
    /// image/png
    Png,
    /// image/webp
    Webp,
}

impl ImageType {
    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
        }
    }
}

/// Recognises JPEG, PNG and WebP by their signatures.
pub fn sniff_image(bytes: &[u8]) -> Option<ImageType> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageType::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageType::Png)
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageType::Webp)
    } else {
        None
    }
}

/// Checks a profile photo: a known image type within the size limit.
pub fn check_photo(bytes: &[u8]) -> Result<ImageType, &'static str> {
    if bytes.is_empty() {
        return Err("required");
    }
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err("at most 2 MiB");
    }
    sniff_image(bytes).ok_or("must be a JPEG, PNG or WebP image")
}

/// Recognises an attachment: an image, a PDF, or UTF-8 text.
pub fn sniff_attachment(bytes: &[u8]) -> Option<&'static str> {
    if let Some(image) = sniff_image(bytes) {
        return Some(image.mime());
    }
    if bytes.starts_with(b"%PDF-") {
        return Some("application/pdf");
    }
    if std::str::from_utf8(bytes).is_ok() && !bytes.contains(&0) {
        return Some("text/plain");
    }
    None
}

/// Checks an attachment: a known type within the size limit; returns its MIME type.
pub fn check_attachment(bytes: &[u8]) -> Result<&'static str, &'static str> {
    if bytes.is_empty() {
        return Err("required");
    }
    if bytes.len() > MAX_ATTACHMENT_BYTES {
        return Err("at most 1 MiB");
    }
    sniff_attachment(bytes).ok_or("must be a PNG, JPEG, WebP or PDF file, or UTF-8 text")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_content() {
        assert_eq!(
            sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]),
            Some(ImageType::Jpeg)
        );
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n...."), Some(ImageType::Png));
        assert_eq!(
            sniff_image(b"RIFF\x10\0\0\0WEBPVP8 "),
            Some(ImageType::Webp)
        );
        assert_eq!(sniff_image(b"GIF89a......"), None);
        assert_eq!(sniff_image(b"RIFF\x10\0\0\0WAVEfmt "), None);
    }

    #[test]
    fn photos_are_limited_in_type_and_size() {
        assert_eq!(check_photo(&[]), Err("required"));
        assert!(check_photo(b"<svg xmlns=...>").is_err());
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(MAX_PHOTO_BYTES + 1, 0);
        assert_eq!(check_photo(&big), Err("at most 2 MiB"));
        big.truncate(MAX_PHOTO_BYTES);
        assert_eq!(check_photo(&big), Ok(ImageType::Png));
    }

    #[test]
    fn attachments_accept_pdf_and_text_but_not_executables() {
        assert_eq!(check_attachment(b"%PDF-1.7 ..."), Ok("application/pdf"));
        assert_eq!(
            check_attachment("it crashes when I click save".as_bytes()),
            Ok("text/plain")
        );
        assert!(check_attachment(b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff").is_err());
        assert!(check_attachment(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]).is_err());
    }
}
