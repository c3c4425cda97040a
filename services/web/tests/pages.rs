//! The privacy centre over HTTP against a real mesh (identity and consent over mutual TLS
//! as `svc/web`): sign-in, the security headers and cookie flags, CSRF, the sign-in rate
//! limit, a consent toggle seen by CheckProcessing at once, the deletion path ending with
//! the account gone, profile correction, message opt-outs, GPC and session expiry. On the
//! database `PDM_TEST_DATABASE` selects.

mod support;

use std::sync::Arc;

use hyper::StatusCode;
use pdm_proto::consent::v1::{
    CanContactRequest, Channel, CheckProcessingRequest, GetConsentHistoryRequest,
    GetConsentsRequest, LedgerEntryKind, ListPurposesRequest, MessageKind, Source,
};
use pdm_proto::identity::v1::GetAccountRequest;
use pdm_runtime::ManualClock;
use support::{Browser, Site};

type Result = anyhow::Result<()>;

fn sha256_hex(text: &str) -> String {
    pdm_web::security::sha256_hex(text)
}

#[tokio::test]
async fn every_page_carries_the_security_headers_and_cookies_their_flags() -> Result {
    let site = Site::start(&[], None).await?;
    let (person, _) = site.person().await?;
    let mut browser = Browser::new(site.addr);

    let form = browser.get("/sign-in").await?;
    assert_eq!(form.status, StatusCode::OK);
    for page in [&form, &browser.get("/no-such-page").await?] {
        let csp = page.header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("script-src"),
            "{csp}"
        );
        assert!(
            page.header("strict-transport-security")
                .starts_with("max-age=")
        );
        assert_eq!(page.header("x-content-type-options"), "nosniff");
        assert_eq!(page.header("cache-control"), "no-store");
    }
    assert!(!form.body.contains("<script"), "no script on the page");
    let csrf_cookie = form
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("pdm_csrf="))
        .expect("a csrf cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(csrf_cookie.contains(flag), "{flag}: {csrf_cookie}");
    }

    let signed_in = browser.sign_in(&person.email, &person.password).await?;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location(), "/account");
    let session_cookie = signed_in
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("pdm_session="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(session_cookie.contains(flag), "{flag}: {session_cookie}");
    }
    let token = browser.cookies.get("pdm_session").cloned().expect("token");
    // The name at the top right leads to the account settings.
    let account = browser.get("/account").await?;
    assert_eq!(account.status, StatusCode::OK);
    assert!(account.body.contains(&format!(
        "<a id=\"account-menu\" href=\"/account\">{} {}</a>",
        person.first_name, person.last_name
    )));
    assert!(
        account
            .header("content-security-policy")
            .contains("frame-ancestors 'none'")
    );
    // No personal data in the URLs the pages link to or redirect to.
    assert!(!account.body.contains(&format!("href=\"/{}", person.email)));

    // Only the token's hash is stored, beside the identity session and the csrf token.
    let rows = site.sessions().await?.rows().await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].key, sha256_hex(&token));
    assert_ne!(rows[0].key, token);

    // The logs hold no personal data and no token.
    let mut secrets = person.secrets();
    secrets.push(("web session token", token.as_str()));
    site.mesh.logs().assert_clean(&secrets);
    site.stop().await
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_with_403_and_changes_nothing() -> Result {
    let site = Site::start(&[], None).await?;
    let (person, subject) = site.person().await?;
    let mut browser = Browser::new(site.addr);

    // The sign-in form: no token, then a token that is not the cookie's.
    browser.get("/sign-in").await?;
    let none = browser
        .post(
            "/sign-in",
            &[("email", &person.email), ("password", &person.password)],
        )
        .await?;
    assert_eq!(none.status, StatusCode::FORBIDDEN);
    let wrong = browser
        .post(
            "/sign-in",
            &[
                ("csrf", "forged"),
                ("email", &person.email),
                ("password", &person.password),
            ],
        )
        .await?;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(
        !wrong
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("pdm_session="))
    );

    // Signed in: a consent form without the session's token is refused, nothing written.
    assert_eq!(
        browser
            .sign_in(&person.email, &person.password)
            .await?
            .status,
        StatusCode::SEE_OTHER
    );
    let privacy = browser.get("/privacy").await?;
    let hash = privacy
        .input_after("purpose-product_analytics", "text_hash")
        .expect("product_analytics is on the page");
    let refused = browser
        .post(
            "/privacy",
            &[
                ("purpose", "product_analytics"),
                ("action", "grant"),
                ("text_hash", &hash),
            ],
        )
        .await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused
            .header("content-security-policy")
            .contains("frame-ancestors 'none'")
    );
    // The sign-in page's token does not do for a signed-in form either.
    let other = browser
        .post(
            "/account/delete/confirm",
            &[
                ("csrf", "x".repeat(43).as_str()),
                ("reason", "DELETION_REASON_OTHER"),
                ("password", &person.password),
                ("confirm", "yes"),
            ],
        )
        .await?;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let history = site
        .mesh
        .consent()
        .get_consent_history(GetConsentHistoryRequest {
            subject_id: subject.clone(),
            after_sequence: 0,
            page_size: 100,
        })
        .await?
        .into_inner();
    assert!(history.entries.is_empty(), "{:?}", history.entries);
    site.mesh
        .identity()
        .get_account(GetAccountRequest {
            subject_id: subject,
        })
        .await?;
    site.stop().await
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_sign_in_is_rate_limited() -> Result {
    let site = Site::start(&[("web.sign_in_attempts", "3")], None).await?;
    let (person, _) = site.person().await?;
    let mut browser = Browser::new(site.addr);
    let wrong = browser
        .sign_in(&person.email, "not the password at all")
        .await?;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .body
            .contains("The email address or the password is not right.")
    );
    // Nothing typed comes back but the email, in the form, not in a URL.
    assert!(!wrong.body.contains("not the password at all"));
    let unknown = browser
        .sign_in("nobody@example.org", "whatever whatever")
        .await?;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    browser
        .sign_in(&person.email, "still not it at all")
        .await?;
    // A fourth attempt from the address within the window: 429, even with the password.
    let limited = browser.sign_in(&person.email, &person.password).await?;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        limited
            .header("retry-after")
            .parse::<u64>()
            .is_ok_and(|s| s >= 1)
    );
    assert!(
        !limited
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("pdm_session="))
    );
    site.stop().await
}

