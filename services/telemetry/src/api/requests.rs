//! Validation and minimisation of what comes in: every field checked, every problem
//! reported together, and only minimised values kept.

use chrono::{DateTime, Duration, Utc};
use pdm_proto::telemetry::v1::{self as pb, ConnectionType, EventKind, TrackingCategory};
use pdm_runtime::{
    FieldViolations, SubjectId,
    convert::from_timestamp,
    text::{TextRule, refuse_card_number},
};
use serde::Serialize;

use crate::{
    domain::{geo::GeoDb, ip, tracking::Category, url},
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
    /// Minimised details: what is sealed and stored.
    pub details: Details,
    /// Raw device identifier (hashed by the caller into `details`).
    pub device_id: Option<String>,
    /// What the tracking is for (UNSPECIFIED counts as analytics).
    pub tracking: Category,
    /// The event's request carried a Global Privacy Control signal.
    pub gpc: bool,
}

impl CleanEvent {
    /// Country from the IP database, for aggregates.
    pub fn country(&self) -> Option<&str> {
        self.details.device.as_ref()?.country.as_deref()
    }

    /// Operating system, for aggregates.
    pub fn os(&self) -> Option<&str> {
        self.details.device.as_ref()?.os_name.as_deref()
    }

    /// Browser, for aggregates.
    pub fn browser(&self) -> Option<&str> {
        self.details.device.as_ref()?.browser_name.as_deref()
    }
}

/// The stored details of an event, as JSON (a type, not a map: one allocation per
/// value rather than per key and value, for every event of every batch).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Details {
    /// Feature used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    /// Link clicked, stripped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_url: Option<String>,
    /// Page or screen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    /// Device context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// The legal basis the event was admitted on (set once judged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<&'static str>,
    /// The purpose it was admitted for (set once judged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<&'static str>,
}

/// A device context after minimisation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Device {
    /// Connection type, lower case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<&'static str>,
    /// Locale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Operating system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_name: Option<String>,
    /// Its version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// Browser.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_name: Option<String>,
    /// Its version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_version: Option<String>,
    /// Our app's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// The truncated address (/24, /48): all that is kept of the IP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_network: Option<String>,
    /// Country from the IP database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Region from the IP database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Page before, stripped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer_url: Option<String>,
    /// Page after, stripped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_url: Option<String>,
    /// Keyed hash of the device identifier (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_hash: Option<String>,
}

/// A field's name, made only when a violation names it (most batches have none, and a
/// batch has thousands of fields).
pub type Field<'a> = &'a dyn Fn() -> String;

/// A tracking category; UNSPECIFIED is analytics (what usage events are for).
fn tracking(v: &mut FieldViolations, field: Field<'_>, raw: i32) -> Category {
    match TrackingCategory::try_from(raw) {
        Ok(TrackingCategory::StrictlyNecessary) => Category::StrictlyNecessary,
        Ok(TrackingCategory::Advertising) => Category::Advertising,
        Ok(TrackingCategory::Analytics | TrackingCategory::Unspecified) => Category::Analytics,
        Err(_) => {
            v.add(field(), "unknown tracking category");
            Category::Analytics
        }
    }
}

/// A device identifier as the contract takes it: 1 to [`MAX_TEXT`] printable characters
/// (`None` and no violation when blank and `required` is false). Only a keyed hash of it
/// is ever kept, so it is not searched for card numbers: an IMEI is 15 digits with a Luhn
/// check digit, like a card number.
pub fn device_id(
    v: &mut FieldViolations,
    field: Field<'_>,
    raw: &str,
    required: bool,
) -> Option<String> {
    let id = raw.trim();
    if id.is_empty() {
        if required {
            v.add(field(), "required");
        }
        None
    } else if id.chars().count() > MAX_TEXT || id.chars().any(char::is_control) {
        v.add(field(), format!("at most {MAX_TEXT} printable characters"));
        None
    } else {
        Some(id.to_owned())
    }
}

/// Optional one-line text through the mesh's free-text guard (no card numbers).
fn text(v: &mut FieldViolations, field: Field<'_>, raw: &str) -> Option<String> {
    match TextRule::line(MAX_TEXT).maybe(raw) {
        Ok(value) => value,
        Err(problem) => {
            v.add(field(), problem.to_string());
            None
        }
    }
}

