//! Validation and minimisation of what comes in: every field checked, every problem
//! reported together, and only minimised values kept.

use chrono::{DateTime, Duration, Utc};
use pdm_proto::telemetry::v1::{self as pb, ConnectionType, EventKind};
use pdm_runtime::{FieldViolations, SubjectId, convert::from_timestamp};
use serde_json::{Map, Value, json};

use crate::{
    domain::{geo::GeoDb, ip, url},
    error::TelemetryError,
};

/// Most events per batch.
pub const MAX_EVENTS: usize = 1000;
/// Largest encoded batch.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Longest short text field.
pub const MAX_TEXT: usize = 256;
/// How far ahead an event time may be (clock skew).
const SKEW: Duration = Duration::minutes(5);

/// An event after validation and minimisation.
#[derive(Debug, Clone)]
pub struct CleanEvent {
    /// Subject.
    pub subject_id: Option<String>,
    /// Kind.
    pub kind: EventKind,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Interaction peer (hashed before storage).
    pub peer: Option<String>,
    /// Feature, for aggregates.
    pub feature: Option<String>,
    /// Country from the IP database, for aggregates.
    pub country: Option<String>,
    /// Operating system, for aggregates.
    pub os: Option<String>,
    /// Browser, for aggregates.
    pub browser: Option<String>,
    /// Minimised details (device identifier still raw: hashed by the caller).
    pub details: Map<String, Value>,
    /// Raw device identifier.
    pub device_id: Option<String>,
}

fn text(v: &mut FieldViolations, field: &str, raw: &str) -> Option<String> {
    let value = raw.trim();
    if value.is_empty() {
        return None;
    }
    if value.chars().count() > MAX_TEXT || value.chars().any(char::is_control) {
        v.add(field, "at most 256 printable characters");
        return None;
    }
    Some(value.to_owned())
}

fn required_text(v: &mut FieldViolations, field: &str, raw: &str) -> Option<String> {
    let value = text(v, field, raw);
    if value.is_none() && raw.trim().is_empty() {
        v.add(field, "required for this kind of event");
    }
    value
}

/// A device context after minimisation.
#[derive(Debug, Default)]
struct CleanDevice {
    details: Map<String, Value>,
    device_id: Option<String>,
    os: Option<String>,
    browser: Option<String>,
    country: Option<String>,
}

fn device(v: &mut FieldViolations, at: &str, d: &pb::DeviceContext, geo: &GeoDb) -> CleanDevice {
    let mut out = Map::new();
    let field = |name: &str| format!("{at}.{name}");
    match ConnectionType::try_from(d.connection) {
        Ok(ConnectionType::Unspecified) => {}
        Ok(c) => {
            out.insert(
                "connection".into(),
                json!(
                    c.as_str_name()
                        .trim_start_matches("CONNECTION_TYPE_")
                        .to_lowercase()
                ),
            );
        }
        Err(_) => v.add(field("connection"), "unknown connection type"),
    }
    let mut put = |name: &str, raw: &str, v: &mut FieldViolations| {
        let value = text(v, &field(name), raw);
        if let Some(value) = &value {
            out.insert(name.into(), json!(value));
        }
        value
    };
    put("locale", &d.locale, v);
    put("time_zone", &d.time_zone, v);
    let os = put("os_name", &d.os_name, v);
    put("os_version", &d.os_version, v);
    let browser = put("browser_name", &d.browser_name, v);
    put("browser_version", &d.browser_version, v);
    put("app_version", &d.app_version, v);
    let mut country = None;
    if !d.ip_address.trim().is_empty() {
        // Only the truncated address exists from here on.
        match ip::truncate(&d.ip_address) {
            Ok(truncated) => {
                out.insert("ip_network".into(), json!(truncated.to_string()));
                if let Some(location) = geo.lookup(truncated) {
                    out.insert("country".into(), json!(location.country));
                    if !location.region.is_empty() {
                        out.insert("region".into(), json!(location.region));
                    }
                    country = Some(location.country.clone());
                }
            }
            Err(e) => v.add(field("ip_address"), e),
        }
    }
    for (name, raw) in [("referrer_url", &d.referrer_url), ("exit_url", &d.exit_url)] {
        if raw.trim().is_empty() {
            continue;
        }
        match url::strip(raw) {
            Ok(clean) => {
                out.insert(name.into(), json!(clean));
            }
            Err(e) => v.add(field(name), e),
        }
    }
    let device_id = text(v, &field("device_id"), &d.device_id);
    CleanDevice {
        details: out,
        device_id,
        os,
        browser,
        country,
    }
}