#[tokio::test]
async fn a_consent_toggle_is_seen_by_check_processing_at_once_with_its_proof() -> Result {
    let site = Site::start(&[], None).await?;
    let (person, subject) = site.person().await?;
    let mut browser = Browser::new(site.addr);
    browser.sign_in(&person.email, &person.password).await?;

    // Every purpose of the catalogue is on the page with its text and legal basis.
    let catalogue = site
        .mesh
        .consent()
        .list_purposes(ListPurposesRequest {})
        .await?
        .into_inner()
        .purposes;
    let page = browser.get("/privacy").await?;
    assert_eq!(page.status, StatusCode::OK);
    for purpose in &catalogue {
        assert!(
            page.body
                .contains(&format!("id=\"purpose-{}\"", purpose.key)),
            "{}",
            purpose.key
        );
        assert!(page.body.contains("Legal basis: <strong>"));
    }
    let analytics = catalogue
        .iter()
        .find(|p| p.key == "product_analytics")
        .expect("product_analytics");
    let hash = page
        .input_after("purpose-product_analytics", "text_hash")
        .expect("a text hash");
    assert_eq!(hash, sha256_hex(&analytics.description));
    let csrf = page.csrf().expect("csrf");
    let check = || async {
        anyhow::Ok(
            site.mesh
                .consent()
                .check_processing(CheckProcessingRequest {
                    subject_id: subject.clone(),
                    purpose: "product_analytics".into(),
                    at_least: String::new(),
                })
                .await?
                .into_inner()
                .decision
                .expect("decision")
                .allowed,
        )
    };
    assert!(!check().await?, "no consent yet");

    let granted = browser
        .post(
            "/privacy",
            &[
                ("csrf", &csrf),
                ("purpose", "product_analytics"),
                ("action", "grant"),
                ("text_hash", &hash),
            ],
        )
        .await?;
    assert_eq!(granted.status, StatusCode::SEE_OTHER, "{}", granted.body);
    assert!(check().await?, "seen at once");
    let history = site
        .mesh
        .consent()
        .get_consent_history(GetConsentHistoryRequest {
            subject_id: subject.clone(),
            after_sequence: 0,
            page_size: 100,
        })
        .await?
        .into_inner()
        .entries;
    let grant = history.last().expect("a grant");
    assert_eq!(grant.kind, LedgerEntryKind::Grant as i32);
    assert_eq!(grant.source, Source::WebForm as i32);
    assert_eq!(grant.policy_version, "2024-06-28");
    assert_eq!(grant.text_hash, sha256_hex(&analytics.description));
    let page = browser.get("/privacy").await?;
    assert!(page.body.contains("Withdraw consent to Product analytics"));

    // A text hash other than the one of the text shown is not recorded as consent.
    browser
        .post(
            "/privacy",
            &[
                ("csrf", &csrf),
                ("purpose", "product_analytics"),
                ("action", "withdraw"),
                ("text_hash", ""),
            ],
        )
        .await?;
    assert!(!check().await?, "withdrawn at once");
    let stale = browser
        .post(
            "/privacy",
            &[
                ("csrf", &csrf),
                ("purpose", "product_analytics"),
                ("action", "grant"),
                ("text_hash", &"0".repeat(64)),
            ],
        )
        .await?;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(!check().await?, "a grant of another text is not recorded");

    // The history of the choices, oldest first, linked from the page.
    assert!(page.body.contains("href=\"/privacy/history\""));
    let history = browser.get("/privacy/history").await?;
    assert_eq!(history.status, StatusCode::OK);
    let given = history.body.find("<td>consent given</td><td>Product analytics</td><td>a form on our sites</td><td>2024-06-28</td>");
    let withdrawn = history
        .body
        .find("<td>consent withdrawn</td><td>Product analytics</td><td>a form on our sites</td>");
    assert!(
        matches!((given, withdrawn), (Some(g), Some(w)) if g < w),
        "{}",
        history.body
    );
    assert_eq!(history.body.matches("class=\"entry\"").count(), 2);
    site.stop().await
}

