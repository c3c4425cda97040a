//! The privacy team's console over HTTP against a real mesh (identity, consent, rights,
//! transfers and retention over mutual TLS as `svc/web`), on the database
//! `PDM_TEST_DATABASE` selects: operators sign in with a password and a TOTP code used
//! once; a person's request is seen in the queue and extended with a reason, in the
//! access trail under the operator's name; a dry run starts; consent counts show no
//! one; forms need their CSRF token; a person's session does not open the console.

mod support;

use std::time::Duration;

use hyper::StatusCode;
use pdm_proto::{
    audit::v1::{ListAccessesRequest, audit_service_client::AuditServiceClient},
    consent::v1::{GrantConsentRequest, Source},
    rights::v1::{Regime, RequestKind, Status, SubmitRequestRequest},
};
use pdm_runtime::ManualClock;
use pdm_testkit::eventually;
use pdm_testkit::web::Page;
use pdm_web::domain::totp;
use support::{Browser, Site};

type Result = anyhow::Result<()>;

const PASSWORD: &str = "a long operator password";

/// The secret of a provisioning URI.
fn secret_of(uri: &str) -> Vec<u8> {
    totp::secret_of_uri(uri).unwrap_or_else(|| panic!("no base32 secret in {uri}"))
}

/// The code an authenticator app shows at the clock's time.
fn code(secret: &[u8], clock: &ManualClock) -> String {
    use pdm_runtime::Clock as _;
    let step = totp::step(clock.now().timestamp());
    format!("{:06}", totp::hotp(secret, step as u64, 6).expect("a code"))
}

async fn sign_in(
    browser: &mut Browser,
    name: &str,
    password: &str,
    code: &str,
) -> anyhow::Result<Page> {
    let form = browser.get("/console/sign-in").await?;
    let csrf = form.csrf().expect("a csrf token on the sign-in form");
    browser
        .post(
            "/console/sign-in",
            &[
                ("csrf", &csrf),
                ("name", name),
                ("password", password),
                ("code", code),
            ],
        )
        .await
}

/// A signed-in operator's browser.
async fn operator(site: &Site, clock: &ManualClock, name: &str) -> anyhow::Result<Browser> {
    let uri = site.operator(name, PASSWORD).await?;
    let mut browser = Browser::new(site.addr);
    let page = sign_in(&mut browser, name, PASSWORD, &code(&secret_of(&uri), clock)).await?;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    Ok(browser)
}

#[tokio::test]
async fn operators_sign_in_with_their_password_and_a_code_used_once() -> Result {
    // Data Security & Protection: the console is the privacy team's, each with their own
    // account and a second factor.
    let clock = ManualClock::new(chrono::Utc::now());
    let site = Site::start_console(clock.clone()).await?;
    let uri = site.operator("alice", PASSWORD).await?;
    assert!(
        uri.starts_with("otpauth://totp/pdm%20console:alice?secret="),
        "{uri}"
    );
    assert!(
        site.operator("alice", PASSWORD).await.is_err(),
        "the name is taken"
    );
    assert!(
        site.operator("bob", "short").await.is_err(),
        "a short password"
    );
    let secret = secret_of(&uri);

    let mut browser = Browser::new(site.addr);
    let page = browser.get("/console").await?;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/console/sign-in");

    let now = code(&secret, &clock);
    let wrong = if now == "000000" { "111111" } else { "000000" };
    for (password, code) in [(PASSWORD, wrong), ("not the password!", now.as_str())] {
        let refused = sign_in(&mut browser, "alice", password, code).await?;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(
            refused
                .body
                .contains("The name, the password or the code is not right.")
        );
        assert!(!browser.cookies.contains_key("pdm_console"));
    }
    let unknown = sign_in(&mut browser, "nobody", PASSWORD, &now).await?;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);

    let signed_in = sign_in(&mut browser, "alice", PASSWORD, &now).await?;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location(), "/console");
    let cookie = signed_in
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("pdm_console="))
        .expect("a console session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(flag), "{flag}: {cookie}");
    }
    let queue = browser.get("/console").await?;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    assert!(queue.body.contains("<span id=\"operator\">alice</span>"));
    assert!(!queue.body.contains("<script"));

    // The same code again, from another browser: refused (replay), though still in time.
    let mut other = Browser::new(site.addr);
    let replayed = sign_in(&mut other, "alice", PASSWORD, &now).await?;
    assert_eq!(
        replayed.status,
        StatusCode::UNAUTHORIZED,
        "a code works once"
    );
    assert!(!other.cookies.contains_key("pdm_console"));
    clock.advance(chrono::Duration::seconds(30));
    let next = sign_in(&mut other, "alice", PASSWORD, &code(&secret, &clock)).await?;
    assert_eq!(
        next.status,
        StatusCode::SEE_OTHER,
        "the next step's code works"
    );

    // Signing out ends the session.
    let csrf = queue.csrf().expect("the sign-out form's token");
    let out = browser
        .post("/console/sign-out", &[("csrf", &csrf)])
        .await?;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        browser.get("/console").await?.location(),
        "/console/sign-in"
    );
    site.stop().await
}