/// `value` where the event's kind needs the field.
fn required(
    v: &mut FieldViolations,
    field: Field<'_>,
    raw: &str,
    value: Option<String>,
) -> Option<String> {
    if value.is_none() && raw.trim().is_empty() {
        v.add(field(), "required for this kind of event");
    }
    value
}

/// A URL stripped of its query and fragment, with no card number left in it, written
/// plain or with escapes (`%20` for the spaces between groups).
fn clean_url(v: &mut FieldViolations, field: Field<'_>, raw: &str) -> Option<String> {
    let clean = match url::strip(raw) {
        Ok(clean) => clean,
        Err(problem) => {
            v.add(field(), problem);
            return None;
        }
    };
    let card = refuse_card_number(&clean).and_then(|()| {
        if clean.contains('%') {
            refuse_card_number(&url::percent_decoded(&clean))
        } else {
            Ok(())
        }
    });
    match card {
        Ok(()) => Some(clean),
        Err(problem) => {
            v.add(field(), problem.to_string());
            None
        }
    }
}

fn subject_id(v: &mut FieldViolations, field: Field<'_>, raw: &str) -> Option<String> {
    match raw.parse::<SubjectId>() {
        Ok(id) => Some(id.to_string()),
        Err(e) => {
            v.add(field(), e.to_string());
            None
        }
    }
}

fn connection(c: ConnectionType) -> Option<&'static str> {
    match c {
        ConnectionType::Unspecified => None,
        ConnectionType::Wifi => Some("wifi"),
        ConnectionType::Cellular => Some("cellular"),
        ConnectionType::Ethernet => Some("ethernet"),
        ConnectionType::Unknown => Some("unknown"),
    }
}