/// Validates and minimises a batch.
pub fn batch(
    r: &pb::IngestEventsRequest,
    now: DateTime<Utc>,
    max_age: Duration,
    geo: &GeoDb,
) -> Result<Vec<CleanEvent>, TelemetryError> {
    let mut v = FieldViolations::new();
    v.check("batch_id", pdm_runtime::ids::check_request_id(&r.batch_id));
    if r.events.is_empty() {
        v.add("events", "at least one event");
    }
    if r.events.len() > MAX_EVENTS {
        v.add("events", "at most 1000 events per batch");
        return Err(TelemetryError::Invalid(
            v.finish()
                .err()
                .unwrap_or_else(|| tonic::Status::invalid_argument("events")),
        ));
    }
    if prost::Message::encoded_len(r) > MAX_BATCH_BYTES {
        v.add("events", "at most 1 MiB per batch");
        return Err(TelemetryError::Invalid(
            v.finish()
                .err()
                .unwrap_or_else(|| tonic::Status::invalid_argument("events")),
        ));
    }
    let mut out = Vec::with_capacity(r.events.len());
    for (i, e) in r.events.iter().enumerate() {
        let at = format!("events[{i}]");
        let subject = if e.subject_id.is_empty() {
            None
        } else {
            v.check(
                &format!("{at}.subject_id"),
                e.subject_id.parse::<SubjectId>(),
            )
            .map(|s| s.to_string())
        };
        let kind = match EventKind::try_from(e.kind) {
            Ok(EventKind::Unspecified) => {
                v.add(format!("{at}.kind"), "required");
                None
            }
            Ok(kind) => Some(kind),
            Err(_) => {
                v.add(format!("{at}.kind"), "unknown event kind");
                None
            }
        };
        let occurred_at = match e.occurred_at.as_ref().map(from_timestamp) {
            None => {
                v.add(format!("{at}.occurred_at"), "required");
                None
            }
            Some(None) => {
                v.add(format!("{at}.occurred_at"), "not a valid time");
                None
            }
            Some(Some(t)) if t > now + SKEW => {
                v.add(format!("{at}.occurred_at"), "must not be in the future");
                None
            }
            Some(Some(t)) if t < now - max_age => {
                v.add(format!("{at}.occurred_at"), "too old");
                None
            }
            Some(Some(t)) => Some(t),
        };
        let mut details = Map::new();
        let mut feature = None;
        let mut peer = None;
        match kind {
            Some(EventKind::FeatureUsed) => {
                feature = required_text(&mut v, &format!("{at}.feature"), &e.feature);
                if let Some(f) = &feature {
                    details.insert("feature".into(), json!(f));
                }
            }
            Some(EventKind::LinkClicked) => match url::strip(&e.link_url) {
                Ok(clean) => {
                    details.insert("link_url".into(), json!(clean));
                }
                Err(problem) => v.add(format!("{at}.link_url"), problem),
            },
            Some(EventKind::Interaction) => {
                peer = v
                    .check(
                        &format!("{at}.peer_subject_id"),
                        e.peer_subject_id.parse::<SubjectId>(),
                    )
                    .map(|s| s.to_string());
                if e.subject_id.is_empty() {
                    v.add(format!("{at}.subject_id"), "required for an interaction");
                }
            }
            Some(EventKind::PageView) => {
                if let Some(screen) = required_text(&mut v, &format!("{at}.screen"), &e.screen) {
                    details.insert("screen".into(), json!(screen));
                }
            }
            _ => {}
        }
        let CleanDevice {
            details: device_details,
            device_id,
            os,
            browser,
            country,
        } = match &e.device {
            Some(d) => device(&mut v, &format!("{at}.device"), d, geo),
            None => CleanDevice::default(),
        };
        if !device_details.is_empty() {
            details.insert("device".into(), Value::Object(device_details));
        }
        if let (Some(kind), Some(occurred_at)) = (kind, occurred_at) {
            out.push(CleanEvent {
                subject_id: subject,
                kind,
                occurred_at,
                peer,
                feature,
                country,
                os,
                browser,
                details,
                device_id,
            });
        }
    }
    v.finish().map_err(TelemetryError::Invalid)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use pdm_runtime::tonic_types::StatusExt;

    use super::*;

    fn event(kind: EventKind) -> pb::Event {
        pb::Event {
            subject_id: uuid::Uuid::now_v7().to_string(),
            kind: kind as i32,
            occurred_at: Some(pdm_runtime::convert::timestamp(Utc::now())),
            ..Default::default()
        }
    }

    fn fields(err: TelemetryError) -> Vec<String> {
        match err {
            TelemetryError::Invalid(s) => s
                .get_details_bad_request()
                .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
                .unwrap_or_default(),
            other => vec![other.to_string()],
        }
    }

    #[test]
    fn ips_urls_and_devices_are_minimised() {
        let geo = GeoDb::parse("203.0.113.0/24,GB,England").unwrap_or_default();
        let mut e = event(EventKind::LinkClicked);
        e.link_url = "https://docs.example.com/guide?session=abc123#top".into();
        e.device = Some(pb::DeviceContext {
            ip_address: "203.0.113.77".into(),
            referrer_url: "https://search.example/?q=ada+lovelace".into(),
            device_id: "device-123".into(),
            os_name: "Android".into(),
            ..Default::default()
        });
        let r = pb::IngestEventsRequest {
            batch_id: "b1".into(),
            events: vec![e],
        };
        let clean = batch(&r, Utc::now(), Duration::days(30), &geo).unwrap_or_default();
        let json = serde_json::to_string(&clean[0].details).unwrap_or_default();
        assert!(
            json.contains("203.0.113.0") && !json.contains("203.0.113.77"),
            "{json}"
        );
        assert!(
            json.contains("https://docs.example.com/guide") && !json.contains("session"),
            "{json}"
        );
        assert!(
            !json.contains("ada+lovelace") && !json.contains("device-123"),
            "{json}"
        );
        assert_eq!(clean[0].country.as_deref(), Some("GB"));
        assert_eq!(clean[0].device_id.as_deref(), Some("device-123"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut bad_ip = event(EventKind::PageView);
        bad_ip.screen = "home".into();
        bad_ip.device = Some(pb::DeviceContext {
            ip_address: "999.1.1.1".into(),
            ..Default::default()
        });
        let mut bad_url = event(EventKind::LinkClicked);
        bad_url.link_url = "javascript:alert(1)".into();
        let unknown = pb::Event {
            kind: 42,
            ..event(EventKind::FeatureUsed)
        };
        let r = pb::IngestEventsRequest {
            batch_id: "b1".into(),
            events: vec![bad_ip, bad_url, unknown],
        };
        let err = batch(&r, Utc::now(), Duration::days(30), &GeoDb::default()).expect_err("bad");
        assert_eq!(
            fields(err),
            [
                "events[0].device.ip_address",
                "events[1].link_url",
                "events[2].kind"
            ]
        );
    }

    #[test]
    fn oversize_batches_are_refused() {
        let mut e = event(EventKind::FeatureUsed);
        e.feature = "x".into();
        let r = pb::IngestEventsRequest {
            batch_id: "b1".into(),
            events: vec![e; 1001],
        };
        assert_eq!(
            fields(batch(&r, Utc::now(), Duration::days(30), &GeoDb::default()).expect_err("big")),
            ["events"]
        );
    }
}