#[tokio::test]
async fn a_person_s_request_is_extended_from_the_queue_under_the_operator_s_name() -> Result {
    // "GDPR Data Protection Rights": one month, extendable with a recorded reason; every
    // access recorded ("Performing audit functions"), here under the operator's name.
    let clock = ManualClock::new(chrono::Utc::now());
    let site = Site::start_console(clock.clone()).await?;
    let (_, subject) = site.person().await?;
    let submitted = site
        .mesh
        .rights()
        .submit_request(SubmitRequestRequest {
            kind: RequestKind::Access as i32,
            regime: Regime::Gdpr as i32,
            subject_id: subject.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .request
        .expect("the request");
    assert_eq!(submitted.status, Status::VerificationRequired as i32);
    let id = submitted.request_id.clone();

    let mut browser = operator(&site, &clock, "alice").await?;
    let queue = browser.get("/console").await?;
    assert!(
        queue.body.contains(&format!("id=\"request-{id}\"")),
        "{}",
        queue.body
    );
    assert!(queue.body.contains("waiting for verification"));
    let detail = browser.get(&format!("/console/requests/{id}")).await?;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    let csrf = detail.csrf().expect("a token");

    // Without the form's token: refused, nothing extended.
    let forged = browser
        .post(
            &format!("/console/requests/{id}/extend"),
            &[("months", "1"), ("reason", "a forged form")],
        )
        .await?;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let reason = "Many records across services to gather";
    let extended = browser
        .post(
            &format!("/console/requests/{id}/extend"),
            &[("csrf", &csrf), ("months", "1"), ("reason", reason)],
        )
        .await?;
    assert_eq!(extended.status, StatusCode::OK, "{}", extended.body);
    assert!(extended.body.contains("id=\"notice\""), "{}", extended.body);
    assert!(extended.body.contains(reason));
    let stored = site
        .mesh
        .rights()
        .get_request(pdm_proto::rights::v1::GetRequestRequest {
            request_id: id.clone(),
            session_token: String::new(),
        })
        .await?
        .into_inner()
        .request
        .expect("the request");
    assert_eq!(stored.extension_reason, reason);

    // The rights trail names the operator for the extension.
    let trail = AuditServiceClient::new(site.mesh.channel("rights"));
    eventually(
        "the extension in the trail",
        Duration::from_secs(10),
        || {
            let mut trail = trail.clone();
            let subject = subject.clone();
            async move {
                let accesses = trail
                    .list_accesses(ListAccessesRequest {
                        subject_id: subject,
                        page_size: 1000,
                        page_token: String::new(),
                    })
                    .await?
                    .into_inner()
                    .accesses;
                Ok(accesses.iter().any(|a| {
                    a.caller == "web/operator:alice"
                        && a.method == "/pdm.rights.v1.RightsService/ExtendDeadline"
                }))
            }
        },
    )
    .await?;
    // Verified with the operator's reference: the request goes ahead.
    let verified = browser
        .post(
            &format!("/console/requests/{id}/verify"),
            &[
                ("csrf", &csrf),
                ("subject_id", &subject),
                ("reference", "ticket 4711: passport seen"),
            ],
        )
        .await?;
    assert_eq!(verified.status, StatusCode::SEE_OTHER, "{}", verified.body);
    let after = browser.get(&format!("/console/requests/{id}")).await?;
    assert!(
        !after.body.contains("waiting for verification"),
        "{}",
        after.body
    );

    let report = browser.get("/console/report").await?;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    assert!(report.body.contains("<td>access</td>"), "{}", report.body);
    site.stop().await
}

#[tokio::test]
async fn the_registers_show_counts_runs_and_trails_but_no_one() -> Result {
    let clock = ManualClock::new(chrono::Utc::now());
    let site = Site::start_console(clock.clone()).await?;
    let (person, subject) = site.person().await?;
    site.mesh
        .consent()
        .grant_consent(GrantConsentRequest {
            subject_id: subject.clone(),
            purpose: "marketing_email".to_owned(),
            source: Source::WebForm as i32,
            policy_version: "2024-06-28".to_owned(),
            text_hash: "a".repeat(64),
            actor: "subject".to_owned(),
            ..Default::default()
        })
        .await?;
    let mut browser = operator(&site, &clock, "alice").await?;

    // Consent: counts per purpose, nobody named.
    let consent = browser.get("/console/consent").await?;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
    let row = consent
        .body
        .split("id=\"purpose-marketing_email\"")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .expect("the marketing_email row");
    assert!(row.contains("<td class=\"granted-now\">1</td>"), "{row}");
    for personal in [
        &subject,
        &person.email,
        &person.first_name,
        &person.last_name,
    ] {
        assert!(
            !consent.body.contains(personal.as_str()),
            "{personal} on the page"
        );
    }

    // Retention: a dry run started, seen to its end.
    let retention = browser.get("/console/retention").await?;
    assert_eq!(retention.status, StatusCode::OK, "{}", retention.body);
    let csrf = retention.csrf().expect("a token");
    let started = browser
        .post("/console/retention/dry-run", &[("csrf", &csrf)])
        .await?;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let run = started.location().to_owned();
    assert!(run.starts_with("/console/retention/runs/"), "{run}");
    let browser_cookies = browser.cookies.clone();
    let page = eventually("the dry run ends", Duration::from_secs(20), || {
        let mut b = Browser::new(site.addr);
        b.cookies = browser_cookies.clone();
        let run = run.clone();
        async move {
            let page = b.get(&run).await?;
            Ok((!page.body.contains("<strong>running</strong>")).then_some(page))
        }
    })
    .await?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Dry run"), "{}", page.body);
    assert!(
        page.body.contains("<strong>completed</strong>"),
        "{}",
        page.body
    );
    let listed = browser.get("/console/retention").await?;
    assert!(listed.body.contains("dry run"), "{}", listed.body);

    // Transfers and trails answer; every trail of the mesh's services verifies.
    let transfers = browser.get("/console/transfers").await?;
    assert_eq!(transfers.status, StatusCode::OK, "{}", transfers.body);
    let trails = browser.get("/console/trails").await?;
    assert_eq!(trails.status, StatusCode::OK, "{}", trails.body);
    for service in ["identity", "consent", "rights", "transfers", "retention"] {
        let row = trails
            .body
            .split(&format!("id=\"trail-{service}\""))
            .nth(1)
            .and_then(|rest| rest.split("</tr>").next())
            .unwrap_or_default();
        assert!(
            row.contains("<td class=\"state\">intact</td>"),
            "{service}: {row}"
        );
    }
    site.stop().await
}

#[tokio::test]
async fn a_person_s_session_does_not_open_the_console() -> Result {
    let clock = ManualClock::new(chrono::Utc::now());
    let site = Site::start_console(clock.clone()).await?;
    let (person, _) = site.person().await?;
    let mut browser = Browser::new(site.addr);
    let signed_in = browser.sign_in(&person.email, &person.password).await?;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    for path in ["/console", "/console/consent", "/console/trails"] {
        let page = browser.get(path).await?;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), "/console/sign-in", "{path}");
    }
    // A person's session token as the console's cookie opens nothing either.
    let token = browser
        .cookies
        .get("pdm_session")
        .cloned()
        .expect("a session");
    browser.cookies.insert("pdm_console".to_owned(), token);
    assert_eq!(
        browser.get("/console").await?.location(),
        "/console/sign-in"
    );
    // And the console's forms need an operator's token: a person's is refused.
    let page = browser.get("/account").await?;
    let csrf = page.csrf().expect("a token");
    let forged = browser
        .post("/console/retention/dry-run", &[("csrf", &csrf)])
        .await?;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    site.stop().await
}