#[tokio::test]
async fn the_deletion_path_ends_with_the_account_gone() -> Result {
    let site = Site::start(&[], None).await?;
    let (person, subject) = site.person().await?;
    let mut browser = Browser::new(site.addr);
    browser.sign_in(&person.email, &person.password).await?;
    // A second browser of the same person: its session ends with the account too.
    let mut other = Browser::new(site.addr);
    other.sign_in(&person.email, &person.password).await?;

    // The name at the top right → Account settings → Delete account.
    let settings = browser.get("/account").await?;
    assert!(settings.body.contains("href=\"/account/delete\""));
    let start = browser.get("/account/delete").await?;
    assert_eq!(start.status, StatusCode::OK);
    let csrf = start.csrf().expect("csrf");
    // A reason is needed.
    let no_reason = browser.post("/account/delete", &[("csrf", &csrf)]).await?;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    let step2 = browser
        .post(
            "/account/delete",
            &[
                ("csrf", &csrf),
                ("reason", "DELETION_REASON_PRIVACY_CONCERNS"),
            ],
        )
        .await?;
    assert_eq!(step2.status, StatusCode::OK);
    assert!(step2.body.contains("Your password, again"));
    let request_id = step2.input_after("", "request_id").expect("request id");
    let confirm = |password: &str, confirmed: bool| {
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("reason", "DELETION_REASON_PRIVACY_CONCERNS".to_owned()),
            ("request_id", request_id.clone()),
            ("password", password.to_owned()),
        ];
        if confirmed {
            form.push(("confirm", "yes".to_owned()));
        }
        form
    };
    let as_refs =
        |form: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { form.clone() };
    // Without the final confirmation, or with a wrong password: nothing happens.
    let form = as_refs(&confirm(&person.password, false));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let unconfirmed = browser.post("/account/delete/confirm", &pairs).await?;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    let form = as_refs(&confirm("wrong password entirely", true));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let wrong = browser.post("/account/delete/confirm", &pairs).await?;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("That password is not right."));
    site.mesh
        .identity()
        .get_account(GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await?;

    let form = as_refs(&confirm(&person.password, true));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = browser.post("/account/delete/confirm", &pairs).await?;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/account/deleted");
    assert!(
        done.set_cookies()
            .iter()
            .any(|c| c.starts_with("pdm_session=;") && c.contains("Max-Age=0"))
    );
    let confirmation = browser.get("/account/deleted").await?;
    assert_eq!(confirmation.status, StatusCode::OK);
    assert!(confirmation.body.contains("Your account is deleted"));

    // Gone: identity knows no such account, sign-in fails, every session ended.
    let gone = site
        .mesh
        .identity()
        .get_account(GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await;
    assert_eq!(gone.err().map(|s| s.code()), Some(tonic::Code::NotFound));
    let consents = site
        .mesh
        .consent()
        .get_consents(GetConsentsRequest {
            subject_id: subject.clone(),
        })
        .await;
    assert!(consents.is_err(), "consent no longer knows the subject");
    let again = Browser::new(site.addr)
        .sign_in(&person.email, &person.password)
        .await?;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    let stale = other.get("/account").await?;
    assert_eq!(stale.status, StatusCode::SEE_OTHER);
    assert_eq!(stale.location(), "/sign-in");
    let rows = site.sessions().await?.rows().await?;
    assert!(
        rows.iter().all(|r| r.subject_id != subject),
        "sessions left"
    );
    site.mesh.logs().assert_clean(&person.secrets());
    site.stop().await
}

#[tokio::test]
async fn profile_corrections_message_opt_outs_and_gpc_go_through_the_mesh() -> Result {
    let site = Site::start(&[], None).await?;
    let (person, subject) = site.person().await?;
    let mut browser = Browser::new(site.addr);
    // The browser sends Global Privacy Control: recorded as "do not sell or share".
    browser.extra.push(("sec-gpc".to_owned(), "1".to_owned()));
    browser.sign_in(&person.email, &person.password).await?;
    let state = site
        .mesh
        .consent()
        .get_consents(GetConsentsRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner();
    assert!(state.do_not_sell, "the GPC signal was recorded");
    let history = site
        .mesh
        .consent()
        .get_consent_history(GetConsentHistoryRequest {
            subject_id: subject.clone(),
            after_sequence: 0,
            page_size: 100,
        })
        .await?
        .into_inner()
        .entries;
    assert!(
        history
            .iter()
            .any(|e| e.kind == LedgerEntryKind::DoNotSell as i32 && e.source == Source::Gpc as i32)
    );
    assert!(
        browser
            .get("/privacy")
            .await?
            .body
            .contains("id=\"gpc-notice\"")
    );

    // Profile: shown, a bad phone refused beside its field, a correction saved.
    let profile = browser.get("/profile").await?;
    assert!(
        profile
            .body
            .contains(&format!("value=\"{}\"", person.email))
    );
    let csrf = profile.csrf().expect("csrf");
    let bad = browser
        .post(
            "/profile",
            &[
                ("csrf", &csrf),
                ("first_name", &person.first_name),
                ("last_name", &person.last_name),
                ("email", &person.email),
                ("phone", "12"),
            ],
        )
        .await?;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("id=\"phone-error\""), "{}", bad.body);
    let saved = browser
        .post(
            "/profile",
            &[
                ("csrf", &csrf),
                ("first_name", "Augusta"),
                ("last_name", &person.last_name),
                ("email", &person.email),
                ("phone", &person.phone),
            ],
        )
        .await?;
    assert_eq!(saved.status, StatusCode::OK);
    assert!(saved.body.contains("Your details are saved."));
    let account = site
        .mesh
        .identity()
        .get_account(GetAccountRequest {
            subject_id: subject.clone(),
        })
        .await?
        .into_inner()
        .account
        .expect("account");
    assert_eq!(account.first_name, "Augusta");

    // Messages: email switched off, seen by CanContact at once; security mail still goes.
    let messages = browser.get("/messages").await?;
    assert!(messages.body.contains("Security: always on"));
    let off = browser
        .post(
            "/messages",
            &[
                ("csrf", &csrf),
                ("channel", "CHANNEL_EMAIL"),
                ("opted_out", "true"),
            ],
        )
        .await?;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    let can = |kind: MessageKind| {
        let mut consent = site.mesh.consent();
        let subject = subject.clone();
        async move {
            anyhow::Ok(
                consent
                    .can_contact(CanContactRequest {
                        subject_id: subject,
                        channel: Channel::Email as i32,
                        kind: kind as i32,
                        at_least: String::new(),
                    })
                    .await?
                    .into_inner()
                    .decision
                    .expect("decision")
                    .allowed,
            )
        }
    };
    assert!(!can(MessageKind::Promotional).await?);
    assert!(can(MessageKind::Security).await?);
    assert!(
        browser
            .get("/messages")
            .await?
            .body
            .contains("Turn Email back on")
    );
    site.mesh.logs().assert_clean(&person.secrets());
    site.stop().await
}

/// A kept package is deleted once it expires ("deleted once it expires", docs/operations.md)
/// and an expired session with it, on a timer (`web.housekeeping_secs`): they used to go
/// only when someone next downloaded or signed in, so a package kept for a person who never
/// came back was kept for good.
#[tokio::test]
async fn expired_packages_and_sessions_are_deleted_without_anyone_coming_back() -> Result {
    let site = Site::start(&[("web.housekeeping_secs", "1")], None).await?;
    let sessions = site.sessions().await?;
    let db = pdm_runtime::db::connect(
        site.mesh.settings(),
        &pdm_web::database_target(site.mesh.settings())?,
    )
    .await?;
    let now = chrono::Utc::now();
    let subject = "0196b9e0-0000-7000-8000-000000000001";
    for (id, expires) in [
        ("expired", now - chrono::Duration::seconds(5)),
        ("kept", now + chrono::Duration::hours(1)),
    ] {
        sessions
            .keep_package(
                id,
                subject,
                b"wrapped".to_vec(),
                b"sealed".to_vec(),
                expires.timestamp(),
            )
            .await?;
    }
    sessions
        .create(
            "expired-session",
            subject,
            "identity-token",
            "csrf",
            Some(now - chrono::Duration::seconds(5)),
            now,
        )
        .await?;
    sessions
        .create("live-session", subject, "identity-token", "csrf", None, now)
        .await?;
    let packages = |id: &'static str| {
        let db = db.clone();
        async move { pdm_testkit::assert::rows_where(&db, "web_packages", "request_id", id).await }
    };
    pdm_testkit::eventually(
        "the expired package and session are deleted",
        std::time::Duration::from_secs(10),
        || {
            let sessions = sessions.clone();
            let expired = packages("expired");
            async move {
                let keys: Vec<String> = sessions.rows().await?.into_iter().map(|r| r.key).collect();
                Ok(expired.await == 0 && !keys.iter().any(|k| k == "expired-session"))
            }
        },
    )
    .await?;
    assert_eq!(packages("kept").await, 1, "a package still valid stays");
    let keys: Vec<String> = sessions.rows().await?.into_iter().map(|r| r.key).collect();
    assert!(
        keys.iter().any(|k| k == "live-session"),
        "a live session stays"
    );
    site.stop().await
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_absolute_expiry() -> Result {
    let clock = ManualClock::new(chrono::Utc::now());
    let site = Site::start(
        &[
            ("web.session_idle_minutes", "10"),
            ("web.session_absolute_hours", "1"),
        ],
        Some(clock.clone() as Arc<dyn pdm_runtime::Clock>),
    )
    .await?;
    let (person, _) = site.person().await?;

    let mut idle = Browser::new(site.addr);
    idle.sign_in(&person.email, &person.password).await?;
    assert_eq!(idle.get("/account").await?.status, StatusCode::OK);
    clock.advance(chrono::Duration::minutes(11));
    let expired = idle.get("/account").await?;
    assert_eq!(expired.status, StatusCode::SEE_OTHER);
    assert_eq!(expired.location(), "/sign-in");

    // Used every 9 minutes, a session still ends an hour after sign-in.
    let mut busy = Browser::new(site.addr);
    busy.sign_in(&person.email, &person.password).await?;
    for _ in 0..6 {
        clock.advance(chrono::Duration::minutes(9));
        assert_eq!(busy.get("/account").await?.status, StatusCode::OK);
    }
    clock.advance(chrono::Duration::minutes(7));
    assert_eq!(busy.get("/account").await?.location(), "/sign-in");
    site.stop().await
}

#[tokio::test]
async fn my_requests_show_the_persons_own_access_request_its_progress_and_deadline() -> Result {
    use pdm_proto::rights::v1::{GetRequestRequest, ListRequestsRequest, RequestKind, Status};
    let site = Site::start_with_rights(&[]).await?;
    let (person, subject) = site.person().await?;
    let (other, _) = site.person().await?;
    let mut browser = Browser::new(site.addr);
    browser.sign_in(&person.email, &person.password).await?;

    // Reached from the account settings; nothing yet.
    assert!(
        browser
            .get("/account")
            .await?
            .body
            .contains("href=\"/requests\"")
    );
    let page = browser.get("/requests").await?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("not made any request"), "{}", page.body);
    let csrf = page.csrf().expect("csrf");
    let reference = page.input_after("", "reference").expect("reference");

    // Without its token: 403 and no request anywhere.
    let refused = browser
        .post("/requests/access", &[("reference", &reference)])
        .await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let queue = || async {
        anyhow::Ok(
            site.mesh
                .rights()
                .list_requests(ListRequestsRequest::default())
                .await?
                .into_inner()
                .requests,
        )
    };
    assert!(queue().await?.is_empty());

    // "Download my data": an access request for this subject, vouched for by the session;
    // the same form sent twice is one request.
    let form = [("csrf", csrf.as_str()), ("reference", reference.as_str())];
    let made = browser.post("/requests/access", &form).await?;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let again = browser.post("/requests/access", &form).await?;
    assert_eq!(again.location(), made.location());
    let path = made.location().to_owned();
    let id = path
        .strip_prefix("/requests/")
        .expect("a request page")
        .to_owned();
    assert!(!path.contains(&subject) && !path.contains(&person.email));
    let queue = queue().await?;
    assert_eq!(queue.len(), 1, "one request");
    assert_eq!(queue[0].request_id, id);
    let admin = site
        .mesh
        .channel_as("rights", &pdm_tls::identity::Caller::Admin)?;
    let stored = pdm_proto::rights::v1::rights_service_client::RightsServiceClient::new(admin)
        .get_request(GetRequestRequest {
            request_id: id.clone(),
            session_token: String::new(),
        })
        .await?
        .into_inner()
        .request
        .expect("request");
    assert_eq!(stored.subject_id, subject);
    assert_eq!(stored.kind, RequestKind::Access as i32);
    assert_ne!(
        stored.status,
        Status::VerificationRequired as i32,
        "the session vouched for the person"
    );

    // Its page shows the progress without script and without a timed reload (WCAG 2.2.1):
    // a link to check again until done.
    let mut done = None;
    for _ in 0..300 {
        let page = browser.get(&path).await?;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("<script"));
        if page.body.contains("id=\"status\">done<") {
            done = Some(page);
            break;
        }
        assert!(!page.body.contains("http-equiv=\"refresh\""));
        assert!(
            page.body
                .contains("id=\"check-again\">We are still working on it"),
            "{}",
            page.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let done = done.expect("the request completed");
    assert!(!done.body.contains("id=\"check-again\""));
    assert!(done.body.contains("id=\"package\""), "{}", done.body);
    let tasks = done.body.matches("class=\"task\"").count();
    assert!(tasks >= 2, "identity's and consent's parts: {}", done.body);
    assert!(
        done.body.contains(&format!(
            "{tasks} of {tasks} steps across our services have finished"
        )),
        "{}",
        done.body
    );

    // The list: the request with its status and deadline (rights' due date).
    let due = stored
        .due_at
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .expect("due")
        .format("%Y-%m-%d")
        .to_string();
    let list = browser.get("/requests").await?;
    assert_eq!(list.body.matches("class=\"request\"").count(), 1);
    assert!(list.body.contains("A copy of your data"));
    assert!(
        list.body.contains(&format!("class=\"due\">{due}")),
        "{}",
        list.body
    );
    assert!(list.body.contains(&format!("href=\"{path}\"")));

    // The package: a page to read and a JSON file, as often as wanted until it expires
    // (rights gives it once; the web keeps it sealed).
    assert!(done.body.contains(&format!("href=\"{path}/package\"")));
    for _ in 0..2 {
        let readable = browser.get(&format!("{path}/package")).await?;
        assert_eq!(readable.status, StatusCode::OK, "{}", readable.body);
        assert!(
            readable.body.contains(&person.email),
            "the person's own data"
        );
        assert!(!readable.body.contains("<script"));
        let file = browser.get(&format!("{path}/package.json")).await?;
        assert_eq!(file.status, StatusCode::OK);
        assert_eq!(file.header("content-type"), "application/json");
        assert!(file.header("content-disposition").starts_with("attachment"));
        let json: serde_json::Value = serde_json::from_str(&file.body)?;
        assert_eq!(json["schema"], "pdm.export.v1");
        assert!(file.body.contains(&person.email));
    }

    // Another person sees neither the request, its page nor its package.
    let mut stranger = Browser::new(site.addr);
    stranger.sign_in(&other.email, &other.password).await?;
    assert_eq!(stranger.get(&path).await?.status, StatusCode::NOT_FOUND);
    for suffix in ["/package", "/package.json"] {
        let page = stranger.get(&format!("{path}{suffix}")).await?;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        assert!(!page.body.contains(&person.email));
    }
    let theirs = stranger.get("/requests").await?;
    assert!(theirs.body.contains("not made any request"));
    assert!(!theirs.body.contains(&id));
    site.stop().await
}

#[tokio::test]
async fn a_wrong_password_then_the_right_one_deletes_the_account_through_rights() -> Result {
    // Policy, account deletion step 4 ("you may be asked to enter your password again"):
    // a mistyped password must not lock the person out of deleting. With rights in the
    // mesh, identity files the deletion as an erasure request under the form's request id;
    // the refused attempt's request is withdrawn, so the next attempt needs a new id.
    let site = Site::start_with_rights(&[]).await?;
    let (person, subject) = site.person().await?;
    let mut browser = Browser::new(site.addr);
    browser.sign_in(&person.email, &person.password).await?;
    let start = browser.get("/account/delete").await?;
    let csrf = start.csrf().expect("csrf");
    let reason = "DELETION_REASON_OTHER";
    let step2 = browser
        .post("/account/delete", &[("csrf", &csrf), ("reason", reason)])
        .await?;
    let first_id = step2.input_after("", "request_id").expect("request id");
    let wrong = browser
        .post(
            "/account/delete/confirm",
            &[
                ("csrf", &csrf),
                ("reason", reason),
                ("request_id", &first_id),
                ("password", "wrong password entirely"),
                ("confirm", "yes"),
            ],
        )
        .await?;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let next_id = wrong.input_after("", "request_id").expect("request id");
    assert_ne!(next_id, first_id, "the refused attempt's id is spent");
    let done = browser
        .post(
            "/account/delete/confirm",
            &[
                ("csrf", &csrf),
                ("reason", reason),
                ("request_id", &next_id),
                ("password", &person.password),
                ("confirm", "yes"),
            ],
        )
        .await?;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/account/deleted");
    let gone = site
        .mesh
        .identity()
        .get_account(GetAccountRequest {
            subject_id: subject,
        })
        .await;
    assert_eq!(gone.err().map(|s| s.code()), Some(tonic::Code::NotFound));
    site.stop().await
}
