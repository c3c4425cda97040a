//! Rows in PostgreSQL's binary COPY format: each value as its length and its bytes, so
//! nothing is escaped or hex-encoded on our side nor parsed back on the server's (the text
//! format doubled every payload in hex and cost both sides a pass over it).

use chrono::{DateTime, Utc};

/// The binary COPY signature, then flags and header extension length (both 0).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01T00:00:00Z.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A COPY … FROM STDIN (FORMAT binary) payload under construction.
pub struct BinaryCopy {
    buf: Vec<u8>,
}

impl BinaryCopy {
    /// An empty payload with room for about `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity + HEADER.len() + 2);
        buf.extend_from_slice(HEADER);
        Self { buf }
    }

    /// Starts a row of `fields` values.
    pub fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    /// A NULL.
    pub fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// A bytea (or, as its UTF-8 bytes, a text) value; NULL when `None`.
    pub fn bytes(&mut self, value: Option<&[u8]>) {
        let Some(value) = value else {
            return self.null();
        };
        // A batch is bounded far below 2 GiB (1 MiB a request): a value always fits.
        let len = i32::try_from(value.len()).unwrap_or(i32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(value);
    }

    /// A text value; NULL when `None`.
    pub fn text(&mut self, value: Option<&str>) {
        self.bytes(value.map(str::as_bytes));
    }

    /// A timestamptz value.
    pub fn timestamp(&mut self, at: DateTime<Utc>) {
        // Rounded to the microsecond, as PostgreSQL reads a time written out in text.
        let sub_micro = at.timestamp_subsec_nanos() % 1_000;
        let micros = at.timestamp_micros() + i64::from(sub_micro >= 500) - POSTGRES_EPOCH_MICROS;
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&micros.to_be_bytes());
    }

    /// A boolean value.
    pub fn boolean(&mut self, value: bool) {
        self.buf.extend_from_slice(&1i32.to_be_bytes());
        self.buf.push(u8::from(value));
    }

    /// The payload, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_row_is_its_field_count_then_each_value_as_length_and_bytes() {
        let mut copy = BinaryCopy::with_capacity(0);
        copy.row(4);
        copy.text(Some("ab"));
        copy.bytes(None);
        copy.timestamp(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 1).unwrap());
        copy.boolean(true);
        let data = copy.finish();
        let mut expected = b"PGCOPY\n\xff\r\n\0".to_vec();
        expected.extend_from_slice(&[0; 8]);
        expected.extend_from_slice(&[0, 4]);
        expected.extend_from_slice(&[0, 0, 0, 2, b'a', b'b']);
        expected.extend_from_slice(&[0xff; 4]);
        expected.extend_from_slice(&[0, 0, 0, 8]);
        expected.extend_from_slice(&1_000_000i64.to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 1, 1]);
        expected.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(data, expected);
    }

    #[test]
    fn times_are_rounded_to_the_microsecond() {
        let at = |nanos| Utc.timestamp_opt(946_684_800, nanos).unwrap();
        for (nanos, micros) in [(1_499, 1i64), (1_500, 2), (999_999_999, 1_000_000)] {
            let mut copy = BinaryCopy::with_capacity(0);
            copy.timestamp(at(nanos));
            let data = copy.finish();
            assert_eq!(
                &data[HEADER.len() + 4..HEADER.len() + 12],
                micros.to_be_bytes()
            );
        }
    }

    #[test]
    fn times_before_the_postgres_epoch_are_negative() {
        let mut copy = BinaryCopy::with_capacity(0);
        copy.timestamp(Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap());
        let data = copy.finish();
        let micros = &data[HEADER.len() + 4..HEADER.len() + 12];
        assert_eq!(micros, (-1_000_000i64).to_be_bytes());
    }
}