/// Minimises a device context; returns it with the raw device identifier (`None` for
/// the device when nothing of it is kept).
fn device(
    v: &mut FieldViolations,
    at: Field<'_>,
    d: &pb::DeviceContext,
    geo: &GeoDb,
) -> (Option<Device>, Option<String>) {
    let field = |name: &str| format!("{}.device.{name}", at());
    let mut out = Device::default();
    match ConnectionType::try_from(d.connection) {
        Ok(c) => out.connection = connection(c),
        Err(_) => v.add(field("connection"), "unknown connection type"),
    }
    let put = |name: &str, raw: &str, v: &mut FieldViolations| text(v, &|| field(name), raw);
    out.locale = put("locale", &d.locale, v);
    out.time_zone = put("time_zone", &d.time_zone, v);
    out.os_name = put("os_name", &d.os_name, v);
    out.os_version = put("os_version", &d.os_version, v);
    out.browser_name = put("browser_name", &d.browser_name, v);
    out.browser_version = put("browser_version", &d.browser_version, v);
    out.app_version = put("app_version", &d.app_version, v);
    if !d.ip_address.trim().is_empty() {
        // Only the truncated address exists from here on.
        match ip::truncate(&d.ip_address) {
            Ok(truncated) => {
                out.ip_network = Some(truncated.to_string());
                if let Some(location) = geo.lookup(truncated) {
                    out.country = Some(location.country.clone());
                    if !location.region.is_empty() {
                        out.region = Some(location.region.clone());
                    }
                }
            }
            Err(e) => v.add(field("ip_address"), e),
        }
    }
    for (name, raw, slot) in [
        ("referrer_url", &d.referrer_url, &mut out.referrer_url),
        ("exit_url", &d.exit_url, &mut out.exit_url),
    ] {
        if raw.trim().is_empty() {
            continue;
        }
        *slot = clean_url(v, &|| field(name), raw);
    }
    let device_id = device_id(v, &|| field("device_id"), &d.device_id, false);
    let kept = (out != Device::default()).then_some(out);
    (kept, device_id)
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
        let at = || format!("events[{i}]");
        let subject = if e.subject_id.is_empty() {
            None
        } else {
            subject_id(&mut v, &|| format!("{}.subject_id", at()), &e.subject_id)
        };
        let kind = match EventKind::try_from(e.kind) {
            Ok(EventKind::Unspecified) => {
                v.add(format!("{}.kind", at()), "required");
                None
            }
            Ok(kind) => Some(kind),
            Err(_) => {
                v.add(format!("{}.kind", at()), "unknown event kind");
                None
            }
        };
        let occurred_at = match e.occurred_at.as_ref().map(from_timestamp) {
            None => {
                v.add(format!("{}.occurred_at", at()), "required");
                None
            }
            Some(None) => {
                v.add(format!("{}.occurred_at", at()), "not a valid time");
                None
            }
            Some(Some(t)) if t > now + SKEW => {
                v.add(format!("{}.occurred_at", at()), "must not be in the future");
                None
            }
            Some(Some(t)) if t < now - max_age => {
                v.add(format!("{}.occurred_at", at()), "too old");
                None
            }
            Some(Some(t)) => Some(t),
        };
        let mut details = Details::default();
        let mut peer = None;
        // Every field given is checked, whatever the kind; the kind decides what is kept.
        let feature_field = || format!("{}.feature", at());
        let screen_field = || format!("{}.screen", at());
        let link_field = || format!("{}.link_url", at());
        let feature = text(&mut v, &feature_field, &e.feature);
        let screen = text(&mut v, &screen_field, &e.screen);
        let link_url = if kind == Some(EventKind::LinkClicked) || !e.link_url.trim().is_empty() {
            clean_url(&mut v, &link_field, &e.link_url)
        } else {
            None
        };
        if kind != Some(EventKind::Interaction) && !e.peer_subject_id.is_empty() {
            v.add(
                format!("{}.peer_subject_id", at()),
                "only for an interaction",
            );
        }
        match kind {
            Some(EventKind::FeatureUsed) => {
                details.feature = required(&mut v, &feature_field, &e.feature, feature);
            }
            Some(EventKind::LinkClicked) => details.link_url = link_url,
            Some(EventKind::Interaction) => {
                peer = subject_id(
                    &mut v,
                    &|| format!("{}.peer_subject_id", at()),
                    &e.peer_subject_id,
                );
                if e.subject_id.is_empty() {
                    v.add(
                        format!("{}.subject_id", at()),
                        "required for an interaction",
                    );
                }
            }
            Some(EventKind::PageView) => {
                details.screen = required(&mut v, &screen_field, &e.screen, screen);
            }
            _ => {}
        }
        let category = tracking(&mut v, &|| format!("{}.tracking", at()), e.tracking);
        let gpc = e.device.as_ref().is_some_and(|d| d.global_privacy_control);
        let device_id = match &e.device {
            Some(d) => {
                let (kept, device_id) = device(&mut v, &at, d, geo);
                details.device = kept;
                device_id
            }
            None => None,
        };
        if let (Some(kind), Some(occurred_at)) = (kind, occurred_at) {
            out.push(CleanEvent {
                subject_id: subject,
                kind,
                occurred_at,
                peer,
                details,
                device_id,
                tracking: category,
                gpc,
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
        assert_eq!(clean[0].country(), Some("GB"));
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
    fn card_numbers_in_urls_are_refused_plain_or_escaped() {
        for link in [
            "https://shop.example/pay/4111111111111111",
            "https://shop.example/pay/4111-1111-1111-1111",
            "https://shop.example/pay/4111%201111%201111%201111",
            "https://shop.example/qty%202%204111%201111%201111%201111",
            "https://4111111111111111.shop.example/",
        ] {
            let mut e = event(EventKind::LinkClicked);
            e.link_url = link.into();
            let r = pb::IngestEventsRequest {
                batch_id: "b1".into(),
                events: vec![e],
            };
            let err = batch(&r, Utc::now(), Duration::days(30), &GeoDb::default());
            assert_eq!(
                fields(err.expect_err(link)),
                ["events[0].link_url"],
                "{link}"
            );
        }
        // The query goes before the check: a card there is never stored.
        let mut e = event(EventKind::LinkClicked);
        e.link_url = "https://shop.example/pay?card=4111111111111111".into();
        let r = pb::IngestEventsRequest {
            batch_id: "b1".into(),
            events: vec![e],
        };
        let clean = batch(&r, Utc::now(), Duration::days(30), &GeoDb::default());
        assert_eq!(
            clean.ok().and_then(|mut c| c.pop()?.details.link_url),
            Some("https://shop.example/pay".to_owned())
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
