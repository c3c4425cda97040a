//! The gRPC status of an answer, as the layers read it: `grpc-status` in the response
//! headers (a trailers-only answer: every refusal of our layers, and every error of a
//! unary handler) or, for an answer with a body, in its trailers.

use tonic::Code;

/// The code in a `grpc-status` header or trailer, if there is one. Cheaper than
/// `tonic::Status::from_header_map`: the message and details are not decoded.
pub fn code_of(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?;
    let code = std::str::from_utf8(value.as_bytes())
        .ok()?
        .trim()
        .parse::<i32>()
        .ok()?;
    Some(Code::from(code))
}

/// The canonical name of a code, as gRPC spells it (`OK`, `INVALID_ARGUMENT`, …).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_read_from_the_header() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(code_of(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
        assert_eq!(code_of(&headers), Some(Code::InvalidArgument));
        headers.insert("grpc-status", http::HeaderValue::from_static("0"));
        assert_eq!(code_of(&headers), Some(Code::Ok));
        headers.insert("grpc-status", http::HeaderValue::from_static("x"));
        assert_eq!(code_of(&headers), None);
        // An out-of-range code is UNKNOWN, as gRPC says.
        headers.insert("grpc-status", http::HeaderValue::from_static("99"));
        assert_eq!(code_of(&headers), Some(Code::Unknown));
    }

    #[test]
    fn every_code_has_its_canonical_name() {
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::PermissionDenied), "PERMISSION_DENIED");
        assert_eq!(code_name(Code::ResourceExhausted), "RESOURCE_EXHAUSTED");
        assert_eq!(code_name(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
        for i in 0..=16 {
            let code = Code::from(i);
            let name = code_name(code);
            assert!(
                name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{name}"
            );
            assert_eq!(
                name.replace('_', "").to_ascii_lowercase(),
                format!("{code:?}").to_ascii_lowercase(),
            );
        }
    }
}