/// The overdue page (issue 21, "overdue surfaced in metrics and in the console"): a breach
/// whose 72 hours have passed without a notification to the authority is listed per
/// regime, by title and dates, its description (which may name people) left out.
#[tokio::test]
async fn the_overdue_page_lists_a_breach_past_its_72_hours_without_its_description() -> Result {
    use pdm_proto::incidents::v1::{
        IncidentDetails, Nature, OpenIncidentRequest, RiskLevel,
        incidents_service_client::IncidentsServiceClient,
    };
    use pdm_runtime::{Clock as _, convert::timestamp};
    let clock = ManualClock::new(chrono::Utc::now());
    let site = Site::start_console(clock.clone()).await?;
    let mut browser = operator(&site, &clock, "alice").await?;
    let empty = browser.get("/console/incidents").await?;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    assert!(!empty.body.contains("overdue-deadline"), "{}", empty.body);

    let now = clock.now();
    let description = "Export of Jane Roe's tickets went to the wrong partner";
    let mut incidents = IncidentsServiceClient::new(
        site.mesh
            .channel_as("incidents", &pdm_tls::identity::Caller::Admin)?,
    );
    let opened = incidents
        .open_incident(OpenIncidentRequest {
            details: Some(IncidentDetails {
                title: "Partner export sent to the wrong recipient".into(),
                detected_at: Some(timestamp(now - chrono::Duration::hours(80))),
                aware_at: Some(timestamp(now - chrono::Duration::hours(79))),
                description: description.into(),
                natures: vec![Nature::Confidentiality as i32],
                data_categories: vec!["support.ticket".into()],
                services: vec!["identity".into()],
                window_start: Some(timestamp(now - chrono::Duration::days(5))),
                window_end: None,
                approximate_subjects: 1,
                approximate_records: 1,
                likely_consequences: "Phishing.".into(),
                measures_taken: "Partner deleted the file.".into(),
                risk: RiskLevel::Unspecified as i32,
                risk_reasoning: String::new(),
                regimes: vec!["gdpr".into()],
            }),
            actor: "dpo-office".into(),
        })
        .await?
        .into_inner()
        .incident
        .expect("the incident");

    let page = browser.get("/console/incidents").await?;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let row = page
        .body
        .split("class=\"overdue-deadline\"")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .expect("the overdue deadline's row");
    assert!(row.contains(&opened.incident_id), "{row}");
    assert!(
        row.contains("Partner export sent to the wrong recipient"),
        "{row}"
    );
    assert!(row.contains("gdpr"), "{row}");
    assert!(!page.body.contains("Jane Roe"), "{}", page.body);
    site.stop().await
}
